"""``adb`` and ``afresh_db`` under pytest-asyncio (strict and auto mode) and under anyio's
plugin, each run through the real plugin against a real embedded server."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    cluster_connection,
    database_names,
    make_project,
    output_of,
    run_inner,
    session_databases,
)

SETS = {
    "one": {"files": ["one.sql"], "migrations": "migrations"},
    "two": {"files": ["two.sql"]},
}
FILES = {
    "one.sql": "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL UNIQUE);\n"
               "INSERT INTO items (name) VALUES ('seed');\n",
    "migrations/001_add_a.sql": "CREATE TABLE a (id int);\n",
    "migrations/002_add_b.sql": "CREATE TABLE b (id int);\n",
    "two.sql": "CREATE TABLE two_only (x int);\n",
}

# The same tests for every runner; {mark} is how the runner is asked for.
TESTS = """
import asyncio

import psycopg
import pytest

from pytest_schemasync.asyncfixtures import opened_in_key

MARK = {mark}
SEEN = []


async def names(conn):
    cur = await conn.execute("SELECT name FROM items ORDER BY id")
    return [r[0] for r in await cur.fetchall()]


async def has(conn, table):
    cur = await conn.execute("SELECT to_regclass(%s)", (table,))
    return (await cur.fetchone())[0] is not None


def opened_in_this_loop(request):
    return request.node.stash[opened_in_key] is asyncio.get_running_loop()


