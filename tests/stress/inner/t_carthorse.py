"""carthorse, picked by a module marker."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

pytestmark = pytest.mark.schemasync("carthorse")


@pytest.mark.parametrize("n", range(60))
def test_trails_rollback(db, n, tag, claim, note):
    claim(db, tag)
    db.execute(
        "INSERT INTO trails (region_id, name, length_km) "
        "SELECT id, %s, 1.5 FROM regions WHERE code = 'boulder'", (f"t{n}",))
    assert db.execute("SELECT total_trail_km('boulder')").fetchone()[0] == Decimal("1.500")
    route = db.execute("SELECT node FROM routing.find_route(1, 5) ORDER BY step").fetchall()
    assert [r[0] for r in route] == [1, 4, 5]
    assert db.execute("SELECT to_regclass('public.players')").fetchone()[0] is None
    if n % 7 == 0:
        note("db", db)


@pytest.mark.parametrize("n", range(8))
def test_routing_fresh_commit(fresh_db, fresh_database, n, tag, claim, note):
    claim(fresh_db, tag)
    fresh_db.execute("INSERT INTO routing.edges (source, target, cost) VALUES (1, 5, 0.1)")
    fresh_db.commit()
    route = fresh_db.execute("SELECT node FROM routing.find_route(1, 5) ORDER BY step")
    assert [r[0] for r in route] == [1, 5]
    note("fresh", fresh_db, fresh_database.name)


@pytest.mark.parametrize("n", range(5))
def test_routing_url(fresh_db_url, n, tag, claim):
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        claim(conn, tag)
        conn.execute(f"CREATE TABLE routing.extra_{n} (id integer)")
        assert conn.execute("SELECT count(*) FROM routing.nodes").fetchone()[0] == 5
