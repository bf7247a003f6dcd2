"""Role-level settings (#12's last point), end to end against real servers: a stand-in
production whose roles have ``ALTER ROLE r SET`` and ``ALTER ROLE r IN DATABASE d SET`` rows;
the check and ``schemasync diff`` report them for the roles the set uses, a set that declares
them has no drift and its tests as those roles (``db``, ``fresh_db``, ``adb``, ``afresh_db``)
see them, and a refresh records them byte-stably. Nothing global changes on the scratch
server: the settings are per database and go with it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CliResult,
    cluster_connection,
    output_of,
    run_inner,
    run_schemasync,
    scratch_cache_dir,
)

from pytest_schemasync import dbprops
from pytest_schemasync.catalog import Snapshot
from pytest_schemasync.config import build_settings
from pytest_schemasync.errors import ConfigError, DriftError
from pytest_schemasync.snapshots import decode, encode
from pytest_schemasync.standin import StandinProduction

PASSWORD = "R0le-s3ttings-pw"
ENV = "APP_PROD_URL"
GRANTS = "GRANT SELECT ON public.people TO app_user, auditor;\n"
SCHEMA = """\
CREATE SCHEMA app;
CREATE TABLE app.marker (x integer);
CREATE TABLE public.people (id integer PRIMARY KEY, name text NOT NULL);
"""
# app_user: role-wide rows, TimeZone overridden for this database; auditor: a row for this
# database only. other_role (not the set's) and the row for another database are not ours.
ROLE_SETTINGS = [
    "ALTER ROLE app_user SET search_path TO app, public",
    "ALTER ROLE app_user SET TimeZone TO 'UTC'",
    "ALTER ROLE app_user IN DATABASE {db} SET TimeZone TO 'America/Denver'",
    "ALTER ROLE auditor IN DATABASE {db} SET statement_timeout TO '7s'",
    "ALTER ROLE other_role SET search_path TO nowhere",
    "ALTER ROLE app_user IN DATABASE postgres SET work_mem TO '8MB'",
]
MATCHING = """\
[tool.schemasync.sets.app.database.role-settings.app_user]
search_path = "app, public"
TimeZone = "America/Denver"

[tool.schemasync.sets.app.database.role-settings.auditor]
statement_timeout = "7s"
"""
ROLES = 'roles = [{ name = "app_user", login = true }]\n'


@pytest.fixture(scope="module")
def prod() -> Iterator[StandinProduction]:
    with StandinProduction(password=PASSWORD) as standin:
        with standin.superuser_connect() as conn:
            conn.execute("CREATE ROLE app_user LOGIN")
            conn.execute("CREATE ROLE auditor NOLOGIN")
            conn.execute("CREATE ROLE other_role NOLOGIN")
        yield standin


@pytest.fixture(scope="module")
def cache() -> Iterator[Path]:
    with scratch_cache_dir("schemasync-rolesettings-") as path:
        yield path


def _production(prod: StandinProduction, tmp: Path, *, settings: bool = True) -> str:
    name = f"p_{uuid.uuid4().hex[:10]}"
    schema = tmp / f"{name}.sql"
    schema.write_text(SCHEMA + GRANTS, encoding="utf-8")
    prod.create_database(name, [schema])
    if settings:
        with prod.superuser_connect() as conn:
            for statement in ROLE_SETTINGS:
                conn.execute(statement.format(db=name))  # type: ignore[arg-type]
    return name


@pytest.fixture(scope="module")
def prod_db(prod: StandinProduction, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _production(prod, tmp_path_factory.mktemp("prod"))


def _pyproject(root: Path, database: str = "", *, schema: str = SCHEMA + GRANTS,
               set_keys: str = ROLES) -> None:
    (root / "db").mkdir(exist_ok=True)
    (root / "db" / "schema.sql").write_text(schema, encoding="utf-8")
    (root / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n\n[tool.schemasync]\ndefault-set = \"app\"\n\n"
        "[tool.schemasync.sets.app]\nfiles = [\"db/schema.sql\"]\n"
        f"production-url-env = \"{ENV}\"\n{set_keys}\n{database}", encoding="utf-8")


def _cli(root: Path, cache: Path, env: Mapping[str, str], *args: str) -> CliResult:
    return run_schemasync(root, f"--schemasync-cache-dir={cache}", *args,
                          env={**os.environ, **env}, timeout=180, secrets=(PASSWORD,))


def _check(root: Path, cache: Path, url: str) -> tuple[int, dict[str, Any], str]:
    out = root / "out"
    proc = _cli(root, cache, {ENV: url}, "check", "--json", str(out / "c.json"))
    data = json.loads((out / "c.json").read_text())["sets"]["app"]
    return proc.returncode, data, proc.stdout + proc.stderr


def _global_role_rows(cache: Path) -> list[tuple[Any, ...]]:
    """Rows of pg_db_role_setting on the scratch server that are not one existing database's:
    role-wide ones, or ones left behind by a dropped database."""
    with cluster_connection(cache) as conn:
        return conn.execute(
            "SELECT setdatabase, setrole::regrole::text, setconfig FROM pg_db_role_setting "
            "WHERE setrole <> 0 AND (setdatabase = 0 OR setdatabase NOT IN "
            "(SELECT oid FROM pg_database))").fetchall()


def _next_xid(prod: StandinProduction) -> int:
    """The stand-in's next transaction id: it only moves when some transaction writes."""
    with prod.superuser_connect() as conn:
        row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
    assert row is not None
    return int(row[0])


