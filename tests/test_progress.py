"""Progress on long template builds: shown through the terminal reporter when it is a
terminal, quiet with -q and when the output is no terminal; the header still says how long
the build took. A real build that takes about 3 s (pg_sleep between padded statements)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import header_lines, make_project, output_of, run_inner

# psql reads through a 4 kB pipe: padding makes each statement a file position of its own.
_PADDING = "\n".join(f"-- padding line {i} " + "x" * 60 for i in range(200))
SLOW_SQL = "".join(f"SELECT pg_sleep(0.5);\n{_PADDING}\n" for _ in range(6)) + (
    "CREATE TABLE items (id int PRIMARY KEY);\n")

TTY_CONFTEST = """
import pytest


class Tty:  # pytest's reporter both calls isatty() and tests it as a bool
    def __bool__(self):
        return True

    def __call__(self):
        return True


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    # As on a terminal: pytester's subprocess writes to a pipe.
    config.pluginmanager.get_plugin("terminalreporter").isatty = Tty()
"""

TEST = "def test_items(db):\n    db.execute('SELECT * FROM items')\n"


def _project(pytester: pytest.Pytester, tty: bool) -> None:
    make_project(pytester, sets={"slow": {"files": ["slow.sql"]}},
                 files={"slow.sql": SLOW_SQL, "test_it.py": TEST,
                        **({"conftest.py": TTY_CONFTEST} if tty else {})})


def _progress_lines(output: str) -> list[str]:
    # Rewritten in place: each update starts with a carriage return.
    return [part.strip() for part in output.replace("\n", "\r").split("\r")
            if part.strip().startswith("schemasync: building set")]


def test_long_build_shows_progress_on_a_terminal(pytester: pytest.Pytester,
                                                 cache_dir: Path) -> None:
    _project(pytester, tty=True)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    lines = _progress_lines(output_of(result))
    assert lines, output_of(result)
    assert all(line.startswith("schemasync: building set 'slow': slow.sql: ") for line in lines)
    assert all("% (line " in line for line in lines), lines
    # psql's position moves on between updates, and the first shows up only after ~2 s.
    percents = [int(line.split(": ")[3].split("%")[0]) for line in lines]
    assert percents == sorted(percents) and len(set(percents)) > 1, lines
    assert all(int(line.rsplit(", ", 1)[1].rstrip("s")) >= 2 for line in lines), lines
    built = [line for line in header_lines(result) if "template built in" in line]
    assert built and float(built[0].split("built in ")[1].split("s")[0]) >= 3, \
        header_lines(result)


@pytest.mark.parametrize("how", ["quiet", "no terminal"])
def test_no_progress_with_q_or_without_a_terminal(pytester: pytest.Pytester, cache_dir: Path,
                                                  how: str) -> None:
    _project(pytester, tty=how == "quiet")
    result = run_inner(pytester, cache_dir, *(["-q"] if how == "quiet" else []))
    result.assert_outcomes(passed=1)
    assert not _progress_lines(output_of(result)), output_of(result)
    if how == "no terminal":
        assert any("template built in" in line for line in header_lines(result))
