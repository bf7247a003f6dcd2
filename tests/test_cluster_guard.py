"""A build cannot change the cluster, even through dynamic SQL the static scan cannot read:
each bypass is refused before the build, or found by the build's audit of the cluster's
global state, reverted, and fails the build; a second project sharing the cached cluster is
unaffected. Real servers, through the core (one Scratch session for all the bypasses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import built_templates, cluster_connection, make_project, output_of, run_inner

from pytest_schemasync.config import build_settings
from pytest_schemasync.errors import SchemaSyncError
from pytest_schemasync.scratch import Scratch
from pytest_schemasync.standin import OWNER, READER, StandinProduction

PWNED = "/tmp/schemasync-guard-pwned"
OTHER_ROLE = "other_projects_role"

# name -> (statements, what the error must say)
BYPASSES: dict[str, tuple[str, str]] = {
    "alter_own_role": (
        "DO $$ BEGIN EXECUTE 'ALTER ROLE ' || current_user || ' SET search_path = nowhere'; "
        "END $$;", "settings of role"),
    "alter_own_role_fn": (
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN\n"
        "  EXECUTE format('ALTER ROLE %I SET work_mem = %L', session_user, '1MB');\n"
        "END $$;\nSELECT f();", "settings of role"),
    "own_role_attribute": (
        "DO $$ BEGIN EXECUTE 'ALTER ROLE ' || current_user || ' CONNECTION LIMIT 3'; END $$;",
        "attributes of role"),
    "copy_program_fn": (
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN\n"
        f"  EXECUTE 'COPY (SELECT 1) TO PROGRAM ''touch {PWNED}''';\n"
        "END $$;\nSELECT f();", "refused"),
    "read_file_fn": (
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('PG_VERSION') $$;"
        "\nCREATE TABLE copied AS SELECT f();", "refused"),
    "drop_other_role": (
        f"DO $$ BEGIN EXECUTE 'DROP ROLE ' || '{OTHER_ROLE}'; END $$;", f"role {OTHER_ROLE}"),
    "alter_other_role": (
        f"DO $$ BEGIN EXECUTE 'ALTER ROLE {OTHER_ROLE} ' || 'SUPERUSER'; END $$;",
        f"attributes of role {OTHER_ROLE}"),
    "other_database": (
        "DO $$ BEGIN EXECUTE 'ALTER ' || 'DATABASE postgres SET work_mem = ''2MB'''; END $$;",
        "settings of database postgres"),
    "database_attribute": (
        "DO $$ BEGIN EXECUTE 'ALTER ' || 'DATABASE template1 WITH CONNECTION LIMIT 7'; END $$;",
        "database template1: connection_limit -1 -> 7"),
    "grant_membership": (
        f"DO $$ BEGIN EXECUTE 'GRANT pg_execute_server_program TO ' || '{OTHER_ROLE}'; END $$;",
        f"memberships of role {OTHER_ROLE}"),
    "alter_system_fn": (  # PostgreSQL itself refuses these in a function or DO block
        "DO $$ BEGIN EXECUTE 'ALTER ' || 'SYSTEM SET work_mem = ''1MB'''; END $$;",
        "ALTER SYSTEM cannot"),
    "create_database_fn": (
        "DO $$ BEGIN EXECUTE 'CREATE ' || 'DATABASE made_in_a_block'; END $$;",
        "CREATE DATABASE cannot"),
    "through_dblink": (  # ... but not over a connection of its own
        "CREATE EXTENSION dblink;\n"
        "DO $$ DECLARE c text := format('dbname=postgres host=%s port=%s user=%s',\n"
        "  split_part(current_setting('unix_socket_directories'), ',', 1),\n"
        "  current_setting('port'), current_user);\n"
        "BEGIN\n"
        "  EXECUTE 'SELECT dbl' || 'ink_exec($1, $2)' USING c, 'ALTER ' || 'SYSTEM SET "
        "work_mem = ''3MB''';\n"
        "  EXECUTE 'SELECT dbl' || 'ink_exec($1, $2)' USING c, 'CREATE ' || 'DATABASE "
        "made_by_dblink';\n"
        "END $$;", "work_mem=3MB"),
    "changed_then_failed": (
        "DO $$ BEGIN EXECUTE 'ALTER ROLE ' || current_user || ' SET work_mem = ''1MB'''; "
        "END $$;\nSELECT 1/0;", "division by zero"),
    "file_fdw_program": (
        "CREATE EXTENSION file_fdw;\nCREATE SERVER files FOREIGN DATA WRAPPER file_fdw;\n"
        f"CREATE FOREIGN TABLE ft (x text) SERVER files OPTIONS (program 'touch {PWNED}');\n"
        "SELECT * FROM ft;", "refused"),
    "file_fdw_filename": (
        "CREATE EXTENSION file_fdw;\nCREATE SERVER files FOREIGN DATA WRAPPER file_fdw;\n"
        "CREATE FOREIGN TABLE ft (x text) SERVER files\n"
        "  OPTIONS (filename '/etc/passwd', format 'csv');", "refused"),
}

GOOD_FILE = "CREATE TABLE t (id int);\nCREATE ROLE app_b NOLOGIN;\nGRANT SELECT ON t TO app_b;\n"


def cluster_state(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """Everything global a build could change, the plugin's own databases left out."""
    return (
        conn.execute("SELECT datname, datdba, datistemplate, datallowconn, datconnlimit, "
                     "datacl::text FROM pg_database WHERE datname !~ '^ss[cstb]_' "
                     "ORDER BY 1").fetchall(),
        conn.execute("SELECT spcname, spcoptions::text FROM pg_tablespace ORDER BY 1").fetchall(),
        conn.execute("SELECT coalesce(r.rolname, '-'), coalesce(d.datname, '-'), "
                     "s.setconfig::text FROM pg_db_role_setting s "
                     "LEFT JOIN pg_roles r ON r.oid = s.setrole "
                     "LEFT JOIN pg_database d ON d.oid = s.setdatabase ORDER BY 1, 2").fetchall(),
        conn.execute("SELECT name, setting FROM pg_file_settings "
                     "WHERE sourcefile LIKE '%%postgresql.auto.conf' ORDER BY 1").fetchall(),
        conn.execute("SELECT rolname, rolsuper, rolcanlogin, rolconnlimit, rolcreatedb, "
                     "ARRAY(SELECT roleid::regrole::text FROM pg_auth_members "
                     "WHERE member = r.oid ORDER BY 1)::text "
                     "FROM pg_roles r ORDER BY 1").fetchall(),
    )


