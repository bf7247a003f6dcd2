"""gameforge (the default set) through the rollback ``db`` fixture."""

from __future__ import annotations

import psycopg
import pytest

SEED_PLAYERS = 1


@pytest.mark.parametrize("n", range(90))
def test_rollback_is_isolated(db, n, tag, claim, note):
    db.execute("INSERT INTO players (email, username) VALUES (%s, %s)", (f"P{n}@X.io", f"p{n}"))
    claim(db, tag)
    assert db.execute("SELECT count(*) FROM players").fetchone()[0] == SEED_PLAYERS + 1
    # citext: the lower-case spelling finds the row
    found = db.execute("SELECT count(*) FROM players WHERE email = %s", (f"p{n}@x.io",))
    assert found.fetchone()[0] == 1
    if n % 7 == 0:
        note("db", db)


@pytest.mark.parametrize("n", range(25))
def test_savepoints(db, n, tag, claim):
    claim(db, tag)
    with db.transaction():
        db.execute("INSERT INTO items (name, price) VALUES (%s, 1)", (f"kept{n}",))
        with pytest.raises(psycopg.errors.CheckViolation), db.transaction():
            db.execute("INSERT INTO items (name, price) VALUES (%s, -1)", (f"bad{n}",))
    db.execute("SAVEPOINT manual")
    db.execute("UPDATE players SET xp = xp + 5")
    db.execute("INSERT INTO items (name, price) VALUES (%s, 2)", (f"gone{n}",))
    db.execute("ROLLBACK TO SAVEPOINT manual")
    db.execute("RELEASE SAVEPOINT manual")
    names = [r[0] for r in db.execute("SELECT name FROM items ORDER BY id")]
    assert names == ["sword", "shield", "potion", f"kept{n}"]
    assert db.execute("SELECT xp FROM players").fetchone()[0] == 10


@pytest.mark.parametrize("n", range(10))
def test_migrations_are_recorded(db, n, tag, claim):
    claim(db, tag)
    rows = db.execute("SELECT version, length(checksum) FROM schema_migrations ORDER BY 1")
    assert rows.fetchall() == [("001", 64), ("002", 64), ("003", 64)]
    db.execute("INSERT INTO guilds (name) VALUES (%s)", (f"g{n}",))
    db.execute("UPDATE players SET guild_id = (SELECT max(id) FROM guilds)")
    assert db.execute("SELECT count(*) FROM leaderboard").fetchone()[0] == SEED_PLAYERS
