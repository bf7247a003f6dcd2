"""Row-level security of the gameforge API, tested as the role the API connects as.

The whole module runs as ``app_user`` (``role="app_user"`` on the marker): ``db`` does
``SET ROLE app_user`` inside the test's rolled-back transaction, so grants and policies
apply exactly as in production. Rows the role may not write are set up with
``schemasync.as_admin(db)``. Each request says who the user is the way PostgREST does:
``set_config('request.jwt.claims', ..., true)``, local to the transaction.
"""

from __future__ import annotations

import json
from uuid import UUID

import pytest
from psycopg import errors

pytestmark = pytest.mark.schemasync("gameforge-api", role="app_user")


def as_request_user(db, user_id: UUID | None) -> None:
    claims = json.dumps({"sub": str(user_id), "role": "app_user"}) if user_id else ""
    db.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))


@pytest.fixture
def world(db, schemasync, make_user, make_studio, make_project) -> dict[str, UUID]:
    """Alice and Bob, each with a private project, and one public project."""
    with schemasync.as_admin(db):
        alice, bob = make_user(), make_user()
        studio = make_studio(owner_id=alice)
        ids = {"alice": alice, "bob": bob, "studio": studio,
               "alice_private": make_project("Alice's secret", studio, alice),
               "bob_private": make_project("Bob's secret", studio, bob),
               "public": make_project("Open Game", studio, bob)}
        db.execute("UPDATE projects SET is_public = true WHERE id = %s", (ids["public"],))
    return ids


def visible(db) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM projects")}


def test_a_user_sees_public_projects_and_their_own(db, world):
    as_request_user(db, world["alice"])
    assert visible(db) == {"Alice's secret", "Open Game"}


def test_an_anonymous_request_sees_only_public_projects(db, world):
    as_request_user(db, None)
    assert visible(db) == {"Open Game"}


def test_a_user_cannot_change_someone_elses_project(db, world):
    as_request_user(db, world["alice"])
    changed = db.execute("UPDATE projects SET name = 'mine now' WHERE id = %s",
                         (world["bob_private"],))
    assert changed.rowcount == 0


def test_a_user_cannot_create_a_project_for_someone_else(db, world):
    as_request_user(db, world["alice"])
    with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        db.execute("INSERT INTO projects (studio_id, owner_id, name, slug) "
                   "VALUES (%s, %s, 'Forged', 'forged')", (world["studio"], world["bob"]))


def test_the_api_role_cannot_read_api_keys(db):
    with pytest.raises(errors.InsufficientPrivilege):
        db.execute("SELECT * FROM api_keys")


@pytest.mark.schemasync("gameforge-api", role=None)
def test_the_superuser_would_see_everything(db, world):
    """Why the role matters: as the superuser, the policies above could never fail."""
    as_request_user(db, world["alice"])
    assert visible(db) == {"Alice's secret", "Bob's secret", "Open Game"}


def test_fresh_db_logs_in_as_the_api_role(fresh_db):
    assert fresh_db.execute("SELECT current_user, session_user").fetchone() == \
        ("app_user", "app_user")
