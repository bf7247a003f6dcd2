"""Roles, grants and row-level security as production has them, on real servers: a pg_dump
with owners and grants installs, tests run as a production role, and no role leaks from a
build, a failed build or another project sharing the cluster."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import (
    built_templates,
    cluster_connection,
    database_names,
    header_lines,
    make_project,
    output_of,
    run_inner,
)

from pytest_schemasync.config import build_settings
from pytest_schemasync.errors import SchemaFileError
from pytest_schemasync.refresh import dump_schema, normalize_dump
from pytest_schemasync.scratch import Scratch
from pytest_schemasync.standin import OWNER, READER, StandinProduction

GAME_SCHEMA = """\
CREATE TYPE public.mood AS ENUM ('calm', 'angry');
CREATE TABLE public.players (
    id serial PRIMARY KEY,
    name text NOT NULL,
    owner_name text NOT NULL DEFAULT current_user,
    mood public.mood
);
ALTER TABLE public.players ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON public.players FOR ALL TO app_user
    USING (owner_name = current_user);
GRANT SELECT, INSERT ON public.players TO app_user;
GRANT USAGE ON SEQUENCE public.players_id_seq TO app_user;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT SELECT ON TABLES TO app_user;
CREATE FUNCTION public.note_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER note_ddl ON ddl_command_end EXECUTE FUNCTION public.note_ddl();
"""


@pytest.fixture(scope="module")
def prod() -> Iterator[StandinProduction]:
    with StandinProduction() as standin:
        standin.execute("postgres", "CREATE ROLE app_user LOGIN")
        yield standin


def _dump(prod: StandinProduction, name: str) -> str:
    major = prod.cluster.binaries.major  # type: ignore[union-attr]
    text, _ = dump_schema(prod.info(name, OWNER), major, keep_privileges=True)
    return normalize_dump(text)


@pytest.fixture(scope="module")
def game_dump(prod: StandinProduction, tmp_path_factory: pytest.TempPathFactory) -> str:
    """pg_dump --schema-only of a database with three roles (owner, reader, app user),
    grants, default privileges, an RLS policy, and a table the superuser postgres owns."""
    schema = tmp_path_factory.mktemp("game") / "game.sql"
    schema.write_text(GAME_SCHEMA)
    prod.create_database("gameforge_dev", [schema])
    prod.execute("gameforge_dev", "CREATE TABLE public.audit_log (id int)")  # owner postgres
    text = _dump(prod, "gameforge_dev")
    for needle in ("OWNER TO app_owner", "OWNER TO postgres", "TO app_user",
                   "ALTER EVENT TRIGGER note_ddl OWNER TO app_owner",
                   "TO app_reader", "CREATE POLICY own_rows", "ALTER DEFAULT PRIVILEGES"):
        assert needle in text, needle
    return text


def _pyproject(files: list[str], extra: str = "", name: str = "game") -> str:
    listed = ", ".join(f'"{f}"' for f in files)
    return (f"[tool.schemasync.sets.{name}]\nfiles = [{listed}]\n{extra}\n")


RLS_TESTS = """
import psycopg
import pytest

def see_only_my_rows(db, schemasync):
    with schemasync.as_admin(db):  # rows app_user could not write for someone else
        db.execute("INSERT INTO players (name, owner_name) VALUES ('mine', 'app_user'), "
                   "('theirs', 'someone_else')")
    names = [r[0] for r in db.execute("SELECT name FROM players ORDER BY name")]
    assert names == ["mine"]

@pytest.mark.schemasync(role="app_user")
def test_rls_as_app_user(db, schemasync):
    assert db.execute("SELECT current_user").fetchone()[0] == "app_user"
    see_only_my_rows(db, schemasync)

def test_rls_as_superuser(db, schemasync):
    see_only_my_rows(db, schemasync)

def test_next_test_is_clean(db):
    assert db.execute("SELECT current_user <> 'app_user', count(*) FROM players").fetchone() \\
        == (True, 0)