EXPECTED_DRIFT = {
    ("database", "setting search_path for role app_user", "missing"),
    ("database", "setting TimeZone for role app_user", "missing"),
    ("database", "setting statement_timeout for role auditor", "missing"),
}


# --- 1. the check and `schemasync diff` report them ----------------------------------------


def test_check_reports_role_settings_of_the_sets_roles(prod: StandinProduction, prod_db: str,
                                                       cache: Path, tmp_path: Path) -> None:
    _pyproject(tmp_path)  # the set declares no role settings
    xid = _next_xid(prod)
    ret, data, text = _check(tmp_path, cache, prod.url(prod_db))
    assert _next_xid(prod) == xid  # production only read
    assert ret == DriftError.exit_code, text
    found = {(d["kind"], d["identity"], d["change"]) for d in data["differences"]}
    assert found == EXPECTED_DRIFT, data["differences"]  # not other_role's, not postgres's
    by_id = {d["identity"]: d for d in data["differences"]}
    # The row for the database overrides the role-wide one, as for a session of the role.
    assert by_id["setting TimeZone for role app_user"]["production"] == (
        "ALTER ROLE app_user SET TimeZone TO America/Denver")
    assert by_id["setting search_path for role app_user"]["production"] == (
        "ALTER ROLE app_user SET search_path TO app, public")
    assert "missing database setting statement_timeout for role auditor" in text


def test_diff_between_two_databases_reports_role_settings(
        prod: StandinProduction, prod_db: str, cache: Path, tmp_path: Path) -> None:
    plain = _production(prod, tmp_path, settings=False)  # only the role-wide rows apply
    _pyproject(tmp_path)
    with (tmp_path / "pyproject.toml").open("a") as f:
        f.write('\n[tool.schemasync.environments.plain]\nurl-env = "PLAIN_URL"\n'
                '\n[tool.schemasync.environments.prod]\nurl-env = "APP_PROD_URL"\n')
    env = {ENV: prod.url(prod_db), "PLAIN_URL": prod.url(plain)}
    done = _cli(tmp_path, cache, env, "diff", "plain", "prod", "--json", "d.json")
    assert done.returncode == DriftError.exit_code, done.stdout + done.stderr
    data = json.loads((tmp_path / "d.json").read_text())
    assert {(d["identity"], d["change"], d["bundled"])  # "bundled": the left side
            for d in data["differences"]} == {
        ("setting TimeZone for role app_user", "changed",
         "ALTER ROLE app_user SET TimeZone TO UTC"),
        ("setting statement_timeout for role auditor", "missing", None),
    }, data["differences"]


# --- 2. declared: no drift, and the tests as those roles see them --------------------------

INNER_TESTS = '''
import psycopg
import pytest

def facts(conn):
    return tuple(conn.execute(f"SHOW {name}").fetchone()[0]
                 for name in ("search_path", "TimeZone", "statement_timeout"))

async def afacts(conn):
    found = []
    for name in ("search_path", "TimeZone", "statement_timeout"):
        cur = await conn.execute(f"SHOW {name}")
        found.append((await cur.fetchone())[0])
    return tuple(found)

APP = ("app, public", "America/Denver", "0")
AUDITOR = ('"$user", public', "Etc/UTC", "7s")
PLAIN = ('"$user", public', "Etc/UTC", "0")

@pytest.mark.schemasync(role="app_user")
def test_db_as_app_user(db):
    assert facts(db) == APP
    assert db.execute("SELECT current_user").fetchone()[0] == "app_user"

@pytest.mark.schemasync(role="auditor")
def test_db_as_auditor(db):
    assert facts(db) == AUDITOR

def test_db_without_a_role_after_them(db):  # the same connection: nothing stayed set
    assert facts(db) == PLAIN

@pytest.mark.schemasync(role="app_user")
def test_fresh_db_as_app_user(fresh_db):  # a login role: the server applies them
    assert facts(fresh_db) == APP
    assert fresh_db.execute("SELECT session_user").fetchone()[0] == "app_user"

@pytest.mark.schemasync(role="auditor")
def test_fresh_db_as_auditor(fresh_db):  # NOLOGIN: connection options carry them
    assert facts(fresh_db) == AUDITOR

def test_fresh_db_without_a_role(fresh_db):
    assert facts(fresh_db) == PLAIN

@pytest.mark.asyncio
@pytest.mark.schemasync(role="app_user")
async def test_adb_as_app_user(adb):
    assert await afacts(adb) == APP

@pytest.mark.asyncio
@pytest.mark.schemasync(role="auditor")
async def test_afresh_db_as_auditor(afresh_db):
    assert await afacts(afresh_db) == AUDITOR
'''


