"""Parallel load: one project with two schema sets and 306 tests, run again and again under
pytest-xdist on one cache directory.

Every run must pass completely; each template is built once in the whole series (the first
run is cold, all others warm); no test sees another test's rows; every database name the
plugin hands out is the one the server uses (no silent truncation at 63 bytes) and is never
handed out twice; the output and the server log never show a clone racing a connection
("is being accessed by other users") or a name collision ("already exists"); and after each
run no server of the cache directory is left running.

The inner project lives in ``tests/stress/``: SQL for a small gameforge-like set (with a
migrations folder) and a small carthorse-like set, and the inner test modules
(``inner/t_*.py``, copied in as ``test_*.py``; ``inner/conftest_inner.py`` as ``conftest.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import (
    built_templates,
    cluster_connection,
    database_names,
    header_lines,
    make_project,
    output_of,
    postmaster_pid_files,
    postmaster_pids,
    run_inner,
    session_databases,
)

STRESS = Path(__file__).parent / "stress"

PYPROJECT = """\
[tool.pytest.ini_options]

[tool.schemasync]
default-set = "gameforge"

[tool.schemasync.sets.gameforge]
files = ["db/gameforge/schema.sql"]
migrations = "db/gameforge/migrations"

[tool.schemasync.sets.carthorse]
files = ["sql/carthorse/schema.sql", "sql/carthorse/functions.sql"]
"""

INNER_TESTS = 306  # the parametrized tests of tests/stress/inner/t_*.py
RAW_COMMIT_TESTS = 4  # test_commit_on_db_is_contained: one warning each
CLONE_KINDS = {"fresh", "url", "factory", "fresh-before"}  # a database of its own per use

# The issue asks for 10 runs with -n 2 and 10 with -n 4, and that is what runs. Measured on
# this 2-core machine while tests/test_crashes.py ran beside it (and other load on the
# machine, load average 4-7): one warm run takes 5-11 s with -n 2 and 7-11 s with -n 4; the
# whole series about 175 s, so the slow tests of both files finish in about 3 minutes of
# wall time. SCHEMASYNC_STRESS_RUNS=N changes the count per -n value (at least 3), e.g. for
# a quicker local run.
RUNS_PER_N = max(3, int(os.environ.get("SCHEMASYNC_STRESS_RUNS", "10")))
SERIES = [2] * RUNS_PER_N + [4] * RUNS_PER_N

FORBIDDEN = ("is being accessed by other users", "already exists")
MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer identifiers


def write_project(root: Path) -> None:
    """The inner project under ``root`` (the pytester directory)."""
    shutil.copytree(STRESS / "gameforge", root / "db" / "gameforge")
    shutil.copytree(STRESS / "carthorse", root / "sql" / "carthorse")
    shutil.copy(STRESS / "inner" / "conftest_inner.py", root / "conftest.py")
    for module in sorted((STRESS / "inner").glob("t_*.py")):
        shutil.copy(module, root / f"test_{module.name[2:]}")
    (root / "pyproject.toml").write_text(PYPROJECT)


def read_records(folder: Path) -> list[dict[str, str]]:
    """Lines written by the inner ``note`` fixture, one per database use."""
    rows = []
    for path in sorted(folder.glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            kind, given, actual, pid, nodeid = line.split("\t")
            rows.append({"worker": path.stem, "kind": kind, "given": given, "actual": actual,
                         "pid": pid, "nodeid": nodeid})
    return rows


def check_records(rows: list[dict[str, str]], workers: int) -> None:
    assert rows, "the inner tests recorded nothing"
    for row in rows:
        name = row["given"]
        assert len(name.encode()) <= MAX_NAME_BYTES, row
        assert name == row["actual"], f"the server uses another name than we were given: {row}"
        expected = "sss_" if row["kind"].startswith("db") else "ssc_"
        assert name.startswith(expected), row
        if row["kind"].startswith("db"):
            assert f"_{row['worker']}_" in name, row  # each worker its own rollback database
    clones = Counter(r["given"] for r in rows if r["kind"] in CLONE_KINDS)
    reused = {name: count for name, count in clones.items() if count > 1}
    assert not reused, f"one clone served several tests: {reused}"
    used = {r["worker"] for r in rows}
    assert used <= {f"gw{i}" for i in range(workers)}, used
    assert len(used) >= 2, f"only {used} ran tests: the run was not parallel"


def check_text(text: str, where: str) -> None:
    for needle in FORBIDDEN:
        hits = [line for line in text.splitlines() if needle in line]
        assert not hits, f"{where} contains {needle!r}:\n" + "\n".join(hits[:20])
    # Database names in the text ("ssc_..."/"sst_..." etc.) never exceed the limit.
    for name in re.findall(r"\bss[tbcs]_[A-Za-z0-9_]+", text):
        assert len(name.encode()) <= MAX_NAME_BYTES, f"{where} names {name!r}"


@pytest.mark.slow
def test_parallel_load_series(pytester: pytest.Pytester, cache_dir: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(pytester.path)
    timings: list[tuple[int, float]] = []
    outputs: list[str] = []
    for run, workers in enumerate(SERIES):
        records = pytester.path / "records" / f"run{run}"
        records.mkdir(parents=True)
        monkeypatch.setenv("STRESS_RECORDS", str(records))
        monkeypatch.setenv("STRESS_RUN", str(run))
        started = time.monotonic()
        result = run_inner(pytester, cache_dir, "-n", str(workers))
        timings.append((workers, time.monotonic() - started))
        out = output_of(result)
        outputs.append(out)
        where = f"run {run + 1}/{len(SERIES)} (-n {workers})"

        outcomes = result.parseoutcomes()
        assert outcomes == {"passed": INNER_TESTS, "warnings": RAW_COMMIT_TESTS}, (
            f"{where}: {outcomes}\n{out[-6000:]}")
        assert result.ret == 0, where
        header = header_lines(result)
        assert "cached cluster" in header[0], (where, header)
        templates = [line for line in header if ": template " in line]
        assert len(templates) == 2, (where, header)
        if run > 0:  # warm: nothing is built, not even by a worker
            assert all("template from cache" in line for line in templates), (where, header)
        check_records(read_records(records), workers)
        check_text(out, f"{where}: output")
        # The session stopped its server.
        assert postmaster_pids(cache_dir.parent) == [], where
        assert postmaster_pid_files(cache_dir) == [], where

    print("\nstress series timings: " + ", ".join(f"-n {n}: {s:.1f}s" for n, s in timings))

    # One build per template in the whole series (the `before` point is a template of its own).
    built = built_templates(cache_dir)
    keys = Counter(re.search(r" set=(\S+) before=(\S+)", line).groups()  # type: ignore[union-attr]
                   for line in built)
    assert keys == {("gameforge", "None"): 1, ("carthorse", "None"): 1,
                    ("gameforge", "002"): 1}, built
    check_text("\n".join(built), "events.log")

    logs = sorted(cache_dir.glob("pg*/server.log"))
    assert len(logs) == 1, logs  # one cached cluster, never a private one
    check_text(logs[0].read_text(errors="replace"), str(logs[0]))
    assert not (cache_dir / "private").exists() or not any((cache_dir / "private").iterdir())

    # Nothing of any session is left in the cluster: only the three templates.
    with cluster_connection(cache_dir) as admin:
        names = database_names(admin)
    assert session_databases(names) == set(), names
    assert len({n for n in names if n.startswith("sst_")}) == 3, names
    assert postmaster_pids(cache_dir.parent) == []


# --- names at PostgreSQL's 63-byte limit ---------------------------------------------------
#
# Valid but long inputs: a set name may have 40 characters (only 24 go into the template
# name) and a `before` point is any migration version, leading zeros included.


def test_long_before_point_stays_within_63_bytes(pytester: pytest.Pytester, cache_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = "2".zfill(26)  # version 2, spelled with leading zeros (int() accepts it)
    make_project(
        pytester,
        sets={"carthorse_routing_engine": {"files": ["schema.sql"], "migrations": "migrations"}},
        files={"schema.sql": "CREATE TABLE base (x integer);\n",
               "migrations/0001_first.sql": "CREATE TABLE first_v1 (x integer);\n",
               "migrations/0002_second.sql": "CREATE TABLE second (x integer);\n"},
    )
    pytester.makepyfile(test_point=f"""
        import os

        import pytest

        @pytest.mark.schemasync(before={before!r})
        def test_before_second(db):
            expected = os.environ["EXPECT_TABLE"]
            assert db.execute("SELECT to_regclass(%s)", (expected,)).fetchone()[0] == expected
            assert db.execute("SELECT to_regclass('second')").fetchone()[0] is None
    """)
    monkeypatch.setenv("EXPECT_TABLE", "first_v1")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    # Editing a migration is a new template (the files' hash is part of its name).
    (pytester.path / "migrations" / "0001_first.sql").write_text(
        "CREATE TABLE first_v2 (x integer);\n")
    monkeypatch.setenv("EXPECT_TABLE", "first_v2")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)  # not the stale template
    names = [line.split(" built template ")[1].split()[0] for line in built_templates(cache_dir)]
    assert all(len(n.encode()) <= MAX_NAME_BYTES for n in names), names


def test_sets_sharing_a_long_prefix_keep_their_templates(pytester: pytest.Pytester,
                                                         cache_dir: Path) -> None:
    east, west = "carthorse_routing_engine_east", "carthorse_routing_engine_west"
    make_project(
        pytester,
        sets={east: {"files": ["east.sql"]}, west: {"files": ["west.sql"]}},
        tool={"default-set": east},
        files={"east.sql": "CREATE TABLE east (x integer);\n",
               "west.sql": "CREATE TABLE west (x integer);\n"},
    )
    pytester.makepyfile(test_sets=f"""
        import pytest

        def test_east(db):
            assert db.execute("SELECT to_regclass('east')").fetchone()[0] == "east"

        @pytest.mark.schemasync({west!r})
        def test_west(db):
            assert db.execute("SELECT to_regclass('west')").fetchone()[0] == "west"
    """)
    for _ in range(2):
        run_inner(pytester, cache_dir).assert_outcomes(passed=2)
    assert len(built_templates(cache_dir)) == 2, built_templates(cache_dir)
