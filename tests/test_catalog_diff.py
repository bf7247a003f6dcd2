"""Catalog snapshots and drift reports, on real PostgreSQL databases (no mocks).

Every scenario builds the base schema (tests/sqlcases/catalog_base.sql) into a fresh
"production" database, applies one drift statement and compares it with the snapshot of the
untouched base: the report must name exactly the drifted object and nothing else.
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import extensions_in, require_pg

from pytest_schemasync.catalog import CatalogOptions, Snapshot, snapshot
from pytest_schemasync.diff import DiffResult, compare, render_markdown, render_text, to_json
from pytest_schemasync.errors import CatalogError

SQL_DIR = Path(__file__).parent / "sqlcases"


def _read_sql(name: str) -> str:
    # newline="" keeps the CRLFs of the reordered file: they are part of what it tests.
    with open(SQL_DIR / name, encoding="utf-8", newline="") as f:
        return f.read()


BASE_SQL = _read_sql("catalog_base.sql")
REORDERED_SQL = _read_sql("catalog_base_reordered.sql")
DEFAULT = CatalogOptions()

Factory = Callable[..., Any]
Key = tuple[str, str, str]


def build(factory: Factory, *scripts: str, options: CatalogOptions = DEFAULT) -> Snapshot:
    """A new database with ``scripts`` applied (autocommit), and its snapshot."""
    require_pg(*(name for script in scripts for name in extensions_in(script)))
    database = factory()
    with database.connect(autocommit=True) as conn:
        for script in scripts:
            conn.execute(script.encode())  # bytes: no placeholder parsing of "%" in bodies
        return snapshot(conn, options)


@pytest.fixture(scope="module")
def snapshot_cache() -> dict[tuple[tuple[str, ...], CatalogOptions], Snapshot]:
    return {}


@pytest.fixture
def cached(schemasync_db_factory: Factory,
           snapshot_cache: dict[tuple[tuple[str, ...], CatalogOptions], Snapshot]
           ) -> Callable[..., Snapshot]:
    """Snapshot of ``scripts`` built once per module: the same SQL gives the same snapshot,
    so tests stay independent while the unchanged side is only built once."""

    def get(*scripts: str, options: CatalogOptions = DEFAULT) -> Snapshot:
        key = (scripts, options)
        if key not in snapshot_cache:
            snapshot_cache[key] = build(schemasync_db_factory, *scripts, options=options)
        return snapshot_cache[key]

    return get


def found(result: DiffResult) -> set[Key]:
    return {(d.kind, d.identity, d.change) for d in result.differences}


_MIRROR = {"missing": "extra", "extra": "missing", "changed": "changed"}


# --- drift scenarios -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    id: str
    sql: str  # applied to production after the base schema
    expected: frozenset[Key]
    shows: str | None = None  # text the report must show (production side, else bundled)


def case(id: str, sql: str, *expected: Key, shows: str | None = None) -> Scenario:
    return Scenario(id, sql, frozenset(expected), shows)


SCENARIOS: list[Scenario] = [
    case("table-added", "CREATE TABLE app.labels (id int PRIMARY KEY, name text NOT NULL)",
         ("table", "app.labels", "missing"), shows="CONSTRAINT labels_pkey PRIMARY KEY (id)"),
    case("table-dropped", "DROP TABLE app.settings", ("table", "app.settings", "extra"),
         shows="value jsonb"),
    case("partition-added", "CREATE TABLE audit.events_2027 PARTITION OF audit.events "
         "FOR VALUES FROM ('2027-01-01 00:00+00') TO ('2028-01-01 00:00+00')",
         ("table", "audit.events_2027", "missing"),
         shows="FOR VALUES FROM ('2027-01-01 00:00:00+00') TO ('2028-01-01 00:00:00+00')"),
    case("table-unlogged", "ALTER TABLE app.settings SET UNLOGGED",
         ("table", "app.settings", "changed"), shows="UNLOGGED TABLE app.settings"),
    case("table-reloptions", "ALTER TABLE app.tasks SET (fillfactor = 70)",
         ("table", "app.tasks", "changed"), shows="WITH (fillfactor=70)"),
    case("rls-disabled", "ALTER TABLE app.projects DISABLE ROW LEVEL SECURITY",
         ("table", "app.projects", "changed"), shows="ROW LEVEL SECURITY DISABLED"),
    case("rls-forced", "ALTER TABLE app.projects FORCE ROW LEVEL SECURITY",
         ("table", "app.projects", "changed"), shows="ROW LEVEL SECURITY ENABLED, FORCED"),
    case("column-added", "ALTER TABLE app.users ADD COLUMN phone text",
         ("column", "app.users.phone", "missing")),
    case("column-dropped", "ALTER TABLE app.users DROP COLUMN is_admin",
         ("column", "app.users.is_admin", "extra")),
    case("column-retyped", "ALTER TABLE app.tasks ALTER COLUMN title TYPE varchar(200)",
         ("column", "app.tasks.title", "changed"), shows="title character varying(200)"),
    case("column-collation", 'ALTER TABLE app.users ALTER COLUMN display_name '
         'TYPE text COLLATE "POSIX"',
         ("column", "app.users.display_name", "changed"), shows='COLLATE "POSIX"'),
    case("default-set", "ALTER TABLE app.projects ALTER COLUMN budget SET DEFAULT 0",
         ("column", "app.projects.budget", "changed"), shows="DEFAULT 0"),
    case("default-dropped", "ALTER TABLE app.users ALTER COLUMN created_at DROP DEFAULT",
         ("column", "app.users.created_at", "changed")),
    case("not-null-set", "ALTER TABLE app.tasks ALTER COLUMN assignee_id SET NOT NULL",
         ("column", "app.tasks.assignee_id", "changed"), shows="NOT NULL"),
    case("not-null-dropped", "ALTER TABLE app.projects ALTER COLUMN name DROP NOT NULL",
         ("column", "app.projects.name", "changed")),
    case("identity-changed", "ALTER TABLE app.projects ALTER COLUMN id SET GENERATED ALWAYS",
         ("column", "app.projects.id", "changed"), shows="GENERATED ALWAYS AS IDENTITY"),
    case("check-changed", "ALTER TABLE app.projects DROP CONSTRAINT projects_budget_check, "
         "ADD CONSTRAINT projects_budget_check CHECK (budget > 0)",
         ("constraint", "app.projects.projects_budget_check", "changed"),
         shows="CHECK ((budget > (0)::numeric))"),
    case("check-added", "ALTER TABLE app.users ADD CONSTRAINT users_display_name_check "
         "CHECK (length(display_name) <= 100)",
         ("constraint", "app.users.users_display_name_check", "missing")),
    case("unique-changed", "ALTER TABLE app.projects DROP CONSTRAINT projects_owner_name_key, "
         "ADD CONSTRAINT projects_owner_name_key UNIQUE (name, owner_id)",
         ("constraint", "app.projects.projects_owner_name_key", "changed"),
         shows="UNIQUE (name, owner_id)"),
    case("fk-on-delete-changed", "ALTER TABLE app.tasks DROP CONSTRAINT tasks_project_fk, "
         "ADD CONSTRAINT tasks_project_fk FOREIGN KEY (project_id) "
         "REFERENCES app.projects (id) ON DELETE RESTRICT",
         ("constraint", "app.tasks.tasks_project_fk", "changed"), shows="ON DELETE RESTRICT"),
    case("fk-dropped", "ALTER TABLE app.tasks DROP CONSTRAINT tasks_assignee_fk",
         ("constraint", "app.tasks.tasks_assignee_fk", "extra")),
    case("index-added", "CREATE INDEX tasks_assignee_idx ON app.tasks (assignee_id)",
         ("index", "app.tasks_assignee_idx", "missing")),
    case("index-dropped", "DROP INDEX app.projects_name_trgm_idx",
         ("index", "app.projects_name_trgm_idx", "extra")),
    case("index-predicate-changed", "DROP INDEX app.projects_live_idx; "
         "CREATE INDEX projects_live_idx ON app.projects (owner_id) "
         "WHERE deleted_at IS NULL AND status <> 'archived'",
         ("index", "app.projects_live_idx", "changed"), shows="'archived'::app.project_status"),
    case("view-changed", "CREATE OR REPLACE VIEW app.active_projects AS "
         "SELECT id, owner_id, name, status FROM app.projects WHERE deleted_at IS NULL",
         ("view", "app.active_projects", "changed"),
         # the column is "projects.status" up to 15, "status" from 16: either way, listed
         shows="status\n   FROM app.projects"),
    case("view-dropped", "DROP VIEW app.active_projects",
         ("view", "app.active_projects", "extra")),
    case("matview-changed", "DROP MATERIALIZED VIEW app.project_stats; "
         "CREATE MATERIALIZED VIEW app.project_stats AS SELECT project_id, count(*) AS tasks, "
         "max(id) AS last_task FROM app.tasks GROUP BY project_id; "
         "CREATE UNIQUE INDEX project_stats_project_idx ON app.project_stats (project_id)",
         ("materialized view", "app.project_stats", "changed"), shows="last_task"),
    case("matview-dropped", "DROP MATERIALIZED VIEW app.project_stats",
         ("materialized view", "app.project_stats", "extra"),
         shows="CREATE UNIQUE INDEX project_stats_project_idx"),
    case("function-body-changed", textwrap.dedent("""
         CREATE OR REPLACE FUNCTION app.touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             NEW.updated_at := clock_timestamp();
             RETURN NEW;
         END
         $$"""), ("function", "app.touch_updated_at()", "changed"), shows="clock_timestamp()"),
    case("function-volatility", "ALTER FUNCTION app.search_projects(text) VOLATILE",
         ("function", "app.search_projects(q text)", "changed")),
    case("function-search-path", "ALTER FUNCTION app.current_user_id() SET search_path = ''",
         ("function", "app.current_user_id()", "changed"), shows="SET search_path TO ''"),
    case("function-security-invoker", "ALTER FUNCTION app.current_user_id() SECURITY INVOKER",
         ("function", "app.current_user_id()", "changed")),
    case("function-new-overload", "CREATE FUNCTION app.search_projects(q text, max_results "
         "integer, include_archived boolean) RETURNS SETOF app.projects LANGUAGE sql STABLE "
         "AS $$ SELECT * FROM app.projects WHERE name % q LIMIT max_results $$",
         ("function", "app.search_projects(q text, max_results integer, "
                      "include_archived boolean)", "missing")),
    case("begin-atomic-changed", "CREATE OR REPLACE FUNCTION app.task_count(p bigint) "
         "RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM app.tasks "
         "WHERE project_id = p AND assignee_id IS NOT NULL; END",
         ("function", "app.task_count(p bigint)", "changed"), shows="assignee_id IS NOT NULL"),
    case("procedure-changed", "ALTER PROCEDURE app.archive_project(bigint) SECURITY DEFINER",
         ("procedure", "app.archive_project(IN p bigint)", "changed"),
         shows="SECURITY DEFINER"),
    case("enum-value-added", "ALTER TYPE app.project_status ADD VALUE 'paused' "
         "BEFORE 'archived'", ("enum", "app.project_status", "changed"), shows="'paused'"),
    case("domain-constraint-added", "ALTER DOMAIN app.email ADD CONSTRAINT email_length "
         "CHECK (length(VALUE) < 200)", ("domain", "app.email", "changed")),
    case("composite-type-changed", "ALTER TYPE app.amount_range ADD ATTRIBUTE currency text",
         ("type", "app.amount_range", "changed")),
    case("sequence-increment", "ALTER SEQUENCE app.invoice_number_seq INCREMENT BY 10",
         ("sequence", "app.invoice_number_seq", "changed"), shows="INCREMENT BY 10"),
    case("trigger-disabled", "ALTER TABLE app.tasks DISABLE TRIGGER tasks_touch",
         ("trigger", "app.tasks_touch ON app.tasks", "changed"), shows="DISABLED"),
    case("trigger-retimed", "DROP TRIGGER tasks_touch ON app.tasks; "
         "CREATE TRIGGER tasks_touch AFTER UPDATE ON app.tasks "
         "FOR EACH ROW EXECUTE FUNCTION app.touch_updated_at()",
         ("trigger", "app.tasks_touch ON app.tasks", "changed"), shows="AFTER UPDATE"),
    case("policy-changed", "ALTER POLICY projects_owner ON app.projects "
         "USING (owner_id = app.current_user_id() OR status = 'active')",
         ("policy", "app.projects_owner ON app.projects", "changed"), shows="'active'"),
    case("extension-added", "CREATE EXTENSION pgcrypto", ("extension", "pgcrypto", "missing")),
    case("extension-updated", "ALTER EXTENSION pg_trgm UPDATE TO '1.5'",
         ("extension", "pg_trgm", "changed"), shows="VERSION '1.5'"),
    case("schema-added", "CREATE SCHEMA reporting", ("schema", "reporting", "missing")),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_drift_scenario(scenario: Scenario, schemasync_db_factory: Factory,
                        cached: Callable[..., Snapshot]) -> None:
    bundled = cached(BASE_SQL)
    production = build(schemasync_db_factory, BASE_SQL, scenario.sql)
    result = compare(bundled, production)
    assert found(result) == scenario.expected
    assert result.drift
    assert result.warnings == []
    if scenario.shows is not None:
        (diff,) = result.differences
        text = diff.production if diff.production is not None else diff.bundled
        assert text is not None and scenario.shows in text, text
    # The other way round, missing and extra swap.
    mirrored = {(k, i, _MIRROR[c]) for k, i, c in scenario.expected}
    assert found(compare(production, bundled)) == mirrored


def test_scenarios_are_plenty() -> None:
    assert len(SCENARIOS) >= 30
    assert len({s.id for s in SCENARIOS}) == len(SCENARIOS)


# --- normalization ---------------------------------------------------------------------------


def test_same_schema_in_another_order_and_layout_has_no_drift(
        schemasync_db_factory: Factory, cached: Callable[..., Snapshot]) -> None:
    everything = CatalogOptions(include_owners=True, include_grants=True)
    bundled = cached(BASE_SQL, options=everything)
    production = build(schemasync_db_factory, REORDERED_SQL, options=everything)
    result = compare(bundled, production, everything)
    assert result.differences == []
    assert result.warnings == []
    assert not result.drift
    assert bundled.objects == production.objects
    assert list(bundled.objects) == list(production.objects)  # sorted, whatever the order


def test_snapshot_covers_the_base_schema(cached: Callable[..., Snapshot]) -> None:
    snap = cached(BASE_SQL)
    kinds = {kind for kind, _ in snap.objects}
    assert kinds >= {"schema", "extension", "type", "enum", "domain", "sequence", "table",
                     "column", "constraint", "index", "view", "materialized view", "function",
                     "procedure", "trigger", "policy"}
    assert snap.server_major >= 12
    assert re.fullmatch(r"\d+\.\d+", snap.server_version)
    objects = snap.objects
    # Overloads are distinct objects.
    assert ("function", "app.search_projects(q text)") in objects
    assert ("function", "app.search_projects(q text, max_results integer)") in objects
    # Identity sequences are reported with their column, serial sequences on their own.
    assert "GENERATED ALWAYS AS IDENTITY" in objects["column", "app.users.id"].definition
    assert not any(k == "sequence" and "users_id_seq" in i for k, i in objects)
    assert "OWNED BY app.tasks.id" in objects["sequence", "app.tasks_id_seq"].definition
    # Constraint-backing indexes are constraints, not indexes; partitions' clones are hidden.
    assert ("index", "app.users_email_key") not in objects
    assert not any(k in ("index", "constraint") and "events_2025" in i for k, i in objects)
    assert ("index", "app.project_stats_project_idx") in objects
    generated = objects["column", "app.projects.slug"].definition
    assert "GENERATED ALWAYS AS (lower(replace(name, ' '::text, '-'::text))) STORED" in generated
    assert 'COLLATE "C"' in objects["column", "app.users.display_name"].definition
    assert "BEGIN ATOMIC" in objects["function", "app.task_count(p bigint)"].definition
    assert objects["enum", "app.project_status"].definition.split("\n")[1:] == [
        "  'draft'", "  'active'", "  'archived'"]
    # Extension members are left out: pg_trgm's functions are not ours.
    assert not any(k == "function" and i.startswith("public.") for k, i in objects)
    for obj in objects.values():
        assert not re.search(r"\b\d{5,}\b", obj.definition) or obj.kind in ("sequence",
                                                                            "column"), obj


def test_extension_members_can_be_included(cached: Callable[..., Snapshot]) -> None:
    snap = cached(BASE_SQL, options=CatalogOptions(include_extension_members=True))
    assert ("function", "public.similarity(text, text)") in snap.objects


# --- excluded schemas, grants, owners, extensions ---------------------------------------------


STAGING_SQL = """
CREATE SCHEMA staging_20260101_120000;
CREATE TABLE staging_20260101_120000.import (id int PRIMARY KEY, raw jsonb);
CREATE SCHEMA staging_20260102_080000;
CREATE TABLE staging_20260102_080000.import (id int PRIMARY KEY, raw jsonb);
CREATE FUNCTION staging_20260102_080000.clean() RETURNS void LANGUAGE sql AS $$ SELECT $$;
"""


def test_excluded_schemas_are_not_reported(schemasync_db_factory: Factory,
                                           cached: Callable[..., Snapshot]) -> None:
    options = CatalogOptions(exclude_schemas=("staging_*",))
    bundled = cached(BASE_SQL, options=options)
    production = build(schemasync_db_factory, BASE_SQL, STAGING_SQL, options=options)
    assert production.schemas_excluded == ["staging_20260101_120000", "staging_20260102_080000"]
    assert bundled.schemas_excluded == []
    assert not any("staging" in identity for _, identity in production.objects)
    assert compare(bundled, production, options).differences == []
    # Without the pattern they are drift.
    unfiltered = compare(cached(BASE_SQL), build(schemasync_db_factory, BASE_SQL, STAGING_SQL))
    assert ("schema", "staging_20260101_120000", "missing") in found(unfiltered)


@pytest.fixture
def role(schemasync_db_factory: Factory) -> Iterator[str]:
    """A throwaway role (roles are cluster-wide: unique name, dropped afterwards)."""
    name = f"ss_cat_{uuid.uuid4().hex[:10]}"
    admin = schemasync_db_factory()
    with admin.connect(autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} NOLOGIN".encode())
    yield name
    with admin.connect(autocommit=True) as conn:
        conn.execute(f"DROP ROLE {name}".encode())


def build_with_role(factory: Factory, role: str, sql: str,
                    *options: CatalogOptions) -> list[Snapshot]:
    """Production with a statement naming ``role``; the role's grants and ownerships are
    removed again before returning, so that the role can be dropped."""
    require_pg(*extensions_in(BASE_SQL))
    database = factory()
    with database.connect(autocommit=True) as conn:
        conn.execute(BASE_SQL.encode())
        conn.execute(sql.encode())
        try:
            return [snapshot(conn, o) for o in options]
        finally:
            conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}"
                         .encode())


def test_grants_only_when_asked(schemasync_db_factory: Factory, cached: Callable[..., Snapshot],
                                role: str) -> None:
    grants = CatalogOptions(include_grants=True)
    plain, with_grants = build_with_role(
        schemasync_db_factory, role,
        f"GRANT SELECT ON app.users TO {role}; "
        f"REVOKE EXECUTE ON FUNCTION app.task_count(bigint) FROM PUBLIC", DEFAULT, grants)
    assert compare(cached(BASE_SQL), plain).differences == []
    result = compare(cached(BASE_SQL, options=grants), with_grants, grants)
    assert found(result) == {
        ("grant", f"table app.users TO {role}", "missing"),
        ("grant", "function app.task_count(p bigint) TO PUBLIC", "extra"),
    }
    assert result.differences[1].production == f"GRANT SELECT ON TABLE app.users TO {role}"


def test_owners_only_when_asked(schemasync_db_factory: Factory, cached: Callable[..., Snapshot],
                                role: str) -> None:
    owners = CatalogOptions(include_owners=True)
    grants = CatalogOptions(include_grants=True)
    plain, with_owners, with_grants = build_with_role(
        schemasync_db_factory, role, f"ALTER TABLE app.settings OWNER TO {role}",
        DEFAULT, owners, grants)
    assert compare(cached(BASE_SQL), plain).differences == []
    # The owner's own privileges come with ownership: not a grant difference.
    assert compare(cached(BASE_SQL, options=grants), with_grants, grants).differences == []
    result = compare(cached(BASE_SQL, options=owners), with_owners, owners)
    assert found(result) == {("owner", "table app.settings", "changed")}
    assert result.differences[0].production == f"OWNER TO {role}"


@pytest.fixture
def postgis(schemasync_db_factory: Factory) -> str:
    with schemasync_db_factory().connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'"
                           ).fetchone()
    if row is None:
        require_pg("postgis")  # skipped on a selected major without it
        pytest.fail("PostGIS is not installed for this server: bash scripts/install-system-deps.sh")
    return "CREATE EXTENSION postgis"


def test_postgis_members_are_not_reported(schemasync_db_factory: Factory,
                                          cached: Callable[..., Snapshot], postgis: str) -> None:
    with_postgis = cached(BASE_SQL, postgis)
    # On both sides: nothing to report, although PostGIS brings 1000+ functions, types,
    # a table (spatial_ref_sys) and views.
    result = compare(with_postgis, build(schemasync_db_factory, BASE_SQL, postgis))
    assert result.differences == []
    # Only in production: one extension difference, not a thousand functions.
    result = compare(cached(BASE_SQL), with_postgis)
    assert found(result) == {("extension", "postgis", "missing")}


# --- column order, versions ------------------------------------------------------------------


def test_column_order_is_a_warning_not_drift(schemasync_db_factory: Factory,
                                             cached: Callable[..., Snapshot]) -> None:
    bundled = cached(BASE_SQL, "CREATE TABLE app.ordered (a int, b text, c date)")
    production = build(schemasync_db_factory, BASE_SQL,
                       "CREATE TABLE app.ordered (a int, c date, b text, d int)")
    result = compare(bundled, production)
    assert found(result) == {("column", "app.ordered.d", "missing")}
    (warning,) = result.warnings
    assert "app.ordered" in warning and "a, b, c" in warning and "a, c, b, d" in warning
    assert compare(bundled, production, CatalogOptions(column_order="ignore")).warnings == []
    strict = compare(bundled, production, CatalogOptions(column_order="drift"))
    assert found(strict) == {("column", "app.ordered.d", "missing"),
                             ("column order", "app.ordered", "changed")}
    assert strict.warnings == []
    # Dropped columns leave holes in attnum; only the order counts.
    holes = build(schemasync_db_factory, BASE_SQL,
                  "CREATE TABLE app.ordered (a int, x int, b text, c date); "
                  "ALTER TABLE app.ordered DROP COLUMN x")
    assert compare(bundled, holes).warnings == []
    assert compare(bundled, holes).differences == []


def test_major_version_mismatch_warns(cached: Callable[..., Snapshot]) -> None:
    bundled = cached(BASE_SQL)
    older = replace(bundled, server_version="14.11", server_major=14)
    result = compare(bundled, older)
    assert not result.drift
    (warning,) = result.warnings
    assert "can differ between PostgreSQL major versions" in warning
    assert "14.11" in warning and bundled.server_version in warning
    assert compare(bundled, replace(bundled, server_version="x")).warnings == []


# --- safety of the snapshot ------------------------------------------------------------------


class RecordingCursor(psycopg.Cursor[Any]):
    """Records every statement sent through a cursor (conn.execute uses one too)."""

    sent: list[str]

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> RecordingCursor:
        text = query.decode() if isinstance(query, bytes) else (
            query if isinstance(query, str) else query.as_string(self))
        RecordingCursor.sent.append(text)
        super().execute(query, params, **kwargs)
        return self


ALLOWED = re.compile(r"\s*(SELECT|WITH|SET|SHOW|BEGIN|ROLLBACK)\b", re.IGNORECASE)
# Anything that writes, locks or has side effects, even inside a SELECT or WITH.
FORBIDDEN = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER|DROP|TRUNCATE|GRANT|REVOKE|COPY|LOCK|COMMIT|"
    r"CALL|DO|PREPARE|SHARE|TEMP|TEMPORARY|nextval|setval|pg_advisory\w*|set_config|dblink)\b",
    re.IGNORECASE)


def _outside_literals(statement: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", "''", statement)


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transactional"])
def test_snapshot_is_read_only_and_leaves_the_connection_idle(
        schemasync_db_factory: Factory, autocommit: bool) -> None:
    require_pg(*extensions_in(BASE_SQL))
    database = schemasync_db_factory()
    with database.connect(autocommit=True) as conn:
        conn.execute(BASE_SQL.encode())
    RecordingCursor.sent = []
    with database.connect(autocommit=autocommit, cursor_factory=RecordingCursor,
                          options="-c default_transaction_read_only=on") as conn:
        snap = snapshot(conn, CatalogOptions(include_owners=True, include_grants=True))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.autocommit is autocommit
        sent = RecordingCursor.sent
        assert ("table", "app.users") in snap.objects
        assert sent[0].startswith("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        assert sent[-1] == "ROLLBACK"
        assert "SET LOCAL search_path = ''" in sent
        assert [s for s in sent if not ALLOWED.match(s)] == []
        assert [s for s in sent if FORBIDDEN.search(_outside_literals(s))] == []
        # The connection is as usable as before.
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_snapshot_refuses_a_connection_inside_a_transaction(
        schemasync_db_factory: Factory) -> None:
    with schemasync_db_factory().connect() as conn:
        conn.execute("SELECT 1")
        with pytest.raises(CatalogError, match="idle connection"):
            snapshot(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.rollback()


# --- rendering -------------------------------------------------------------------------------


SECRET_HEADER = [
    ("production", "PostgreSQL 15.18 at postgresql://app:****@db.internal:5432/prod"),
    ("files", "schema/001_base.sql, schema/002_functions.sql"),
    ("excluded schemas", "staging_*"),
]


@pytest.fixture
def function_drift(schemasync_db_factory: Factory,
                   cached: Callable[..., Snapshot]) -> DiffResult:
    (scenario,) = [s for s in SCENARIOS if s.id == "function-body-changed"]
    extra = ("CREATE TABLE app.notes (id int); CREATE FUNCTION app.sync() RETURNS text "
             "LANGUAGE sql AS $$ SELECT 'host=db password=hunter2 "
             "postgresql://app:s3cret@db/prod' $$")
    return compare(cached(BASE_SQL),
                   build(schemasync_db_factory, BASE_SQL, scenario.sql, extra))


def test_render_text(function_drift: DiffResult) -> None:
    text = render_text(function_drift, header=SECRET_HEADER,
                       refresh_hint="Refresh: pytest --refresh-schema")
    lines = text.split("\n")
    assert lines[0].startswith("Schema drift: 3 differences")
    assert "  production        PostgreSQL 15.18 at postgresql://app:****@db.internal:5432/prod" \
        in lines
    assert re.search(r"^\s+function\s+1\s+0\s+1$", text, re.MULTILINE)
    assert re.search(r"^\s+table\s+1\s+0\s+0$", text, re.MULTILINE)
    assert re.search(r"^\s+total\s+2\s+0\s+1$", text, re.MULTILINE)
    start = lines.index("changed function app.touch_updated_at()")
    assert lines[start + 1:start + 3] == ["--- bundled", "+++ production"]
    assert "-    NEW.updated_at := now();" in lines
    assert "+    NEW.updated_at := clock_timestamp();" in lines
    assert lines[-1] == "Refresh: pytest --refresh-schema"
    assert "\x1b" not in text  # no colours in CI logs
    short = render_text(function_drift, header=SECRET_HEADER, max_lines=4)
    assert re.search(r"^\.\.\. \d+ more lines$", short, re.MULTILINE)


def test_render_markdown(function_drift: DiffResult) -> None:
    md = render_markdown(function_drift, header=SECRET_HEADER, refresh_hint="Refresh it.")
    assert "| function | 1 | 0 | 1 |" in md
    assert "| **total** | 2 | 0 | 1 |" in md
    assert "| excluded schemas | staging_* |" in md
    assert "```diff\n--- bundled\n+++ production\n" in md
    assert md.count("```diff") == 3
    assert md.rstrip().endswith("Refresh it.")


def test_to_json(function_drift: DiffResult) -> None:
    data = json.loads(to_json(function_drift, header=SECRET_HEADER))
    assert list(data) == ["drift", "bundled_version", "production_version", "header",
                          "summary", "differences", "warnings"]
    assert data["drift"] is True
    assert data["header"]["excluded schemas"] == "staging_*"
    assert data["summary"]["function"] == {"missing": 1, "extra": 0, "changed": 1}
    first = data["differences"][0]
    assert set(first) == {"kind", "identity", "change", "bundled", "production"}
    assert [(d["kind"], d["change"]) for d in data["differences"]] == [
        ("table", "missing"), ("function", "missing"), ("function", "changed")]
    assert data["warnings"] == []


def test_renderers_print_no_secrets(function_drift: DiffResult) -> None:
    outputs = [
        render_text(function_drift, header=SECRET_HEADER),
        render_markdown(function_drift, header=SECRET_HEADER),
        to_json(function_drift, header=SECRET_HEADER),
    ]
    for out in outputs:
        assert "postgresql://app:****@db.internal:5432/prod" in out
        assert "hunter2" not in out and "s3cret" not in out
        assert "password=****" in out


def test_no_drift_report(cached: Callable[..., Snapshot]) -> None:
    result = compare(cached(BASE_SQL), cached(BASE_SQL))
    text = render_text(result, header=SECRET_HEADER, refresh_hint="never shown")
    assert text.startswith("No schema drift")
    assert "never shown" not in text
    assert "kind" not in text
    assert result.summary() == {}
    assert json.loads(to_json(result, header=[]))["differences"] == []
