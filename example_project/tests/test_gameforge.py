"""Behaviour of the gameforge schema (db/gameforge/schema.sql + migrations).

Every test gets the ``db`` fixture: a connection to a database with the
whole set installed, inside a transaction that is rolled back afterwards.
Note that ``now()`` is the transaction start time, so it is the same value
for every statement in a test.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors


def test_user_role_enum_values_in_order(db):
    roles = db.execute("SELECT enum_range(NULL::user_role)::text[]").fetchone()[0]
    assert roles == ["player", "developer", "studio_admin", "admin"]


def test_schema_enums_exist(db):
    rows = db.execute(
        """
        SELECT t.typname
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype = 'e'
        """
    ).fetchall()
    names = {r[0] for r in rows}
    assert {
        "user_role",
        "project_status",
        "asset_type",
        "build_status",
        "platform",
        "collaborator_role",
    } <= names


def test_extensions_installed(db):
    rows = db.execute("SELECT extname FROM pg_extension").fetchall()
    assert {"citext", "pg_trgm"} <= {r[0] for r in rows}
    # Keys come from core gen_random_uuid() (behind uuid-ossp's name), not from uuid-ossp.
    assert "uuid-ossp" not in {r[0] for r in rows}


def test_new_user_gets_uuid_and_defaults(db, make_user):
    user_id = make_user(email="dev@studio.test", username="dev_one")
    role, is_active = db.execute(
        "SELECT role::text, is_active FROM users WHERE id = %s", (user_id,)
    ).fetchone()
    assert user_id.version == 4
    assert role == "developer"
    assert is_active is True


def test_email_uniqueness_is_case_insensitive(db, make_user):
    make_user(email="A@x.io", username="alice")

    with pytest.raises(errors.UniqueViolation), db.transaction():
        make_user(email="a@x.io", username="alice2")

    # the savepoint was rolled back; the outer transaction is still usable
    count = db.execute("SELECT count(*) FROM users WHERE email = 'A@X.IO'").fetchone()[0]
    assert count == 1


def test_username_format_is_checked(db, make_user):
    with pytest.raises(errors.CheckViolation), db.transaction():
        make_user(username="no spaces allowed")


def test_search_projects_finds_misspelled_name(db, make_project):
    make_project("Starfall Odyssey")
    make_project("Dungeon Forge")
    make_project("Ocean Drift")

    rows = db.execute("SELECT name, score FROM search_projects(%s)", ("Starfal Odysey",)).fetchall()
    assert rows, "trigram search should tolerate typos"
    assert rows[0][0] == "Starfall Odyssey"
    assert 0 < rows[0][1] <= 1
    assert "Ocean Drift" not in {r[0] for r in rows}


def test_search_projects_substring_and_limit(db, make_project):
    for i in range(5):
        make_project(f"Forge Tales {i}")

    rows = db.execute("SELECT name FROM search_projects('forge', 3)").fetchall()
    assert len(rows) == 3
    assert all("Forge" in r[0] for r in rows)


def test_project_name_trigram_index_exists(db):
    indexdef = db.execute(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_projects_name_trgm'"
    ).fetchone()[0]
    assert "gin" in indexdef and "gin_trgm_ops" in indexdef


def test_project_overview_view(db, make_user, make_studio, make_project):
    owner = make_user(username="lead_dev")
    contributor = make_user()
    studio = make_studio(name="Night Owl Games", owner_id=owner)
    project = make_project("Starfall Odyssey", studio_id=studio, owner_id=owner)
    make_project("Side Quest", studio_id=studio, owner_id=owner)

    db.execute(
        "INSERT INTO project_collaborators (project_id, user_id, role) "
        "VALUES (%s, %s, 'owner'), (%s, %s, 'contributor')",
        (project, owner, project, contributor),
    )
    db.execute(
        """
        INSERT INTO assets (project_id, name, asset_type, path, is_deleted) VALUES
            (%(p)s, 'hero.png', 'texture', 'textures/hero.png', false),
            (%(p)s, 'theme.ogg', 'audio', 'audio/theme.ogg', false),
            (%(p)s, 'old.fbx', 'model', 'models/old.fbx', true)
        """,
        {"p": project},
    )
    db.execute(
        """
        INSERT INTO builds (project_id, build_number, platform, status) VALUES
            (%(p)s, 1, 'windows', 'failed'),
            (%(p)s, 2, 'windows', 'succeeded')
        """,
        {"p": project},
    )

    row = db.execute(
        """
        SELECT studio_name, owner_username, collaborator_count, asset_count,
               build_count, latest_build_status::text
        FROM project_overview WHERE id = %s
        """,
        (project,),
    ).fetchone()
    assert row == ("Night Owl Games", "lead_dev", 2, 2, 2, "succeeded")

    side = db.execute(
        "SELECT collaborator_count, asset_count, build_count, latest_build_status "
        "FROM project_overview WHERE name = 'Side Quest'"
    ).fetchone()
    assert side == (0, 0, 0, None)


def test_active_builds_view_lists_queued_and_running_only(db, make_user, make_project):
    dev = make_user(username="ci_bot")
    project = make_project("Starfall Odyssey")
    db.execute(
        """
        INSERT INTO builds
            (project_id, build_number, platform, status, triggered_by, started_at)
        VALUES
            (%(p)s, 1, 'linux',   'succeeded', %(u)s, now() - interval '1 hour'),
            (%(p)s, 2, 'linux',   'running',   %(u)s, now() - interval '5 minutes'),
            (%(p)s, 3, 'windows', 'queued',    NULL,  NULL),
            (%(p)s, 4, 'web',     'cancelled', NULL,  NULL)
        """,
        {"p": project, "u": dev},
    )

    rows = db.execute(
        """
        SELECT build_number, status::text, project_name, triggered_by_username, running_for
        FROM active_builds ORDER BY build_number
        """
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(2, "running"), (3, "queued")]
    running = rows[0]
    assert running[2] == "Starfall Odyssey"
    assert running[3] == "ci_bot"
    assert running[4].total_seconds() == pytest.approx(300)
    assert rows[1][4] is None


def test_updated_at_trigger_fires_on_update(db, make_studio):
    # The trigger is BEFORE UPDATE only, so an INSERT can backdate the row.
    project = db.execute(
        """
        INSERT INTO projects (studio_id, name, slug, created_at, updated_at)
        VALUES (%s, 'Starfall Odyssey', 'starfall', '2000-01-01', '2000-01-01')
        RETURNING id
        """,
        (make_studio(),),
    ).fetchone()[0]

    db.execute("UPDATE projects SET description = 'space opera' WHERE id = %s", (project,))

    created_year, bumped = db.execute(
        "SELECT extract(year FROM created_at)::int, updated_at = now() FROM projects WHERE id = %s",
        (project,),
    ).fetchone()
    assert created_year == 2000
    assert bumped is True  # now() is the test transaction's start time


def test_updated_at_trigger_overrides_explicit_value(db, make_project):
    project = make_project("Starfall Odyssey")
    db.execute("UPDATE projects SET updated_at = '1999-12-31' WHERE id = %s", (project,))
    assert (
        db.execute("SELECT updated_at = now() FROM projects WHERE id = %s", (project,)).fetchone()[
            0
        ]
        is True
    )


def test_deleting_project_cascades(db, make_user, make_project):
    author = make_user()
    project = make_project("Doomed Prototype")
    asset = db.execute(
        "INSERT INTO assets (project_id, name, asset_type, path) "
        "VALUES (%s, 'a.png', 'texture', 'a.png') RETURNING id",
        (project,),
    ).fetchone()[0]
    db.execute(
        "INSERT INTO asset_versions (asset_id, version, storage_key, checksum_sha256, size_bytes) "
        "VALUES (%s, 1, 's3://bucket/a.png', repeat('a', 64), 10)",
        (asset,),
    )
    build = db.execute(
        "INSERT INTO builds (project_id, build_number, platform) "
        "VALUES (%s, 1, 'linux') RETURNING id",
        (project,),
    ).fetchone()[0]
    db.execute(
        "INSERT INTO build_artifacts (build_id, file_name, storage_key, size_bytes) "
        "VALUES (%s, 'game.zip', 'k', 1)",
        (build,),
    )
    db.execute(
        "INSERT INTO comments (project_id, asset_id, author_id, body) VALUES (%s, %s, %s, 'nice')",
        (project, asset, author),
    )

    db.execute("DELETE FROM projects WHERE id = %s", (project,))

    counts = db.execute(
        """
        SELECT (SELECT count(*) FROM assets),
               (SELECT count(*) FROM asset_versions),
               (SELECT count(*) FROM builds),
               (SELECT count(*) FROM build_artifacts),
               (SELECT count(*) FROM comments)
        """
    ).fetchone()
    assert counts == (0, 0, 0, 0, 0)


def test_deleting_user_sets_owner_null(db, make_user, make_studio, make_project):
    owner = make_user()
    studio = make_studio(owner_id=make_user())
    project = make_project("Orphaned", studio_id=studio, owner_id=owner)

    db.execute("DELETE FROM users WHERE id = %s", (owner,))

    assert (
        db.execute("SELECT owner_id FROM projects WHERE id = %s", (project,)).fetchone()[0] is None
    )


def test_build_times_are_checked(db, make_project):
    project = make_project("Clockwork")
    with pytest.raises(errors.CheckViolation), db.transaction():
        db.execute(
            """
            INSERT INTO builds (project_id, build_number, platform, started_at, finished_at)
            VALUES (%s, 1, 'linux', now(), now() - interval '1 minute')
            """,
            (project,),
        )


def test_only_one_active_api_key_per_prefix(db, make_user):
    user = make_user()
    insert = (
        "INSERT INTO api_keys (user_id, name, key_prefix, key_hash, revoked_at) "
        "VALUES (%s, %s, 'gf_abc12', 'hash', %s)"
    )
    db.execute(insert, (user, "old", None))
    db.execute("UPDATE api_keys SET revoked_at = now()")
    db.execute(insert, (user, "new", None))  # allowed: the old one is revoked

    with pytest.raises(errors.UniqueViolation), db.transaction():
        db.execute(insert, (user, "dup", None))


def test_unlocking_achievement_awards_xp(db, make_user, make_project):
    """Migrations 001 (player_profiles) and 002 (achievements) are installed."""
    player = make_user(username="speedrunner", role="player")
    db.execute(
        "INSERT INTO player_profiles (user_id, gamer_tag) VALUES (%s, 'SpeedRunner')", (player,)
    )
    project = make_project("Starfall Odyssey")
    achievement = db.execute(
        """
        INSERT INTO achievements (project_id, code, name, rarity, points)
        VALUES (%s, 'FIRST_BLOOD', 'First Blood', 'rare', 150) RETURNING id
        """,
        (project,),
    ).fetchone()[0]

    db.execute(
        "INSERT INTO player_achievements (user_id, achievement_id) VALUES (%s, %s)",
        (player, achievement),
    )

    xp, level = db.execute(
        "SELECT xp, level FROM player_profiles WHERE user_id = %s", (player,)
    ).fetchone()
    assert (xp, level) == (150, 2)
    score = db.execute(
        "SELECT unlocked_count, total_points FROM player_achievement_scores WHERE user_id = %s",
        (player,),
    ).fetchone()
    assert score == (1, 150)


def test_rows_come_back_as_tuples(db):
    # documents the connection we get: plain psycopg 3, default row factory
    assert isinstance(db, psycopg.Connection)
    assert db.execute("SELECT 1, 'x'").fetchone() == (1, "x")