@pytest.fixture
def shared(pytester: pytest.Pytester, cache_dir: Path) -> Path:
    """Project B, an ordinary project built once on the cached cluster, and a role of
    another project's that nothing depends on."""
    make_project(pytester, files={"schema.sql": GOOD_FILE},
                 pyproject='[tool.schemasync.sets.b]\nfiles = ["schema.sql"]\n')
    pytester.makepyfile(test_b="def test_b(db):\n    db.execute('SELECT * FROM t')\n")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    with cluster_connection(cache_dir) as admin:
        admin.execute(f"CREATE ROLE {OTHER_ROLE} NOLOGIN CONNECTION LIMIT 5")
        admin.execute(f"ALTER ROLE {OTHER_ROLE} SET statement_timeout = '5s'")
    return cache_dir


def test_dynamic_sql_cannot_change_the_cluster(pytester: pytest.Pytester, shared: Path,
                                               tmp_path: Path) -> None:
    with cluster_connection(shared) as admin:
        before = cluster_state(admin)
    project = tmp_path / "project_a"
    project.mkdir()
    sets = ""
    for name, (statements, _) in BYPASSES.items():
        (project / f"{name}.sql").write_text(f"CREATE TABLE {name} ();\n{statements}\n")
        sets += f'[tool.schemasync.sets.{name}]\nfiles = ["{name}.sql"]\n'
    (project / "pyproject.toml").write_text(sets)
    settings = build_settings(project, cli={"cache_dir": str(shared)})
    problems: list[str] = []  # every case is tried, each on the cluster as it was before
    with Scratch(settings) as session:
        for name, (_, expected) in BYPASSES.items():
            try:
                session.manager.template(name)
                problems.append(f"{name}: built")
            except SchemaSyncError as exc:
                if expected not in str(exc) or f"{name}.sql" not in str(exc):
                    problems.append(f"{name}: {str(exc)[:300]}")
            with psycopg.connect(session.server.conninfo(), autocommit=True) as admin:
                if cluster_state(admin) != before:  # a new session sees role settings too
                    problems.append(f"{name}: the cluster changed")
                    _restore(admin, session.server.user)
    assert not problems, "\n".join(problems)
    assert not Path(PWNED).exists()
    with cluster_connection(shared) as admin:
        assert cluster_state(admin) == before
    # project B still builds and runs: from cache, and after an edit
    built = len(built_templates(shared))
    run_inner(pytester, shared).assert_outcomes(passed=1)
    (pytester.path / "schema.sql").write_text(GOOD_FILE + "-- edited\n")
    result = run_inner(pytester, shared)
    assert result.ret == 0, output_of(result)
    result.assert_outcomes(passed=1)
    assert len(built_templates(shared)) == built + 1


