"""The database fixtures, run through the real plugin against a real embedded server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import (
    SIMPLE_SCHEMA,
    cluster_connection,
    database_names,
    make_project,
    output_of,
    run_inner,
    session_databases,
)

TWO_SETS = {
    "one": {"files": ["sql/one.sql"]},
    "two": {"files": ["sql/two.sql"]},
}
TWO_SET_FILES = {
    "sql/one.sql": SIMPLE_SCHEMA,
    "sql/two.sql": "CREATE TABLE two_only (x int);\nINSERT INTO two_only VALUES (2);\n",
}


def test_db_isolation_savepoints_and_commit_warning(pytester: pytest.Pytester,
                                                    cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_db="""
        import psycopg
        import pytest

        def names(db):
            return [r[0] for r in db.execute("SELECT name FROM items ORDER BY id")]

        def test_1_sees_schema_and_writes(db):
            assert names(db) == ["seed"]
            db.execute("INSERT INTO items (name) VALUES ('from test 1')")
            db.execute("CREATE TABLE made_by_test_1 (x int)")
            assert names(db) == ["seed", "from test 1"]

        def test_2_sees_none_of_test_1(db):
            assert names(db) == ["seed"]
            assert db.execute("SELECT to_regclass('made_by_test_1')").fetchone()[0] is None

        def test_3_savepoint(db):
            with pytest.raises(psycopg.errors.UniqueViolation):
                with db.transaction():
                    db.execute("INSERT INTO items (name) VALUES ('seed')")
            # The outer transaction is still usable after the failed savepoint.
            db.execute("INSERT INTO items (name) VALUES ('after savepoint')")
            assert names(db) == ["seed", "after savepoint"]

        def test_4_commits(db):
            db.execute("INSERT INTO items (name) VALUES ('committed')")
            db.execute("COMMIT")

        def test_5_pristine_after_commit(db):
            assert names(db) == ["seed"]
    """)
    result = run_inner(pytester, cache_dir, "-v")
    result.assert_outcomes(passed=5)
    out = output_of(result)
    assert "SchemaSyncWarning" in out
    assert "test_4_commits ended the transaction of the `db` fixture" in out
    # Only test_4 is warned about.
    assert out.count("ended the transaction of the `db` fixture") == 1


def test_failed_statement_and_failed_test_do_not_spoil_the_next(pytester: pytest.Pytester,
                                                                cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_db="""
        import psycopg
        import pytest

        SEEN = []

        def state(db):
            SEEN.append(db.execute("SELECT current_database()").fetchone()[0])
            return [r[0] for r in db.execute("SELECT name FROM items ORDER BY id")]

        def test_1_leaves_transaction_in_error(db):
            assert state(db) == ["seed"]
            db.execute("INSERT INTO items (name) VALUES ('before error')")
            with pytest.raises(psycopg.errors.UniqueViolation):
                db.execute("INSERT INTO items (name) VALUES ('seed')")
            assert db.info.transaction_status == psycopg.pq.TransactionStatus.INERROR

        def test_2_clean(db):
            assert state(db) == ["seed"]
            db.execute("INSERT INTO items (name) VALUES ('then fails')")
            raise AssertionError("failing on purpose")

        def test_3_clean_again(db):
            assert state(db) == ["seed"]

        def test_4_same_rollback_database_throughout():
            # Nothing committed, so the one rollback database served every test.
            assert len(SEEN) == 3 and len(set(SEEN)) == 1
            assert SEEN[0].startswith("sss_")
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=3, failed=1)
    out = output_of(result)
    assert "failing on purpose" in out
    assert "SchemaSyncWarning" not in out


