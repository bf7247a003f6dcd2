"""Several clones of both sets in one test, through the factory."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("n", range(10))
def test_factory_both_sets(schemasync_db_factory, n, tag, claim, note):
    game = schemasync_db_factory()
    cart = schemasync_db_factory("carthorse")
    twin = schemasync_db_factory("gameforge")
    assert len({game.name, cart.name, twin.name}) == 3
    with game.connect() as g, cart.connect() as c, twin.connect() as t:
        claim(g, tag)
        claim(c, tag)
        g.commit()
        c.commit()
        assert t.execute("SELECT count(*) FROM probe").fetchone()[0] == 0
        assert g.execute("SELECT to_regclass('routing.edges')").fetchone()[0] is None
        assert c.execute("SELECT to_regclass('public.players')").fetchone()[0] is None
        note("factory", g, game.name)
        note("factory", c, cart.name)
        note("factory", t, twin.name)
