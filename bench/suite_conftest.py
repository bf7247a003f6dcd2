"""conftest.py of the generated benchmark project (bench.py copies it there).

Every generated test takes the fixture ``conn``; ``$BENCH_VARIANT`` says which real fixture
stands behind it, so the test bodies are the same for every variant:

* ``db``                 pytest-schemasync's rollback fixture
* ``fresh_db``           pytest-schemasync's per-test clone
* ``pytest_postgresql``  pytest-postgresql's ``postgresql`` client fixture over
                         ``postgresql_proc(load=[load_schema])`` (its normal usage)
* ``testing_postgresql`` a fresh server per test from testing.postgresql's
                         ``PostgresqlFactory(cache_initialized_db=True, on_initialized=...)``

The competitors get the same schema the plugin builds: schema.sql, then every migration in
version order, each file in its own session and transaction, each migration recorded in
public.schema_migrations.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

VARIANT = os.environ.get("BENCH_VARIANT", "db")
PG_BINDIR = Path(os.environ.get("BENCH_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
SET_DIR = Path(__file__).resolve().parent / "db" / "gameforge"
FIXTURE = {
    "db": "db",
    "fresh_db": "fresh_db",
    "pytest_postgresql": "postgresql",
    "testing_postgresql": "tpg_connection",
}


def schema_files() -> list[Path]:
    return [SET_DIR / "schema.sql", *sorted((SET_DIR / "migrations").glob("[0-9]*.sql"))]


def load_schema(**conninfo: Any) -> None:
    """Install the gameforge set; a pytest-postgresql ``load`` callable (it passes host,
    port, user, dbname, password and autocommit)."""
    conninfo.pop("autocommit", None)
    params = {k: v for k, v in conninfo.items() if v is not None}
    for path in schema_files():
        with psycopg.connect(**params) as conn:
            conn.execute(path.read_text())  # type: ignore[call-overload]
            version, _, description = path.stem.partition("_")
            if path.parent.name == "migrations":
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
