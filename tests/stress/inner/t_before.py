"""gameforge before migration 002: a template of its own, built lazily by a worker."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.schemasync("gameforge", before="002")


def _assert_before_002(conn):
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == ["001"]
    assert conn.execute("SELECT to_regclass('public.guilds')").fetchone()[0] is None
    assert conn.execute("SELECT count(*) FROM achievements").fetchone()[0] == 2


@pytest.mark.parametrize("n", range(20))
def test_before_rollback(db, n, tag, claim, note):
    claim(db, tag)
    _assert_before_002(db)
    if n % 4 == 0:
        note("db-before", db)


@pytest.mark.parametrize("n", range(4))
def test_before_fresh(fresh_db, fresh_database, n, tag, claim, note):
    _assert_before_002(fresh_db)
    claim(fresh_db, tag)
    fresh_db.execute("ALTER TABLE players ADD COLUMN guild text")  # 002's change, by hand
    fresh_db.commit()
    note("fresh-before", fresh_db, fresh_database.name)
