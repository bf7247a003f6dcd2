"""Two sessions at once on one cache directory: the second gets a private, throwaway
cluster instead of waiting, and each cleans up after itself."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import (
    SIMPLE_SCHEMA,
    header_lines,
    make_project,
    pid_alive,
    popen_inner,
    postmaster_pids,
    run_inner,
    wait_for_file,
)

HOLDING_TEST = """
    import os
    import time
    from pathlib import Path

    def test_holds_the_cluster(db):
        assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 1
        Path(os.environ["STARTED"]).write_text("1")
        deadline = time.monotonic() + 120
        while not Path(os.environ["RELEASE"]).exists():
            assert time.monotonic() < deadline, "never released"
            time.sleep(0.05)
"""


def test_second_session_gets_a_private_cluster(pytester: pytest.Pytester, cache_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_hold=HOLDING_TEST)
    started, release = pytester.path / "started", pytester.path / "release"
    monkeypatch.setenv("STARTED", str(started))
    monkeypatch.setenv("RELEASE", str(release))

    holder = popen_inner(pytester, cache_dir)
    try:
        wait_for_file(started, holder)
        [cached_pid] = postmaster_pids(cache_dir.parent)

        # Meanwhile a second session on the same cache directory.
        (pytester.path / "test_hold.py").unlink()
        pytester.makepyfile(test_other="""
            def test_other(db, fresh_db):
                assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 1
                data = db.execute("SELECT current_setting('data_directory')").fetchone()[0]
                assert "/private/" in data
        """)
        result = run_inner(pytester, cache_dir)
        result.assert_outcomes(passed=1)
        assert "private cluster (cache busy)" in header_lines(result)[0]
        # Its cluster is gone, and the holder's is untouched.
        assert postmaster_pids(cache_dir.parent) == [cached_pid]
        assert not any((cache_dir / "private").iterdir())

        release.write_text("1")
        out, _ = holder.communicate(timeout=90)
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
    assert holder.returncode == 0, out
    assert "1 passed" in out
    assert "cached cluster" in out
    assert not pid_alive(cached_pid)
    assert postmaster_pids(cache_dir.parent) == []

    # The cached cluster and its template serve the next session again.
    (pytester.path / "test_other.py").unlink()
    pytester.makepyfile(test_last="""
        def test_last(db):
            data = db.execute("SELECT current_setting('data_directory')").fetchone()[0]
            assert "/private/" not in data
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "cached cluster" in header_lines(result)[0]
    assert any("template from cache" in line for line in header_lines(result))