def _restore(admin: psycopg.Connection[Any], superuser: str) -> None:
    """Put back what a case changed, so that the next case starts from the same cluster."""
    admin.execute(f'ALTER ROLE "{superuser}" RESET ALL')
    admin.execute(f'ALTER ROLE "{superuser}" CONNECTION LIMIT -1')
    admin.execute(f"DROP ROLE IF EXISTS {OTHER_ROLE}")
    admin.execute(f"CREATE ROLE {OTHER_ROLE} NOLOGIN CONNECTION LIMIT 5")
    admin.execute(f"ALTER ROLE {OTHER_ROLE} SET statement_timeout = '5s'")
    admin.execute("ALTER DATABASE postgres RESET ALL")
    admin.execute("ALTER DATABASE template1 CONNECTION LIMIT -1")
    admin.execute("ALTER SYSTEM RESET ALL")
    admin.execute("SELECT pg_reload_conf()")
    admin.execute("DROP DATABASE IF EXISTS made_by_dblink")


EXISTING_SERVER_FILE = f"""\
CREATE TABLE t (id int);
DO $$ BEGIN
  EXECUTE 'ALTER ROLE ' || current_user || ' SET work_mem = ''1MB''';
  EXECUTE 'ALTER ROLE ' || '{READER} PASSWORD ''pwned'' CONNECTION LIMIT 2';
END $$;
"""


def test_on_an_existing_server_a_changed_role_is_restored(pytester: pytest.Pytester,
                                                           cache_dir: Path) -> None:
    """A server someone else runs (the stand-in, TCP and passwords): the build's superuser
    and a role it did not create are put back, password included, and never printed."""
    with StandinProduction() as server:
        url = server.url("postgres", OWNER)
        make_project(pytester, files={"schema.sql": EXISTING_SERVER_FILE},
                     pyproject='[tool.schemasync.sets.s]\nfiles = ["schema.sql"]\n')
        pytester.makepyfile(test_t="def test_t(db):\n    pass\n")
        result = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
        out = output_of(result)
        assert result.ret != 0, out
        assert (f"settings of role {OWNER} (the plugin's own superuser): work_mem=1MB (was "
                "none) [reverted]") in out, out
        assert (f"attributes of role {READER}: connection_limit -1 -> 2; password changed "
                "[reverted]") in out, out
        assert "SCRAM-SHA-256$" not in out and "pwned" not in out
        # the reader logs in with its own password again; the owner's sessions are as before
        with psycopg.connect(server.info("postgres", READER).conninfo()) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (READER,)
        with psycopg.connect(server.info("postgres", OWNER).conninfo()) as conn:
            assert conn.execute("SHOW work_mem").fetchone() == ("4MB",)
        # and a build without the DO block works on the same server
        (pytester.path / "schema.sql").write_text("CREATE TABLE t (id int);\n")
        run_inner(pytester, cache_dir, f"--schemasync-server-url={url}").assert_outcomes(
            passed=1)
