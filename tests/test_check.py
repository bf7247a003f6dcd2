"""The schema check end to end: ``pytest --schema-check`` and ``schemasync check`` against a
stand-in production (a separate PostgreSQL cluster on 127.0.0.1 with passwords and a
read-only role), real servers only.

One stand-in per xdist worker (session scope) holds a database per scenario; the embedded
scratch cluster is cached in one directory per worker, so only the first run of a worker
pays for ``initdb`` and the template build. Every run's stdout/stderr and every JSON and
Markdown file it writes goes through ``_no_secrets``: the production password must never
appear anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from conftest import (
    extensions_in,
    make_project,
    output_of,
    require_pg,
    run_inner,
    run_schemasync,
    scratch_cache_dir,
    write_project,
)

from pytest_schemasync.catalog import CatalogOptions, snapshot
from pytest_schemasync.errors import ConfigError, DriftError, ProductionError
from pytest_schemasync.production import ProductionTarget, connect_readonly
from pytest_schemasync.standin import OWNER, READER, StandinProduction

CASES = Path(__file__).parent / "checkcases"
RICH_SQL = (CASES / "rich_schema.sql").read_text(encoding="utf-8")
POSTGIS_SQL = """\
CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;
CREATE TABLE public.places (
    id integer PRIMARY KEY,
    name text NOT NULL,
    geom public.geometry(Point, 4326)
);
CREATE INDEX places_geom_idx ON public.places USING gist (geom);
"""
ENV = "RICH_PRODUCTION_URL"
PASSWORD = "Pw-7f3a-s3cret"  # of the stand-in's roles; must never be printed
WRONG_PASSWORD = "Wr0ng-9e1d-pass"
ODD_READER, ODD_PASSWORD = "odd_reader", "p@ss:w/rd %x#1&y=2"  # needs quoting everywhere
SECRETS = (PASSWORD, WRONG_PASSWORD, ODD_PASSWORD, quote(ODD_PASSWORD, safe=""))
DRIFT, UNREACHABLE, USAGE = DriftError.exit_code, ProductionError.exit_code, ConfigError.exit_code
assert (DRIFT, UNREACHABLE, USAGE) == (10, 11, 4)


# --- helpers ---------------------------------------------------------------------------------


def _no_secrets(*texts: str | None) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in (text or ""), f"a password leaked into:\n{text}"


def _dbname(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _project_files() -> dict[str, str]:
    return {"db/schema.sql": RICH_SQL}


RICH_SETS = {"rich": {"files": ["db/schema.sql"], "production-url-env": ENV}}
RICH_TOOL = {"exclude-schemas": ["staging_*"]}


def _write_project(root: Path, sets: Mapping[str, Mapping[str, Any]],
                   files: Mapping[str, str], tool: Mapping[str, Any] | None = None) -> Path:
    write_project(root, sets=sets, files=files, tool=tool or {})
    return root


@dataclass
class CliRun:
    ret: int
    out: str
    err: str
    json: dict[str, Any] | None
    markdown: str | None

    @property
    def output(self) -> str:
        return self.out + self.err

    def differences(self, set_name: str = "rich") -> list[dict[str, Any]]:
        assert self.json is not None
        return list(self.json["sets"][set_name]["differences"])

    def found(self, set_name: str = "rich") -> set[tuple[str, str, str]]:
        return {(d["kind"], d["identity"], d["change"]) for d in self.differences(set_name)}


_run_counter = iter(range(1, 1_000_000))


def run_cli(project: Path, cache: Path, env: Mapping[str, str] | None = None, *args: str,
            global_args: tuple[str, ...] = (), markdown: bool = True) -> CliRun:
    """``schemasync check`` in a subprocess with cwd = the project, as CI runs it."""
    n = next(_run_counter)
    json_path = project / "out" / f"check-{n}.json"
    md_path = project / "out" / f"check-{n}.md"
    command = [f"--schemasync-cache-dir={cache}", *global_args, "check", "--json",
               str(json_path), *args]
    if markdown:
        command += ["--markdown", str(md_path)]
    proc = run_schemasync(project, *command, env={**os.environ, **(env or {})})
    json_text = json_path.read_text() if json_path.exists() else None
    md_text = md_path.read_text() if md_path.exists() else None
    _no_secrets(proc.stdout, proc.stderr, json_text, md_text)
    run = CliRun(proc.returncode, proc.stdout, proc.stderr,
                 json.loads(json_text) if json_text else None, md_text)
    assert "Traceback" not in run.output, run.output
    return run


def run_pytest(pytester: pytest.Pytester, cache: Path, *args: str,
               **kwargs: float) -> pytest.RunResult:
    result = run_inner(pytester, cache, *args, **kwargs)
    _no_secrets(output_of(result))
    return result


def _files_no_secrets(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            _no_secrets(path.read_text())


def _marker_tests(marker: Path, count: int = 1) -> str:
    """Inner tests that leave a file behind when they run (they must not, on drift)."""
    body = "from pathlib import Path\n\n"
    for i in range(count):
        body += (f"\ndef test_would_run_{i}(db):\n"
                 f"    db.execute(\"INSERT INTO app.users (email) VALUES ('t{i}@x.io')\")\n"
                 f"    Path({str(marker)!r} + '-{i}').write_text('ran')\n")
    return body


def _ran(marker: Path) -> list[Path]:
    return sorted(marker.parent.glob(marker.name + "-*"))


# --- session-scoped servers (one per xdist worker) -------------------------------------------


@pytest.fixture(scope="session")
def prod() -> Iterator[StandinProduction]:
    """The stand-in production, logging every statement it receives."""
    with StandinProduction(log_statements=True, password=PASSWORD) as standin:
        standin.execute("postgres", "CREATE ROLE auditor NOLOGIN")
        with standin.superuser_connect() as conn:  # reading the catalogs needs no grant
            conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                psycopg.sql.Identifier(ODD_READER), psycopg.sql.Literal(ODD_PASSWORD)))
        yield standin


@pytest.fixture(scope="session")
def ssl_prod() -> Iterator[StandinProduction]:
    """A stand-in that accepts only SSL connections (hostssl), with a self-signed cert."""
    assert shutil.which("openssl"), "openssl is needed for the SSL stand-in"
    require_pg("openssl")
    with StandinProduction(ssl=True, password=PASSWORD) as standin:
        yield standin


@pytest.fixture(scope="session")
def shared_cache() -> Iterator[Path]:
    """One cache directory per worker: the embedded cluster and templates are kept across
    the module's runs (each run still starts and stops the server itself)."""
    with scratch_cache_dir("schemasync-check-") as path:
        yield path


@pytest.fixture(scope="session")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_project(tmp_path_factory.mktemp("cli-project"), RICH_SETS, _project_files(),
                          RICH_TOOL)


