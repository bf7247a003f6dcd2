"""The rolled-back transaction a test runs in (``db`` and ``adb``): how it starts, and how
its end tells whether the test left the database pristine.

A guard savepoint is made right after BEGIN. At teardown ``ROLLBACK TO`` it succeeds only
while that is still our transaction: after a raw COMMIT (even one followed by more
statements, which psycopg wraps in a new transaction) the savepoint is gone. The sync and the
async fixture run the same statements and judge the outcome with the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.pq import TransactionStatus

GUARD = "schemasync_guard"
RESTORE = f"ROLLBACK TO SAVEPOINT {GUARD}"


def opening_statements() -> list[str]:
    """What runs right after BEGIN, before the test. Per-test session state that must roll
    back with the test (e.g. a ``SET LOCAL ROLE``) goes before the guard."""
    return [f"SAVEPOINT {GUARD}"]


def may_be_ours(conn: Any) -> bool:
    """Whether ``RESTORE`` is worth trying: the connection is open and in a transaction."""
    return not conn.closed and conn.info.transaction_status in (TransactionStatus.INTRANS,
                                                                TransactionStatus.INERROR)


@dataclass(frozen=True)
class Ending:
    pristine: bool  # the guard was there and everything after it is rolled back
    committed: bool  # the test ended our transaction itself: the database holds its changes

    @property
    def spoiled(self) -> bool:
        """The database (or the connection to it) can no longer be trusted for the next test."""
        return not self.pristine


def judge(conn: Any, restored: bool) -> Ending:
    """``restored``: whether ``RESTORE`` succeeded. A closed connection is spoiled, but
    nobody committed through it that we could tell."""
    return Ending(pristine=restored, committed=not conn.closed and not restored)


def commit_warning(nodeid: str, fixture: str, instead: str) -> str:
    return (f"{nodeid} ended the transaction of the `{fixture}` fixture (COMMIT); its database "
            f"was replaced. Use `{instead}` for tests that commit.")
