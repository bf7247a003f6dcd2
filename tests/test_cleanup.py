"""Whatever way a session ends, it leaves no server running and no test databases behind;
after a SIGKILL the next session stops the orphaned server and carries on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from conftest import (
    SIMPLE_SCHEMA,
    cluster_connection,
    database_names,
    make_project,
    output_of,
    pid_alive,
    popen_inner,
    postmaster_pid_files,
    postmaster_pids,
    run_inner,
    session_databases,
    wait_for_file,
)

RECORDING_TESTS = """
    import json
    import os
    import time
    from pathlib import Path

    OUT = Path(os.environ["RECORD_DIR"])

    def _server_pid(conn):
        data = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
        return int((Path(data) / "postmaster.pid").read_text().split()[0])

    def test_records(db, fresh_db, schemasync_db_factory, schemasync):
        extra = schemasync_db_factory()
        names = {
            "db": db.execute("SELECT current_database()").fetchone()[0],
            "fresh": fresh_db.execute("SELECT current_database()").fetchone()[0],
            "factory": extra.name,
            "token": schemasync.token,
            "postmaster": _server_pid(db),
            "others": [r[0] for r in db.execute(
                "SELECT datname FROM pg_database WHERE datname ~ '^ss[sbc]_'")],
        }
        (OUT / "names.json").write_text(json.dumps(names))
        (OUT / "started").write_text("1")
        if os.environ.get("HANG"):
            time.sleep(300)
        assert not os.environ.get("FAIL"), "failing on purpose"
"""


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_records=RECORDING_TESTS)
    record_dir = pytester.path / "record"
    record_dir.mkdir()
    monkeypatch.setenv("RECORD_DIR", str(record_dir))
    return record_dir


def _assert_nothing_left(cache_dir: Path, names: dict[str, object]) -> None:
    """No server of this cache dir is running, and none of the session's databases exist."""
    assert postmaster_pids(cache_dir.parent) == []
    assert postmaster_pid_files(cache_dir) == []
    assert not pid_alive(int(names["postmaster"]))  # type: ignore[arg-type]
    with cluster_connection(cache_dir) as admin:
        existing = database_names(admin)
    assert session_databases(existing) == set(), existing
    for key in ("db", "fresh", "factory"):
        assert str(names[key]).startswith(("sss_", "ssc_"))
        assert names[key] not in existing
    assert postmaster_pids(cache_dir.parent) == []


def _names(record_dir: Path) -> dict[str, object]:
    return json.loads((record_dir / "names.json").read_text())