@pytest.fixture(scope="session")
def rich_db(prod: StandinProduction) -> str:
    """A production database identical to the bundled files (never changed by any test)."""
    require_pg(*extensions_in(RICH_SQL))
    name = _dbname("clean")
    prod.create_database(name, [CASES / "rich_schema.sql"])
    return name


def new_production(prod: StandinProduction, prefix: str, drift: str | None = None,
                   files: tuple[Path, ...] = (CASES / "rich_schema.sql",)) -> str:
    require_pg(*(e for f in files for e in extensions_in(f.read_text())),
               *extensions_in(drift or ""))
    name = _dbname(prefix)
    prod.create_database(name, list(files))
    if drift:
        prod.execute(name, drift)
    return name


# --- 1. the drift pipeline, one drift at a time ----------------------------------------------


@dataclass(frozen=True)
class Scenario:
    id: str
    sql: str  # applied to production (as a superuser, like a hand-made hotfix)
    expected: frozenset[tuple[str, str, str]]  # (kind, identity, change), exactly
    shows: str  # text only production shows ("-text": only the bundled side shows)


def case(id: str, sql: str, shows: str, *expected: tuple[str, str, str]) -> Scenario:
    return Scenario(id, sql, frozenset(expected), shows)


SCENARIOS = [
    case("table-added", "CREATE TABLE app.labels (id integer PRIMARY KEY, name text NOT NULL)",
         "CONSTRAINT labels_pkey PRIMARY KEY (id)", ("table", "app.labels", "missing")),
    case("table-dropped", "DROP TABLE app.settings", "-value jsonb",
         ("table", "app.settings", "extra")),
    case("column-added", "ALTER TABLE app.users ADD COLUMN phone text", "phone text",
         ("column", "app.users.phone", "missing")),
    case("column-dropped", "ALTER TABLE app.users DROP COLUMN is_admin", "-is_admin boolean",
         ("column", "app.users.is_admin", "extra")),
    case("column-retyped", "ALTER TABLE app.projects ALTER COLUMN name TYPE varchar(120)",
         "name character varying(120)", ("column", "app.projects.name", "changed")),
    case("column-collation",
         'ALTER TABLE app.settings ALTER COLUMN note TYPE text COLLATE "POSIX"',
         'COLLATE "POSIX"', ("column", "app.settings.note", "changed")),
    case("default-set", "ALTER TABLE app.projects ALTER COLUMN budget SET DEFAULT 0",
         "DEFAULT 0", ("column", "app.projects.budget", "changed")),
    case("default-dropped", "ALTER TABLE app.users ALTER COLUMN created_at DROP DEFAULT",
         "-DEFAULT now()", ("column", "app.users.created_at", "changed")),
    case("not-null-set", "ALTER TABLE app.users ALTER COLUMN display_name SET NOT NULL",
         "NOT NULL", ("column", "app.users.display_name", "changed")),
    case("not-null-dropped", "ALTER TABLE app.tasks ALTER COLUMN title DROP NOT NULL",
         "-NOT NULL", ("column", "app.tasks.title", "changed")),
    case("check-changed", "ALTER TABLE app.users DROP CONSTRAINT users_email_check, "
         "ADD CONSTRAINT users_email_check CHECK (email LIKE '%@%')",
         "~~ '%@%'", ("constraint", "app.users.users_email_check", "changed")),
    case("check-added", "ALTER TABLE app.projects ADD CONSTRAINT projects_budget_check "
         "CHECK (budget >= 0)", "CHECK ((budget >= (0)::numeric))",
         ("constraint", "app.projects.projects_budget_check", "missing")),
    case("unique-dropped", "ALTER TABLE app.users DROP CONSTRAINT users_email_key",
         "-UNIQUE (email)", ("constraint", "app.users.users_email_key", "extra")),
    case("unique-added", "ALTER TABLE app.projects ADD CONSTRAINT projects_name_key "
         "UNIQUE (owner_id, name)", "UNIQUE (owner_id, name)",
         ("constraint", "app.projects.projects_name_key", "missing")),
    case("fk-on-delete", "ALTER TABLE app.projects DROP CONSTRAINT projects_owner_id_fkey, "
         "ADD CONSTRAINT projects_owner_id_fkey FOREIGN KEY (owner_id) "
         "REFERENCES app.users (id) ON DELETE RESTRICT", "ON DELETE RESTRICT",
         ("constraint", "app.projects.projects_owner_id_fkey", "changed")),
    case("index-added", "CREATE INDEX tasks_title_idx ON app.tasks (title)",
         "CREATE INDEX tasks_title_idx ON app.tasks USING btree (title)",
         ("index", "app.tasks_title_idx", "missing")),
    case("index-dropped", "DROP INDEX app.users_name_idx", "-lower(display_name)",
         ("index", "app.users_name_idx", "extra")),
    case("index-predicate", "DROP INDEX app.tasks_open_idx; CREATE INDEX tasks_open_idx "
         "ON app.tasks (project_id) WHERE state = 'todo'", "WHERE (state = 'todo'",
         ("index", "app.tasks_open_idx", "changed")),
    case("view-changed", "CREATE OR REPLACE VIEW app.open_tasks AS "
         "SELECT id, project_id, title FROM app.tasks WHERE state = 'todo'",
         # "tasks.state" up to 15, "state" from 16 (single-relation views lost the prefix).
         "state = 'todo'", ("view", "app.open_tasks", "changed")),
    case("view-dropped", "DROP VIEW app.open_tasks", "-VIEW app.open_tasks",
         ("view", "app.open_tasks", "extra")),
    case("matview-changed", "DROP MATERIALIZED VIEW app.project_counts; "
         "CREATE MATERIALIZED VIEW app.project_counts AS SELECT project_id, count(*) AS n "
         "FROM app.tasks WHERE state <> 'done' GROUP BY project_id",
         "state <> 'done'",
         ("materialized view", "app.project_counts", "changed")),
    case("matview-dropped", "DROP MATERIALIZED VIEW app.project_counts",
         "-MATERIALIZED VIEW app.project_counts",
         ("materialized view", "app.project_counts", "extra")),
    case("function-body", "CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger "
         "LANGUAGE plpgsql AS $$\nBEGIN\n    NEW.updated_at := clock_timestamp();\n"
         "    RETURN NEW;\nEND\n$$", "clock_timestamp()", ("function", "app.touch()", "changed")),
    case("function-volatility", "ALTER FUNCTION app.task_count(integer) IMMUTABLE",
         "IMMUTABLE", ("function", "app.task_count(p_project integer)", "changed")),
    case("function-search-path",
         "ALTER FUNCTION app.task_count(integer) SET search_path = public",
         "SET search_path TO 'public'",
         ("function", "app.task_count(p_project integer)", "changed")),
    case("function-overload", "CREATE FUNCTION app.task_count(p_project integer, "
         "p_state app.task_state) RETURNS bigint LANGUAGE sql STABLE AS "
         "$$ SELECT count(*) FROM app.tasks WHERE project_id = p_project AND state = p_state $$",
         "p_state app.task_state",
         ("function", "app.task_count(p_project integer, p_state app.task_state)", "missing")),
    case("begin-atomic", "CREATE OR REPLACE FUNCTION app.add(a integer, b integer) "
         "RETURNS integer LANGUAGE sql IMMUTABLE BEGIN ATOMIC SELECT a + b + 1; END",
         "+ 1)", ("function", "app.add(a integer, b integer)", "changed")),
    case("enum-value-added", "ALTER TYPE app.task_state ADD VALUE 'blocked' AFTER 'doing'",
         "'blocked'", ("enum", "app.task_state", "changed")),
    case("sequence-increment", "ALTER SEQUENCE app.ticket_seq INCREMENT BY 10",
         "INCREMENT BY 10", ("sequence", "app.ticket_seq", "changed")),
    case("trigger-disabled", "ALTER TABLE app.tasks DISABLE TRIGGER tasks_touch", "DISABLED",
         ("trigger", "app.tasks_touch ON app.tasks", "changed")),
    case("trigger-retimed", "DROP TRIGGER tasks_touch ON app.tasks; CREATE TRIGGER "
         "tasks_touch BEFORE INSERT OR UPDATE ON app.tasks FOR EACH ROW "
         "EXECUTE FUNCTION app.touch()", "BEFORE INSERT OR UPDATE",
         ("trigger", "app.tasks_touch ON app.tasks", "changed")),
    case("policy-changed", "ALTER POLICY projects_owner ON app.projects USING (true)",
         "USING (true)", ("policy", "app.projects_owner ON app.projects", "changed")),
    case("policy-added", "CREATE POLICY projects_read ON app.projects FOR SELECT "
         "TO auditor USING (true)", "TO auditor",
         ("policy", "app.projects_read ON app.projects", "missing")),
    case("rls-disabled", "ALTER TABLE app.projects DISABLE ROW LEVEL SECURITY",
         "ROW LEVEL SECURITY DISABLED", ("table", "app.projects", "changed")),
    case("extension-added", "CREATE EXTENSION pg_trgm", "EXTENSION pg_trgm",
         ("extension", "pg_trgm", "missing")),
    case("extension-version", "DROP EXTENSION hstore; "
         "CREATE EXTENSION hstore VERSION '1.4' SCHEMA public", "VERSION '1.4'",
         ("extension", "hstore", "changed")),
    case("schema-added", "CREATE SCHEMA reporting", "SCHEMA reporting",
         ("schema", "reporting", "missing")),
    # Looks like an ephemeral schema but does not match exclude-schemas = ["staging_*"].
    case("schema-not-excluded", "CREATE SCHEMA stage_20260101; "
         "CREATE TABLE stage_20260101.trails (id integer)", "SCHEMA stage_20260101",
         ("schema", "stage_20260101", "missing"),
         ("table", "stage_20260101.trails", "missing")),
]