def test_declared_role_settings_no_drift_and_tests_see_them(
        pytester: pytest.Pytester, prod: StandinProduction, prod_db: str, cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _pyproject(pytester.path, MATCHING)
    pytester.makepyfile(test_inner=INNER_TESTS)
    monkeypatch.setenv(ENV, prod.url(prod_db))
    result = run_inner(pytester, cache, "--schema-check", "-p", "asyncio")
    out = output_of(result)
    assert result.ret == 0, out
    result.assert_outcomes(passed=8)
    assert "schema check 'app': no drift" in out
    line = next(x for x in result.outlines if "set 'app': template" in x)
    assert line.endswith("; role app_user: search_path=app, public, TimeZone=America/Denver; "
                         "role auditor: statement_timeout=7s)"), line
    # Per database only: no role-wide row on the scratch server, none left by a dropped clone.
    assert _global_role_rows(cache) == []

    # Part of the template's content hash: another value, another template, and drift.
    _pyproject(pytester.path, MATCHING.replace("7s", "9s"))
    again = run_inner(pytester, cache, "--schema-check", "-p", "asyncio",
                      "-k", "db_without_a_role")
    assert again.ret == DriftError.exit_code, output_of(again)
    assert "changed database setting statement_timeout for role auditor" in output_of(again)


def test_role_settings_for_a_role_the_server_lacks_is_a_clear_error(
        pytester: pytest.Pytester, cache: Path) -> None:
    _pyproject(pytester.path, "[tool.schemasync.sets.app.database.role-settings.ghost]\n"
                              "search_path = \"app\"\n")
    pytester.makepyfile(test_inner="def test_x(fresh_db):\n    pass\n")
    result = run_inner(pytester, cache)
    out = output_of(result)
    assert "Traceback" not in out
    assert result.ret != 0, out
    message = " ".join(out.split())
    assert "the role-settings of role 'ghost' of set 'app' cannot be applied" in message
    assert "pyproject.toml" in message and "roles = [...]" in message



def test_a_role_wide_setting_on_the_test_server_makes_the_stored_snapshot_stale(
        prod: StandinProduction, prod_db: str, cache: Path, tmp_path: Path) -> None:
    """Clones see the test server's own ``ALTER ROLE r SET`` rows: the check's stored
    snapshot of the template must not hide one set after it was stored."""
    _pyproject(tmp_path, MATCHING)
    ret, _, text = _check(tmp_path, cache, prod.url(prod_db))  # stores the snapshot
    assert ret == 0, text
    with cluster_connection(cache) as conn:
        conn.execute("ALTER ROLE auditor SET lock_timeout TO '3s'")
    try:
        ret, data, text = _check(tmp_path, cache, prod.url(prod_db))
    finally:
        with cluster_connection(cache) as conn:
            conn.execute("ALTER ROLE auditor RESET lock_timeout")
    assert ret == DriftError.exit_code, text
    assert [(d["identity"], d["change"]) for d in data["differences"]] == [
        ("setting lock_timeout for role auditor", "extra")]
    ret, _, text = _check(tmp_path, cache, prod.url(prod_db))
    assert ret == 0, text


# --- 3. refresh records them, byte-stably ---------------------------------------------------


def test_refresh_records_role_settings_byte_stably(prod: StandinProduction, prod_db: str,
                                                   cache: Path, tmp_path: Path) -> None:
    # The old file names no role: auditor comes in with the dump's GRANT (keep-privileges),
    # so the refresh reads production's role settings again for the new files' roles.
    _pyproject(tmp_path, schema=SCHEMA, set_keys=ROLES + "keep-privileges = true\n")
    env = {ENV: prod.url(prod_db)}
    xid = _next_xid(prod)
    first = _cli(tmp_path, cache, env, "refresh")
    assert _next_xid(prod) == xid  # production only read
    assert first.returncode == 0, first.stdout + first.stderr
    assert "db/schema.database.toml" in first.stdout
    recorded = tmp_path / "db" / "schema.database.toml"
    once = recorded.read_bytes()
    assert once.decode().endswith(
        '\n[role-settings.app_user]\nsearch_path = "app, public"\n'
        'TimeZone = "America/Denver"\n\n[role-settings.auditor]\nstatement_timeout = "7s"\n'
    ), once.decode()
    assert "other_role" not in once.decode() and "work_mem" not in once.decode()

    second = _cli(tmp_path, cache, env, "refresh")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "no change to the schema files" in second.stdout
    assert recorded.read_bytes() == once
    ret, data, text = _check(tmp_path, cache, prod.url(prod_db))
    assert ret == 0, text
    assert data["differences"] == []


# --- the pieces without a server -------------------------------------------------------------


def test_role_settings_table_round_trips() -> None:
    import tomllib

    props = dbprops.parse({"role-settings": {"b role": {"TimeZone": "UTC"},
                                             "a": {"search_path": '"$user", app',
                                                   "app.api_key": "k"}}}, "t")
    assert props.role_settings == (("a", (("app.api_key", "k"), ("search_path", '"$user", app'))),
                                   ("b role", (("TimeZone", "UTC"),)))
    assert dbprops.parse(tomllib.loads(dbprops.to_toml(props)), "t") == props
    assert "role b role set TimeZone=UTC" in props.hash_text()
    assert dbprops.DatabaseProps().hash_text() == dbprops.DatabaseProps(
        source="x").hash_text()
    statement = dbprops.settings_sql("d", props.role_settings[0][1], "a")
    assert statement is not None
    assert "ALTER ROLE \"a\" IN DATABASE \"d\" SET \"search_path\" TO '$user', 'app'" in (
        statement.as_string(None))
    # A secret's value is never recorded or shown.
    recorded = dbprops.for_recording(props)
    assert dict(recorded.role_settings)["a"][0] == ("app.api_key", dbprops.MASK)
    assert "k" not in dbprops.describe(props).split("app.api_key=")[1][:4]


def test_stored_snapshots_keep_role_settings() -> None:
    props = dbprops.DatabaseProps(encoding="UTF8", role_settings=(
        ("app_user", (("search_path", "app, public"),)),))
    snap = Snapshot("16.1", 16, {}, [], props, {})
    assert decode(encode(snap)).database == props


@pytest.mark.parametrize("body, needle", [
    ('role-settings = "x"', "role-settings must be a table of roles"),
    ('role-settings = { app_user = "x" }', "role-settings of role app_user must be a table"),
    ('role-settings = { app_user = { "bad name" = "x" } }', "not a PostgreSQL setting name"),
])
def test_bad_role_settings_are_config_errors(tmp_path: Path, body: str, needle: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemasync.sets.app]\nfiles = ["s.sql"]\n\n'
        f'[tool.schemasync.sets.app.database]\n{body}\n')
    with pytest.raises(ConfigError) as info:
        build_settings(tmp_path, environ={})
    assert needle in str(info.value)
    assert "pyproject.toml:4" in str(info.value)