def test_normal_run_cleans_up(pytester: pytest.Pytester, cache_dir: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    record_dir = _project(pytester, monkeypatch)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    _assert_nothing_left(cache_dir, _names(record_dir))


def test_failing_run_cleans_up(pytester: pytest.Pytester, cache_dir: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    record_dir = _project(pytester, monkeypatch)
    monkeypatch.setenv("FAIL", "1")
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(failed=1)
    assert "failing on purpose" in output_of(result)
    _assert_nothing_left(cache_dir, _names(record_dir))


SESSION_SCOPED_TESTS = """
    import json
    import os
    from pathlib import Path

    import pytest

    @pytest.fixture(scope="session")
    def shared(schemasync):
        database = schemasync.manager.clone()
        yield database
        # Runs in pytest's own sessionfinish: our cleanup must not have run yet.
        with database.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        schemasync.manager.drop(database)
        Path(os.environ["RECORD_DIR"], "dropped").write_text(database.name)

    def test_uses_shared(shared, db):
        names = {"shared": shared.name,
                 "db": db.execute("SELECT current_database()").fetchone()[0]}
        Path(os.environ["RECORD_DIR"], "names.json").write_text(json.dumps(names))
        raise KeyboardInterrupt  # as Ctrl-C: the test loop stops without tearing down
"""


def test_session_scoped_fixture_tears_down_before_cleanup(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's session-scoped fixture may drop its clone in its own teardown. After an
    interrupt pytest runs that teardown in its sessionfinish, so our cleanup must come after
    it: the teardown still finds its database, nothing warns, nothing is left behind."""
    record_dir = _project(pytester, monkeypatch)
    (pytester.path / "test_records.py").unlink()
    pytester.makepyfile(test_shared=SESSION_SCOPED_TESTS)
    # pytest-asyncio (the test extra) warns at configure time about an ini key it wants set.
    result = run_inner(pytester, cache_dir, "-p", "no:asyncio",
                       "-W", "error::pytest.PytestWarning")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = output_of(result)
    assert "does not exist" not in out and "warning" not in out.lower(), out
    names = _names(record_dir)
    assert (record_dir / "dropped").read_text() == names["shared"]
    with cluster_connection(cache_dir) as admin:
        existing = database_names(admin)
    assert session_databases(existing) == set(), existing


def _interrupt(pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
               sig: int, *args: str) -> tuple[dict[str, object], int, str]:
    record_dir = _project(pytester, monkeypatch)
    monkeypatch.setenv("HANG", "1")
    proc = popen_inner(pytester, cache_dir, *args)
    try:
        wait_for_file(record_dir / "started", proc)
        names = _names(record_dir)
        assert pid_alive(int(names["postmaster"]))  # type: ignore[arg-type]
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # as Ctrl-C does: the whole foreground process group
        else:
            os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return names, proc.returncode, out


def test_ctrl_c_cleans_up(pytester: pytest.Pytester, cache_dir: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    names, code, out = _interrupt(pytester, cache_dir, monkeypatch, signal.SIGINT)
    assert code == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    assert "cleanup failed" not in out
    _assert_nothing_left(cache_dir, names)


def test_ctrl_c_under_xdist_cleans_up(pytester: pytest.Pytester, cache_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    names, code, out = _interrupt(pytester, cache_dir, monkeypatch, signal.SIGINT, "-n", "2")
    assert code == pytest.ExitCode.INTERRUPTED, out
    _assert_nothing_left(cache_dir, names)


def test_sigterm_cleans_up(pytester: pytest.Pytester, cache_dir: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    names, code, out = _interrupt(pytester, cache_dir, monkeypatch, signal.SIGTERM)
    assert code == pytest.ExitCode.INTERRUPTED, out
    assert "signal 15" in out
    _assert_nothing_left(cache_dir, names)


def test_sigkill_leaves_an_orphan_the_next_session_stops(pytester: pytest.Pytester,
                                                         cache_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    names, code, _ = _interrupt(pytester, cache_dir, monkeypatch, signal.SIGKILL)
    assert code == -signal.SIGKILL
    orphan = int(names["postmaster"])  # type: ignore[arg-type]
    # Nobody cleaned up: the server is still running, with the killed session's databases.
    assert pid_alive(orphan)
    assert postmaster_pids(cache_dir.parent) == [orphan]

    monkeypatch.delenv("HANG")
    (pytester.path / "record" / "started").unlink()
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    second = _names(pytester.path / "record")
    assert second["postmaster"] != orphan
    assert not pid_alive(orphan)
    # At its start the new session dropped the killed session's databases.
    assert all(str(second["token"]) in name for name in second["others"]), second  # type: ignore[attr-defined]
    assert names["db"] not in second["others"]  # type: ignore[operator]
    assert names["fresh"] not in second["others"]  # type: ignore[operator]
    _assert_nothing_left(cache_dir, second)


def _wait_for_query(cache_dir: Path, proc: subprocess.Popen[str], needle: str,
                    timeout: float = 60) -> None:
    """Wait until some backend of the cache's cluster runs a query containing ``needle``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"inner pytest exited early:\n{out}")
        for sock in cache_dir.glob("pg*/run/.s.PGSQL.*"):
            if sock.name.endswith(".lock"):
                continue
            try:
                with psycopg.connect(host=str(sock.parent), port=int(sock.suffix[1:]),
                                     user="schemasync", dbname="postgres",
                                     connect_timeout=2) as conn:
                    found = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE pid <> pg_backend_pid() AND query LIKE %s",
                        (f"%{needle}%",)).fetchone()[0]
                if found:
                    return
            except psycopg.OperationalError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"no query with {needle!r} started within {timeout}s")


def test_ctrl_c_during_the_template_build(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": "CREATE TABLE early (x int);\nSELECT pg_sleep(120);\n"})
    pytester.makepyfile(test_x="""
        def test_x(db):
            assert db.execute("SELECT count(*) FROM early").fetchone()[0] == 0
    """)
    proc = popen_inner(pytester, cache_dir)
    try:
        _wait_for_query(cache_dir, proc, "pg_sleep(120)")
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert postmaster_pids(cache_dir.parent) == []
    assert postmaster_pid_files(cache_dir) == []
    with cluster_connection(cache_dir) as admin:
        ours = {n for n in database_names(admin) if n.startswith(("ss",))}
    assert ours == set(), "the interrupted build left a database behind"

    (pytester.path / "schema.sql").write_text("CREATE TABLE early (x int);\n")
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert postmaster_pids(cache_dir.parent) == []
