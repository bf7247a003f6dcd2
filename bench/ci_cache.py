"""CI caching: a session's start on a cold cache, a warm one, and one restored from an archive
as actions/cache restores it (README: "Keeping the cluster across CI runs").

A CI runner starts from nothing: without a cache every job runs initdb and builds every
template. With the cache folder archived at the end of a job and restored at the start of the
next (keyed on the schema files' hash), the job starts like a warm developer machine. Measured
on the example project's gameforge set with one `db` test:

- cold: an empty cache folder (initdb, server start, template build);
- warm: the same folder again, never archived (a developer's second run);
- restored: the folder deleted and extracted from the archive first (an exact cache hit);
- partial: restored, then one schema file changed (a restore-keys hit: the cluster is reused
  and only the changed set's template is built).

Part of `bash bench/run.sh`; alone (root, a minute or so):

    .venv/bin/python bench/ci_cache.py [--repeat 3]

Measurement only: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GAMEFORGE = REPO / "example_project" / "db" / "gameforge"
PYPROJECT = """\
[tool.pytest.ini_options]
addopts = ""
asyncio_default_fixture_loop_scope = "function"

[tool.schemasync.sets.gameforge]
files = ["db/gameforge/schema.sql"]
migrations = "db/gameforge/migrations"
"""
TEST = """\
def test_users_table(db):
    assert db.execute("SELECT to_regclass('public.users')").fetchone()[0] is not None
"""


@dataclass
class CiCacheBench:
    seconds: dict[str, list[float]] = field(default_factory=dict)  # kind -> session seconds
    archive_bytes: int = 0
    compressor: str = ""
    save_seconds: float = 0.0
    restore_seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    error: str = ""
    load: list[float] = field(default_factory=list)  # 1-minute load average, before and after


def _pytest(python: str, project: Path, cache: Path) -> tuple[float, int, str]:
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:pytest_postgresql",
           f"--schemasync-cache-dir={cache}"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True,
                          timeout=300, start_new_session=True)
    return time.perf_counter() - started, done.returncode, done.stdout + done.stderr


def _tar(*args: str) -> None:
    subprocess.run(["tar", *args], check=True, capture_output=True, timeout=300)


def measure(work: Path, shm: Path, python: str = sys.executable,
            repeat: int = 3) -> CiCacheBench:
    """``work`` on disk holds the project and the archive; ``shm`` (tmpfs, reachable by the
    server's user) the cache folders."""
    result = CiCacheBench(load=[os.getloadavg()[0]])
    project = work / "ci-project"
    shutil.copytree(GAMEFORGE, project / "db" / "gameforge")
    (project / "pyproject.toml").write_text(PYPROJECT)
    (project / "test_ci.py").write_text(TEST)

    def session(kind: str, cache: Path) -> None:
        seconds, code, output = _pytest(python, project, cache)
        if code != 0:
            result.failures.append(f"{kind}: exit {code}\n{output[-1500:]}")
        result.seconds.setdefault(kind, []).append(seconds)

    caches = [shm / f"ci-cold{i}" / "cache" for i in range(2)]
    for cache in caches:
        cache.parent.mkdir(mode=0o755)
        session("cold", cache)
    cache = caches[0]
    for _ in range(repeat):
        session("warm", cache)
    # actions/cache archives with tar and zstd when the runner has it, gzip otherwise.
    result.compressor = "zstd" if shutil.which("zstd") else "gzip"
    archive = work / f"cache.tar.{'zst' if result.compressor == 'zstd' else 'gz'}"
    flag = "--zstd" if result.compressor == "zstd" else "--gzip"
    started = time.perf_counter()
    _tar("-C", str(cache.parent), flag, "-cf", str(archive), cache.name)
    result.save_seconds = time.perf_counter() - started
    result.archive_bytes = archive.stat().st_size
    for kind in ["restored"] * repeat + ["partial"]:
        shutil.rmtree(cache)
        started = time.perf_counter()
        _tar("-C", str(cache.parent), flag, "-xf", str(archive))
        result.restore_seconds.append(time.perf_counter() - started)
        if kind == "partial":
            schema = project / "db" / "gameforge" / "schema.sql"
            schema.write_text(schema.read_text() + "\nCREATE TABLE public.ci_bench_new (id int);\n")
        session(kind, cache)
    result.load.append(os.getloadavg()[0])
    return result


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f} s"
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


LABELS = {
    "cold": "cold: empty cache folder (initdb, start, build)",
    "warm": "warm: the same folder again (a developer's second run)",
    "restored": "restored: extracted from the archive first (exact key hit)",
    "partial": "partial: restored, then a schema file changed (restore-keys hit)",
}


def render(result: CiCacheBench) -> str:
    lines = [
        "## CI cache: cold versus warm start", "",
        "One pytest session (one `db` test, the gameforge set of example_project) end to end; "
        "median (min-max). \"restored\" deletes the cache folder and extracts it from a tar "
        "archive first, as `actions/cache` restores it (the extraction is timed apart). "
        "Written by bench/ci_cache.py.", "",
        "| cache | session |", "| --- | ---: |",
        *[f"| {label} | {_cell(result.seconds.get(kind, []))} |" for kind, label in LABELS.items()],
        "",
        f"Archive ({result.compressor}): {result.archive_bytes / 1e6:.1f} MB, written in "
        f"{result.save_seconds:.2f} s; extracted in {_cell(result.restore_seconds)}. "
        f"Load average {' / '.join(f'{x:.2f}' for x in result.load)} (before / after) on "
        f"{os.cpu_count()} cores: on a shared machine every figure here includes waiting.",
    ]
    cold, restored = result.seconds.get("cold", []), result.seconds.get("restored", [])
    if cold and restored:
        saved = statistics.median(cold) - statistics.median(restored)
        lines.append(f"A restored cache saves {saved:.2f} s per job "
                     f"({statistics.median(cold) / statistics.median(restored):.1f}x faster).")
    for failure in result.failures:
        lines += ["", f"Failed run: ```{failure}```"]
    if result.error:
        lines += ["", f"Stopped: {result.error}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="schemasync-ci-bench-"))
    shm_base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    shm = Path(tempfile.mkdtemp(prefix="schemasync-ci-bench-", dir=shm_base))
    shm.chmod(0o755)
    try:
        result = measure(work, shm, repeat=args.repeat)
    finally:
        _stop_servers(shm)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
    print(render(result))
    return 1 if result.failures else 0


def _stop_servers(folder: Path) -> None:
    """A server a failed run left behind in our folder (pytest stops its own normally)."""
    for pidfile in folder.rglob("postmaster.pid"):
        pid = int(pidfile.read_text().split()[0])
        subprocess.run(["kill", "-QUIT", str(pid)], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