def test_commit_then_more_statements_still_detected(pytester: pytest.Pytester,
                                                    cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_db="""
        def test_1_commits_then_reads(db):
            db.execute("INSERT INTO items (name) VALUES ('committed')")
            db.execute("COMMIT")
            db.execute("SELECT 1")  # psycopg opens a new transaction here

        def test_2_pristine(db):
            assert [r[0] for r in db.execute("SELECT name FROM items")] == ["seed"]
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=2)


def test_fresh_db_commits_ddl_and_is_dropped(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    record = pytester.path / "fresh.json"
    pytester.makepyfile(test_fresh=f"""
        import json
        import psycopg

        RECORD = {str(record)!r}

        def test_1_fresh_db(fresh_db):
            fresh_db.execute("INSERT INTO items (name) VALUES ('kept')")
            fresh_db.commit()
            fresh_db.execute("CREATE TABLE extra (x int)")
            fresh_db.execute("INSERT INTO extra VALUES (1)")
            fresh_db.commit()
            name = fresh_db.execute("SELECT current_database()").fetchone()[0]
            # A second connection sees the committed data.
            with psycopg.connect(fresh_db.info.dsn) as other:
                assert other.execute("SELECT count(*) FROM extra").fetchone()[0] == 1
                assert other.execute(
                    "SELECT count(*) FROM items WHERE name = 'kept'").fetchone()[0] == 1
            with open(RECORD, "w") as f:
                json.dump({{"fresh": name}}, f)

        def test_2_dropped_afterwards(schemasync):
            import time

            with open(RECORD) as f:
                name = json.load(f)["fresh"]
            # Clones are dropped by the pool's background thread: give it a moment.
            deadline = time.monotonic() + 10
            with psycopg.connect(schemasync.server.conninfo(), autocommit=True) as admin:
                while True:
                    row = admin.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                    if row is None or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
            assert row is None, name

        def test_3_fresh_db_url(fresh_db_url, fresh_database):
            assert fresh_db_url.startswith("postgresql://")
            with psycopg.connect(fresh_db_url) as conn:
                assert conn.execute("SELECT current_database()").fetchone()[0] == \\
                    fresh_database.name
                assert conn.execute("SELECT name FROM items").fetchall() == [("seed",)]
                conn.execute("INSERT INTO items (name) VALUES ('via url')")
                conn.commit()

        def test_4_each_test_gets_its_own(fresh_db):
            assert fresh_db.execute("SELECT name FROM items").fetchall() == [("seed",)]
            assert fresh_db.execute("SELECT to_regclass('extra')").fetchone()[0] is None
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=4)
    fresh = json.loads(record.read_text())["fresh"]
    assert fresh.startswith("ssc_")
    with cluster_connection(cache_dir) as admin:
        names = database_names(admin)
    assert fresh not in names
    assert session_databases(names) == set()


def test_factory_and_markers_pick_sets(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets=TWO_SETS, tool={"default-set": "one"}, files=TWO_SET_FILES)
    pytester.makepyfile(test_factory="""
        import psycopg

        def tables(conn):
            return sorted(r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))

        def test_two_sets_at_once(schemasync_db_factory):
            a = schemasync_db_factory("one")
            b = schemasync_db_factory("two")
            c = schemasync_db_factory()  # the default set
            assert len({a.name, b.name, c.name}) == 3
            with a.connect() as ca, b.connect() as cb, c.connect() as cc:
                assert tables(ca) == ["items"]
                assert tables(cb) == ["two_only"]
                assert tables(cc) == ["items"]
                assert cb.execute("SELECT x FROM two_only").fetchone()[0] == 2
    """)
    pytester.makepyfile(test_markers="""
        import pytest

        pytestmark = pytest.mark.schemasync("two")

        def tables(conn):
            return sorted(r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))

        def test_module_marker(db):
            assert tables(db) == ["two_only"]

        def test_module_marker_fresh(fresh_db):
            assert tables(fresh_db) == ["two_only"]

        @pytest.mark.schemasync("one")
        def test_function_marker_beats_module(db):
            assert tables(db) == ["items"]

        @pytest.mark.schemasync(set="one")
        def test_keyword_form(db):
            assert tables(db) == ["items"]

        @pytest.mark.schemasync("one")
        class TestClass:
            def test_class_marker(self, db):
                assert tables(db) == ["items"]

            @pytest.mark.schemasync("two")
            def test_function_marker_beats_class(self, db):
                assert tables(db) == ["two_only"]

            def test_factory_follows_marker(self, schemasync_db_factory):
                with schemasync_db_factory().connect() as conn:
                    assert tables(conn) == ["items"]
    """)
    pytester.makepyfile(test_default="""
        def test_default_set_without_marker(db):
            assert db.execute("SELECT name FROM items").fetchall() == [("seed",)]
    """)
    result = run_inner(pytester, cache_dir, "-v")
    result.assert_outcomes(passed=9)
    with cluster_connection(cache_dir) as admin:
        assert session_databases(database_names(admin)) == set()


