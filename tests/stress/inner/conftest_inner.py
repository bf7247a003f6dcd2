"""conftest.py of the stress suite's inner project (copied in under that name).

Every test tags the rows it writes with its own node id (``claim``) and asserts it sees no
other test's tag; ``note`` records which database served a test, the name the plugin gave it
and its length in bytes, for the outer test to check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RECORDS = Path(os.environ["STRESS_RECORDS"])
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture
def tag(request: pytest.FixtureRequest) -> str:
    return f"run{os.environ['STRESS_RUN']}|{request.node.nodeid}"


def _claim(conn: Any, tag: str) -> None:
    conn.execute("INSERT INTO public.probe (tag) VALUES (%s)", (tag,))
    seen = [r[0] for r in conn.execute("SELECT tag FROM public.probe ORDER BY written_at")]
    assert seen == [tag], f"rows written by other tests are visible: {seen}"


@pytest.fixture
def claim() -> Callable[[Any, str], None]:
    """claim(conn, tag): write this test's row and assert no other test's row is visible."""
    return _claim


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Callable[..., str]:
    """note(kind, conn, given=None): record the database behind ``conn`` (and the name the
    plugin gave it, which must be the one the server uses: no truncation)."""

    def _note(kind: str, conn: Any, given: str | None = None) -> str:
        actual = conn.execute("SELECT current_database()").fetchone()[0]
        given = given or actual
        with open(RECORDS / f"{WORKER}.tsv", "a", encoding="utf-8") as out:
            out.write(f"{kind}\t{given}\t{actual}\t{os.getpid()}\t{request.node.nodeid}\n")
        return actual

    return _note
