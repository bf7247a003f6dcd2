"""gameforge through whole clones: fresh_db, fresh_db_url, and a COMMIT on ``db``."""

from __future__ import annotations

import psycopg
import pytest


@pytest.mark.parametrize("n", range(12))
def test_fresh_db_commits(fresh_db, fresh_database, n, tag, claim, note):
    claim(fresh_db, tag)
    fresh_db.execute("INSERT INTO players (email, username) VALUES (%s, 'f')", (f"f{n}@x.io",))
    fresh_db.commit()
    with fresh_database.connect() as other:  # a second connection sees the commit
        assert other.execute("SELECT tag FROM probe").fetchall() == [(tag,)]
        assert other.execute("SELECT count(*) FROM players").fetchone()[0] == 2
    note("fresh", fresh_db, fresh_database.name)


@pytest.mark.parametrize("n", range(8))
def test_fresh_db_url_ddl(fresh_db_url, n, tag, claim, note):
    with psycopg.connect(fresh_db_url) as conn:
        conn.execute(f"CREATE TABLE scratch_{n} (x integer PRIMARY KEY)")
        conn.execute(f"INSERT INTO scratch_{n} VALUES (1)")
        claim(conn, tag)
        conn.commit()
        note("url", conn)
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        assert conn.execute("SELECT tag FROM probe").fetchall() == [(tag,)]
        assert conn.execute(f"SELECT count(*) FROM scratch_{n}").fetchone()[0] == 1


@pytest.mark.parametrize("n", range(4))
def test_commit_on_db_is_contained(db, n, tag, claim):
    """A raw COMMIT ends the fixture's transaction: the plugin warns and replaces the
    database, so no later test sees this row (every other test asserts that)."""
    claim(db, tag)
    db.execute("COMMIT")
