"""conftest.py of the generated benchmark project (bench.py copies it there).

Every generated test takes the fixture ``conn``; ``$BENCH_VARIANT`` says which real fixture
stands behind it, so the test bodies are the same for every variant:

* ``db``                 pytest-schemasync's rollback fixture
* ``fresh_db``           pytest-schemasync's per-test clone
* ``pytest_postgresql``  pytest-postgresql's ``postgresql`` client fixture over
                         ``postgresql_proc(load=[load_schema])`` (its normal usage)
* ``testing_postgresql`` a fresh server per test from testing.postgresql's
                         ``PostgresqlFactory(cache_initialized_db=True, on_initialized=...)``

``$BENCH_SET`` says which schema set the project holds (the plugin reads it from the project's
pyproject.toml; the competitors load it with ``load_schema``):

* ``gameforge`` (default)  schema.sql, then every migration in version order, each migration
                           recorded in public.schema_migrations
* ``carthorse``            suite.CARTHORSE_FILES in order: the complete-schema dump (PostGIS,
                           pgRouting), fix_routing_functions.sql, missing-functions.sql

Each file runs in its own session and transaction, its whole text in one psycopg ``execute``
(as pytest-postgresql's own .sql loader does), after ``suite.server_sql`` (pg_dump's psql-only
``\\restrict`` lines dropped; any other psql meta-command stops the load).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from suite import CARTHORSE_FILES, server_sql  # bench/ is on PYTHONPATH in every variant

VARIANT = os.environ.get("BENCH_VARIANT", "db")
SET = os.environ.get("BENCH_SET", "gameforge")
PG_BINDIR = Path(os.environ.get("BENCH_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
ROOT = Path(__file__).resolve().parent
SET_DIR = ROOT / "db" / "gameforge"
FIXTURE = {
    "db": "db",
    "fresh_db": "fresh_db",
    "pytest_postgresql": "postgresql",
    "testing_postgresql": "tpg_connection",
}


def schema_files() -> list[Path]:
    if SET == "carthorse":
        return [ROOT / rel for rel in CARTHORSE_FILES]
    return [SET_DIR / "schema.sql", *sorted((SET_DIR / "migrations").glob("[0-9]*.sql"))]


def load_schema(**conninfo: Any) -> None:
    """Install the ``$BENCH_SET`` set; a pytest-postgresql ``load`` callable (it passes host,
    port, user, dbname, password and autocommit)."""
    conninfo.pop("autocommit", None)
    params = {k: v for k, v in conninfo.items() if v is not None}
    for path in schema_files():
        text, _ = server_sql(path.read_text(), str(path.relative_to(ROOT)))
        with psycopg.connect(**params) as conn:
            conn.execute(text)  # type: ignore[call-overload]
            version, _, description = path.stem.partition("_")
            if SET == "gameforge" and path.parent.name == "migrations":
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, description, script_path)"
                    " VALUES (%s, %s, %s)", (version, description, str(path)))


if VARIANT == "pytest_postgresql":
    from pytest_postgresql import factories

    postgresql_proc = factories.postgresql_proc(load=[load_schema])
    postgresql = factories.postgresql("postgresql_proc")

if VARIANT == "testing_postgresql":
    import testing.postgresql

    def _tpg_load(pg: testing.postgresql.Postgresql) -> None:
        dsn = pg.dsn()
        load_schema(host=dsn["host"], port=dsn["port"], user=dsn["user"],
                    dbname=dsn["database"])

    @pytest.fixture(scope="session")
    def tpg_factory() -> Iterator[testing.postgresql.PostgresqlFactory]:
        factory = testing.postgresql.PostgresqlFactory(
            cache_initialized_db=True, on_initialized=_tpg_load,
            initdb=str(PG_BINDIR / "initdb"), postgres=str(PG_BINDIR / "postgres"))
        try:
            yield factory
        finally:
            factory.clear_cache()

    @pytest.fixture
    def tpg_connection(
        tpg_factory: testing.postgresql.PostgresqlFactory,
    ) -> Iterator[psycopg.Connection[Any]]:
        with tpg_factory() as pg:
            dsn = pg.dsn()
            conn = psycopg.connect(host=dsn["host"], port=dsn["port"], user=dsn["user"],
                                   dbname=dsn["database"])
            try:
                yield conn
            finally:
                conn.close()


@pytest.fixture
def conn(request: pytest.FixtureRequest) -> psycopg.Connection[Any]:
    return request.getfixturevalue(FIXTURE[VARIANT])