def test_marker_before_migration(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(
        pytester,
        sets={"app": {"files": ["schema.sql"], "migrations": "migrations"}},
        files={
            "schema.sql": "CREATE TABLE base (id int PRIMARY KEY);\n",
            "migrations/001_add_a.sql": "CREATE TABLE a (id int);\n",
            "migrations/002_add_b.sql": "CREATE TABLE b (id int);\n",
            "migrations/003_add_c.sql": "ALTER TABLE b ADD COLUMN note text;\n",
        },
    )
    pytester.makepyfile(test_mig="""
        import pytest

        def has(db, name):
            return db.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None

        def versions(db):
            return [r[0] for r in db.execute(
                "SELECT version FROM schema_migrations ORDER BY version")]

        def test_all_applied(db):
            assert has(db, "base") and has(db, "a") and has(db, "b")
            assert versions(db) == ["001", "002", "003"]

        @pytest.mark.schemasync("app", before="002")
        def test_before_002(db):
            assert has(db, "base") and has(db, "a")
            assert not has(db, "b")
            assert versions(db) == ["001"]

        @pytest.mark.schemasync(before="003")
        def test_before_003_default_set(fresh_db):
            assert has(fresh_db, "b")
            cols = [r[0] for r in fresh_db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'b'")]
            assert cols == ["id"]
            assert versions(fresh_db) == ["001", "002"]

        @pytest.mark.schemasync(before="042")
        def test_unknown_version(db):
            pass
    """)
    result = run_inner(pytester, cache_dir, "-v")
    result.assert_outcomes(passed=3, errors=1)
    out = output_of(result)
    assert "No migration has version '042' (known: 001, 002, 003)" in out
    assert "Traceback" not in out


def test_unknown_set_in_marker(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets=TWO_SETS, tool={"default-set": "one"}, files=TWO_SET_FILES)
    pytester.makepyfile(test_unknown="""
        import pytest

        @pytest.mark.schemasync("nope")
        def test_unknown(db):
            pass

        @pytest.mark.schemasync("nope")
        def test_unknown_factory(schemasync_db_factory):
            schemasync_db_factory()

        @pytest.mark.schemasync("one", "two")
        def test_two_names(db):
            pass

        @pytest.mark.schemasync("one", bogus=1)
        def test_bad_kwarg(db):
            pass

        def test_fine(db):
            pass
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1, errors=3, failed=1)
    out = output_of(result)
    assert out.count("Unknown schema set 'nope' (configured sets: one, two)") >= 2
    assert "schemasync takes one set name" in out
    assert "unknown argument(s) ['bogus']" in out


def test_zero_config_gives_an_empty_database(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester)  # a pyproject.toml without [tool.schemasync]
    pytester.makepyfile(test_zero="""
        def user_tables(conn):
            return conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                "('pg_catalog', 'information_schema')").fetchone()[0]

        def test_db(db):
            assert user_tables(db) == 0
            db.execute("CREATE TABLE scratch (x int)")

        def test_db_again(db):
            assert user_tables(db) == 0

        def test_fresh(fresh_db):
            assert user_tables(fresh_db) == 0
            fresh_db.execute("CREATE TABLE scratch (x int)")
            fresh_db.commit()
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=3)
    assert any("embedded server starts on first use" in line for line in result.outlines)


def test_no_pyproject_at_all(pytester: pytest.Pytester, cache_dir: Path) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_bare="""
        def test_db(db):
            assert db.execute("SELECT 1").fetchone()[0] == 1
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)


def test_flag_value_as_separate_argument(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_items="""
        def test_items(db):
            assert db.execute("SELECT name FROM items").fetchall() == [("seed",)]
    """)
    # Once the directory exists (every run after the first), pytest looks at it.
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--schemasync-cache-dir", str(cache_dir), timeout=120)
    # pytest takes the separate value for a test path and its rootdir; the plugin still finds
    # [tool.schemasync] from the invocation directory, runs the test, and says how to fix it.
    result.assert_outcomes(passed=1, warnings=1)
    out = output_of(result)
    assert f"pytest chose its rootdir ({cache_dir})" in out
    assert "write --schemasync-cache-dir=VALUE instead" in out
    assert "set 'default': template from cache" in out