@pytest.mark.schemasync(role="app_user")
class TestGrants:
    def test_no_delete_grant(self, db):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("DELETE FROM players")

    def test_fresh_db_logs_in_as_the_role(self, fresh_db, fresh_db_url, fresh_database,
                                          schemasync):
        assert fresh_db.execute("SELECT current_user, session_user").fetchone() == \\
            ("app_user", "app_user")
        with psycopg.connect(fresh_db_url) as other:
            assert other.execute("SELECT current_user").fetchone()[0] == "app_user"
        with schemasync.admin_connect(fresh_database) as admin:
            admin.execute("INSERT INTO players (name, owner_name) "
                          "VALUES ('x', 'other'), ('y', 'app_user')")
        assert fresh_db.execute("SELECT name FROM players").fetchall() == [("y",)]

    def test_factory_role_argument(self, schemasync_db_factory):
        with schemasync_db_factory(role=None).connect() as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles "
                                "WHERE rolname = current_user").fetchone()[0]
        with schemasync_db_factory(role="app_reader").connect() as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "app_reader"
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("INSERT INTO players (name) VALUES ('x')")
"""


def test_pg_dump_with_roles_installs_and_tests_run_as_app_user(
        pytester: pytest.Pytester, cache_dir: Path, game_dump: str) -> None:
    make_project(pytester, files={"schema.sql": game_dump},
                 pyproject=_pyproject(["schema.sql"],
                                      'roles = [{ name = "app_user", login = true }]'))
    pytester.makepyfile(test_rls=RLS_TESTS)
    result = run_inner(pytester, cache_dir, "-v")
    out = output_of(result)
    result.assert_outcomes(passed=5, failed=1)
    # the same RLS test fails as the superuser, who bypasses the policy
    assert "test_rls_as_superuser FAILED" in out, out
    assert "'theirs'" in out
    created = next(line for line in header_lines(result) if "created roles" in line)
    for role in ("app_owner", "app_reader", "app_user", "postgres"):
        assert role in created
    with cluster_connection(cache_dir) as admin:
        rows = {r[0]: r[1:] for r in admin.execute(
            "SELECT rolname, rolcanlogin, rolsuper, shobj_description(oid, 'pg_authid') "
            "FROM pg_roles WHERE rolname IN ('app_owner', 'app_reader', 'app_user', 'postgres')")}
    assert rows["app_user"][0] is True  # roles = [{ login = true }]
    assert rows["app_reader"][:2] == (False, False)  # found in the dump: NOLOGIN, no rights
    # the production superuser pg_dump names as owner: a NOLOGIN superuser here, and so is
    # the owner of an event trigger (PostgreSQL wants a superuser there)
    assert rows["postgres"][:2] == (False, True)
    assert rows["app_owner"][:2] == (False, True)
    assert all(r[2].startswith("pytest-schemasync role; templates: sst_") for r in rows.values())


def test_roles_key_is_checked(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, files={"schema.sql": "CREATE TABLE t ();\n"},
                 pyproject=_pyproject(["schema.sql"], 'roles = [{ name = "x", logn = true }]'))
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    result = run_inner(pytester, cache_dir)
    assert result.ret == 4
    assert "role 'x' of set 'game'" in output_of(result)
    assert "unknown: ['logn']" in output_of(result)


CREATE_ROLE_FILE = """\
CREATE TABLE t (id int);
CREATE ROLE app_reporting NOLOGIN IN ROLE pre_made;
GRANT SELECT ON t TO app_reporting;
"""


def _roles(cache_dir: Path, *names: str) -> dict[str, str | None]:
    with cluster_connection(cache_dir) as admin:
        return dict(admin.execute(
            "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles "
            "WHERE rolname = ANY(%s)", (list(names),)).fetchall())


def test_create_role_file_rebuilds_and_failed_build_leaves_no_role(
        pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, files={"schema.sql": CREATE_ROLE_FILE},
                 pyproject=_pyproject(["schema.sql"]))
    pytester.makepyfile(test_t="""
        def test_t(db):
            assert db.execute("SELECT has_table_privilege('app_reporting', 't', 'SELECT'), "
                              "pg_has_role('app_reporting', 'pre_made', 'MEMBER')"
                              ).fetchone() == (True, True)
    """)
    schema = pytester.path / "schema.sql"
    for edit in range(4):  # the first build, then three edits
        result = run_inner(pytester, cache_dir)
        assert result.ret == 0, output_of(result)
        schema.write_text(schema.read_text() + f"-- edit {edit}\n")
    assert len(built_templates(cache_dir)) == 4
    # an edit that also changes the role: the role we created follows the file
    schema.write_text(schema.read_text().replace("NOLOGIN IN ROLE", "LOGIN IN ROLE"))
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    with cluster_connection(cache_dir) as admin:
        assert admin.execute("SELECT rolcanlogin FROM pg_roles "
                             "WHERE rolname = 'app_reporting'").fetchone() == (True,)

    # a build that fails after CREATE ROLE (and after creating a role it needs)
    schema.write_text(CREATE_ROLE_FILE + "CREATE ROLE leak_made;\n"
                      "GRANT SELECT ON t TO leak_needed;\nSELECT 1/0;\n")
    result = run_inner(pytester, cache_dir)
    assert result.ret != 0
    assert "schema.sql:6" in output_of(result) and "division by zero" in output_of(result)
    left = _roles(cache_dir, "leak_made", "leak_needed", "app_reporting", "pre_made")
    assert "leak_made" not in left and "leak_needed" not in left
    assert {"app_reporting", "pre_made"} <= set(left)  # still used by the good template


def test_on_error_stop_off_does_not_build(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, files={"schema.sql": "\\set ON_ERROR_STOP off\nSELECT 1/0;\n"
                                                "CREATE TABLE after_the_error ();\n"},
                 pyproject=_pyproject(["schema.sql"]))
    pytester.makepyfile(test_t="def test_t(db):\n    pass\n")
    result = run_inner(pytester, cache_dir)
    assert result.ret == 4
    assert "schema.sql:1: \\set ON_ERROR_STOP off is refused" in output_of(result)
    assert " passed" not in output_of(result)  # nothing ran
    assert not built_templates(cache_dir)


CLUSTER_STATEMENTS = {
    "alter_system": "ALTER SYSTEM SET work_mem = '1MB';",
    "create_database": "CREATE DATABASE left_behind;",
    "drop_database": "DROP DATABASE IF EXISTS postgres;",
    "alter_database": "ALTER DATABASE gameforge_dev SET timezone = 'UTC';",
    "grant_database": "GRANT CONNECT ON DATABASE gameforge_dev TO app_user;",
    "tablespace": "CREATE TABLESPACE fast LOCATION '/tmp';",
    "alter_own_role": "ALTER ROLE CURRENT_USER SET search_path = 'nowhere';",
    "drop_own_role": "DROP ROLE schemasync;",
    "copy_program": "COPY (SELECT 1) TO PROGRAM 'touch /tmp/schemasync-pwned';",
    "copy_file": "COPY (SELECT 1) TO '/tmp/schemasync-pwned';",
    "lo_export": "SELECT lo_export(lo_create(0), '/tmp/schemasync-pwned');",
    "read_file": "SELECT pg_read_file('postgresql.conf');",
    "do_block": "DO $$ BEGIN EXECUTE 'ALTER ROLE CURRENT_USER SET work_mem = ''1MB'''; END $$;",
}


def _cluster_state(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    return (
        sorted(n for n in database_names(conn) if not n.startswith(("ssc_", "sss_"))),
        conn.execute("SELECT array_agg(spcname ORDER BY spcname) FROM pg_tablespace").fetchone(),
        conn.execute("SELECT array_agg(setconfig::text ORDER BY setrole) "
                     "FROM pg_db_role_setting").fetchone(),
        conn.execute("SELECT count(*) FROM pg_file_settings "
                     "WHERE sourcefile LIKE '%%postgresql.auto.conf'").fetchone(),
    )


def test_two_projects_share_a_cluster_one_tries_every_cluster_statement(
        pytester: pytest.Pytester, cache_dir: Path, tmp_path: Path) -> None:
    # project B: an ordinary project on the same cached cluster
    make_project(pytester, files={"schema.sql": CREATE_ROLE_FILE},
                 pyproject=_pyproject(["schema.sql"]))
    pytester.makepyfile(test_b="def test_b(db):\n    db.execute('SELECT * FROM t')\n")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    with cluster_connection(cache_dir) as admin:
        before = _cluster_state(admin)

    # project A: one set per cluster-level statement, built through the core
    project = tmp_path / "project_a"
    project.mkdir()
    sets = ""
    for name, statement in CLUSTER_STATEMENTS.items():
        (project / f"{name}.sql").write_text(f"CREATE TABLE {name} ();\n\n{statement}\n")
        sets += _pyproject([f"{name}.sql"], name=name)
    (project / "pyproject.toml").write_text(sets)
    settings = build_settings(project, cli={"cache_dir": str(cache_dir)})
    with Scratch(settings) as session:
        for name, statement in CLUSTER_STATEMENTS.items():
            with pytest.raises(SchemaFileError) as info:
                session.manager.template(name)
            assert str(info.value).startswith(f"{project / name}.sql:3: refused"), info.value
            assert statement[:20] in str(info.value)
    assert not Path("/tmp/schemasync-pwned").exists()
    with cluster_connection(cache_dir) as admin:
        assert _cluster_state(admin) == before
    # project B still builds and runs, from cache and after an edit
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    (pytester.path / "schema.sql").write_text(CREATE_ROLE_FILE + "-- edited\n")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


def _clean(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_schemasync.cli", *args, "clean"],
                          cwd=project, capture_output=True, text=True, timeout=180)


def test_clean_drops_only_the_roles_it_created(pytester: pytest.Pytester, cache_dir: Path,
                                               tmp_path: Path) -> None:
    with cluster_connection(cache_dir) as admin:  # a role someone else made on the cluster
        admin.execute("CREATE ROLE not_ours NOLOGIN")
    uses = "CREATE TABLE t (id int);\nGRANT SELECT ON t TO not_ours, only_a, shared;\n"
    make_project(pytester, files={"schema.sql": uses}, pyproject=_pyproject(["schema.sql"]))
    pytester.makepyfile(test_a="def test_a(db):\n    pass\n")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    other = tmp_path / "other"
    other.mkdir()
    (other / "schema.sql").write_text("CREATE TABLE u (id int);\nGRANT SELECT ON u TO shared;\n")
    (other / "pyproject.toml").write_text(_pyproject(["schema.sql"]))
    (other / "test_b.py").write_text("def test_b(db):\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           f"--schemasync-cache-dir={cache_dir}"], cwd=other,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    roles = _roles(cache_dir, "not_ours", "only_a", "shared")
    assert roles["not_ours"] is None  # never marked as ours
    assert roles["shared"] is not None and roles["shared"].count("sst_") == 2

    cleaned = _clean(pytester.path, f"--schemasync-cache-dir={cache_dir}")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "only_a" in cleaned.stdout and "not_ours" not in cleaned.stdout
    roles = _roles(cache_dir, "not_ours", "only_a", "shared")
    assert set(roles) == {"not_ours", "shared"}  # shared: the other project still uses it
    assert roles["shared"] is not None and roles["shared"].count("sst_") == 1
    cleaned = _clean(other, f"--schemasync-cache-dir={cache_dir}")
    assert cleaned.returncode == 0, cleaned.stderr
    assert set(_roles(cache_dir, "not_ours", "only_a", "shared")) == {"not_ours"}


def test_existing_server_says_which_roles_it_created(
        pytester: pytest.Pytester, cache_dir: Path, prod: StandinProduction) -> None:
    """The stand-in plays a server someone else runs (its superuser is postgres)."""
    url = prod.url("postgres", OWNER)
    make_project(pytester, files={"schema.sql": textwrap.dedent(f"""\
        CREATE TABLE t (id int);
        GRANT SELECT ON t TO {READER}, es_app;
        CREATE ROLE es_made;
    """)}, pyproject=_pyproject(["schema.sql"], 'roles = [{ name = "es_app", login = true }]'))
    pytester.makepyfile(test_t="""
        import pytest

        @pytest.mark.schemasync(role="es_app")
        def test_t(db, fresh_db):
            assert db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
            assert fresh_db.execute("SELECT current_user").fetchone()[0] == "es_app"
    """)
    result = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
    result.assert_outcomes(passed=1)
    created = [line for line in header_lines(result) if "created roles" in line]
    assert created == ["schemasync: set 'game': created roles es_app, es_made"], created
    again = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
    again.assert_outcomes(passed=1)
    assert any("uses roles created on this server by pytest-schemasync: es_app, es_made"
               in line for line in header_lines(again)), header_lines(again)
    with prod.superuser_connect() as conn:
        # app_reader existed before: not ours, never commented
        assert conn.execute("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles "
                            "WHERE rolname = %s", (READER,)).fetchone() == (None,)
    cleaned = _clean(pytester.path, f"--schemasync-server-url={url}")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "es_app, es_made" in cleaned.stdout
    with prod.superuser_connect() as conn:
        left = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
    assert READER in left and OWNER in left and not {"es_app", "es_made"} & left


def _cli(project: Path, cache_dir: Path, *args: str,
         env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "pytest_schemasync.cli", f"--schemasync-cache-dir={cache_dir}",
         *args], cwd=project, capture_output=True, text=True, timeout=300,
        env={**os.environ, **env})


def test_refresh_keeps_privileges_and_the_check_compares_them(
        prod: StandinProduction, cache_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "game.sql"
    source.write_text(GAME_SCHEMA)
    prod.create_database("gameforge_check", [source])
    prod.execute("gameforge_check", "CREATE TABLE public.audit_log (id int); "
                 f"GRANT SELECT ON public.audit_log TO {READER}")  # owned by postgres
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(_pyproject(["schema.sql"], textwrap.dedent("""\
        production-url-env = "GAME_PROD_URL"
        keep-privileges = true
        include-owners = true
        include-grants = true
        roles = [{ name = "app_user", login = true }]
    """)))
    env = {"GAME_PROD_URL": prod.url("gameforge_check")}  # the read-only reader role

    refreshed = _cli(project, cache_dir, "refresh", env=env)
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    schema = (project / "schema.sql").read_text()
    assert "ALTER TABLE public.players OWNER TO app_owner;" in schema
    assert "GRANT SELECT,INSERT ON TABLE public.players TO app_user;" in schema
    assert "ALTER TABLE public.audit_log OWNER TO postgres;" in schema

    clean = _cli(project, cache_dir, "check", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr  # no false drift
    assert "no drift" in clean.stdout

    prod.execute("gameforge_check", f"GRANT UPDATE ON public.players TO {READER}")
    drift = _cli(project, cache_dir, "check", env=env)
    assert drift.returncode == 10, drift.stdout + drift.stderr
    assert "DRIFT (1 object difference)" in drift.stdout
    assert f"TO {READER}" in drift.stdout and "UPDATE" in drift.stdout

    prod.execute("gameforge_check", "ALTER TABLE public.audit_log OWNER TO app_user; "
                 "ALTER POLICY own_rows ON public.players TO app_reader")
    more = _cli(project, cache_dir, "check", env=env)
    assert more.returncode == 10
    assert "DRIFT (3 object differences)" in more.stdout, more.stdout
    assert "OWNER TO app_user" in more.stdout and "own_rows" in more.stdout


def test_a_server_user_that_may_not_create_roles_gets_a_clear_error(
        pytester: pytest.Pytester, cache_dir: Path, prod: StandinProduction) -> None:
    with prod.superuser_connect() as conn:
        conn.execute(psycopg.sql.SQL("CREATE ROLE ci_user LOGIN CREATEDB PASSWORD {}").format(
            psycopg.sql.Literal(prod.password)))
    make_project(pytester, files={"schema.sql": "CREATE TABLE t (id int);\n"
                                                "GRANT SELECT ON t TO nobody_made_me;\n"},
                 pyproject=_pyproject(["schema.sql"]))
    pytester.makepyfile(test_t="def test_t(db):\n    pass\n")
    result = run_inner(pytester, cache_dir,
                       f"--schemasync-server-url={prod.url('postgres', 'ci_user')}")
    out = output_of(result)
    assert result.ret == 4, out
    assert "The server user 'ci_user' may not create roles" in out
    assert "nobody_made_me (grantee at " in out and "schema.sql:2)" in out
    assert "Traceback" not in out
    with prod.superuser_connect() as conn:
        assert not {r[0] for r in conn.execute("SELECT datname FROM pg_database")
                    if r[0].startswith("ssb_")}


def test_a_role_that_does_not_exist_fails_the_test_clearly(pytester: pytest.Pytester,
                                                           cache_dir: Path) -> None:
    make_project(pytester, files={"schema.sql": "CREATE TABLE t (id int);\n"},
                 pyproject=_pyproject(["schema.sql"]))
    pytester.makepyfile(test_t="""
        import pytest

        @pytest.mark.schemasync(role="no_such_role")
        def test_db(db):
            pass

        @pytest.mark.schemasync(role="no_such_role")
        def test_fresh(fresh_db):
            pass
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(errors=2)
    out = output_of(result)
    # one error report per fixture (the short summary repeats them, trimmed or not)
    reports = [line for line in result.outlines
               if line.startswith("schemasync: role='no_such_role': no such role")]
    assert len(reports) == 2, out
    assert "roles = [...]" in out


