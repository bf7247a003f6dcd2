"""Database-level properties end to end, against real servers: a stand-in production created
with ``LOCALE_PROVIDER icu ICU_LOCALE 'en-US'``, a database time zone and a database
search_path; the check reports each as drift, a set configured to match has none and its
tests (``db`` and ``fresh_db``) see production's sort order, time zone and search_path; a
refresh records the properties byte-stably; a locale this machine lacks is a clear error.
"""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CliResult,
    built_templates,
    cluster_connection,
    database_names,
    header_lines,
    output_of,
    run_inner,
    run_schemasync,
    scratch_cache_dir,
)

from pytest_schemasync import dbprops
from pytest_schemasync.config import build_settings
from pytest_schemasync.errors import ConfigError, DriftError
from pytest_schemasync.standin import StandinProduction

PASSWORD = "Db-pr0ps-s3cret"
ENV = "APP_PROD_URL"
SCHEMA = """\
CREATE SCHEMA extensions;
CREATE FUNCTION extensions.ext_version() RETURNS text LANGUAGE sql AS $$ SELECT 'ext-1' $$;
CREATE TABLE public.people (id integer PRIMARY KEY, name text NOT NULL);
"""
ICU = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
SETTINGS = ("ALTER DATABASE {db} SET timezone TO 'America/Denver';"
            "ALTER DATABASE {db} SET search_path TO public, extensions")
# What [tool.schemasync.sets.app.database] must say to match that production.
MATCHING = """\
[tool.schemasync.sets.app.database]
locale-provider = "icu"
icu-locale = "en-US"

[tool.schemasync.sets.app.database.settings]
timezone = "America/Denver"
search_path = "public, extensions"
"""
DESCRIBED = ("UTF8, icu en-US, collate C, ctype C; "
             "search_path=public, extensions; TimeZone=America/Denver")


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinProduction]:
    with StandinProduction(password=PASSWORD) as standin:
        yield standin


@pytest.fixture(scope="module")
def cache() -> Iterator[Path]:
    with scratch_cache_dir("schemasync-dbprops-") as path:
        yield path


def _production(prod: StandinProduction, tmp: Path, *, icu: bool = True,
                settings: bool = True) -> str:
    name = f"p_{uuid.uuid4().hex[:10]}"
    schema = tmp / f"{name}.sql"
    schema.write_text(SCHEMA, encoding="utf-8")
    prod.create_database(name, [schema], options=ICU if icu else "")
    if settings:
        with prod.superuser_connect() as conn:
            for statement in SETTINGS.format(db=name).split(";"):
                conn.execute(statement)  # type: ignore[arg-type]
    return name


