"""What each fixture guarantees about isolation.

* ``db``: one transaction per test, rolled back afterwards.
* ``fresh_db`` / ``fresh_db_url``: a whole database cloned for this test only;
  the test may commit and run DDL.
* ``schemasync_db_factory``: more databases, of any set, in the same test.
"""

from __future__ import annotations

import psycopg
import pytest

MARKER_EMAIL = "isolation-probe@example.test"


# The next two tests run in file order: the second checks the first left nothing behind.
def test_insert_is_visible_inside_the_test(db):
    db.execute(
        "INSERT INTO users (email, username) VALUES (%s, 'isolation_probe')", (MARKER_EMAIL,)
    )
    assert (
        db.execute("SELECT count(*) FROM users WHERE email = %s", (MARKER_EMAIL,)).fetchone()[0]
        == 1
    )


def test_insert_from_previous_test_is_gone(db):
    assert (
        db.execute("SELECT count(*) FROM users WHERE email = %s", (MARKER_EMAIL,)).fetchone()[0]
        == 0
    )


def test_savepoint_rolls_back_only_the_inner_block(db):
    db.execute("INSERT INTO tags (name) VALUES ('outer')")
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("INSERT INTO tags (name) VALUES ('inner')")
        raise RuntimeError("undo the inner block")
    names = [r[0] for r in db.execute("SELECT name::text FROM tags ORDER BY name").fetchall()]
    assert names == ["outer"]


def test_fresh_db_can_commit_and_run_ddl(fresh_db, fresh_db_url):
    fresh_db.execute(
        "CREATE TABLE public.scratch_notes (id serial PRIMARY KEY, body text NOT NULL)"
    )
    fresh_db.execute("INSERT INTO public.scratch_notes (body) VALUES ('committed')")
    fresh_db.execute("ALTER TABLE public.users ADD COLUMN nickname text")
    fresh_db.commit()

    # a second, independent connection to the same database sees the committed work
    with psycopg.connect(fresh_db_url) as other:
        assert other.execute("SELECT body FROM public.scratch_notes").fetchone()[0] == "committed"
        assert (
            other.execute(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'users' AND column_name = 'nickname'"
            ).fetchone()[0]
            == 1
        )


def test_fresh_db_changes_do_not_reach_other_tests(db, fresh_db):
    for conn in (db, fresh_db):
        assert conn.execute("SELECT to_regclass('public.scratch_notes')").fetchone()[0] is None
        assert (
            conn.execute(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_name = 'users' AND column_name = 'nickname'"
            ).fetchone()[0]
            == 0
        )


def test_fresh_db_url_for_code_that_connects_itself(fresh_db_url):
    # e.g. application code that takes a DSN
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (email, username) VALUES ('app@example.test', 'app_user')")
        # autocommit: a second connection sees it at once
        with psycopg.connect(fresh_db_url) as other:
            assert (
                other.execute(
                    "SELECT username FROM users WHERE email = 'APP@example.test'"
                ).fetchone()[0]
                == "app_user"
            )
        # the schema set is installed: the trigram search function is there
        assert conn.execute("SELECT count(*) FROM search_projects('anything')").fetchone()[0] == 0


def test_fresh_db_has_all_migrations(fresh_db):
    versions = [
        r[0] for r in fresh_db.execute("SELECT version FROM schema_migrations ORDER BY version")
    ]
    # as the files record themselves (see test_migrations.py)
    assert versions == [
        "000_migration_system", "001_add_player_profiles", "002", "003_add_asset_search"]


def test_two_databases_at_once(schemasync_db_factory, needs_carthorse):
    gameforge = schemasync_db_factory()  # default set
    carthorse = schemasync_db_factory("carthorse")
    assert gameforge.name != carthorse.name
    assert gameforge.url != carthorse.url

    with gameforge.connect() as gf, carthorse.connect() as ch:
        assert gf.execute("SELECT current_database()").fetchone()[0] == gameforge.name
        assert ch.execute("SELECT current_database()").fetchone()[0] == carthorse.name

        assert gf.execute("SELECT to_regclass('public.projects')").fetchone()[0] is not None
        assert gf.execute("SELECT to_regclass('public.routing_edges')").fetchone()[0] is None
        assert ch.execute("SELECT to_regclass('public.routing_edges')").fetchone()[0] is not None
        assert ch.execute("SELECT to_regclass('public.projects')").fetchone()[0] is None

        # e.g. a sync job copying a user's favourite trail names into the game
        ch.execute(
            """
            INSERT INTO trails (app_uuid, name, region, geometry)
            VALUES ('t-1', 'Mesa Trail', 'boulder',
                    ST_GeomFromText('LINESTRING Z (-105.30 40.00 1650, -105.29 40.00 1700)', 4326))
            """
        )
        ch.commit()
        names = [r[0] for r in ch.execute("SELECT name FROM trails").fetchall()]
        gf.execute("INSERT INTO tags (name) SELECT unnest(%s::text[])", (names,))
        gf.commit()
        assert gf.execute("SELECT name::text FROM tags").fetchall() == [("Mesa Trail",)]


def test_factory_database_before_a_migration(schemasync_db_factory):
    old = schemasync_db_factory("gameforge", before="002")
    with old.connect() as conn:
        versions = [
            r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]
        assert versions == ["000_migration_system", "001_add_player_profiles"]
        assert conn.execute("SELECT to_regclass('public.achievements')").fetchone()[0] is None