def test_only_the_sets_roles_are_kept_and_files_scanned_only_when_needed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_schemasync import roles

    (tmp_path / "s.sql").write_text(SCHEMA + GRANTS)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemasync.sets.app]\nfiles = ["s.sql"]\n' + ROLES)
    schema_set = build_settings(tmp_path, environ={}).sets["app"]

    def snap(*names: str) -> Snapshot:
        props = dbprops.DatabaseProps(role_settings=tuple(
            (n, (("search_path", "app"),)) for n in names))
        return Snapshot("16.1", 16, {}, [], props, {})

    kept = roles.keep_set_role_settings(snap("app_user", "auditor", "other_role", "postgres"),
                                        schema_set)
    assert [r for r, _ in kept.database.role_settings] == ["app_user", "auditor"]
    assert sorted(kept.objects) == [("database", "setting search_path for role app_user"),
                                    ("database", "setting search_path for role auditor")]
    # A refresh's new texts decide, not the files on disk.
    new = roles.keep_set_role_settings(snap("auditor", "other_role"), schema_set,
                                       {tmp_path / "s.sql": "GRANT SELECT ON t TO other_role;"})
    assert [r for r, _ in new.database.role_settings] == ["other_role"]
    # Roles with settings all named in the roles key: the files are not scanned at all.
    scans: list[object] = []
    monkeypatch.setattr(roles, "set_roles", lambda *a: scans.append(a) or set())
    assert [r for r, _ in roles.keep_set_role_settings(
        snap("app_user"), schema_set).database.role_settings] == ["app_user"]
    assert roles.keep_set_role_settings(snap(), schema_set).objects == {}
    assert scans == []
