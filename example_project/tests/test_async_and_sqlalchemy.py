"""The same schema from async code (pytest-asyncio) and through SQLAlchemy 2.x sessions.

``adb`` is ``db`` for ``async def`` tests: a psycopg AsyncConnection in a transaction that is
rolled back afterwards. ``db_sqlalchemy`` puts a SQLAlchemy Session inside ``db``'s
transaction, so application code may ``commit()`` and the test still rolls back.
"""

from __future__ import annotations

import pytest
from psycopg import errors
from sqlalchemy import text
from sqlalchemy.orm import Session


@pytest.mark.asyncio
async def test_emails_are_case_insensitive_async(adb):
    await adb.execute("INSERT INTO users (email, username) VALUES ('Ann@x.io', 'ann')")
    with pytest.raises(errors.UniqueViolation):
        async with adb.transaction():  # a savepoint: the test goes on after the failure
            await adb.execute("INSERT INTO users (email, username) VALUES ('ann@X.IO', 'ann2')")
    cur = await adb.execute("SELECT count(*) FROM users WHERE email = 'ANN@x.io'")
    assert (await cur.fetchone())[0] == 1


@pytest.fixture
def session(db_sqlalchemy):
    with Session(db_sqlalchemy, join_transaction_mode="create_savepoint") as session:
        yield session


def register(session: Session, email: str, username: str) -> None:
    """Application code: it commits its own unit of work."""
    session.execute(text("INSERT INTO users (email, username) VALUES (:e, :u)"),
                    {"e": email, "u": username})
    session.commit()


def test_code_that_commits_still_rolls_back(session, db):
    register(session, "bob@x.io", "bob")
    assert db.execute("SELECT username FROM users WHERE email = 'bob@x.io'").fetchone() == ("bob",)


def test_nothing_left_behind(db):
    assert db.execute("SELECT count(*) FROM users WHERE email = 'bob@x.io'").fetchone()[0] == 0
