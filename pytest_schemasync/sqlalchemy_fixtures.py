"""``db_sqlalchemy``: a SQLAlchemy ``Connection`` inside the ``db`` fixture's transaction.

With ``Session(db_sqlalchemy, join_transaction_mode="create_savepoint")`` code under test may
call ``session.commit()`` (it releases a savepoint) and the test still rolls back. SQLAlchemy
is imported only when the fixture is used; the plugin registers this module in
``pytest_configure``.

SQLAlchemy sees ``db``'s own psycopg connection. Its engine must never end the transaction:
psycopg refuses ``commit()``/``rollback()`` inside ``db``'s transaction block anyway, and the
rollback SQLAlchemy sends when a connection is closed or returned to its pool is ``db``'s to
do, so this engine's rollback does nothing. A COMMIT sent as SQL is caught by ``db`` as
always (a warning, and the database is replaced).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy
    from sqlalchemy.ext.asyncio import AsyncEngine


def joined_engine(conn: psycopg.Connection[Any]) -> sqlalchemy.Engine:
    """An engine whose one connection is ``conn``, in the transaction its owner runs."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    engine = create_engine("postgresql+psycopg://", creator=lambda: conn,
                           poolclass=StaticPool, pool_reset_on_return=None)
    engine.dialect.do_rollback = lambda dbapi_connection: None  # type: ignore[method-assign]
    return engine


def joined_async_engine(conn: psycopg.AsyncConnection[Any]) -> AsyncEngine:
    """An asyncio engine whose one connection is ``conn`` (``adb``), in the transaction its
    owner runs: ``AsyncSession(bind=...)`` cannot take a raw psycopg ``AsyncConnection``, but
    an engine's ``async_creator`` can. Make one per test (``adb`` is), in the test's loop;
    never dispose of it (that would close ``adb``, which is the fixture's to close)."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import StaticPool

    async def creator() -> psycopg.AsyncConnection[Any]:
        return conn

    engine = create_async_engine("postgresql+psycopg://", async_creator=creator,
                                 poolclass=StaticPool, pool_reset_on_return=None)
    # The rollback SQLAlchemy sends when its transaction or connection ends is adb's to do.
    engine.sync_engine.dialect.do_rollback = (  # type: ignore[method-assign]
        lambda dbapi_connection: None)
    return engine


@pytest.fixture(scope="session")
def _schemasync_sqlalchemy_engines() -> Iterator[dict[int, tuple[Any, sqlalchemy.Engine]]]:
    # One engine per rollback connection: SQLAlchemy sets a connection up (a notice
    # handler, its first-connect queries) once per engine, and db's connection lives long.
    engines: dict[int, tuple[Any, sqlalchemy.Engine]] = {}
    yield engines
    engines.clear()


@pytest.fixture
def db_sqlalchemy(db: psycopg.Connection[Any],
                  _schemasync_sqlalchemy_engines: dict[int, tuple[Any, sqlalchemy.Engine]]
                  ) -> Iterator[sqlalchemy.Connection]:
    """A SQLAlchemy 2.x ``Connection`` on ``db``'s connection, in the test's rolled-back
    transaction: ``Session(db_sqlalchemy, join_transaction_mode="create_savepoint")`` lets
    code under test commit while the test still rolls back."""
    if importlib.util.find_spec("sqlalchemy") is None:
        pytest.fail("db_sqlalchemy needs SQLAlchemy 2.x: pip install "
                    "'pytest-schemasync[sqlalchemy]'.", pytrace=False)
    entry = _schemasync_sqlalchemy_engines.get(id(db))
    if entry is None or entry[0] is not db:
        entry = _schemasync_sqlalchemy_engines[id(db)] = (db, joined_engine(db))
    with entry[1].connect() as connection:
        connection.begin()  # stands for db's transaction: sessions make savepoints in it
        yield connection
