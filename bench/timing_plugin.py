"""pytest plugin (loaded with ``-p timing_plugin``) that records each test's wall time.

For every test it keeps the wall time of the whole run protocol (setup + call + teardown)
and the duration pytest reports for each phase, and writes them as JSON to the file named
by ``$BENCH_TIMINGS`` when the session ends.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from typing import Any

import pytest

_tests: dict[str, dict[str, Any]] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        entry = _tests.setdefault(item.nodeid, {})
        entry["total"] = time.perf_counter() - started


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _tests.setdefault(report.nodeid, {})
    entry[report.when] = report.duration
    if report.failed:
        entry["failed"] = True


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("BENCH_TIMINGS")
    if path:
        with open(path, "w") as out:
            json.dump(_tests, out)