def test_scenarios_cover_the_list() -> None:
    ids = {s.id for s in SCENARIOS}
    assert len(ids) == len(SCENARIOS) >= 30
    kinds = {kind for s in SCENARIOS for kind, _, _ in s.expected}
    assert kinds >= {"schema", "extension", "enum", "sequence", "table", "column", "constraint",
                     "index", "view", "materialized view", "function", "trigger", "policy"}


def _assert_shows(diff: Mapping[str, Any], shows: str) -> None:
    bundled, production = diff["bundled"] or "", diff["production"] or ""
    if shows.startswith("-"):
        assert shows[1:] in bundled and shows[1:] not in production, (shows, diff)
    else:
        assert shows in production and shows not in bundled, (shows, diff)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_cli_reports_each_drift(scenario: Scenario, prod: StandinProduction, cli_project: Path,
                                shared_cache: Path) -> None:
    name = new_production(prod, "drift", scenario.sql)
    run = run_cli(cli_project, shared_cache, {ENV: prod.url(name)})
    assert run.ret == DRIFT, run.output
    assert run.json is not None and run.json["drift"] is True
    assert run.found() == scenario.expected, run.output
    main = min(scenario.expected)
    [diff] = [d for d in run.differences() if (d["kind"], d["identity"], d["change"]) == main]
    _assert_shows(diff, scenario.shows)
    counts: dict[str, dict[str, int]] = {}
    for kind, _, change in scenario.expected:
        counts.setdefault(kind, {"missing": 0, "extra": 0, "changed": 0})[change] += 1
    assert run.json["sets"]["rich"]["summary"] == counts
    # The terminal report names the object, with a diff labelled bundled / production.
    for kind, identity, change in scenario.expected:
        assert f"{change} {kind} {identity}" in run.out
    assert "--- bundled" in run.out and "+++ production" in run.out
    assert run.out.startswith("schema check 'rich': DRIFT")
    assert f"at postgresql://{READER}:****@127.0.0.1:" in run.out
    assert "schemasync refresh --set rich" in run.out
    assert run.markdown is not None and "```diff" in run.markdown


# --- through pytest itself: the check at session start ---------------------------------------


def _pytest_project(pytester: pytest.Pytester, marker: Path, count: int = 1) -> None:
    make_project(pytester, sets=RICH_SETS, tool=RICH_TOOL, files=_project_files())
    pytester.makepyfile(test_inner=_marker_tests(marker, count))


HEADER = re.compile(
    r"^schemasync: schema check 'rich': no drift against production PostgreSQL \d+\.\d+ at "
    rf"postgresql://{READER}:\*\*\*\*@127\.0\.0\.1:\d+/(?P<db>\w+)\?sslmode=disable "
    r"\(\d+\.\d\ds\)$"
)