@MARK
async def test_1_writes_and_savepoints(adb, request):
    assert opened_in_this_loop(request)
    assert isinstance(adb, psycopg.AsyncConnection)
    assert await names(adb) == ["seed"]
    await adb.execute("INSERT INTO items (name) VALUES ('from test 1')")
    await adb.execute("CREATE TABLE made_by_test_1 (x int)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with adb.transaction():
            await adb.execute("INSERT INTO items (name) VALUES ('seed')")
    assert await names(adb) == ["seed", "from test 1"]  # the savepoint kept the rest
    SEEN.append(adb.info.backend_pid)


@MARK
async def test_2_sees_none_of_test_1(adb):
    assert await names(adb) == ["seed"]
    assert not await has(adb, "made_by_test_1")
    SEEN.append(adb.info.backend_pid)
    assert SEEN[0] != SEEN[1]  # a connection of its own per test


@MARK
async def test_3_commits(adb):
    await adb.execute("INSERT INTO items (name) VALUES ('committed')")
    await adb.execute("COMMIT")
    await adb.execute("SELECT 1")  # psycopg opens a new transaction: still detected


@MARK
async def test_4_pristine_after_commit(adb, db):
    assert await names(adb) == ["seed"]
    # adb and db share this process's rollback database, in transactions of their own.
    cur = await adb.execute("SELECT current_database()")
    name = (await cur.fetchone())[0]
    assert name.startswith("sss_")
    assert db.execute("SELECT current_database()").fetchone()[0] == name


@MARK
async def test_5_statement_fails_and_the_test_too(adb):
    await adb.execute("INSERT INTO items (name) VALUES ('before error')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        await adb.execute("INSERT INTO items (name) VALUES ('seed')")
    raise AssertionError("failing on purpose")


@MARK
async def test_6_clean_after_a_failure(adb):
    assert await names(adb) == ["seed"]


@MARK
@pytest.mark.schemasync("two")
async def test_7_marker_picks_the_set(adb):
    assert await has(adb, "two_only") and not await has(adb, "items")


@MARK
@pytest.mark.schemasync("one", before="002")
async def test_8_marker_before(adb):
    assert await has(adb, "a") and not await has(adb, "b")


@MARK
async def test_9_afresh_db_commits_and_ddl(afresh_db, request):
    assert opened_in_this_loop(request)
    await afresh_db.execute("INSERT INTO items (name) VALUES ('kept')")
    await afresh_db.execute("CREATE TABLE extra (x int)")
    await afresh_db.commit()
    cur = await afresh_db.execute("SELECT current_database()")
    name = (await cur.fetchone())[0]
    assert name.startswith("ssc_")
    async with await psycopg.AsyncConnection.connect(afresh_db.info.dsn) as other:
        cur = await other.execute("SELECT count(*) FROM items WHERE name = 'kept'")
        assert (await cur.fetchone())[0] == 1


@MARK
async def test_10_afresh_db_is_its_own(afresh_db):
    assert await names(afresh_db) == ["seed"]
    assert not await has(afresh_db, "extra")


def test_11_sync_test_asking_for_adb(adb):
    pass
"""

# pytest-asyncio runs tests in wider loops on request: the connection follows the test.
LOOP_SCOPE_TESTS = """
import asyncio

import pytest

from pytest_schemasync.asyncfixtures import opened_in_key


def opened_in_this_loop(request):
    return request.node.stash[opened_in_key] is asyncio.get_running_loop()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_loop_1(adb, request):
    assert opened_in_this_loop(request)
    await adb.execute("INSERT INTO items (name) VALUES ('m1')")


@pytest.mark.asyncio(loop_scope="module")
async def test_module_loop_2(adb, request):
    assert opened_in_this_loop(request)
    cur = await adb.execute("SELECT count(*) FROM items")
    assert (await cur.fetchone())[0] == 1


@pytest.mark.asyncio(loop_scope="class")
class TestClassLoop:
    async def test_class_loop(self, adb, afresh_db, request):
        assert opened_in_this_loop(request)
        await afresh_db.execute("SELECT 1")


@pytest.mark.asyncio
async def test_function_loop(afresh_db, request):
    assert opened_in_this_loop(request)
"""


def _project(pytester: pytest.Pytester, ini: dict[str, str]) -> None:
    make_project(pytester, sets=SETS, tool={"default-set": "one"}, files=FILES,
                 ini={"asyncio_default_fixture_loop_scope": "function", **ini})


def _assert_the_common_outcome(result: pytest.RunResult, cache_dir: Path) -> None:
    out = output_of(result)
    result.assert_outcomes(passed=9, failed=1, errors=1)
    assert "failing on purpose" in out
    assert out.count("ended the transaction of the `adb` fixture (COMMIT)") == 1
    assert "test_3_commits ended the transaction of the `adb` fixture (COMMIT); its database " \
           "was replaced. Use `afresh_db` for tests that commit." in out
    assert "`adb` is an async connection for `async def` tests run by pytest-asyncio" in out
    with cluster_connection(cache_dir) as admin:
        assert session_databases(database_names(admin)) == set()


def test_pytest_asyncio_strict_mode(pytester: pytest.Pytester, cache_dir: Path) -> None:
    _project(pytester, {"asyncio_mode": "strict"})
    pytester.makepyfile(test_async=TESTS.format(mark="pytest.mark.asyncio"),
                        test_loops=LOOP_SCOPE_TESTS)
    result = run_inner(pytester, cache_dir, "-p", "no:anyio", "-v", "test_async.py")
    _assert_the_common_outcome(result, cache_dir)
    result = run_inner(pytester, cache_dir, "-p", "no:anyio", "-v", "test_loops.py")
    result.assert_outcomes(passed=4)


def test_pytest_asyncio_auto_mode(pytester: pytest.Pytester, cache_dir: Path) -> None:
    # Unmarked tests, and a default test loop wider than the fixtures' default.
    _project(pytester, {"asyncio_mode": "auto", "asyncio_default_test_loop_scope": "module"})
    pytester.makepyfile(test_async=TESTS.format(mark="lambda test: test"))
    result = run_inner(pytester, cache_dir, "-p", "no:anyio", "-v")
    _assert_the_common_outcome(result, cache_dir)


def test_anyio_plugin_without_pytest_asyncio(pytester: pytest.Pytester, cache_dir: Path) -> None:
    _project(pytester, {})
    pytester.makeconftest("""
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
    """)
    pytester.makepyfile(test_async=TESTS.format(mark="pytest.mark.anyio"))
    result = run_inner(pytester, cache_dir, "-p", "no:asyncio", "-v")
    _assert_the_common_outcome(result, cache_dir)


def test_anyio_on_trio_is_refused_clearly(pytester: pytest.Pytester, cache_dir: Path) -> None:
    _project(pytester, {})
    pytester.makepyfile(test_trio="""
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "trio"

        @pytest.mark.anyio
        async def test_on_trio(adb):
            pass
    """)
    result = run_inner(pytester, cache_dir, "-p", "no:asyncio")
    result.assert_outcomes(errors=1)
    assert "`adb` is a psycopg async connection, which runs on asyncio only; this test runs " \
           "on trio" in output_of(result)
