"""``adb`` and ``afresh_db``: psycopg async connections for pytest-asyncio and anyio tests.

Every test gets its own ``AsyncConnection``, opened and closed in the event loop the test
itself runs in: a connection never outlives its loop or moves to another one (a session-wide
async connection would be handed to the function-scoped loop of the next test).

Which plugin runs an async fixture depends on the test, so ``adb`` and ``afresh_db`` are
sync fixtures that request the async variant the test's runner drives:

- an anyio test (it uses ``anyio_backend``): a plain async fixture, run by anyio's plugin in
  the test's own runner;
- a pytest-asyncio test (strict or auto mode): a ``pytest_asyncio.fixture`` whose loop scope
  is the test's loop scope, so both run in the same loop.

Neither plugin is required: each is imported only when installed. The plugin registers this
module in ``pytest_configure``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

from .plugin import _after_test_transaction, _marker_choice, _marker_role, _or_fail

if TYPE_CHECKING:
    import asyncio  # noqa: F401  (the stash key's type, below)

    import psycopg

    from .databases import Database
    from .scratch import Scratch

try:
    import pytest_asyncio
except ImportError:  # the asyncio extra is not installed: anyio tests still work
    pytest_asyncio = None

LOOP_SCOPES = ("function", "class", "module", "package", "session")
# The event loop a test's async connection was opened in (it must be the test's own loop).
# asyncio is imported where a loop runs: a session without async tests does not load it.
opened_in_key = pytest.StashKey["asyncio.AbstractEventLoop"]()


# --- the connections -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def rolled_back(schemasync: Scratch, request: pytest.FixtureRequest
                      ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An async connection to this process's rollback database (the one ``db`` uses), in a
    transaction that is always rolled back: the guarantees of ``db``, awaited."""
    import psycopg

    from . import txguard

    set_name, before = _marker_choice(request)
    manager = schemasync.manager
    database = _or_fail(lambda: manager.rollback_database(set_name, before))
    conn = await _connect(database, request)
    try:
        tx = conn.transaction(force_rollback=True)
        await tx.__aenter__()
        for statement in txguard.opening_statements():
            await conn.execute(statement)  # type: ignore[arg-type]
        role = _marker_role(request)
        if role is not None:  # inside the guard, as in `db`: rolling back to it resets it
            from .roles import role_statement, unknown_role

            try:
                await conn.execute(role_statement(role))
            except psycopg.errors.InvalidParameterValue:
                missing = unknown_role(role, set_name or schemasync.settings.default_set)
                pytest.fail(f"schemasync: {missing}", pytrace=False)  # conn closes below
        try:
            yield conn
        finally:
            restored = False
            if txguard.may_be_ours(conn):
                try:
                    await conn.execute(txguard.RESTORE)  # type: ignore[arg-type]
                    restored = True
                except psycopg.Error:
                    restored = False
            ending = txguard.judge(conn, restored)
            with contextlib.suppress(psycopg.Error, psycopg.ProgrammingError):
                await tx.__aexit__(None, None, None)
    finally:
        await conn.close()
    _after_test_transaction(request, ending, "adb", "afresh_db",
                            lambda: manager.discard_rollback_database(database))


async def _connect(database: Database, request: pytest.FixtureRequest
                   ) -> psycopg.AsyncConnection[Any]:
    import asyncio

    import psycopg

    request.node.stash[opened_in_key] = asyncio.get_running_loop()
    return await psycopg.AsyncConnection.connect(database.conninfo)


@contextlib.asynccontextmanager
async def connected(database: Database, request: pytest.FixtureRequest
                    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await _connect(database, request)
    try:
        yield conn
    finally:
        await conn.close()


# --- one async fixture per runner ----------------------------------------------------


def _adb_variant() -> Callable[..., AsyncIterator[Any]]:
    async def variant(schemasync: Scratch, request: pytest.FixtureRequest
                      ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with rolled_back(schemasync, request) as conn:
            yield conn

    return variant


def _afresh_variant() -> Callable[..., AsyncIterator[Any]]:
    async def variant(fresh_database: Database, request: pytest.FixtureRequest
                      ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with connected(fresh_database, request) as conn:
            yield conn

    return variant


_VARIANTS = {"adb": _adb_variant, "afresh_db": _afresh_variant}

for _base, _make in _VARIANTS.items():
    # A fresh function object each time: pytest_asyncio.fixture marks the function itself.
    globals()[f"_{_base}_anyio"] = pytest.fixture(_make(), name=f"_schemasync_{_base}_anyio")
    if pytest_asyncio is not None:
        for _scope in LOOP_SCOPES:
            globals()[f"_{_base}_asyncio_{_scope}"] = pytest_asyncio.fixture(
                _make(), loop_scope=_scope, name=f"_schemasync_{_base}_asyncio_{_scope}")


def _asyncio_loop_scope(request: pytest.FixtureRequest) -> str:
    """The loop scope pytest-asyncio runs this test in."""
    marker = request.node.get_closest_marker("asyncio")
    scope = (marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")) if marker else None
    if scope is None:
        try:
            scope = request.config.getini("asyncio_default_test_loop_scope")
        except ValueError:  # older pytest-asyncio: tests ran in a function-scoped loop
            scope = None
    return str(scope or "function")


def _variant(request: pytest.FixtureRequest, base: str) -> str:
    if "anyio_backend" in request.fixturenames:
        backend = request.getfixturevalue("anyio_backend_name")
        if backend != "asyncio":
            pytest.fail(f"`{base}` is a psycopg async connection, which runs on asyncio only; "
                        f"this test runs on {backend}. Run it with anyio_backend = 'asyncio' "
                        f"(override the anyio_backend fixture).", pytrace=False)
        return f"_schemasync_{base}_anyio"
    if (pytest_asyncio is not None and request.config.pluginmanager.has_plugin("asyncio")
            and pytest_asyncio.is_async_test(request.node)):  # type: ignore[arg-type]
        return f"_schemasync_{base}_asyncio_{_asyncio_loop_scope(request)}"
    pytest.fail(f"`{base}` is an async connection for `async def` tests run by pytest-asyncio "
                f"(@pytest.mark.asyncio, or asyncio_mode = auto) or anyio "
                f"(@pytest.mark.anyio); install one (pytest-schemasync[asyncio] or [anyio]). "
                f"Sync tests use `db` / `fresh_db`.", pytrace=False)


@pytest.fixture
def adb(request: pytest.FixtureRequest) -> psycopg.AsyncConnection[Any]:
    """An async (psycopg ``AsyncConnection``) ``db``: a database with the schema set
    installed, the test's changes rolled back afterwards; ``async with adb.transaction():``
    makes a savepoint. Opened in the test's own event loop, for this test alone."""
    return request.getfixturevalue(_variant(request, "adb"))  # type: ignore[no-any-return]


@pytest.fixture
def afresh_db(request: pytest.FixtureRequest) -> psycopg.AsyncConnection[Any]:
    """An async connection to a database cloned for this test alone (``fresh_db``): commit,
    DDL, more connections are all fine; the database is dropped afterwards."""
    return request.getfixturevalue(_variant(request, "afresh_db"))  # type: ignore[no-any-return]
