"""Markers on a class and on a method (the closest one wins)."""

from __future__ import annotations

import pytest


@pytest.mark.schemasync("carthorse")
class TestMarkers:
    @pytest.mark.parametrize("n", range(25))
    def test_class_marker(self, db, n, tag, claim):
        claim(db, tag)
        assert db.execute("SELECT count(*) FROM routing.nodes").fetchone()[0] == 5

    @pytest.mark.schemasync("gameforge")
    @pytest.mark.parametrize("n", range(25))
    def test_method_marker_wins(self, db, n, tag, claim):
        claim(db, tag)
        assert db.execute("SELECT count(*) FROM players").fetchone()[0] == 1
        assert db.execute("SELECT to_regclass('routing.nodes')").fetchone()[0] is None