@pytest.fixture(scope="module")
def icu_db(prod: StandinProduction, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The production of the issue (never changed by a test)."""
    return _production(prod, tmp_path_factory.mktemp("prod"))


def _pyproject(root: Path, database: str = "", extra_sets: str = "") -> None:
    (root / "db").mkdir(exist_ok=True)
    (root / "db" / "schema.sql").write_text(SCHEMA, encoding="utf-8")
    (root / "db" / "plain.sql").write_text(SCHEMA, encoding="utf-8")
    (root / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n\n[tool.schemasync]\ndefault-set = \"app\"\n\n"
        "[tool.schemasync.sets.app]\nfiles = [\"db/schema.sql\"]\n"
        f"production-url-env = \"{ENV}\"\n\n{database}\n{extra_sets}", encoding="utf-8")


def _cli(root: Path, cache: Path, env: Mapping[str, str], *args: str) -> CliResult:
    return run_schemasync(root, f"--schemasync-cache-dir={cache}", *args,
                          env={**os.environ, **env}, timeout=180, secrets=(PASSWORD,))


def _check(root: Path, cache: Path, url: str) -> tuple[int, dict[str, Any], str, str]:
    out = root / "out"
    proc = _cli(root, cache, {ENV: url}, "check", "--json", str(out / "c.json"),
                "--markdown", str(out / "c.md"))
    data = json.loads((out / "c.json").read_text())["sets"]["app"]
    return proc.returncode, data, proc.stdout + proc.stderr, (out / "c.md").read_text()


# --- 1. the check names every database property that differs ---------------------------


def test_check_reports_each_database_property(prod: StandinProduction, icu_db: str,
                                              cache: Path, tmp_path: Path) -> None:
    _pyproject(tmp_path)  # the set declares nothing: test databases are C, UTC, default path
    ret, data, text, markdown = _check(tmp_path, cache, prod.url(icu_db))
    assert ret == DriftError.exit_code, text
    found = {(d["kind"], d["identity"], d["change"]) for d in data["differences"]}
    assert found == {
        ("database", "locale-provider", "changed"),
        ("database", "icu-locale", "missing"),
        ("database", "setting TimeZone", "missing"),
        ("database", "setting search_path", "missing"),
    }, data["differences"]
    by_id = {d["identity"]: d for d in data["differences"]}
    assert by_id["locale-provider"]["production"] == "LOCALE_PROVIDER icu"
    assert by_id["locale-provider"]["bundled"] == "LOCALE_PROVIDER libc"
    assert by_id["icu-locale"]["production"] == "ICU_LOCALE en-US"
    assert by_id["setting TimeZone"]["production"] == "SET TimeZone TO America/Denver"
    assert by_id["setting search_path"]["production"] == "SET search_path TO public, extensions"
    assert data["summary"] == {"database": {"missing": 3, "extra": 0, "changed": 1}}
    assert "missing database setting TimeZone" in text
    assert "| database | 3 | 0 | 1 |" in markdown
    assert "changed database `locale-provider`" in markdown


# --- 2. configured to match: no drift, and the tests see production's behaviour ----------

INNER_TESTS = '''
import pytest

def facts(conn):
    return {
        "a<B": conn.execute("SELECT 'a' < 'B'").fetchone()[0],
        "order": [r[0] for r in conn.execute(
            "SELECT x FROM (VALUES ('B'), ('a'), ('C'), ('b')) v(x) ORDER BY x")],
        "timezone": conn.execute("SHOW TimeZone").fetchone()[0],
        "search_path": conn.execute("SHOW search_path").fetchone()[0],
        "unqualified": conn.execute(
            "SELECT to_regproc('ext_version') IS NOT NULL").fetchone()[0],
    }

PRODUCTION = {"a<B": True, "order": ["a", "b", "B", "C"], "timezone": "America/Denver",
              "search_path": "public, extensions", "unqualified": True}
PLAIN = {"a<B": False, "order": ["B", "C", "a", "b"], "timezone": "Etc/UTC",
         "search_path": '"$user", public', "unqualified": False}

def test_db(db):
    assert facts(db) == PRODUCTION

@pytest.mark.parametrize("n", range(4))
def test_fresh_db(fresh_db, n):  # the background pool makes most of these clones
    assert facts(fresh_db) == PRODUCTION

def test_factory(schemasync_db_factory):
    import psycopg
    with psycopg.connect(schemasync_db_factory().url) as conn:
        assert facts(conn) == PRODUCTION

@pytest.mark.schemasync("plain")
def test_plain_set_keeps_the_server_defaults(db, fresh_db):
    assert facts(db) == PLAIN and facts(fresh_db) == PLAIN
'''
# Its own copy of the schema: the properties recorded next to a schema file apply to every
# set whose main file it is.
PLAIN_SET = '[tool.schemasync.sets.plain]\nfiles = ["db/plain.sql"]\n'


def test_matching_set_has_no_drift_and_tests_see_production(
        pytester: pytest.Pytester, prod: StandinProduction, icu_db: str, cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _pyproject(pytester.path, MATCHING, PLAIN_SET)
    pytester.makepyfile(test_inner=INNER_TESTS)
    monkeypatch.setenv(ENV, prod.url(icu_db))
    result = run_inner(pytester, cache, "--schema-check")
    out = output_of(result)
    assert result.ret == 0, out
    result.assert_outcomes(passed=7)
    assert any("schema check 'app': no drift" in line for line in header_lines(result)), out
    line = next(x for x in header_lines(result) if "set 'app': template" in x)
    assert line.endswith(f"(databases: {DESCRIBED})"), line
    plain = next(x for x in header_lines(result) if "set 'plain': template" in x)
    assert plain.endswith("(databases: UTF8, libc, collate C, ctype C; no database settings)")
    # xdist workers make their own clones (and pools) of the controller's templates.
    workers = run_inner(pytester, cache, "-n", "2")
    assert workers.ret == 0, output_of(workers)
    workers.assert_outcomes(passed=7)

    # The properties are part of the template's content hash: another time zone, another
    # template (and the check now reports that one setting).
    built = len(built_templates(cache))
    _pyproject(pytester.path, MATCHING.replace("America/Denver", "Europe/Paris"), PLAIN_SET)
    again = run_inner(pytester, cache, "--schema-check")
    assert again.ret == DriftError.exit_code, output_of(again)
    assert "changed database setting TimeZone" in output_of(again)
    assert len(built_templates(cache)) == built + 1


def test_server_wide_settings_are_warnings(prod: StandinProduction, icu_db: str, cache: Path,
                                           tmp_path: Path) -> None:
    _pyproject(tmp_path, MATCHING)
    with prod.superuser_connect() as conn:
        conn.execute("ALTER SYSTEM SET DateStyle = 'SQL, DMY'")
        conn.execute("ALTER SYSTEM SET IntervalStyle = 'iso_8601'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        ret, data, text, _ = _check(tmp_path, cache, prod.url(icu_db))
    finally:
        with prod.superuser_connect() as conn:
            conn.execute("ALTER SYSTEM RESET DateStyle")
            conn.execute("ALTER SYSTEM RESET IntervalStyle")
            conn.execute("SELECT pg_reload_conf()")
    assert ret == 0, text  # not drift
    warnings = data["warnings"]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("Server setting DateStyle differs: production 'SQL, DMY' "
                                  "(configuration file), test server 'ISO, MDY'"), warnings
    assert warnings[1].startswith("Server setting IntervalStyle differs: production "
                                  "'iso_8601'"), warnings
    assert "warning: Server setting DateStyle differs" in text
    # TimeZone and search_path differ between the servers' defaults too, but production sets
    # them on the database (drift if the set did not): no warning for those.
    assert not any("TimeZone" in w or "search_path" in w for w in warnings)


# --- 3. refresh records them, byte-stably -------------------------------------------------


def test_refresh_writes_the_properties_byte_stably(prod: StandinProduction, icu_db: str,
                                                   cache: Path, tmp_path: Path) -> None:
    _pyproject(tmp_path)
    env = {ENV: prod.url(icu_db)}
    first = _cli(tmp_path, cache, env, "refresh")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "refresh 'app': updated db/schema.sql, db/schema.database.toml" in first.stdout
    recorded = tmp_path / "db" / "schema.database.toml"
    once = recorded.read_bytes()
    assert once.decode().endswith(
        'encoding = "UTF8"\nlocale-provider = "icu"\nicu-locale = "en-US"\nlc-collate = "C"\n'
        'lc-ctype = "C"\n\n[settings]\nsearch_path = "public, extensions"\n'
        'TimeZone = "America/Denver"\n'), once.decode()
    backups = sorted((tmp_path / "backups").iterdir())
    assert len(backups) == 1
    assert "Database properties: " + DESCRIBED in (backups[0] / "sync-summary.md").read_text()

    second = _cli(tmp_path, cache, env, "refresh")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "refresh 'app': no change to the schema files" in second.stdout
    assert recorded.read_bytes() == once
    assert len(list((tmp_path / "backups").iterdir())) == 1
    # The recorded file is what the test databases are created with: no drift now.
    ret, data, text, _ = _check(tmp_path, cache, prod.url(icu_db))
    assert ret == 0, text
    assert data["differences"] == []
    # A rollback removes the file the refresh created.
    rolled = _cli(tmp_path, cache, {}, "rollback")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert not recorded.exists()


def test_refresh_of_a_plain_production_records_nothing(prod: StandinProduction, cache: Path,
                                                       tmp_path: Path) -> None:
    """Production created like the test databases: nothing to record, files unchanged."""
    name = _production(prod, tmp_path, icu=False, settings=False)
    _pyproject(tmp_path)
    done = _cli(tmp_path, cache, {ENV: prod.url(name)}, "refresh")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (tmp_path / "db" / "schema.database.toml").exists()


def test_refresh_never_edits_a_pyproject_table(prod: StandinProduction, icu_db: str,
                                               cache: Path, tmp_path: Path) -> None:
    _pyproject(tmp_path, MATCHING.replace("America/Denver", "UTC"))
    before = (tmp_path / "pyproject.toml").read_bytes()
    done = _cli(tmp_path, cache, {ENV: prod.url(icu_db)}, "refresh")
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert "refresh does not edit pyproject.toml, and nothing was written" in message
    assert "[tool.schemasync.sets.app.database.settings]\n" in message
    assert 'TimeZone = "America/Denver"' in message
    assert (tmp_path / "pyproject.toml").read_bytes() == before
    assert not (tmp_path / "backups").exists()


# --- 4. a locale this machine lacks -------------------------------------------------------


def test_unavailable_locale_is_a_clear_error(pytester: pytest.Pytester, cache: Path) -> None:
    _pyproject(pytester.path, '[tool.schemasync.sets.app.database]\n'
                              'lc-collate = "en_US.UTF-8"\nlc-ctype = "en_US.UTF-8"\n')
    marker = pytester.path / "ran"
    pytester.makepyfile(test_inner="from pathlib import Path\n\ndef test_x(db):\n"
                                   f"    Path({str(marker)!r}).write_text('ran')\n")
    result = run_inner(pytester, cache)
    out = output_of(result)
    assert result.ret == ConfigError.exit_code, out
    assert "Traceback" not in out
    message = " ".join(out.split())
    assert "Cannot create the test databases of set 'app'" in message
    assert "pyproject.toml:" in message  # where the properties were declared
    assert "no libc locale 'en_US.UTF-8'" in message
    assert "never falls back to C" in message
    assert 'locale-provider = "icu" and icu-locale = "en-US"' in message
    assert "locale-gen" in message
    assert not marker.exists()  # no test ran, not even against a C database
    key = build_settings(pytester.path, environ={}).project_key
    with cluster_connection(cache) as conn:  # and no half-made database is left
        names = database_names(conn)
        assert not [n for n in names if n.startswith((f"ssb_{key}_", f"sst_{key}_"))], names


# --- the pieces without a server -----------------------------------------------------------


@pytest.mark.parametrize("table, needle", [
    ({"encodng": "UTF8"}, "unknown database property ['encodng']"),
    ({"locale-provider": "icu4c"}, "must be libc, icu or builtin"),
    ({"icu-locale": "en-US"}, 'icu-locale needs locale-provider = "icu"'),
    ({"settings": {"TimeZone": "UTC", "timezone": "UTC"}}, "given twice"),
    ({"settings": {"bad name": "x"}}, "not a PostgreSQL setting name"),
    ({"settings": {"x.y": ["a"]}}, "must be a string or a number"),
])
def test_bad_database_tables_are_config_errors(tmp_path: Path, table: dict[str, Any],
                                               needle: str) -> None:
    body = json.dumps(table)  # JSON objects are not TOML: write the table by hand
    lines = ["[tool.schemasync.sets.app]", 'files = ["s.sql"]', "",
             "[tool.schemasync.sets.app.database]"]
    for key, value in table.items():
        if isinstance(value, dict):
            lines += [f"[tool.schemasync.sets.app.database.{key}]"]
            lines += [f'"{k}" = {json.dumps(v)}' for k, v in value.items()]
        else:
            lines.append(f'{key} = {json.dumps(value)}')
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        build_settings(tmp_path, environ={})
    assert needle in str(info.value), (body, str(info.value))
    assert "pyproject.toml:4" in str(info.value)


def test_list_settings_round_trip() -> None:
    assert dbprops.split_list('"$user", public, "My ""x"" s"') == ["$user", "public",
                                                                    'My "x" s']
    props = dbprops.parse({"settings": {"search_path": '"$user", public', "TimeZone": "UTC",
                                        "statement_timeout": 5000, "jit": False}}, "t")
    text = dbprops.to_toml(props)
    import tomllib

    assert dbprops.parse(tomllib.loads(text), "t").settings == props.settings
    assert props.settings == (("jit", "off"), ("search_path", '"$user", public'),
                              ("statement_timeout", "5000"), ("TimeZone", "UTC"))
    statement = dbprops.settings_sql("d", props.settings)
    assert statement is not None
    rendered = statement.as_string(None)
    assert "ALTER DATABASE \"d\" SET \"search_path\" TO '$user', 'public'" in rendered
    assert "ALTER DATABASE \"d\" SET \"TimeZone\" TO 'UTC'" in rendered


def test_declared_twice_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent("""\
        [tool.schemasync.sets.app]
        files = ["db/schema.sql"]

        [tool.schemasync.sets.app.database]
        encoding = "UTF8"
    """))
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "schema.database.toml").write_text('encoding = "UTF8"\n')
    settings = build_settings(tmp_path, environ={})
    with pytest.raises(ConfigError, match="declares its database properties twice"):
        dbprops.for_set(settings.sets["app"])


def test_dump_shows_the_database_properties(prod: StandinProduction, icu_db: str, cache: Path,
                                            tmp_path: Path) -> None:
    _pyproject(tmp_path)
    done = _cli(tmp_path, cache, {}, "dump", prod.url(icu_db))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"database properties: {DESCRIBED}"], done.stderr
    assert "CREATE TABLE public.people" in done.stdout
    assert "database properties" not in done.stdout  # the dump stays what a refresh writes


@pytest.mark.parametrize("text, needle", [
    ("encoding = UTF8\n", "cannot read the database properties of set 'app'"),
    ('lc-colate = "C"\n', "unknown database property ['lc-colate']"),
])
def test_bad_recorded_file_names_the_file(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemasync.sets.app]\nfiles = ["db/schema.sql"]\n')
    recorded = tmp_path / "db" / "schema.database.toml"
    recorded.parent.mkdir()
    recorded.write_text(text)
    settings = build_settings(tmp_path, environ={})
    with pytest.raises(ConfigError) as info:
        dbprops.for_set(settings.sets["app"])
    assert str(info.value).startswith(f"{recorded}: "), str(info.value)
    assert needle in str(info.value)


# --- secrets kept in database settings ------------------------------------------------------

JWT = "prod-JWT-s3cret-value-0123456789"


def test_secret_settings_are_never_shown_or_recorded(prod: StandinProduction, cache: Path,
                                                     tmp_path: Path) -> None:
    """Supabase keeps its JWT secret in a database setting: the check compares only whether
    it is set, and a refresh records a placeholder (or the test value already recorded)."""
    name = _production(prod, tmp_path, icu=False, settings=False)
    prod.execute("postgres", f"ALTER DATABASE {name} SET \"app.settings.jwt_secret\" TO '{JWT}'")
    _pyproject(tmp_path)
    url = prod.url(name)
    ret, data, text, markdown = _check(tmp_path, cache, url)
    assert ret == DriftError.exit_code, text
    assert [(d["identity"], d["change"]) for d in data["differences"]] == [
        ("setting app.settings.jwt_secret", "missing")]
    recorded = tmp_path / "db" / "schema.database.toml"
    first = _cli(tmp_path, cache, {ENV: url}, "refresh")
    assert first.returncode == 0, first.stdout + first.stderr
    assert recorded.read_text().endswith('[settings]\n"app.settings.jwt_secret" = "****"\n')
    # A test value put in the file is kept by the next refresh (and is not drift).
    recorded.write_text(recorded.read_text().replace("****", "test-secret"))
    second = _cli(tmp_path, cache, {ENV: url}, "refresh")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "no change to the schema files" in second.stdout
    assert '"app.settings.jwt_secret" = "test-secret"' in recorded.read_text()
    ret, data, text, markdown = _check(tmp_path, cache, url)
    assert ret == 0, text
    dump = _cli(tmp_path, cache, {}, "dump", url)
    assert "app.settings.jwt_secret=****" in dump.stderr
    outputs = [text, markdown, json.dumps(data), first.stdout + first.stderr,
               second.stdout + second.stderr, dump.stdout + dump.stderr]
    outputs += [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    assert not [o for o in outputs if JWT in o]


def test_pytest_refresh_then_runs_the_tests_with_the_recorded_properties(
        pytester: pytest.Pytester, prod: StandinProduction, icu_db: str, cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _pyproject(pytester.path, "", PLAIN_SET)
    pytester.makepyfile(test_inner=INNER_TESTS)
    monkeypatch.setenv(ENV, prod.url(icu_db))
    result = run_inner(pytester, cache, "--refresh-schema")
    out = output_of(result)
    assert result.ret == 0, out
    assert "refresh 'app': updated db/schema.sql, db/schema.database.toml" in out
    result.assert_outcomes(passed=7)