def test_the_check_compares_role_attributes_and_memberships_when_asked(
        prod: StandinProduction, cache_dir: Path, tmp_path: Path) -> None:
    schema = "CREATE TABLE public.scores (id int);\nGRANT SELECT ON public.scores TO rl_app;\n"
    with prod.superuser_connect() as conn:
        conn.execute("CREATE ROLE rl_app LOGIN")
        conn.execute("CREATE ROLE rl_group NOLOGIN")
        conn.execute("GRANT rl_group TO rl_app")
    (tmp_path / "s.sql").write_text(schema)
    prod.create_database("gameforge_roles", [tmp_path / "s.sql"])
    project = tmp_path / "project"
    project.mkdir()
    (project / "schema.sql").write_text(schema)
    (project / "pyproject.toml").write_text(_pyproject(["schema.sql"], textwrap.dedent("""\
        production-url-env = "GAME_PROD_URL"
        include-roles = true
        roles = [{ name = "rl_app", login = true, in = ["rl_group"] }]
    """)))
    env = {"GAME_PROD_URL": prod.url("gameforge_roles")}
    same = _cli(project, cache_dir, "check", env=env)
    assert same.returncode == 0, same.stdout + same.stderr

    prod.execute("postgres", "ALTER ROLE rl_app BYPASSRLS; REVOKE rl_group FROM rl_app")
    drift = _cli(project, cache_dir, "check", env=env)
    assert drift.returncode == 10, drift.stdout + drift.stderr
    assert "DRIFT (1 object difference)" in drift.stdout
    assert "role rl_app" in drift.stdout.lower() and "BYPASSRLS" in drift.stdout
    assert "member of: rl_group" in drift.stdout and "member of: -" in drift.stdout

    # the roles key can say so too: the check is clean again
    (project / "pyproject.toml").write_text(_pyproject(["schema.sql"], textwrap.dedent("""\
        production-url-env = "GAME_PROD_URL"
        include-roles = true
        roles = [{ name = "rl_app", login = true, bypassrls = true }]
    """)))
    (project / "schema.sql").write_text(schema + "REVOKE rl_group FROM rl_app;\n")
    again = _cli(project, cache_dir, "check", env=env)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_file_that_switches_to_the_owner_role_installs(pytester: pytest.Pytester,
                                                         cache_dir: Path) -> None:
    """SET ROLE app_owner; CREATE TABLE ...: in production that role owns the database."""
    make_project(pytester, files={"schema.sql": "SET ROLE sw_owner;\nCREATE TABLE t (id int);\n"
                                                "RESET ROLE;\nCREATE TABLE u (id int);\n"
                                                # the portable form of a database grant
                                                "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON "
                                                "DATABASE %I TO sw_reader', current_database());"
                                                " END $$;\n"},
                 pyproject=_pyproject(["schema.sql"]))
    pytester.makepyfile(test_t="""
        def test_owners(db):
            assert db.execute("SELECT tablename, tableowner FROM pg_tables "
                              "WHERE tablename IN ('t', 'u') ORDER BY 1").fetchall() == [
                ("t", "sw_owner"), ("u", "schemasync")]
            # the test database itself belongs to the plugin's user, as every clone does
            assert db.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                              "WHERE datname = current_database()").fetchone()[0] == "schemasync"
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    with cluster_connection(cache_dir) as admin:
        owners = {r[0] for r in admin.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'sst%%'")}
    assert owners == {"schemasync"}


ASYNC_ROLE_TESTS = """
import psycopg
import pytest

@pytest.mark.schemasync(role="app_user")
async def test_adb_runs_as_the_role(adb):
    row = await (await adb.execute("SELECT current_user")).fetchone()
    assert row[0] == "app_user"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await adb.execute("DELETE FROM players")

async def test_adb_next_test_is_the_superuser_again(adb):
    row = await (await adb.execute(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).fetchone()
    assert row[0] is True

@pytest.mark.schemasync(role="no_such_role")
async def test_adb_unknown_role(adb):
    pass
"""


def test_adb_takes_the_marker_role(pytester: pytest.Pytester, cache_dir: Path,
                                   game_dump: str) -> None:
    make_project(pytester, files={"schema.sql": game_dump}, pyproject=(
        '[tool.pytest.ini_options]\nasyncio_mode = "auto"\n'
        'asyncio_default_fixture_loop_scope = "function"\n\n'
        + _pyproject(["schema.sql"], 'roles = [{ name = "app_user", login = true }]')))
    pytester.makepyfile(test_async_roles=ASYNC_ROLE_TESTS)
    result = run_inner(pytester, cache_dir, "-v", "-p", "no:anyio")
    out = output_of(result)
    result.assert_outcomes(passed=2, errors=1)
    assert "test_adb_unknown_role ERROR" in out, out
    assert "role='no_such_role': no such role in the test database of set 'game'" in out
    assert "Traceback" not in out