def test_pytest_clean_production_runs_the_tests(pytester: pytest.Pytester,
                                                prod: StandinProduction, rich_db: str,
                                                shared_cache: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    marker = pytester.path / "ran"
    _pytest_project(pytester, marker)
    monkeypatch.setenv(ENV, prod.url(rich_db))
    result = run_pytest(pytester, shared_cache, "--schema-check")
    out = output_of(result)
    assert result.ret == 0, out
    headers = [line for line in result.outlines if HEADER.match(line)]
    assert len(headers) == 1, out
    assert HEADER.match(headers[0])["db"] == rich_db  # type: ignore[index]
    result.assert_outcomes(passed=1)
    assert len(_ran(marker)) == 1
    assert "schema drift" not in out


PYTEST_DRIFTS = {s.id: s for s in SCENARIOS
                 if s.id in ("column-added", "function-body", "policy-changed")}


@pytest.mark.parametrize("scenario_id", sorted(PYTEST_DRIFTS))
def test_pytest_drift_stops_before_any_test(scenario_id: str, pytester: pytest.Pytester,
                                            prod: StandinProduction, shared_cache: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = PYTEST_DRIFTS[scenario_id]
    marker = pytester.path / "ran"
    _pytest_project(pytester, marker)
    name = new_production(prod, "pdrift", scenario.sql)
    monkeypatch.setenv(ENV, prod.url(name))
    json_out, md_out = pytester.path / "report" / "check.json", pytester.path / "check.md"
    result = run_pytest(pytester, shared_cache, "--schema-check",
                        f"--schemasync-check-json={json_out}",
                        f"--schemasync-check-markdown={md_out}")
    out = output_of(result)
    assert result.ret == DRIFT, out
    assert _ran(marker) == []
    assert "Traceback" not in out
    assert "passed" not in out and "failed" not in out
    assert "no tests were run" in out
    # The report: production version and masked target, files, exclusions, summary table,
    # one unified diff per object, and the refresh command.
    assert "schema drift: set 'rich'" in out
    assert re.search(r"schemasync: schema check 'rich': DRIFT \(1 object difference\) against "
                     r"production PostgreSQL \d+\.\d+ at postgresql://app_reader:\*\*\*\*@", out)
    assert re.search(r"production\s+PostgreSQL \d+\.\d+ at postgresql://app_reader:\*\*\*\*@"
                     rf"127\.0\.0\.1:\d+/{name}\?sslmode=disable \(from env {ENV}; read-only\)",
                     out), out
    assert "scratch database built from: db/schema.sql" in out
    assert re.search(r"excluded schemas\s+staging_\*", out)
    assert re.search(r"kind\s+missing\s+extra\s+changed", out)
    [(kind, identity, change)] = scenario.expected
    counts = {"missing": 0, "extra": 0, "changed": 0, change: 1}
    assert re.search(rf"{kind}\s+{counts['missing']}\s+{counts['extra']}\s+"
                     rf"{counts['changed']}", out), out
    assert re.search(r"total\s+\d+\s+\d+\s+\d+", out)
    assert f"{change} {kind} {identity}" in out
    assert "--- bundled" in out and "+++ production" in out
    assert scenario.shows in out
    assert "pytest --refresh-schema" in out and "schemasync refresh --set rich" in out
    # The same result as files.
    _files_no_secrets(json_out, md_out)
    payload = json.loads(json_out.read_text())
    assert payload["drift"] is True
    rich = payload["sets"]["rich"]
    assert rich["drift"] is True
    assert rich["summary"] == {kind: counts}
    assert [(d["kind"], d["identity"], d["change"]) for d in rich["differences"]] == [
        (kind, identity, change)]
    assert set(rich) >= {"summary", "differences", "header", "warnings", "production_version"}
    markdown = md_out.read_text()
    assert markdown.startswith("## Schema set `rich`")
    assert "| kind | missing | extra | changed |" in markdown
    assert f"| {kind} | {counts['missing']} | {counts['extra']} | {counts['changed']} |" \
        in markdown
    assert "```diff\n--- bundled\n+++ production\n" in markdown
    assert f"<summary>{change} {kind} `{identity}`</summary>" in markdown
    assert "pytest --refresh-schema" in markdown


# --- 2. what is not drift --------------------------------------------------------------------


NOT_DRIFT = {
    "identical": "",
    "excluded-staging-schemas": (
        "CREATE SCHEMA staging_20260101_120000; "
        "CREATE TABLE staging_20260101_120000.trails (id integer PRIMARY KEY, name text); "
        "CREATE SCHEMA staging_20260102_080000; "
        "CREATE TABLE staging_20260102_080000.segments (id integer, geom text); "
        "CREATE FUNCTION staging_20260102_080000.f() RETURNS int LANGUAGE sql AS 'SELECT 1'"
    ),
    "grants-and-owners": (
        "GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA app TO auditor; "
        "GRANT USAGE ON SCHEMA app TO auditor; "
        "GRANT EXECUTE ON FUNCTION app.task_count(integer) TO auditor; "
        "REVOKE EXECUTE ON FUNCTION app.add(integer, integer) FROM PUBLIC; "
        "ALTER TABLE app.users OWNER TO auditor; "
        "ALTER FUNCTION app.touch() OWNER TO auditor; "
        "ALTER SCHEMA app OWNER TO auditor; "
        "ALTER TYPE app.task_state OWNER TO auditor; "
        "ALTER SEQUENCE app.ticket_seq OWNER TO auditor"
    ),
    "column-order": (
        # value goes from the middle to the end of app.settings
        "ALTER TABLE app.settings DROP COLUMN value; "
        "ALTER TABLE app.settings ADD COLUMN value jsonb"
    ),
}


@pytest.mark.parametrize("scenario_id", sorted(NOT_DRIFT))
def test_cli_not_drift(scenario_id: str, prod: StandinProduction, cli_project: Path,
                       shared_cache: Path) -> None:
    name = new_production(prod, "nodrift", NOT_DRIFT[scenario_id])
    run = run_cli(cli_project, shared_cache, {ENV: prod.url(name)})
    assert run.ret == 0, run.output
    assert run.json is not None and run.json["drift"] is False
    assert run.differences() == []
    assert run.out.startswith("schema check 'rich': no drift against production")
    header = run.json["sets"]["rich"]["header"]
    warnings = run.json["sets"]["rich"]["warnings"]
    if scenario_id == "column-order":
        assert len(warnings) == 1 and "Column order of table app.settings differs" in warnings[0]
        assert "bundled: key, value, note; production: key, note, value" in warnings[0]
        # Not drift, but the user sees it: on the terminal and in the Markdown summary.
        assert "Column order of table app.settings differs" in run.out
        assert "Column order of table app.settings differs" in (run.markdown or "")
    else:
        assert warnings == []
    if scenario_id == "excluded-staging-schemas":
        assert header["skipped in production"] == ("staging_20260101_120000, "
                                                   "staging_20260102_080000")
        assert "trails" not in run.output


def test_pytest_column_order_is_a_warning(pytester: pytest.Pytester, prod: StandinProduction,
                                          shared_cache: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    marker = pytester.path / "ran"
    _pytest_project(pytester, marker)
    name = new_production(prod, "colorder", NOT_DRIFT["column-order"])
    monkeypatch.setenv(ENV, prod.url(name))
    result = run_pytest(pytester, shared_cache, "--schema-check")
    out = output_of(result)
    assert result.ret == 0, out
    result.assert_outcomes(passed=1)
    assert "schema check 'rich': no drift" in out
    assert "Column order of table app.settings differs" in out


def test_postgis_objects_are_not_reported(prod: StandinProduction,
                                          tmp_path_factory: pytest.TempPathFactory,
                                          shared_cache: Path) -> None:
    """PostGIS on both sides installs ~1000 functions, types and a table; only the extension
    (and its version) is compared. A real drift next to it is still found."""
    project = _write_project(tmp_path_factory.mktemp("geo"),
                             {"geo": {"files": ["db/geo.sql"], "production-url-env": "GEO_URL"}},
                             {"db/geo.sql": POSTGIS_SQL})
    geo = project / "db" / "geo.sql"
    clean = new_production(prod, "geo", files=(geo,))
    run = run_cli(project, shared_cache, {"GEO_URL": prod.url(clean)})
    assert run.ret == 0, run.output
    assert run.json is not None and run.differences("geo") == []
    with prod.superuser_connect(clean) as conn:
        members = conn.execute("SELECT count(*) FROM pg_depend WHERE deptype = 'e' AND "
                               "refobjid = (SELECT oid FROM pg_extension "
                               "WHERE extname = 'postgis')").fetchone()
    assert members is not None and members[0] > 500  # PostGIS really is there

    drifted = new_production(prod, "geo", "ALTER TABLE public.places ADD COLUMN area "
                             "public.geometry(Polygon, 4326)", files=(geo,))
    run = run_cli(project, shared_cache, {"GEO_URL": prod.url(drifted)})
    assert run.ret == DRIFT, run.output
    assert run.found("geo") == {("column", "public.places.area", "missing")}
    assert "geometry(Polygon,4326)" in run.differences("geo")[0]["production"]


# --- 3. read-only ----------------------------------------------------------------------------

_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[(?P<pid>\d+)\] "
                    r"(?P<who>\S*) (?P<level>[A-Z0-9]+):  (?P<msg>.*)$")
_STATEMENT = re.compile(r"^(?:statement|execute [^:]+): (?P<sql>.*)$", re.S)


def log_entries(text: str) -> list[dict[str, str]]:
    """Entries of the stand-in's log (prefix '%m [%p] %u@%d '), continuation lines joined."""
    entries: list[dict[str, str]] = []
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match:
            entries.append(match.groupdict())
        elif entries:
            entries[-1]["msg"] += "\n" + line
    return entries


def statements_of(entries: list[dict[str, str]], who: str) -> list[tuple[str, str]]:
    """(pid, statement) for every statement logged for ``who`` (user@database)."""
    found = []
    for entry in entries:
        if entry["who"] == who and entry["level"] == "LOG":
            match = _STATEMENT.match(entry["msg"])
            if match:
                found.append((entry["pid"], match["sql"].strip()))
    return found


def _state(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything a write would change: the full catalog (owners and grants included), the
    row count of every table, and the objects in pg_class."""
    tables = [r[0] for r in conn.execute(
        "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1")]
    return {
        "snapshot": snapshot(conn, CatalogOptions(include_owners=True, include_grants=True,
                                                  include_extension_members=True)).objects,
        "rows": {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone() for t in tables},
        "classes": conn.execute("SELECT count(*), max(oid::bigint) FROM pg_class").fetchone(),
    }


_READ_ONLY_STATEMENT = re.compile(r"^(SELECT|SHOW|SET LOCAL|BEGIN|ROLLBACK)\b", re.I)
_WRITE_WORDS = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER|DROP|TRUNCATE|GRANT|REVOKE|COPY|LOCK|"
    r"VACUUM|ANALYZE|REFRESH|CLUSTER|REINDEX|CALL|DO|NOTIFY|PREPARE TRANSACTION|"
    r"nextval|setval|pg_advisory\w*|lo_\w+|pg_terminate_backend|pg_cancel_backend|"
    r"set_config|pg_reload_conf)\b", re.I)


def test_check_is_read_only(prod: StandinProduction, cli_project: Path,
                            shared_cache: Path) -> None:
    name = new_production(prod, "ro", "ALTER TABLE app.users ADD COLUMN phone text")
    prod.execute(name, """
        INSERT INTO app.users (email, display_name) VALUES ('a@x.io', 'A'), ('b@x.io', 'B');
        INSERT INTO app.projects (owner_id, name) SELECT id, 'p-' || email FROM app.users;
        INSERT INTO app.tasks (project_id, title) SELECT id, 'task' FROM app.projects;
        INSERT INTO app.settings VALUES ('k', '{"a": 1}', 'note');
        REFRESH MATERIALIZED VIEW app.project_counts;
    """)
    # The reader role has read rights only: it cannot write through its own URL either.
    with psycopg.connect(prod.url(name), autocommit=True) as reader:
        assert reader.execute("SELECT count(*) FROM app.users").fetchone() == (2,)
        for write in ("INSERT INTO app.users (email) VALUES ('c@x.io')",
                      "UPDATE app.settings SET note = 'x'",
                      "CREATE TABLE app.intruder (id int)",
                      "CREATE TABLE public.intruder (id int)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(write)
    with prod.superuser_connect(name) as conn:
        before = _state(conn)
        xid_before = conn.execute("SELECT txid_current()").fetchone()
    log_start = len(prod.log_text())

    run = run_cli(cli_project, shared_cache, {ENV: prod.url(name)})
    assert run.ret == DRIFT, run.output
    assert run.found() == {("column", "app.users.phone", "missing")}

    with prod.superuser_connect(name) as conn:
        # No transaction id was used by anyone in between: nothing was written anywhere on
        # the server (our own txid_current() calls take one each).
        xid_after = conn.execute("SELECT txid_current()").fetchone()
        assert xid_before is not None and xid_after == (xid_before[0] + 1,)
        assert _state(conn) == before

    entries = log_entries(prod.log_text()[log_start:])
    who = f"{READER}@{name}"
    statements = statements_of(entries, who)
    sessions = sorted({pid for pid, _ in statements})
    assert len(sessions) == 1, statements  # one read-only connection per set
    assert len(statements) > 10
    assert not [e for e in entries if e["who"] == who and e["level"] in ("ERROR", "FATAL")]
    assert statements[0][1] == "SHOW default_transaction_read_only", statements[:3]
    for _, sql in statements:  # no COMMIT either: every transaction is rolled back
        assert _READ_ONLY_STATEMENT.match(sql), f"not a read-only statement: {sql}"
        assert not _WRITE_WORDS.search(sql), f"looks like a write: {sql}"
    assert "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" in [s for _, s in statements]
    assert "SET LOCAL search_path = ''" in [s for _, s in statements]
    assert statements[-1][1] == "ROLLBACK"


def test_readonly_connection_refuses_writes_even_for_a_superuser(prod: StandinProduction,
                                                                 rich_db: str) -> None:
    """The connection the check uses is read-only by session default, whoever connects:
    here the owner role, a superuser."""
    target = ProductionTarget(prod.info(rich_db, OWNER), "test")
    with connect_readonly(target, 5) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SELECT current_setting('application_name')").fetchone() == (
            "pytest-schemasync (read-only)",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO app.users (email) VALUES ('x@y.io')")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE t (id int)")


# --- 4. SSL ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ssl_db(ssl_prod: StandinProduction) -> str:
    name = _dbname("ssl")
    ssl_prod.create_database(name, [CASES / "rich_schema.sql"])
    return name


@pytest.mark.parametrize("sslmode", ["require", "verify-full"])
def test_ssl_modes_are_honoured(sslmode: str, ssl_prod: StandinProduction, ssl_db: str,
                                cli_project: Path, shared_cache: Path) -> None:
    url = ssl_prod.url(ssl_db, sslmode=sslmode)
    if sslmode == "verify-full":
        assert ssl_prod.ca_file is not None
        url += f"&sslrootcert={ssl_prod.ca_file}"
    run = run_cli(cli_project, shared_cache, {ENV: url})
    assert run.ret == 0, run.output
    assert f"sslmode={sslmode}" in run.out
    with psycopg.connect(url) as conn:  # and the connection really is encrypted
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True,)


def test_ssl_from_a_dotenv_file(ssl_prod: StandinProduction, ssl_db: str,
                                tmp_path_factory: pytest.TempPathFactory,
                                shared_cache: Path) -> None:
    """DB_SSL_MODE and DB_SSL_ROOT_CERT of .env.production reach libpq."""
    assert ssl_prod.ca_file is not None
    project = _write_project(
        tmp_path_factory.mktemp("ssl-dotenv"),
        {"rich": {"files": ["db/schema.sql"], "production-dotenv": ".env.production"}},
        {**_project_files(),
         ".env.production": (f"DB_HOST=127.0.0.1\nDB_PORT={ssl_prod.info(ssl_db).port}\n"
                             f"DB_NAME={ssl_db}\nDB_USER={READER}\nDB_PASSWORD={PASSWORD}\n"
                             f"DB_SSL_MODE=verify-full\nDB_SSL_ROOT_CERT={ssl_prod.ca_file}\n")})
    run = run_cli(project, shared_cache)
    assert run.ret == 0, run.output
    assert run.json is not None
    production = run.json["sets"]["rich"]["header"]["production"]
    assert "sslmode=verify-full" in production and "(from file .env.production" in production


def test_ssl_refusals_exit_11(ssl_prod: StandinProduction, ssl_db: str, prod: StandinProduction,
                              rich_db: str, cli_project: Path, shared_cache: Path) -> None:
    # A hostssl-only server and a client that will not use SSL.
    run = run_cli(cli_project, shared_cache, {ENV: ssl_prod.url(ssl_db, sslmode="disable")})
    assert run.ret == UNREACHABLE, run.output
    _one_paragraph(run.err)
    assert run.json is None
    assert f"Cannot reach production at postgresql://{READER}:****@127.0.0.1:" in run.err
    # (The database's name starts with "ssl": the classification must not be fooled by it.)
    assert ssl_db.startswith("ssl_")
    assert ("the server refused a connection without SSL from this host for this user and "
            "database (pg_hba.conf); it probably accepts SSL connections only; connect with "
            "sslmode=require") in run.err
    assert "no pg_hba.conf entry" in run.err and "no encryption" in run.err
    # A server without SSL and a client that requires it.
    run = run_cli(cli_project, shared_cache, {ENV: prod.url(rich_db, sslmode="require")})
    assert run.ret == UNREACHABLE, run.output
    _one_paragraph(run.err)
    assert "the SSL negotiation failed" in run.err
    assert "server does not support SSL" in run.err
    # verify-full with a CA that did not sign the server's certificate.
    assert prod.ca_file is None and ssl_prod.ca_file is not None
    other_ca = cli_project / "other-ca.crt"
    subprocess.run(["openssl", "req", "-new", "-x509", "-days", "1", "-nodes", "-subj",
                    "/CN=other", "-keyout", str(cli_project / "other-ca.key"),
                    "-out", str(other_ca)], check=True, capture_output=True)
    url = ssl_prod.url(ssl_db, sslmode="verify-full") + f"&sslrootcert={other_ca}"
    run = run_cli(cli_project, shared_cache, {ENV: url})
    assert run.ret == UNREACHABLE, run.output
    _one_paragraph(run.err)
    assert "the SSL negotiation failed" in run.err
    assert "certificate verify failed" in run.err
    # verify-full with no CA file at all (libpq looks for ~/.postgresql/root.crt).
    home = cli_project / "empty-home"
    home.mkdir(exist_ok=True)
    run = run_cli(cli_project, shared_cache,
                  {ENV: ssl_prod.url(ssl_db, sslmode="verify-full"), "HOME": str(home)})
    assert run.ret == UNREACHABLE, run.output
    _one_paragraph(run.err)
    assert "the SSL negotiation failed" in run.err
    assert "root certificate file" in run.err


# --- 5. errors: unreachable, credentials, missing database, the scratch server itself ---------


def _one_paragraph(text: str) -> str:
    """The error: no traceback, one paragraph (no blank line inside it)."""
    body = text.strip()
    assert body, "no error message"
    assert "Traceback" not in body
    assert "\n\n" not in body, body
    return body


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose TCP handshake succeeds but which never says a word (a hung server or a
    firewall that swallows packets after the SYN)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("problem", ["closed-port", "silent-port", "wrong-password",
                                     "missing-database"])
def test_pytest_production_errors_exit_11(problem: str, pytester: pytest.Pytester,
                                          prod: StandinProduction, rich_db: str,
                                          shared_cache: Path, silent_port: int,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    marker = pytester.path / "ran"
    _pytest_project(pytester, marker)
    port = prod.info(rich_db).port
    url, expected = {
        "closed-port": (f"postgresql://{READER}:{PASSWORD}@127.0.0.1:{_closed_port()}/"
                        f"{rich_db}?sslmode=disable", "the server is unreachable"),
        "silent-port": (f"postgresql://{READER}:{PASSWORD}@127.0.0.1:{silent_port}/"
                        f"{rich_db}?sslmode=disable", "no answer within 2s"),
        "wrong-password": (f"postgresql://{READER}:{WRONG_PASSWORD}@127.0.0.1:{port}/"
                           f"{rich_db}?sslmode=disable",
                           "the server refused the credentials (wrong user or password)"),
        "missing-database": (f"postgresql://{READER}:{PASSWORD}@127.0.0.1:{port}/nosuchdb"
                             f"?sslmode=disable",
                             "database 'nosuchdb' does not exist on that server"),
    }[problem]
    monkeypatch.setenv(ENV, url)
    # The message names the 2 s limit; the run's own timeout only guards against a hang.
    result = run_pytest(pytester, shared_cache, "--schema-check",
                        "--schemasync-connect-timeout=2", timeout=120)
    out = output_of(result)
    assert result.ret == UNREACHABLE, out
    assert _ran(marker) == []
    assert "Traceback" not in out
    # pytest prints an exit message twice (stdout "! _pytest.outcomes.Exit: ... !" and
    # stderr "Exit: ..."): one message, one line.
    messages = {re.sub(r"^(! _pytest\.outcomes\.Exit|Exit): | !$", "", line)
                for line in [*result.outlines, *result.errlines]
                if "Cannot reach production" in line}
    assert len(messages) == 1, out
    [message] = messages
    assert message.startswith(f"schemasync: Cannot reach production at postgresql://{READER}:"
                              f"****@127.0.0.1:"), message
    assert f"(from env {ENV})" in message
    assert expected in message, message


def test_cli_production_errors_exit_11(prod: StandinProduction, rich_db: str, cli_project: Path,
                                       shared_cache: Path) -> None:
    port = prod.info(rich_db).port
    for url, expected in [
        (f"postgresql://{READER}:{PASSWORD}@127.0.0.1:{_closed_port()}/x?sslmode=disable",
         "the server is unreachable"),
        (f"postgresql://{READER}:{WRONG_PASSWORD}@127.0.0.1:{port}/{rich_db}?sslmode=disable",
         "refused the credentials"),
        (f"postgresql://nosuchrole:{PASSWORD}@127.0.0.1:{port}/{rich_db}?sslmode=disable",
         "refused the credentials"),
        (f"postgresql://{READER}:{PASSWORD}@127.0.0.1:{port}/nosuchdb?sslmode=disable",
         "does not exist"),
    ]:
        run = run_cli(cli_project, shared_cache, {ENV: url},
                      global_args=("--schemasync-connect-timeout=2",))
        assert run.ret == UNREACHABLE, run.output
        assert run.out == "" and run.json is None and run.markdown is None
        body = _one_paragraph(run.err)
        assert body.startswith("schemasync: error: Cannot reach production at postgresql://")
        assert ":****@127.0.0.1:" in body and expected in body, body


def test_locked_production_fails_with_exit_11(prod: StandinProduction, cli_project: Path,
                                              shared_cache: Path) -> None:
    """A migration holding a lock in production does not hang the check: it gives up after
    its lock timeout with a message that says so."""
    name = new_production(prod, "locked")
    with prod.superuser_connect(name) as conn:
        conn.execute("BEGIN")
        conn.execute("LOCK TABLE app.open_tasks IN ACCESS EXCLUSIVE MODE")
        run = run_cli(cli_project, shared_cache, {ENV: prod.url(name)})
        conn.execute("ROLLBACK")
    assert run.ret == UNREACHABLE, run.output
    body = _one_paragraph(run.err)
    assert body.startswith(f"schemasync: error: Reading the catalog of production at "
                           f"postgresql://{READER}:****@127.0.0.1:"), body
    assert "canceling statement due to lock timeout" in body
    assert "a migration running in production" in body


@pytest.mark.parametrize("port", ["notaport", "5432,5433"])
def test_malformed_production_url_is_a_usage_error(port: str, cli_project: Path,
                                                   shared_cache: Path) -> None:
    url = f"postgresql://{READER}:{PASSWORD}@127.0.0.1:{port}/db"
    run = run_cli(cli_project, shared_cache, {ENV: url})
    assert run.ret == USAGE, run.output
    message = _one_paragraph(run.err)
    assert "invalid port" in message or "names several hosts" in message, message


def test_production_on_the_scratch_server_is_refused(pytester: pytest.Pytester,
                                                     prod: StandinProduction, rich_db: str,
                                                     shared_cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' own server given as production (two URLs, one server): exit 4."""
    marker = pytester.path / "ran"
    _pytest_project(pytester, marker)
    monkeypatch.setenv(ENV, prod.url(rich_db))
    scratch = prod.url("postgres", OWNER)
    result = run_pytest(pytester, shared_cache, "--schema-check",
                        f"--schemasync-server-url={scratch}")
    out = output_of(result)
    assert result.ret == USAGE, out
    assert "points at the same PostgreSQL server that holds the scratch test databases" in out
    assert f"postgresql://{READER}:****@127.0.0.1:" in out
    assert "Traceback" not in out
    assert _ran(marker) == []


def test_cli_production_on_the_scratch_server_is_refused(prod: StandinProduction, rich_db: str,
                                                         cli_project: Path,
                                                         shared_cache: Path) -> None:
    """`schemasync check` reads production before the scratch server is up (readahead.py);
    the two servers are still compared before any result is given."""
    scratch = prod.url("postgres", OWNER)
    run = run_cli(cli_project, shared_cache, {ENV: prod.url(rich_db)},
                  global_args=(f"--schemasync-server-url={scratch}",))
    assert run.ret == USAGE, run.output
    assert "points at the same PostgreSQL server that holds the scratch test databases" in \
        run.err, run.err
    assert run.json is None and run.markdown is None
    assert "no drift" not in run.out, run.out


# --- 6. where production is configured -------------------------------------------------------


def test_url_env_beats_set_specific_variable(prod: StandinProduction, rich_db: str,
                                             cli_project: Path, shared_cache: Path) -> None:
    drifted = new_production(prod, "src", "ALTER TABLE app.users ADD COLUMN phone text")
    both = {ENV: prod.url(rich_db), "SCHEMASYNC_PRODUCTION_URL_RICH": prod.url(drifted)}
    run = run_cli(cli_project, shared_cache, both)
    assert run.ret == 0, run.output
    assert run.json is not None
    assert f"/{rich_db}?sslmode=disable (from env {ENV}; read-only)" in \
        run.json["sets"]["rich"]["header"]["production"]
    # Without the set's own variable, SCHEMASYNC_PRODUCTION_URL_<SET> is used.
    run = run_cli(cli_project, shared_cache, {"SCHEMASYNC_PRODUCTION_URL_RICH": prod.url(drifted)})
    assert run.ret == DRIFT, run.output
    assert run.found() == {("column", "app.users.phone", "missing")}
    assert run.json is not None
    assert f"/{drifted}?sslmode=disable (from env SCHEMASYNC_PRODUCTION_URL_RICH; read-only)" \
        in run.json["sets"]["rich"]["header"]["production"]


def test_production_dotenv(pytester: pytest.Pytester, prod: StandinProduction,
                           shared_cache: Path) -> None:
    """The .env.production layout teams keep; here with a password that needs quoting in a
    URL and in a conninfo string (neither form may show up in any output)."""
    name = new_production(prod, "dotenv", "ALTER SEQUENCE app.ticket_seq INCREMENT BY 5")
    marker = pytester.path / "ran"
    make_project(pytester, files={
        **_project_files(),
        ".env.production": (f"# production, read-only role\nDB_HOST=127.0.0.1\n"
                            f"DB_PORT={prod.info(name).port}\nDB_NAME={name}\n"
                            f"DB_USER={ODD_READER}\nDB_PASSWORD=\"{ODD_PASSWORD}\"\n"
                            f"DB_SSL_MODE=disable\n"),
    }, sets={"rich": {"files": ["db/schema.sql"], "production-dotenv": ".env.production"}})
    pytester.makepyfile(test_inner=_marker_tests(marker))
    json_out = pytester.path / "check.json"
    result = run_pytest(pytester, shared_cache, "--schema-check",
                        f"--schemasync-check-json={json_out}")
    out = output_of(result)
    assert result.ret == DRIFT, out
    assert _ran(marker) == []
    assert "changed sequence app.ticket_seq" in out
    _files_no_secrets(json_out)
    header = json.loads(json_out.read_text())["sets"]["rich"]["header"]
    assert re.fullmatch(rf"PostgreSQL \d+\.\d+ at postgresql://{ODD_READER}:\*\*\*\*@127\.0\.0\.1:"
                        rf"\d+/{name}\?sslmode=disable \(from file \.env\.production; "
                        r"read-only\)", header["production"]), header


def test_two_sets_each_with_its_own_production(pytester: pytest.Pytester,
                                               prod: StandinProduction, rich_db: str,
                                               shared_cache: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    small = "CREATE TABLE public.notes (id integer PRIMARY KEY, body text);\n"
    small_file = pytester.path / "small.sql"
    small_file.write_text(small)
    beta = new_production(prod, "beta", "ALTER TABLE public.notes ADD COLUMN tag text",
                          files=(small_file,))
    marker = pytester.path / "ran"
    make_project(pytester, files={**_project_files(), "db/beta.sql": small},
                 sets={"alpha": {"files": ["db/schema.sql"], "production-url-env": "ALPHA_URL"},
                       "beta": {"files": ["db/beta.sql"]}},
                 tool={"default-set": "alpha"})
    pytester.makepyfile(test_inner=_marker_tests(marker))
    monkeypatch.setenv("ALPHA_URL", prod.url(rich_db))
    monkeypatch.setenv("SCHEMASYNC_PRODUCTION_URL_BETA", prod.url(beta))
    json_out, md_out = pytester.path / "check.json", pytester.path / "check.md"
    result = run_pytest(pytester, shared_cache, "--schema-check",
                        f"--schemasync-check-json={json_out}",
                        f"--schemasync-check-markdown={md_out}")
    out = output_of(result)
    assert result.ret == DRIFT, out
    assert _ran(marker) == []
    assert "schema check 'alpha': no drift" in out
    assert "schema check 'beta': DRIFT (1 object difference)" in out
    assert "schema drift: set 'beta'" in out and "schema drift: set 'alpha'" not in out
    assert "missing column public.notes.tag" in out
    assert "the bundled schema of 'beta' differs from production" in out
    _files_no_secrets(json_out, md_out)
    payload = json.loads(json_out.read_text())
    assert payload["drift"] is True
    assert payload["sets"]["alpha"]["drift"] is False
    assert payload["sets"]["alpha"]["header"]["production"].endswith(
        f"/{rich_db}?sslmode=disable (from env ALPHA_URL; read-only)")
    assert payload["sets"]["beta"]["summary"] == {"column": {"missing": 1, "extra": 0,
                                                             "changed": 0}}
    assert "(from env SCHEMASYNC_PRODUCTION_URL_BETA; read-only)" in \
        payload["sets"]["beta"]["header"]["production"]
    markdown = md_out.read_text()
    assert "## Schema set `alpha`" in markdown and "## Schema set `beta`" in markdown
    assert markdown.count("```diff") == 1


def test_schema_check_without_any_production_is_a_usage_error(
        pytester: pytest.Pytester, shared_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("PGHOST", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPORT", ENV):
        monkeypatch.delenv(var, raising=False)
    marker = pytester.path / "ran"
    _pytest_project(pytester, marker)
    result = run_pytest(pytester, shared_cache, "--schema-check")
    out = output_of(result)
    assert result.ret == USAGE, out
    assert "The schema check needs a production database, and no schema set names one" in out
    assert "production-url-env" in out and "SCHEMASYNC_PRODUCTION_URL_<SET>" in out
    assert "Traceback" not in out
    assert _ran(marker) == []


# --- 7. outputs and xdist --------------------------------------------------------------------


def test_xdist_checks_once_in_the_controller(pytester: pytest.Pytester,
                                             prod: StandinProduction, shared_cache: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    marker = pytester.path / "ran"
    _pytest_project(pytester, marker, count=4)
    name = new_production(prod, "xdist")
    monkeypatch.setenv(ENV, prod.url(name))
    log_start = len(prod.log_text())
    result = run_pytest(pytester, shared_cache, "--schema-check", "-n", "2")
    out = output_of(result)
    assert result.ret == 0, out
    result.assert_outcomes(passed=4)
    assert len(_ran(marker)) == 4
    assert out.count("schema check 'rich'") == 1, out
    assert len([line for line in result.outlines if HEADER.match(line)]) == 1
    sessions = {pid for pid, _ in statements_of(log_entries(prod.log_text()[log_start:]),
                                                 f"{READER}@{name}")}
    assert len(sessions) == 1, sessions  # one reader connection: the controller's

    # Drift under xdist still stops the run before any worker runs a test.
    for path in _ran(marker):
        path.unlink()
    prod.execute(name, "ALTER TABLE app.tasks DISABLE TRIGGER tasks_touch")
    json_out = pytester.path / "check.json"
    result = run_pytest(pytester, shared_cache, "--schema-check", "-n", "2",
                        f"--schemasync-check-json={json_out}")
    out = output_of(result)
    assert result.ret == DRIFT, out
    assert _ran(marker) == []
    assert out.count("schema drift: set 'rich'") == 1
    assert "changed trigger app.tasks_touch ON app.tasks" in out
    assert "passed" not in out
    _files_no_secrets(json_out)
    assert json.loads(json_out.read_text())["drift"] is True
