"""`schemasync clean` drops this project's templates; `clean --all` deletes the embedded
server's cache folder, but never while a session uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    SIMPLE_SCHEMA,
    built_templates,
    cluster_connection,
    database_names,
    header_lines,
    make_project,
    run_inner,
)
from filelock import FileLock

from pytest_schemasync.binaries import find_binaries
from pytest_schemasync.clusters import acquire_cluster
from pytest_schemasync.osuser import server_os_user
from pytest_schemasync.server import process_alive


def _clean(project: Path, cache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_schemasync.cli", f"--schemasync-cache-dir={cache_dir}",
         "clean", *args], cwd=project, capture_output=True, text=True, timeout=120)


def _project(pytester: pytest.Pytester) -> None:
    make_project(pytester, sets={"main": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_one="def test_one(db):\n    db.execute('SELECT * FROM items')\n")


def _templates(cache_dir: Path) -> set[str]:
    with cluster_connection(cache_dir) as admin:
        return {n for n in database_names(admin) if n.startswith("sst_")}


def test_clean_drops_this_projects_templates_only(pytester: pytest.Pytester, cache_dir: Path,
                                                  tmp_path: Path) -> None:
    _project(pytester)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    ours = _templates(cache_dir)
    assert len(ours) == 1
    # another project sharing the cache
    other = tmp_path / "other"
    other.mkdir()
    (other / "schema.sql").write_text("CREATE TABLE other_things (id int);\n")
    (other / "pyproject.toml").write_text(
        '[tool.schemasync.sets.main]\nfiles = ["schema.sql"]\n')
    (other / "test_other.py").write_text("def test_other(db):\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           f"--schemasync-cache-dir={cache_dir}", "test_other.py"],
                          cwd=other, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    theirs = _templates(cache_dir) - ours
    assert len(theirs) == 1

    # Each build stored its catalog snapshot; another server's and a half-written one lie
    # in the same folder.
    stored = cache_dir / "snapshots"
    assert {p.stem for p in stored.glob("*.json")} == ours | theirs
    elsewhere = stored / "sst_elsewhere.json"
    elsewhere.write_text('{"key": "{\\"server\\": \\"cluster another\\"}"}\n{}')
    (stored / "sst_gone.json.123.tmp").write_text("half")

    cleaned = _clean(pytester.path, cache_dir)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "dropped 1 template(s)" in cleaned.stdout
    (name,) = ours
    assert name in cleaned.stdout
    assert _templates(cache_dir) == theirs
    assert "deleted 2 stored catalog snapshot(s)" in cleaned.stdout
    assert {p.name for p in stored.iterdir()} == {f"{t}.json" for t in theirs} | {
        elsewhere.name}

    again = run_inner(pytester, cache_dir)
    again.assert_outcomes(passed=1)
    assert any("template built in" in line for line in header_lines(again))
    assert f" built template {name} " in built_templates(cache_dir)[-1]  # the same one again


def test_clean_all_deletes_the_cache_folder(pytester: pytest.Pytester, cache_dir: Path) -> None:
    _project(pytester)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    assert (cache_dir / "CACHEDIR.TAG").exists()
    cleaned = _clean(pytester.path, cache_dir, "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"deleted {cache_dir}" in cleaned.stdout
    assert not cache_dir.exists()
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)  # and it comes back


def test_clean_all_refuses_while_a_session_uses_the_cache(pytester: pytest.Pytester,
                                                          cache_dir: Path) -> None:
    _project(pytester)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    (lock_path,) = cache_dir.glob("pg*-*/cluster.lock")
    with FileLock(str(lock_path)):  # what a running session holds
        refused = _clean(pytester.path, cache_dir, "--all")
        plain = _clean(pytester.path, cache_dir)
    assert refused.returncode != 0
    assert "running pytest session" in refused.stderr and "Traceback" not in refused.stderr
    assert (cache_dir / "CACHEDIR.TAG").exists()
    assert plain.returncode != 0 and "running pytest session" in plain.stderr
    assert len(_templates(cache_dir)) == 1  # nothing was dropped


def test_clean_all_refuses_a_folder_that_is_not_a_cache(pytester: pytest.Pytester,
                                                        tmp_path: Path) -> None:
    _project(pytester)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    refused = _clean(pytester.path, precious, "--all")
    assert refused.returncode != 0
    assert "no pytest-schemasync CACHEDIR.TAG" in refused.stderr
    assert (precious / "keep.txt").read_text() == "mine"


def test_clean_all_stops_a_server_a_killed_session_left_running(pytester: pytest.Pytester,
                                                                cache_dir: Path) -> None:
    _project(pytester)
    lease = acquire_cluster(cache_dir, find_binaries(), server_os_user())
    pid = lease.cluster.running_pid()
    assert pid is not None and process_alive(pid)
    lease.lock.release()  # what a SIGKILLed session leaves: a running server, a free lock
    cleaned = _clean(pytester.path, cache_dir, "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not process_alive(pid)
    assert not cache_dir.exists()
    assert not list(cache_dir.parent.glob(".cache-deleting-*"))


def test_clean_without_a_cache_says_so(pytester: pytest.Pytester, cache_dir: Path) -> None:
    _project(pytester)
    plain = _clean(pytester.path, cache_dir)
    assert plain.returncode == 0 and "nothing to clean" in plain.stdout
    assert not cache_dir.exists()  # and no cluster was made just to find nothing
    every = _clean(pytester.path, cache_dir, "--all")
    assert every.returncode == 0 and "nothing to delete" in every.stdout
