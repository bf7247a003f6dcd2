"""Warm session start on example_project: pytest with the plugin against bare pytest.

A copy of example_project whose tests are replaced by one trivial test (its three sets still
make the server preload PostGIS, pgRouting, citext and pg_trgm), a warm cache on /dev/shm;
rounds alternate bare (``-p no:schemasync``) and plugin runs. Prints best / median of each and
the plugin's cost over bare three ways (#14's target: at most 0.25 s). Measurement only.

    .venv/bin/python bench/warm_start.py [--rounds N]
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as work, \
            tempfile.TemporaryDirectory(dir="/dev/shm" if os.access("/dev/shm", os.W_OK)
                                        else None) as cache:
        os.chmod(cache, 0o755)  # as root the server runs as another user, who must enter it
        project = Path(work) / "example"
        shutil.copytree(REPO / "example_project", project,
                        ignore=shutil.ignore_patterns("tests", ".pytest_cache"))
        (project / "tests").mkdir()
        (project / "tests" / "test_trivial.py").write_text("def test_trivial():\n    pass\n")
        base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "no:pytest_postgresql", "tests/test_trivial.py"]
        plugin = [*base, f"--schemasync-cache-dir={cache}"]
        bare = [*base, "-p", "no:schemasync"]

        def run(command: list[str]) -> float:
            started = time.perf_counter()
            done = subprocess.run(command, cwd=project, capture_output=True, text=True)
            took = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(done.stdout + done.stderr)
            return took

        run(plugin)  # cold: initdb and the templates
        run(plugin)
        run(bare)
        bares, plugins = [], []
        for _ in range(rounds):
            bares.append(run(bare))
            plugins.append(run(plugin))
    over = [p - b for p, b in zip(plugins, bares, strict=True)]
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{os.getloadavg()[0]:.2f}, {rounds} rounds")
    print(f"bare pytest:  best {min(bares):.3f} s, median {statistics.median(bares):.3f} s")
    print(f"with plugin:  best {min(plugins):.3f} s, median {statistics.median(plugins):.3f} s")
    print(f"over bare:    best-of-each {min(plugins) - min(bares):+.3f} s, medians "
          f"{statistics.median(plugins) - statistics.median(bares):+.3f} s, per-round median "
          f"{statistics.median(over):+.3f} s (target: at most +0.25 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
