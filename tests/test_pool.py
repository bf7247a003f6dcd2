"""The background clone pool on its own, on the real server of this test session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from pytest_schemasync.pool import ClonePool
from pytest_schemasync.scratch import Scratch


@pytest.fixture
def made(schemasync: Scratch) -> Iterator[list[str]]:
    """Names the pool's create callable made; any still present are dropped afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        schemasync.manager.server_admin.drop(name)


def _pool(schemasync: Scratch, made: list[str], size: int) -> ClonePool:
    manager = schemasync.manager

    def create(conn: psycopg.Connection[Any], template: str) -> str:
        name = manager._create_clone(conn, template)
        made.append(name)
        return name

    return ClonePool(manager.server_admin.connect, create,
                     lambda conn, name: manager.server_admin.drop(name, conn), size)


def _exists(schemasync: Scratch, name: str) -> bool:
    return name in schemasync.manager.server_admin.names("datname = %s", name)


def _wait_ready(pool: ClonePool, template: str, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(pool._ready.get(template, [])) < count:
        assert time.monotonic() < deadline, f"pool never had {count} clones ready"
        time.sleep(0.01)


def test_fills_behind_the_first_take_up_to_its_size(schemasync: Scratch,
                                                     made: list[str]) -> None:
    template = schemasync.manager.template().name
    pool = _pool(schemasync, made, size=2)
    assert pool.take(template) is None  # nothing made ahead yet: the caller clones itself
    _wait_ready(pool, template, 2)
    first = pool.take(template)
    assert first is not None and _exists(schemasync, first)
    _wait_ready(pool, template, 2)  # refilled behind the take
    leftover = pool.close()
    assert len(leftover) == 2 and first not in leftover
    assert len(made) == 3  # never more than `size` made ahead
    assert all(_exists(schemasync, name) for name in leftover)  # close leaves them to us
    assert pool.errors == []


def test_discard_drops_in_the_background_and_close_waits_for_it(schemasync: Scratch,
                                                                 made: list[str]) -> None:
    template = schemasync.manager.template().name
    pool = _pool(schemasync, made, size=1)
    name = schemasync.manager._create_clone(schemasync.manager.admin, template)
    made.append(name)
    pool.discard(name)
    assert pool.close() == []
    assert not _exists(schemasync, name)


def test_a_failing_create_is_reported_and_stops_the_refills(schemasync: Scratch,
                                                            made: list[str]) -> None:
    pool = _pool(schemasync, made, size=2)
    assert pool.take("no_such_template_here") is None
    deadline = time.monotonic() + 30
    while not pool.errors:
        assert time.monotonic() < deadline, "the failure was never recorded"
        time.sleep(0.01)
    assert "fill no_such_template_here" in pool.errors[0]
    assert 'template database "no_such_template_here" does not exist' in pool.errors[0]
    pool.take("no_such_template_here")  # no new fill job after an error
    assert pool._jobs.empty()
    assert pool.close() == [] and made == []
