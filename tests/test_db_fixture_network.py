"""The `db` fixture over TCP (a server given with --schemasync-server-url), where its BEGIN +
guard SAVEPOINT and ROLLBACK TO + ROLLBACK go out in pipeline mode: isolation, a failed
statement, and COMMIT detection (also with statements after the COMMIT) as on a unix socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import SIMPLE_SCHEMA, database_names, make_project, output_of, run_inner, shm_base

from pytest_schemasync.standin import OWNER, StandinProduction


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[StandinProduction]:
    with StandinProduction(base_dir=shm_base()) as server:
        yield server


def test_db_over_tcp_detects_commits(pytester: pytest.Pytester, cache_dir: Path,
                                     tcp_server: StandinProduction) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_db="""
        import psycopg
        import pytest

        SEEN = []

        def names(db):
            SEEN.append(db.execute("SELECT current_database()").fetchone()[0])
            return [r[0] for r in db.execute("SELECT name FROM items ORDER BY id")]

        def test_1_over_tcp(db):
            assert not db.info.host.startswith("/")
            assert names(db) == ["seed"]
            db.execute("INSERT INTO items (name) VALUES ('rolled back')")
            with db.transaction():
                db.execute("INSERT INTO items (name) VALUES ('inner')")

        def test_2_failed_statement(db):
            assert names(db) == ["seed"]
            with pytest.raises(psycopg.errors.UniqueViolation):
                db.execute("INSERT INTO items (name) VALUES ('seed')")

        def test_3_commits(db):
            assert names(db) == ["seed"]
            db.execute("INSERT INTO items (name) VALUES ('committed')")
            db.execute("COMMIT")

        def test_4_commits_then_reads(db):
            assert names(db) == ["seed"]
            db.execute("INSERT INTO items (name) VALUES ('committed too')")
            db.execute("COMMIT")
            db.execute("SELECT 1")

        def test_5_pristine(db):
            assert names(db) == ["seed"]

        def test_6_databases():
            # The first three shared one rollback database; each COMMIT replaced it.
            assert SEEN[0] == SEEN[1] == SEEN[2] != SEEN[3] != SEEN[4]
    """)
    url = tcp_server.url("postgres", OWNER)
    result = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
    result.assert_outcomes(passed=6, warnings=2)
    out = output_of(result)
    assert "test_3_commits ended the transaction of the `db` fixture" in out
    assert "test_4_commits_then_reads ended the transaction of the `db` fixture" in out
    with psycopg.connect(tcp_server.info("postgres", OWNER).conninfo("postgres"),
                         autocommit=True) as conn:
        assert not [n for n in database_names(conn) if n.startswith(("sss_", "ssc_"))]
