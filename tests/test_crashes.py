"""SIGINT, SIGTERM and SIGKILL, sent under pytest-xdist (``-n 2``) to the controller alone or to
one worker alone, at start-up (initdb of a cold cache; the server launched but not ready; a
worker held in its pytest_configure), during a template build (a migration sleeps in
pg_sleep, seen in pg_stat_activity) and mid-run (a test that waits).

Whatever happened, at the latest once the next session has run: no server of the cache
directory is running, no private cluster, half-initialised data directory, socket or
session database is left, nor any process of the killed session; the next session passes on
the complete schema (a build that was killed is never used) and is not held up by locks of
the killed processes. When someone was left to clean up (everything but a SIGKILL of the
controller), the server is stopped at once, and an interrupted session drops its databases
itself.

``tests/test_cleanup.py`` covers the same signals without xdist and Ctrl-C for the whole
process group; these cases send each signal to a single process, as ``kill PID`` or an OOM
killer would.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from conftest import (
    built_templates,
    cluster_connection,
    database_names,
    header_lines,
    make_project,
    output_of,
    pid_alive,
    postmaster_pid_files,
    postmaster_pids,
    run_inner,
    session_databases,
)

NEXT_SESSION_BOUND = 60  # seconds: locks left by killed processes must not hold this up
SLEEP_SECONDS = 3  # the slow step of a template build

# The SQL sleeps only while the gate file exists and only in a build database matching the
# LIKE pattern written in it: the killed session sleeps, the next one does not. (A build
# refuses pg_read_file() written out, also in a function it calls; SQL built at run time,
# which no scan reads and which leaves nothing to audit, is test machinery's way round.)
SCHEMA = "CREATE TABLE early (id serial PRIMARY KEY, note text);\n"
MIGRATION_001 = """\
DO $$ DECLARE pattern text; BEGIN
  EXECUTE 'SELECT coalesce(pg_read' || '_file($1, 0, 200, true), '''')' INTO pattern
    USING '{gate}';
  IF current_database() LIKE pattern THEN PERFORM pg_sleep({seconds}); END IF;
END $$;
CREATE TABLE late (id integer);
"""
MIGRATION_002 = "CREATE TABLE later (id integer);\n"
ANY_BUILD = r"ssb\_%"  # the main template, built by the controller at session start
BEFORE_BUILD = r"ssb\_%.b002\_%"  # the before=002 template, built lazily by a worker

INNER_CONFTEST = """
import os
import time
from pathlib import Path

MARKS = Path(os.environ["CRASH_MARKS"])


def pytest_configure(config):
    # Not PYTEST_XDIST_WORKER: the controller inherits it when the outer suite runs in xdist.
    worker = config.workerinput["workerid"] if hasattr(config, "workerinput") else "controller"
    (MARKS / f"pid-{worker}").write_text(str(os.getpid()))
    if worker == os.environ.get("CRASH_HOLD"):  # wait here, at start-up, for the signal
        deadline = time.monotonic() + 60
        while not (MARKS / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
"""

INNER_TESTS = """
import os
import time
from pathlib import Path

import pytest

MARKS = Path(os.environ["CRASH_MARKS"])


def tables(conn):
    names = ("early", "late", "later")
    return {n for n in names if conn.execute("SELECT to_regclass(%s)", (n,)).fetchone()[0]}


def versions(conn):
    return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def test_complete_schema(db):
    assert tables(db) == {"early", "late", "later"}
    assert versions(db) == ["001", "002"]


@pytest.mark.schemasync(before="002")
def test_before_002(db):
    assert tables(db) == {"early", "late"}
    assert versions(db) == ["001"]


def test_mid_run(db, fresh_db):
    db.execute("INSERT INTO early (note) VALUES ('rolled back')")
    fresh_db.execute("INSERT INTO early (note) VALUES ('committed')")
    fresh_db.commit()
    assert tables(fresh_db) == {"early", "late", "later"}
    if os.environ.get("CRASH_HANG"):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
        (MARKS / "hang").write_text(f"{os.getpid()} {worker}")
        parent, deadline = os.getppid(), time.monotonic() + 60
        # Until released, or until the controller is gone (then this worker is an orphan).
        while not (MARKS / "release").exists() and os.getppid() == parent:
            assert time.monotonic() < deadline, "never released"
            time.sleep(0.05)


@pytest.mark.parametrize("n", range(4))
def test_clones(fresh_db, n):
    assert fresh_db.execute("SELECT count(*) FROM early").fetchone()[0] == 0
    fresh_db.execute("INSERT INTO early (note) VALUES ('x')")
    fresh_db.commit()
"""
INNER_COUNT = 7


@dataclass(frozen=True)
class Case:
    target: str  # "controller" or "worker"
    moment: str  # see MOMENTS
    sig: signal.Signals

    def __str__(self) -> str:
        return f"{self.target}-{self.moment}-{self.sig.name}"


# Start-up is two moments for the controller (the server is not up in either): initdb of a
# cold cache, and the server launched but not yet ready (the controller waits for it). A
# worker starts up once the server is up; it is held in its pytest_configure, before it has
# touched the server.
MOMENTS = {
    "controller": ("initdb", "server-start", "build", "midrun"),
    "worker": ("startup", "build", "midrun"),
}
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)

def _param(case: Case) -> object:
    return pytest.param(case, id=str(case))


CASES = [_param(Case(target, moment, sig))
         for target, moments in MOMENTS.items() for moment in moments for sig in SIGNALS]


# --- helpers ---------------------------------------------------------------------------


def _default_sigint() -> None:
    # A process that starts with SIGINT ignored (as children of a non-interactive shell's
    # background job do) never gets Python's KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def launch(pytester: pytest.Pytester, cache_dir: Path, *args: str) -> subprocess.Popen[str]:
    basetemp = tempfile.mkdtemp(prefix="basetemp-", dir=pytester.path)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={basetemp}",
         f"--schemasync-cache-dir={cache_dir}", *args],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, preexec_fn=_default_sigint,
    )


class MomentMissed(Exception):
    """The moment to send the signal at never came (not an assertion about the plugin)."""


def poll(what: str, proc: subprocess.Popen[str], check: Callable[[], int | None],
         timeout: float = 60, interval: float = 0.02) -> int:
    """Wait until ``check()`` returns a pid (the process to signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise MomentMissed(f"inner pytest exited ({proc.returncode}) before {what}:\n{out}")
        time.sleep(interval)
    raise MomentMissed(f"{what} did not happen within {timeout}s")


def processes() -> list[tuple[int, int, int, str]]:
    """(pid, ppid, pgid, command line) of every live process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] in "ZX":
            continue
        found.append((int(entry.name), int(fields[1]), int(fields[2]), cmdline))
    return found


def server_tool_running(cache_dir: Path, tool: str, action: str = "") -> int | None:
    """A pid of ``tool`` (initdb, pg_ctl) working on this cache directory."""
    needle = str(cache_dir)
    for pid, _, _, cmd in processes():
        words = cmd.split()
        if (words and words[0].endswith("/" + tool) and needle in cmd
                and (not action or action in words)):
            return pid
    return None


def server_starting(cache_dir: Path) -> bool:
    """The cached cluster's server has been launched (its pid file names a live process) but
    does not accept connections yet (no "ready" status in the pid file): the controller is
    still waiting for it. Cheap enough to poll in a tight loop, which the short window needs."""
    for pid_file in cache_dir.glob("pg*/data/postmaster.pid"):
        try:
            lines = pid_file.read_text().split("\n")
            pid = int(lines[0])
        except (OSError, ValueError):
            continue
        if pid_alive(pid) and not (len(lines) > 7 and lines[7].strip() == "ready"):
            return True
    return False


def sleeping_build(cache_dir: Path) -> bool:
    """A backend of the cache's cluster sleeps in pg_sleep inside a build database."""
    for sock in cache_dir.glob("pg*/run/.s.PGSQL.*"):
        if sock.name.endswith(".lock"):
            continue
        try:
            with psycopg.connect(host=str(sock.parent), port=int(sock.suffix[1:]),
                                 user="schemasync", dbname="postgres", connect_timeout=2,
                                 autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                    "AND datname LIKE 'ssb\\_%'").fetchone()
            if row and row[0]:
                return True
        except psycopg.OperationalError:
            pass
    return False


def builder_of_sleep(workers: list[int]) -> int | None:
    """The worker whose psql child runs the sleeping build."""
    for _, ppid, _, cmd in processes():
        if ppid in workers and re.search(r"(^|/)psql ", cmd):
            return ppid
    return None


def servers_after(path: Path, timeout: float = 10) -> list[int]:
    """Server processes still running under ``path`` once ``timeout`` has passed (a stopped
    postmaster removes its pid file a moment before it exits)."""
    deadline = time.monotonic() + timeout
    while postmaster_pids(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return postmaster_pids(path)


def group_members(pgid: int) -> list[str]:
    return [f"{pid} {cmd}" for pid, _, group, cmd in processes() if group == pgid]


def leftovers(cache_dir: Path) -> list[str]:
    """Files and folders a finished session must not leave in the cache directory."""
    found = [str(p) for p in cache_dir.glob("pg*/data.initdb*")]
    found += [str(p) for p in cache_dir.glob("private/*")]
    found += [str(p) for p in cache_dir.glob("pg*/run/.s.PGSQL.*")]
    found += [str(p) for p in cache_dir.parent.iterdir() if p.name not in ("cache", "gate")]
    return found


# --- the matrix --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_signal(case: Case, pytester: pytest.Pytester, cache_dir: Path,
                monkeypatch: pytest.MonkeyPatch) -> None:
    gate = cache_dir.parent / "gate"
    make_project(
        pytester,
        sets={"default": {"files": ["schema.sql"], "migrations": "migrations"}},
        files={"schema.sql": SCHEMA,
               "migrations/001_slow.sql": MIGRATION_001.format(gate=gate,
                                                               seconds=SLEEP_SECONDS),
               "migrations/002_more.sql": MIGRATION_002},
    )
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    marks = pytester.path / "marks"
    marks.mkdir()
    monkeypatch.setenv("CRASH_MARKS", str(marks))
    if case.moment == "build":
        gate.write_text(ANY_BUILD if case.target == "controller" else BEFORE_BUILD)
        os.chmod(gate, 0o644)
    if case.moment == "midrun":
        monkeypatch.setenv("CRASH_HANG", "1")
    if case.target == "worker" and case.moment == "startup":
        monkeypatch.setenv("CRASH_HOLD", "gw0")

    proc = launch(pytester, cache_dir, "-n", "2")
    try:
        victim = _find_victim(case, proc, cache_dir, marks)
        os.kill(victim, case.sig)
        killed_at = time.monotonic()
        if case.target == "worker" and case.moment == "startup":
            (marks / "go").write_text("1")  # in case the held worker survived the signal
        out, _ = proc.communicate(timeout=60)  # a hang guard, not a speed claim
        took = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _check_killed_session(case, proc.returncode, out, took)
    # Unless the controller was killed outright, someone was left to clean up (the
    # controller itself, or the controller of a worker): the server is stopped at once, not
    # only by the next session. Asserted last, so the other checks run in any case.
    expect_cleanup = not (case.target == "controller" and case.sig == signal.SIGKILL)
    left_running = servers_after(cache_dir.parent, timeout=5) if expect_cleanup else []
    crashed_worker = case.target == "worker" and case.sig != signal.SIGINT
    if expect_cleanup and not crashed_worker and case.moment != "initdb":
        # An interrupted session drops its databases itself. (A crashed worker cannot: its
        # databases wait for the next session, which drops those of dead sessions.)
        with cluster_connection(cache_dir) as admin:
            early = session_databases(database_names(admin))
        assert early == set(), f"the interrupted session left {early}:\n{out}"

    try:
        # The next session starts at once (processes of the killed one may still be exiting):
        # it works normally, on the complete schema, and is not held up by stale locks.
        (marks / "release").write_text("1")
        gate.unlink(missing_ok=True)
        monkeypatch.delenv("CRASH_HANG", raising=False)
        monkeypatch.delenv("CRASH_HOLD", raising=False)
        result = run_inner(pytester, cache_dir, timeout=NEXT_SESSION_BOUND)
        next_out = output_of(result)
        assert result.parseoutcomes() == {"passed": INNER_COUNT}, next_out
        assert "cached cluster" in header_lines(result)[0], next_out
        if not expect_cleanup and case.moment != "initdb":
            # The killed controller's server was still running: the next session says so.
            assert ("schemasync: stopped a server left running by a killed session"
                    in header_lines(result)), next_out
        for text in (out, next_out):
            for needle in ("is being accessed by other users", "already exists"):
                assert needle not in text, text

        # Processes of the killed session other than the server (an orphaned xdist worker, the
        # psql of a killed build, an initdb) are gone too.
        deadline = time.monotonic() + 15
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        stragglers = group_members(proc.pid)
        assert not stragglers, f"processes of the killed session outlived it: {stragglers}"

        # Nothing is left: no server, no socket, no private cluster, no session database, and
        # exactly the two complete templates.
        assert servers_after(cache_dir.parent) == [], next_out
        assert postmaster_pid_files(cache_dir) == [], next_out
        assert leftovers(cache_dir) == [], next_out
        with cluster_connection(cache_dir) as admin:
            names = database_names(admin)
        ours = {n for n in names if n.startswith("ss")}
        assert len(ours) == 2 and all(n.startswith("sst_") for n in ours), names
        assert servers_after(cache_dir.parent) == [], "the check's own server is still up"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    built = built_templates(cache_dir)
    if case.target == "controller" and case.moment in ("initdb", "server-start", "build"):
        # The killed session built nothing; the next one built both templates.
        assert len(built) == 2, built
    if case.moment == "build":
        point = "None" if case.target == "controller" else "002"
        builds = [line for line in built if f"before={point}" in line]
        assert builds, built
        killed = re.escape(f"pid={victim} ")
        assert not any(re.search(killed, line) for line in builds), (
            f"the killed process {victim} finished its build: {builds}")
    if expect_cleanup:
        assert left_running == [], f"the server outlived the session:\n{out}"


def _find_victim(case: Case, proc: subprocess.Popen[str], cache_dir: Path,
                 marks: Path) -> int:
    """Wait for the moment, then return the pid to signal."""
    if case.target == "controller":
        if case.moment == "initdb":
            poll("initdb", proc, lambda: server_tool_running(cache_dir, "initdb"), interval=0)
        elif case.moment == "server-start":
            poll("server start", proc, lambda: proc.pid if server_starting(cache_dir) else None,
                 interval=0)
        elif case.moment == "build":
            poll("the slow build", proc, lambda: proc.pid if sleeping_build(cache_dir) else None)
        else:
            poll("the hanging test", proc, lambda: proc.pid if (marks / "hang").exists() else None)
        return proc.pid
    if case.moment == "startup":
        return poll("worker start-up", proc, lambda: _pid_file(marks / "pid-gw0"))
    if case.moment == "build":

        def worker_building() -> int | None:
            workers = [p for p in (_pid_file(marks / f"pid-gw{i}") for i in (0, 1)) if p]
            return builder_of_sleep(workers) if sleeping_build(cache_dir) else None

        return poll("a worker's slow build", proc, worker_building)
    return poll("the hanging test", proc, lambda: _hang_pid(marks))


def _hang_pid(marks: Path) -> int | None:
    """The pid the hanging test wrote (None until the file exists *and* holds it: it is
    created empty before the pid is written)."""
    try:
        return int((marks / "hang").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None


def _check_killed_session(case: Case, code: int | None, out: str, took: float) -> None:
    """How the signalled session itself ended."""
    where = f"{case}: exit {code} after {took:.1f}s\n{out[-4000:]}"
    if case.target == "controller":
        if case.sig == signal.SIGKILL:
            assert code == -signal.SIGKILL, where
        else:
            assert code == pytest.ExitCode.INTERRUPTED, where
            assert "cleanup failed" not in out, where
    elif case.moment == "startup":
        # A worker lost before it ran anything is replaced, and the run passes.
        assert code == pytest.ExitCode.OK, where
        assert "replacing crashed worker gw0" in out, where
    elif case.sig == signal.SIGINT:
        # KeyboardInterrupt in a worker interrupts the whole run.
        assert code == pytest.ExitCode.INTERRUPTED, where
        assert "received keyboard-interrupt" in out, where
    else:
        # A worker that dies is a crash: its test fails, the rest of the run goes on.
        assert code == pytest.ExitCode.TESTS_FAILED, where
        assert "worker 'gw" in out and "crashed while running" in out, where

