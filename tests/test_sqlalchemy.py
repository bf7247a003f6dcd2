"""The SQLAlchemy 2.x recipes of the README, run through the real plugin: a Session joined
to the ``db`` transaction (``db_sqlalchemy``), and engines, sync and asyncio, on
``fresh_db_url``."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SIMPLE_SCHEMA, make_project, output_of, run_inner

# The inner tests' table, as a model.
MODEL = """

class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
"""

TESTS = """
import psycopg
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DATABASES = []
""" + MODEL + """

def signup(session, name):
    # Code under test: it commits, as application code does.
    session.add(Item(name=name))
    session.commit()


def names(db):
    DATABASES.append(db.execute("SELECT current_database()").fetchone()[0])
    return [r[0] for r in db.execute("SELECT name FROM items ORDER BY id")]


def test_1_session_commits_inside_the_test_transaction(db_sqlalchemy, db):
    session = Session(db_sqlalchemy, join_transaction_mode="create_savepoint")
    signup(session, "alice")
    assert names(db) == ["seed", "alice"]  # one transaction: db sees what the session wrote
    session.add(Item(name="seed"))
    with pytest.raises(IntegrityError):
        session.commit()  # fails, and takes only its savepoint with it
    session.rollback()
    assert session.scalars(select(Item.name).order_by(Item.id)).all() == ["seed", "alice"]
    session.close()


def test_2_nothing_of_test_1_is_left(db_sqlalchemy, db):
    assert names(db) == ["seed"]
    with Session(db_sqlalchemy, join_transaction_mode="create_savepoint") as session:
        assert session.scalars(select(Item.name)).all() == ["seed"]


def test_3_committing_the_connection_itself_is_refused(db_sqlalchemy, db):
    signup(Session(db_sqlalchemy, join_transaction_mode="create_savepoint"), "bob")
    with pytest.raises(ProgrammingError, match="commit"):
        db_sqlalchemy.commit()


def test_4_still_pristine_and_the_same_database(db):
    assert names(db) == ["seed"]
    assert len(set(DATABASES)) == 1


def test_5_a_commit_sent_as_sql_is_caught(db_sqlalchemy):
    db_sqlalchemy.exec_driver_sql("INSERT INTO items (name) VALUES ('carol')")
    db_sqlalchemy.exec_driver_sql("COMMIT")


def test_6_pristine_again(db):
    assert names(db) == ["seed"]


def test_7_sync_engine_on_fresh_db_url(fresh_db_url):
    engine = create_engine(fresh_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with Session(engine) as session:
        signup(session, "dave")  # a real commit, in a database of its own
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 2
    engine.dispose()


@pytest.mark.asyncio
async def test_8_asyncio_engine_on_fresh_db_url(fresh_db_url):
    engine = create_async_engine(
        fresh_db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    async with AsyncSession(engine) as session:
        session.add(Item(name="erin"))
        await session.commit()
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count()).select_from(Item)) == 2
    await engine.dispose()
"""


def test_sqlalchemy_recipes(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA},
                 ini={"asyncio_default_fixture_loop_scope": "function"})
    pytester.makepyfile(test_sa=TESTS)
    result = run_inner(pytester, cache_dir, "-v")
    result.assert_outcomes(passed=8)
    out = output_of(result)
    assert out.count("ended the transaction of the `db` fixture (COMMIT)") == 1
    assert "test_5_a_commit_sent_as_sql_is_caught ended the transaction" in out


ASYNC_SESSION_TESTS = """
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pytest_schemasync.sqlalchemy_fixtures import joined_async_engine
""" + MODEL + """

@pytest_asyncio.fixture
async def asession(adb):
    async with joined_async_engine(adb).connect() as connection:
        await connection.begin()
        async with AsyncSession(connection, join_transaction_mode="create_savepoint") as s:
            yield s


async def names(adb):
    cur = await adb.execute("SELECT name FROM items ORDER BY id")
    return [r[0] for r in await cur.fetchall()]


@pytest.mark.asyncio
async def test_1_async_session_commits_inside_adb(asession, adb):
    asession.add(Item(name="alice"))
    await asession.commit()  # releases a savepoint
    assert await names(adb) == ["seed", "alice"]  # one transaction: adb sees it
    asession.add(Item(name="seed"))
    with pytest.raises(IntegrityError):
        await asession.commit()  # fails, and takes only its savepoint with it
    await asession.rollback()
    got = await asession.scalars(select(Item.name).order_by(Item.id))
    assert got.all() == ["seed", "alice"]


@pytest.mark.asyncio
async def test_2_nothing_of_test_1_is_left(asession, adb):
    assert (await asession.scalars(select(Item.name))).all() == ["seed"]
    connection = await asession.connection()
    with pytest.raises(ProgrammingError, match="commit"):
        await connection.commit()  # adb's transaction is not SQLAlchemy's to end


@pytest.mark.asyncio
async def test_3_pristine(adb):
    assert await names(adb) == ["seed"]
"""


def test_async_session_joined_to_adb(pytester: pytest.Pytester, cache_dir: Path) -> None:
    """The README's AsyncSession recipe: an engine on adb's own connection
    (``joined_async_engine``), a session in create_savepoint mode, the test still rolled
    back; no warning (an unclosed or garbage-collected connection would be one)."""
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA},
                 ini={"asyncio_default_fixture_loop_scope": "function"})
    pytester.makepyfile(test_sa=ASYNC_SESSION_TESTS)
    result = run_inner(pytester, cache_dir, "-v", "-W", "error")
    result.assert_outcomes(passed=3)
    assert "ended the transaction" not in output_of(result)
