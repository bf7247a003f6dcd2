"""Migrations, tracked and checksummed: templates, ``before=``, ``status``/``migrate``, refusals,
the schema check's history section, the example project, and concurrent migrators.

Everything runs against real PostgreSQL: the embedded scratch server of inner pytest sessions,
and a stand-in production (its own throwaway cluster, TCP and passwords) for the commands.
One stand-in per module (per xdist worker); every test makes its own database on it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import (
    CliResult,
    built_templates,
    extensions_in,
    header_lines,
    make_project,
    output_of,
    require_pg,
    run_inner,
    run_pytest_in,
    run_schemasync,
)

from pytest_schemasync.errors import MigrationError
from pytest_schemasync.migrations import discover
from pytest_schemasync.standin import OWNER, READER, StandinProduction

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"
PASSWORD = "Mig-s3cret-pw"
CLI_TIMEOUT = 120
HISTORY_COLUMNS = ("version, description, checksum, applied_at, applied_by, execution_time_ms, "
                   "script_path")

BASE_SQL = """\
CREATE TABLE public.accounts (
    id serial PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO public.accounts (name) VALUES ('ada'), ('grace');
"""

# Each migration builds on earlier ones, so applying them out of version order fails.
MIGRATIONS = {
    "000_create_tags.sql": (
        "CREATE TABLE public.tags (id serial PRIMARY KEY, label text NOT NULL UNIQUE);\n"
    ),
    "001_add_email.sql": (
        "ALTER TABLE public.accounts ADD COLUMN email text;\n"
        "UPDATE public.accounts SET email = name || '@example.test';\n"
    ),
    "002_add_orders.sql": (
        "CREATE TABLE public.orders (\n"
        "    id serial PRIMARY KEY,\n"
        "    account_id integer NOT NULL REFERENCES public.accounts (id),\n"
        "    tag_id integer REFERENCES public.tags (id),\n"
        "    total numeric NOT NULL\n"
        ");\n"
    ),
    "003_add_display_name.sql": (
        "ALTER TABLE public.accounts ADD COLUMN display_name text;\n"
        "UPDATE public.accounts SET display_name = initcap(name) || ' <' || email || '>';\n"
        "ALTER TABLE public.accounts ALTER COLUMN display_name SET NOT NULL;\n"
    ),
}
VERSIONS = ["000", "001", "002", "003"]
DESCRIPTIONS = ["create tags", "add email", "add orders", "add display name"]
NOTES_004 = "CREATE TABLE public.notes (id serial PRIMARY KEY, body text);\n"


# --- the stand-in production and its databases ----------------------------------------------


@pytest.fixture(scope="module")
def prod() -> Iterator[StandinProduction]:
    with StandinProduction(password=PASSWORD) as server:
        # Nothing but our own commands may start transactions on it (see the read-only test).
        with server.superuser_connect() as conn:
            conn.execute("ALTER SYSTEM SET autovacuum = off")
            conn.execute("SELECT pg_reload_conf()")
        yield server


_names = itertools.count(1)


def new_database(prod: StandinProduction, project: Path) -> str:
    """A database on the stand-in with the project's base file installed (no migrations)."""
    name = f"mig_{next(_names)}"
    prod.create_database(name, [project / "base.sql"])
    return name


def rows(prod: StandinProduction, db: str, query: str) -> list[tuple[Any, ...]]:
    with prod.superuser_connect(db) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def scalar(prod: StandinProduction, db: str, query: str) -> Any:
    return rows(prod, db, query)[0][0]


def history(prod: StandinProduction, db: str) -> list[tuple[Any, ...]] | None:
    """All of schema_migrations, in version order (None: no table)."""
    if scalar(prod, db, "SELECT to_regclass('public.schema_migrations')") is None:
        return None
    return rows(prod, db, f"SELECT {HISTORY_COLUMNS} FROM public.schema_migrations "
                          f"ORDER BY version")


def relation_exists(prod: StandinProduction, db: str, name: str) -> bool:
    return scalar(prod, db, f"SELECT to_regclass('public.{name}') IS NOT NULL")


def columns(prod: StandinProduction, db: str, table: str) -> list[str]:
    return [r[0] for r in rows(prod, db, "SELECT column_name FROM information_schema.columns "
                                         f"WHERE table_name = '{table}' ORDER BY ordinal_position")]


# --- projects and the command ---------------------------------------------------------------


def app_project(pytester: pytest.Pytester, migrations: dict[str, str] | None = None) -> Path:
    """A project with set 'app': base.sql plus the given migrations (default: 000-003)."""
    make_project(
        pytester,
        sets={"app": {"files": ["base.sql"], "migrations": "migrations",
                      "production-url-env": "APP_PRODUCTION_URL"}},
        files={"base.sql": BASE_SQL,
               **{f"migrations/{name}": text
                  for name, text in (MIGRATIONS if migrations is None else migrations).items()}},
    )
    return pytester.path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(project: Path, *args: str) -> CliResult:
    """``schemasync ARGS`` in the project folder."""
    return run_schemasync(project, *args, timeout=CLI_TIMEOUT, secrets=[PASSWORD])


def ok(result: CliResult, code: int = 0) -> str:
    assert result.returncode == code, f"exit {result.returncode}:\n{result.output}"
    return result.stdout


def refused(result: CliResult, *fragments: str, code: int = 4) -> str:
    """A clear refusal: the expected status, one ``schemasync: error:`` paragraph, no
    traceback, and every fragment in it."""
    out = result.stdout + result.stderr
    assert result.returncode == code, f"exit {result.returncode}:\n{out}"
    assert "Traceback" not in out, out
    assert result.stderr.startswith("schemasync: error: "), out
    for fragment in fragments:
        assert fragment in result.stderr, f"{fragment!r} not in:\n{result.stderr}"
    return result.stderr


def migrate(project: Path, prod: StandinProduction, db: str, *args: str,
            role: str = OWNER) -> CliResult:
    return cli(project, "migrate", prod.url(db, role), *args)


def status(project: Path, prod: StandinProduction, db: str,
           role: str = READER) -> CliResult:
    return cli(project, "status", prod.url(db, role))


def applied_lines(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("applied ")]


def next_xid(prod: StandinProduction) -> int:
    """The cluster's next transaction id: it only moves when some transaction writes."""
    return int(scalar(prod, "postgres", "SELECT pg_snapshot_xmax(pg_current_snapshot())::text"))


# --- 1. templates: base + migrations, with a history ----------------------------------------

HISTORY_TEST = """
    import hashlib
    from pathlib import Path

    MIGRATIONS = Path(__file__).parent / "migrations"


    def test_history(db):
        files = sorted(MIGRATIONS.glob("*.sql"))
        assert len(files) == {count}
        history = db.execute(
            "SELECT version, description, checksum, applied_at, applied_by, execution_time_ms, "
            "script_path FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in history] == [f.name.split("_", 1)[0] for f in files]
        for row, path in zip(history, files, strict=True):
            version, description, checksum, applied_at, applied_by, ms, script = row
            assert description == path.stem.split("_", 1)[1].replace("_", " ")
            assert checksum == hashlib.sha256(path.read_bytes()).hexdigest()
            assert applied_at is not None
            assert applied_by == "pytest-schemasync"
            assert ms is not None and ms >= 0
            assert script == f"migrations/{{path.name}}"
        stamps = [r[3] for r in history]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps
        assert db.execute("SELECT display_name FROM accounts ORDER BY id").fetchall() == [
            ("Ada <ada@example.test>",), ("Grace <grace@example.test>",)]
        assert db.execute("SELECT to_regclass('orders')").fetchone()[0] == "orders"
"""


def _template_line(result: pytest.RunResult) -> str:
    lines = [line for line in header_lines(result) if "set 'app': template" in line]
    assert len(lines) == 1, output_of(result)
    return lines[0]


def test_template_has_base_and_migrations_with_history(pytester: pytest.Pytester,
                                                       cache_dir: Path) -> None:
    project = app_project(pytester)
    pytester.makepyfile(test_history=HISTORY_TEST.format(count=4))

    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template built in" in _template_line(result)
    assert len(built_templates(cache_dir)) == 1
    assert "set=app before=None" in built_templates(cache_dir)[0]

    # Unchanged: from the cache.
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template from cache" in _template_line(result)
    assert len(built_templates(cache_dir)) == 1

    # Editing an applied migration (a comment only) is a new template with the new checksum.
    edited = project / "migrations" / "002_add_orders.sql"
    edited.write_text(MIGRATIONS["002_add_orders.sql"] + "-- reviewed\n")
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template built in" in _template_line(result)
    assert len(built_templates(cache_dir)) == 2

    # Adding a migration rebuilds too, and the new one is recorded.
    (project / "migrations" / "004_add_notes.sql").write_text(NOTES_004)
    pytester.makepyfile(test_history=HISTORY_TEST.format(count=5))
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template built in" in _template_line(result)
    assert len(built_templates(cache_dir)) == 3


def test_versions_are_ordered_by_number_not_by_name(pytester: pytest.Pytester,
                                                    cache_dir: Path) -> None:
    # "10_" sorts before "9_" as text; 10 needs the table 9 creates.
    app_project(pytester, {"9_create_t.sql": "CREATE TABLE public.t (id int);\n",
                           "10_fill_t.sql": "INSERT INTO public.t VALUES (10);\n"})
    pytester.makepyfile(test_order="""
        def test_order(db):
            history = db.execute(
                "SELECT version FROM schema_migrations ORDER BY applied_at").fetchall()
            assert history == [("9",), ("10",)]
            assert db.execute("SELECT id FROM t").fetchall() == [(10,)]
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


# --- 2. a database at a chosen migration ----------------------------------------------------

BEFORE_TESTS = """
    from pathlib import Path

    import psycopg
    import pytest

    MIGRATIONS = Path(__file__).parent / "migrations"


    def versions(conn):
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


    def columns(conn, table):
        return [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position", (table,))]


    @pytest.mark.schemasync("app", before="003")
    def test_before_003(db):
        assert versions(db) == ["000", "001", "002"]
        assert columns(db, "accounts") == ["id", "name", "email"]
        assert db.execute("SELECT to_regclass('orders')").fetchone()[0] == "orders"
        db.execute("INSERT INTO accounts (name, email) VALUES ('linus', 'l@kernel.test')")

        db.execute((MIGRATIONS / "003_add_display_name.sql").read_text())

        assert db.execute("SELECT name, display_name FROM accounts ORDER BY id").fetchall() == [
            ("ada", "Ada <ada@example.test>"),
            ("grace", "Grace <grace@example.test>"),
            ("linus", "Linus <l@kernel.test>"),
        ]
        with pytest.raises(psycopg.errors.NotNullViolation), db.transaction():
            db.execute("INSERT INTO accounts (name) VALUES ('no display name')")


    def test_the_default_database_is_complete(db):
        assert versions(db) == ["000", "001", "002", "003"]
        assert "display_name" in columns(db, "accounts")


    def test_factory_before_002(schemasync_db_factory):
        database = schemasync_db_factory("app", before="002")
        with database.connect() as conn:
            assert versions(conn) == ["000", "001"]
            assert conn.execute("SELECT to_regclass('public.orders')").fetchone()[0] is None
            conn.execute((MIGRATIONS / "002_add_orders.sql").read_text())
            conn.execute("INSERT INTO tags (label) VALUES ('vip')")
            conn.execute("INSERT INTO orders (account_id, tag_id, total) VALUES (2, 1, 9.5)")
            conn.commit()
            assert conn.execute(
                "SELECT a.email, t.label, o.total FROM orders o JOIN accounts a "
                "ON a.id = o.account_id JOIN tags t ON t.id = o.tag_id").fetchall() == [
                ("grace@example.test", "vip", 9.5)]
        full = schemasync_db_factory("app")
        with full.connect() as conn:
            assert versions(conn) == ["000", "001", "002", "003"]


    @pytest.mark.schemasync("app", before="042")
    def test_unknown_point_in_marker(db):
        pass


    def test_unknown_point_in_factory(schemasync_db_factory):
        schemasync_db_factory("app", before="7")
"""


def test_database_before_a_migration(pytester: pytest.Pytester, cache_dir: Path) -> None:
    app_project(pytester)
    pytester.makepyfile(test_before=BEFORE_TESTS)
    result = run_inner(pytester, cache_dir, "-rA")
    result.assert_outcomes(passed=3, failed=1, errors=1)
    out = output_of(result)
    assert "PASSED test_before.py::test_before_003" in out
    assert "PASSED test_before.py::test_factory_before_002" in out
    assert "ERROR test_before.py::test_unknown_point_in_marker" in out
    assert "FAILED test_before.py::test_unknown_point_in_factory" in out
    # Each reported as one line, without a traceback.
    for version in ("042", "7"):
        assert (f"schemasync: No migration has version '{version}' (known: 000, 001, 002, "
                f"003).") in result.outlines
    assert "Traceback" not in out
    built = built_templates(cache_dir)
    assert any("before=003" in line for line in built), built
    assert any("before=002" in line for line in built), built


# --- 3. status and migrate against a real server --------------------------------------------


def test_status_then_migrate_a_real_database(pytester: pytest.Pytester,
                                             prod: StandinProduction) -> None:
    project = app_project(pytester)
    db = new_database(prod, project)

    out = ok(status(project, prod, db))
    assert "(no schema_migrations table: nothing applied yet)" in out
    for version, description in zip(VERSIONS, DESCRIPTIONS, strict=True):
        assert f"  pending   {version}  {description}\n" in out
    assert "0 applied, 4 pending, 0 unknown, 0 edited" in out

    xid = next_xid(prod)
    out = ok(migrate(project, prod, db, "--dry-run"))
    assert next_xid(prod) == xid
    assert "Dry run: 4 migration(s) would be applied" in out
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == VERSIONS
    assert history(prod, db) is None
    assert not relation_exists(prod, db, "tags")
    assert columns(prod, db, "accounts") == ["id", "name"]

    out = ok(migrate(project, prod, db))
    assert applied_lines(out) == VERSIONS
    applied = history(prod, db)
    assert applied is not None
    assert [r[0] for r in applied] == VERSIONS
    assert [r[1] for r in applied] == DESCRIPTIONS
    for row, name in zip(applied, MIGRATIONS, strict=True):
        assert row[2] == sha256(project / "migrations" / name)
        assert row[4] == OWNER
        assert row[5] is not None and row[5] >= 0
        assert row[6] == f"migrations/{name}"
    stamps = [r[3] for r in applied]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert rows(prod, db, "SELECT display_name FROM accounts ORDER BY id") == [
        ("Ada <ada@example.test>",), ("Grace <grace@example.test>",)]
    assert relation_exists(prod, db, "orders")

    # Again: nothing to do, nothing written.
    xid = next_xid(prod)
    out = ok(migrate(project, prod, db))
    assert "is up to date (4 migrations applied)" in out
    assert applied_lines(out) == []
    assert history(prod, db) == applied
    assert next_xid(prod) == xid

    out = ok(status(project, prod, db))
    for version, description in zip(VERSIONS, DESCRIPTIONS, strict=True):
        assert f"  applied   {version}  {description}  (" in out
    assert f"by {OWNER})" in out
    assert "4 applied, 0 pending, 0 unknown, 0 edited" in out


def test_status_is_read_only(pytester: pytest.Pytester, prod: StandinProduction) -> None:
    project = app_project(pytester)
    db = new_database(prod, project)

    # Even with a role that could write (the owner is a superuser), status writes nothing:
    # no history table appears and not one transaction id is used on the whole cluster.
    xid = next_xid(prod)
    ok(status(project, prod, db, role=OWNER))
    assert next_xid(prod) == xid
    assert history(prod, db) is None

    ok(migrate(project, prod, db))
    before = history(prod, db)
    (project / "migrations" / "004_add_notes.sql").write_text(NOTES_004)
    xid = next_xid(prod)
    out = ok(status(project, prod, db, role=READER))
    assert "4 applied, 1 pending, 0 unknown, 0 edited" in out
    assert "  pending   004  add notes" in out
    assert next_xid(prod) == xid
    assert history(prod, db) == before

    # The reader role status works with cannot write, so migrate with it is refused cleanly.
    with psycopg.connect(prod.info(db, READER).conninfo(db), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM public.schema_migrations")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.notes (id int)")
    refused(migrate(project, prod, db, role=READER),
            "Migration 004 failed and was rolled back", "permission denied for schema public",
            "004_add_notes.sql:1")
    assert history(prod, db) == before
    assert not relation_exists(prod, db, "notes")


# --- 4. refusals ----------------------------------------------------------------------------


def test_edited_migration_is_refused(pytester: pytest.Pytester, prod: StandinProduction) -> None:
    project = app_project(pytester)
    db = new_database(prod, project)
    ok(migrate(project, prod, db))
    before = history(prod, db)
    edited = project / "migrations" / "001_add_email.sql"
    old_sum = sha256(edited)
    edited.write_text(MIGRATIONS["001_add_email.sql"] + "-- tweaked after the fact\n")
    new_sum = sha256(edited)
    (project / "migrations" / "004_add_notes.sql").write_text(NOTES_004)

    refused(migrate(project, prod, db),
            "Migration checksum mismatch for version 001 (001_add_email.sql)",
            f"applied to database : {old_sum}", f"resolved locally    : {new_sum}",
            f"database {db}")
    assert history(prod, db) == before
    assert not relation_exists(prod, db, "notes")

    out = ok(status(project, prod, db), code=10)
    assert f"  EDITED    001  add email  checksum applied {old_sum[:12]}" in out
    assert f"local {new_sum[:12]}" in out
    assert "3 applied, 1 pending, 0 unknown, 1 edited" in out


def test_duplicate_versions_are_refused_when_the_folder_is_read(
        pytester: pytest.Pytester, prod: StandinProduction, cache_dir: Path) -> None:
    project = app_project(pytester, {k: v for k, v in MIGRATIONS.items() if k < "002"})
    db = new_database(prod, project)
    ok(migrate(project, prod, db))
    before = history(prod, db)
    (project / "migrations" / "002_a.sql").write_text("CREATE TABLE public.a (id int);\n")
    (project / "migrations" / "002_b.sql").write_text("CREATE TABLE public.b (id int);\n")
    message = "Two migrations share version 002: 002_a.sql and 002_b.sql"

    for command in (migrate(project, prod, db), migrate(project, prod, db, "--dry-run"),
                    status(project, prod, db)):
        refused(command, message, "Give one of them the next free number")
    assert history(prod, db) == before
    assert not relation_exists(prod, db, "a")
    assert not relation_exists(prod, db, "b")

    # The pytest template build refuses before any test runs.
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    result = run_inner(pytester, cache_dir)
    out = output_of(result)
    assert result.ret == 4, out
    assert f"schemasync: {message}" in out
    assert "Traceback" not in out
    assert "test_x" not in out and " passed" not in out
    assert built_templates(cache_dir) == []


def test_same_number_spelled_differently_is_a_duplicate(tmp_path: Path) -> None:
    (tmp_path / "002_orders.sql").write_text("SELECT 1;\n")
    (tmp_path / "2_more_orders.sql").write_text("SELECT 2;\n")
    with pytest.raises(MigrationError, match="Two migrations share version"):
        discover(tmp_path)


def test_out_of_order_needs_a_flag(pytester: pytest.Pytester, prod: StandinProduction) -> None:
    project = app_project(pytester, {k: v for k, v in MIGRATIONS.items()
                                     if not k.startswith("002")})
    db = new_database(prod, project)
    assert applied_lines(ok(migrate(project, prod, db))) == ["000", "001", "003"]
    before = history(prod, db)
    (project / "migrations" / "002_add_orders.sql").write_text(MIGRATIONS["002_add_orders.sql"])

    out = ok(status(project, prod, db))
    assert "  pending   002  add orders  (older than the newest applied one)" in out

    refused(migrate(project, prod, db),
            "Pending migration(s) 002 are older than the newest applied one",
            "--allow-out-of-order")
    refused(migrate(project, prod, db, "--dry-run"), "Pending migration(s) 002")
    assert history(prod, db) == before
    assert not relation_exists(prod, db, "orders")

    out = ok(migrate(project, prod, db, "--allow-out-of-order"))
    assert applied_lines(out) == ["002"]
    after = history(prod, db)
    assert before is not None and after is not None
    assert [r[0] for r in after] == VERSIONS
    assert after[:2] == before[:2] and after[3] == before[2]  # the rows already there are kept
    assert after[2][2] == sha256(project / "migrations" / "002_add_orders.sql")
    assert after[2][3] > after[3][3]  # 002 was applied after 003
    assert relation_exists(prod, db, "orders")
    assert "4 applied, 0 pending" in ok(status(project, prod, db))


FAILING_002 = """\
-- 002: several statements; the third fails at run time
CREATE TABLE public.orders (id serial PRIMARY KEY, total numeric NOT NULL);
INSERT INTO public.orders (total) VALUES (1);
UPDATE public.accounts SET name = name || (1 / 0)::text;
CREATE TABLE public.after_failure (id int);
"""

SYNTAX_ERROR_002 = """\
CREATE TABLE public.orders (id serial PRIMARY KEY, total numeric NOT NULL);
CREAT TABLE public.oops (id int);
"""


def test_failing_migration_rolls_back_entirely(pytester: pytest.Pytester,
                                               prod: StandinProduction) -> None:
    project = app_project(pytester, {**MIGRATIONS, "002_add_orders.sql": FAILING_002})
    db = new_database(prod, project)
    path = project / "migrations" / "002_add_orders.sql"

    refused(migrate(project, prod, db),
            "Migration 002 failed and was rolled back; its history row was not written "
            "(applied in this run before it: 000, 001)",
            f"{path}:4", "division by zero", "UPDATE public.accounts SET name")
    applied = history(prod, db)
    assert applied is not None and [r[0] for r in applied] == ["000", "001"]
    assert not relation_exists(prod, db, "orders")
    assert not relation_exists(prod, db, "after_failure")
    assert rows(prod, db, "SELECT name FROM accounts ORDER BY id") == [("ada",), ("grace",)]
    assert "display_name" not in columns(prod, db, "accounts")  # 003 did not run either

    path.write_text(SYNTAX_ERROR_002)
    refused(migrate(project, prod, db),
            "(applied in this run before it: none)", f"{path}:2",
            'syntax error at or near "CREAT"')
    assert history(prod, db) == applied
    assert not relation_exists(prod, db, "orders")

    path.write_text(MIGRATIONS["002_add_orders.sql"])
    assert applied_lines(ok(migrate(project, prod, db))) == ["002", "003"]
    final = history(prod, db)
    assert final is not None and final[:2] == applied
    assert [r[0] for r in final] == VERSIONS


def test_unknown_applied_migration_is_refused(pytester: pytest.Pytester,
                                              prod: StandinProduction) -> None:
    project = app_project(pytester)
    db = new_database(prod, project)
    ok(migrate(project, prod, db))
    before = history(prod, db)
    (project / "migrations" / "003_add_display_name.sql").unlink()
    (project / "migrations" / "004_add_notes.sql").write_text(NOTES_004)

    refused(migrate(project, prod, db), "has applied migration(s) 003 that have no file in "
            f"{project / 'migrations'}")
    assert history(prod, db) == before
    assert not relation_exists(prod, db, "notes")

    out = ok(status(project, prod, db), code=10)
    assert "  UNKNOWN   003  add display name  (applied, but no local file)" in out
    assert "  pending   004  add notes" in out
    assert "3 applied, 1 pending, 1 unknown, 0 edited" in out


def test_last_statement_without_semicolon(pytester: pytest.Pytester, prod: StandinProduction,
                                          cache_dir: Path) -> None:
    # psql runs a file's last statement at end of input even without ';'.
    project = app_project(pytester, {
        "000_create_tags.sql": MIGRATIONS["000_create_tags.sql"],
        "001_add_email.sql": "-- no semicolon, no newline\nALTER TABLE public.accounts "
                             "ADD COLUMN email text",
    })
    db = new_database(prod, project)
    assert applied_lines(ok(migrate(project, prod, db))) == ["000", "001"]
    assert columns(prod, db, "accounts") == ["id", "name", "email"]
    assert [r[0] for r in history(prod, db) or []] == ["000", "001"]

    pytester.makepyfile(test_x="""
        def test_x(db):
            assert [r[0] for r in db.execute("SELECT version FROM schema_migrations")] == \\
                ["000", "001"]
            db.execute("SELECT email FROM accounts")
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


def test_foreign_history_table_is_a_clear_error(pytester: pytest.Pytester,
                                                prod: StandinProduction) -> None:
    project = app_project(pytester)
    db = new_database(prod, project)
    # Another tool's table of the same name (Rails keeps only the version).
    prod.execute(db, "CREATE TABLE public.schema_migrations (version varchar PRIMARY KEY);"
                     "INSERT INTO public.schema_migrations VALUES ('20240101000000')")
    for result in (status(project, prod, db), migrate(project, prod, db)):
        refused(result, "public.schema_migrations", 'column "description" does not exist')
    assert rows(prod, db, "SELECT * FROM public.schema_migrations") == [("20240101000000",)]
    assert not relation_exists(prod, db, "tags")

    # A history the status role may not read: exit 11 like any unreadable production.
    db2 = new_database(prod, project)
    ok(migrate(project, prod, db2))
    prod.execute(db2, f"REVOKE SELECT ON public.schema_migrations FROM {READER}")
    refused(status(project, prod, db2), "permission denied for table schema_migrations",
            f"as role '{READER}'", code=11)


# --- 5. the schema check lists migration history problems -----------------------------------


def test_check_reports_a_pending_migration(pytester: pytest.Pytester, prod: StandinProduction,
                                           cache_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    project = app_project(pytester, {k: v for k, v in MIGRATIONS.items() if k < "003"})
    db = new_database(prod, project)
    ok(migrate(project, prod, db))  # production is at 002
    (project / "migrations" / "003_add_display_name.sql").write_text(
        MIGRATIONS["003_add_display_name.sql"])
    monkeypatch.setenv("APP_PRODUCTION_URL", prod.url(db, READER))
    before = history(prod, db)

    out = ok(cli(project, f"--schemasync-cache-dir={cache_dir}", "check"), code=10)
    assert "DRIFT (" in out and "migration history differs" in out
    assert "Migration history (local files vs production schema_migrations): OUT OF SYNC" in out
    assert "  pending   003  add display name" in out
    assert "3 applied, 1 pending, 0 unknown, 0 edited" in out
    assert "display_name" in out  # the column 003 adds is an object difference too
    for version in ("000", "001", "002"):
        assert f"  applied   {version}  " in out

    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    result = run_inner(pytester, cache_dir, "--schema-check")
    out = output_of(result)
    assert result.ret == 10, out
    assert "  pending   003  add display name" in out
    assert "no tests were run" in out
    assert history(prod, db) == before


def test_check_reports_edited_and_unknown_then_in_sync(
        pytester: pytest.Pytester, prod: StandinProduction, cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = app_project(pytester)
    db = new_database(prod, project)
    ok(migrate(project, prod, db))
    monkeypatch.setenv("APP_PRODUCTION_URL", prod.url(db, READER))

    def check(*args: str) -> CliResult:
        return cli(project, f"--schemasync-cache-dir={cache_dir}", "check", *args)

    out = ok(check())
    assert "schema check 'app': no drift" in out

    real = sha256(project / "migrations" / "001_add_email.sql")
    prod.execute(db, "UPDATE public.schema_migrations SET checksum = repeat('ab', 32) "
                     "WHERE version = '001'")
    out = ok(check("--json", "check.json", "--markdown", "check.md"), code=10)
    assert "DRIFT (0 object differences, migration history differs)" in out
    edited = f"  EDITED    001  add email  checksum applied abababababab… local {real[:12]}…"
    assert edited in out
    assert json.loads((project / "check.json").read_text())["drift"] is True
    assert edited in (project / "check.md").read_text()

    prod.execute(db, f"UPDATE public.schema_migrations SET checksum = '{real}' "
                     "WHERE version = '001'")
    prod.execute(db, "INSERT INTO public.schema_migrations (version, description, checksum) "
                     "VALUES ('004', 'hotfix', 'x')")
    out = ok(check(), code=10)
    assert "  UNKNOWN   004  hotfix  (applied, but no local file)" in out
    assert "EDITED" not in out

    prod.execute(db, "DELETE FROM public.schema_migrations WHERE version = '004'")
    out = ok(check())
    assert "schema check 'app': no drift" in out
    assert "OUT OF SYNC" not in out


# --- 6. the example project, end to end -----------------------------------------------------

EXAMPLE_EXTRA_TEST = '''
import hashlib
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent.parent / "db" / "gameforge" / "migrations"


def test_gameforge_history_has_four_rows(db):
    # The files record themselves (by stem; 002 by number, without a path); schemasync
    # completed those rows instead of adding its own.
    history = db.execute(
        "SELECT version, checksum, script_path FROM schema_migrations ORDER BY version"
    ).fetchall()
    files = sorted(MIGRATIONS.glob("*.sql"))
    assert [r[0] for r in history] == [
        "000_migration_system", "001_add_player_profiles", "002", "003_add_asset_search"]
    assert [r[1] for r in history] == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert [r[2] for r in history] == [
        "migrations/000_migration_system.sql", "migrations/001_add_player_profiles.sql",
        "db/gameforge/migrations/002_add_achievements.sql", "migrations/003_add_asset_search.sql"]
'''


def test_example_project_end_to_end(tmp_path: Path, cache_dir: Path) -> None:
    require_pg(*extensions_in((EXAMPLE / "db/gameforge/schema.sql").read_text()))
    copy = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(
        "__pycache__", ".pytest_cache", ".venv", "backups"))
    (copy / "tests" / "test_zz_history.py").write_text(EXAMPLE_EXTRA_TEST)
    out = run_pytest_in(copy, cache_dir)
    assert "PASSED tests/test_zz_history.py::test_gameforge_history_has_four_rows" in out
    assert "PASSED tests/test_migrations.py::test_003_backfills_existing_assets" in out
    assert "PASSED tests/test_migrations.py::test_database_before_003_lacks_asset_search" in out
    assert " failed" not in out and " error" not in out


# --- 7. concurrent migrators ----------------------------------------------------------------


def test_concurrent_migrate_applies_each_migration_once(pytester: pytest.Pytester,
                                                        prod: StandinProduction) -> None:
    project = app_project(pytester)
    db = new_database(prod, project)
    url = prod.url(db, OWNER)
    # Hold a lock that migration 001 needs, so both migrators are surely under way at once:
    # one applies 000 then waits on the table, the other waits for its turn to migrate.
    blocker = prod.superuser_connect(db)
    blocker.autocommit = False
    blocker.execute("LOCK TABLE public.accounts IN ACCESS EXCLUSIVE MODE")
    procs = [subprocess.Popen([sys.executable, "-m", "pytest_schemasync.cli", "migrate", url],
                              cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        waiting = 0
        while waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            waiting = scalar(prod, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE "
                             f"datname = '{db}' AND wait_event_type = 'Lock'")
        assert waiting == 2, "both migrators should be waiting on a lock"
        assert all(p.poll() is None for p in procs)
    finally:
        blocker.rollback()
        blocker.close()
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
        assert proc.returncode == 0, stdout + stderr
        assert "Traceback" not in stderr
        outputs.append(stdout)
    applied = sorted(v for out in outputs for v in applied_lines(out))
    assert applied == VERSIONS, outputs
    assert any("is up to date (4 migrations applied)" in out for out in outputs), outputs
    final = history(prod, db)
    assert final is not None and [r[0] for r in final] == VERSIONS
    assert rows(prod, db, "SELECT display_name FROM accounts ORDER BY id") == [
        ("Ada <ada@example.test>",), ("Grace <grace@example.test>",)]


def test_url_from_an_environment_variable(pytester: pytest.Pytester,
                                          prod: StandinProduction,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """--url-env keeps the password off the command line (where `ps` would show it)."""
    project = app_project(pytester)
    db = new_database(prod, project)
    monkeypatch.setenv("TARGET_DB_URL", prod.url(db, OWNER))
    out = ok(cli(project, "migrate", "--url-env", "TARGET_DB_URL"))
    assert applied_lines(out) == VERSIONS
    monkeypatch.setenv("TARGET_DB_URL", prod.url(db, READER))
    assert "4 applied, 0 pending" in ok(cli(project, "status", "--url-env", "TARGET_DB_URL"))
    refused(cli(project, "status", "--url-env", "NO_SUCH_VARIABLE"), "is not set")
    refused(cli(project, "status"), "a URL argument or --url-env")
