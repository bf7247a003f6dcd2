"""db/gameforge/migrations: bookkeeping, and migration 003 tested on its own.

The files follow the team's template (see 000_migration_system.sql): each records
itself with ``record_migration('<stem>', ...)`` (002, an older file, inserts a row
``'002'``), and pytest-schemasync completes those rows instead of adding its own.

``@pytest.mark.schemasync("gameforge", before="003")`` gives a database built
from schema.sql plus migrations 000-002 only, so 003 can be run by hand
against data written in the pre-003 shape (without its own BEGIN/COMMIT, which
would commit the test's transaction: ``transaction_body`` blanks them).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pytest_schemasync.migrations import transaction_body

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "db" / "gameforge" / "migrations"
MIGRATION_003 = MIGRATIONS_DIR / "003_add_asset_search.sql"
# As the files record themselves: by stem, 002 by number.
VERSIONS = ["000_migration_system", "001_add_player_profiles", "002", "003_add_asset_search"]


def run_003(db) -> None:
    db.execute(transaction_body(MIGRATION_003.read_text(), MIGRATION_003))


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))


def column_exists(db, table: str, column: str) -> bool:
    return (
        db.execute(
            """
            SELECT count(*) FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = %s AND column_name = %s
            """,
            (table, column),
        ).fetchone()[0]
        == 1
    )


def enum_labels(db, type_name: str) -> list[str]:
    # Reads pg_enum rather than enum_range(): a value added by ALTER TYPE ... ADD VALUE
    # in the current transaction may not be *used* until it commits, but it is listed.
    rows = db.execute(
        "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s::regtype ORDER BY enumsortorder",
        (type_name,),
    ).fetchall()
    return [r[0] for r in rows]


def test_migration_files_are_numbered_without_gaps():
    versions = [p.name[:3] for p in migration_files()]
    assert versions == [f"{i:03d}" for i in range(len(versions))]
    assert versions[-1] == "003"


def test_all_migrations_are_recorded_once(db):
    rows = db.execute(
        "SELECT version, description, checksum FROM schema_migrations ORDER BY version"
    ).fetchall()
    assert [r[0] for r in rows] == VERSIONS
    assert all(r[1] for r in rows), "every migration has a description"
    # The placeholders the files pass were replaced by the files' real sha256 sums.
    sums = [hashlib.sha256(p.read_bytes()).hexdigest() for p in migration_files()]
    assert [r[2] for r in rows] == sums


def test_team_functions_work_with_the_rows(db):
    for version, path in zip(VERSIONS, migration_files(), strict=True):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert db.execute("SELECT validate_migration_checksum(%s, %s)",
                          (version, digest)).fetchone()[0] is True
        assert db.execute("SELECT validate_migration_checksum(%s, 'sha256_checksum')",
                          (version,)).fetchone()[0] is False
    statuses = db.execute("SELECT checksum_status FROM migration_status").fetchall()
    assert statuses == [("verified",)] * 4
    db.execute("SELECT record_migration('004_hotfix', 'Hotfix', NULL, 'migrations/004.sql')")
    assert db.execute("SELECT version, checksum_status, is_latest FROM migration_status "
                      "ORDER BY sequence_no DESC LIMIT 1").fetchone() == (
        "004_hotfix", "unverified", True)


def test_migration_status_view(db):
    rows = db.execute(
        "SELECT version, sequence_no, is_latest FROM migration_status ORDER BY version"
    ).fetchall()
    assert [r[0] for r in rows] == VERSIONS
    assert [r[1] for r in rows] == [1, 2, 3, 4]
    assert [r[2] for r in rows] == [False, False, False, True]


def test_default_database_has_everything_003_adds(db):
    assert column_exists(db, "assets", "search_name")
    assert column_exists(db, "assets", "is_searchable")
    assert "material" in enum_labels(db, "asset_type")
    assert db.execute("SELECT to_regprocedure('search_assets(uuid, text, integer)')").fetchone()[0]


@pytest.mark.schemasync("gameforge", before="003")
def test_database_before_003_lacks_asset_search(db):
    versions = db.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
    assert [v[0] for v in versions] == VERSIONS[:3]
    assert not column_exists(db, "assets", "search_name")
    assert not column_exists(db, "assets", "is_searchable")
    assert "material" not in enum_labels(db, "asset_type")
    assert (
        db.execute("SELECT to_regprocedure('search_assets(uuid, text, integer)')").fetchone()[0]
        is None
    )
    # ... but 001 and 002 are there
    assert db.execute("SELECT to_regclass('public.player_profiles')").fetchone()[0] is not None
    assert db.execute("SELECT to_regclass('public.achievements')").fetchone()[0] is not None


@pytest.mark.schemasync("gameforge", before="003")
def test_003_backfills_existing_assets(db, make_project):
    project = make_project("Starfall Odyssey")
    db.execute(
        """
        INSERT INTO assets (project_id, name, asset_type, path, is_deleted) VALUES
            (%(p)s, 'Hero_Sword-Diffuse.png', 'texture', 'textures/hero_sword.png', false),
            (%(p)s, 'Boss.Arena.Level',       'level',   'levels/boss_arena.level',  false),
            (%(p)s, 'Old_Boss.FBX',           'model',   'models/old_boss.fbx',      true)
        """,
        {"p": project},
    )

    run_003(db)

    rows = db.execute(
        "SELECT name, search_name, is_searchable FROM assets ORDER BY path"
    ).fetchall()
    assert rows == [
        ("Boss.Arena.Level", "boss arena", True),
        ("Old_Boss.FBX", "old boss", False),
        ("Hero_Sword-Diffuse.png", "hero sword diffuse", True),
    ]
    assert "material" in enum_labels(db, "asset_type")


@pytest.mark.schemasync("gameforge", before="003")
def test_003_search_works_after_upgrade(db, make_project):
    project = make_project("Starfall Odyssey")
    db.execute(
        "INSERT INTO assets (project_id, name, asset_type, path) "
        "VALUES (%s, 'Hero_Sword-Diffuse.png', 'texture', 'a.png')",
        (project,),
    )
    run_003(db)

    # rows written after the upgrade are kept up to date by the new trigger
    db.execute(
        "INSERT INTO assets (project_id, name, asset_type, path) "
        "VALUES (%s, 'Villain_Cape.png', 'texture', 'b.png')",
        (project,),
    )
    assert (
        db.execute("SELECT search_name FROM assets WHERE path = 'b.png'").fetchone()[0]
        == "villain cape"
    )

    hits = db.execute("SELECT name FROM search_assets(%s, 'hero swrd')", (project,)).fetchall()
    assert [h[0] for h in hits] == ["Hero_Sword-Diffuse.png"]

    # soft-deleting an asset hides it from search
    db.execute("UPDATE assets SET is_deleted = true WHERE path = 'a.png'")
    assert (
        db.execute("SELECT count(*) FROM search_assets(%s, 'hero sword')", (project,)).fetchone()[0]
        == 0
    )


@pytest.mark.schemasync("gameforge", before="003")
def test_003_leaves_other_tables_alone(db, make_user):
    make_user(email="keep@me.test", username="keeper")
    run_003(db)
    assert (
        db.execute("SELECT username FROM users WHERE email = 'keep@me.test'").fetchone()[0]
        == "keeper"
    )
