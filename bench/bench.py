"""Benchmark pytest-schemasync against pytest-postgresql, testing.postgresql and raw SQL;
then time its schema check and refresh against a stand-in production.

Driven by bench/run.sh, which makes two scratch folders (one on disk under /tmp, one on tmpfs
under /dev/shm) and, when this ends, stops any server left in them and removes them:

    python bench/bench.py --work /tmp/X --shm /dev/shm/Y

Measurement only: nothing here asserts a timing. The report goes to stdout and to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ci_cache
import psycopg
from psycopg import sql
from report import RAW_MODES, CheckBench, Measurements, Outcome, Row, StressBench, render
from suite import (
    CARTHORSE_FILES,
    CARTHORSE_PYPROJECT,
    N_TESTS,
    PYPROJECT,
    render_carthorse_tests,
    render_tests,
    server_sql,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
GAMEFORGE = REPO / "example_project" / "db" / "gameforge"
EXAMPLE = REPO / "example_project"
STAGING_STAMPS = ("20261120_031500", "20261121_120000", "20261122_231000")
CHECK_SETS = ("carthorse", "gameforge")
CHECK_REPEATS = 5  # pytest runs with and without --schema-check, CLI checks per set
IN_PROCESS_REPEATS = 5
REFRESH_CHANGE = "ALTER TABLE public.trails ADD COLUMN bench_note text"
PG_BINDIR = Path(os.environ.get("BENCH_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
START_REPEATS = 5
# -n 1, 2 and 4 as the issue asks; -n 0 (no xdist worker: one process) as an extra row.
STRESS_WORKERS = tuple((f"-n {n}", ("-n", str(n))) for n in (0, 1, 2, 4))
RUN_TIMEOUT = 300


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without anything that would steer the runs. That includes
    PYTHONDONTWRITEBYTECODE: without cached bytecode every run would compile the plugin (an
    editable install) from source, which no developer machine does."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "SCHEMASYNC_", "PYTEST_", "TMPDIR"))
           and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], as_postgres: bool = False,
        timings: Path | None = None) -> Outcome:
    """Run one subprocess (as the postgres user if asked) and time it."""
    if timings is not None:
        env = {**env, "BENCH_TIMINGS": str(timings)}
    if as_postgres:
        home = pwd.getpwnam(PG_USER).pw_dir
        cmd = ["runuser", "-u", PG_USER, "--", "env", "-i",
               *(f"{k}={v}" for k, v in env.items() if k != "HOME"), f"HOME={home}", *cmd]
        env = clean_env()
    started = time.perf_counter()
    # Its own process group, so that on a timeout or an interrupt we stop exactly what we
    # started (pytest, and the servers it started) and nothing else.
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        stop_group(proc)
        code, output = -1, f"timed out after {RUN_TIMEOUT}s\n{proc.communicate()[0]}"
    except BaseException:
        stop_group(proc)
        raise
    seconds = time.perf_counter() - started
    tests: dict[str, dict[str, Any]] = {}
    if timings is not None and timings.exists():
        tests = json.loads(timings.read_text())
    return Outcome(seconds, code, output, tests)


def stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGINT (pytest tears its fixtures down on it), then SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def wait_for_backends(admin: psycopg.Connection[Any], dbname: str, timeout: float = 5) -> None:
    """Poll until no backend is connected to ``dbname``: a closed client's backend exits
    asynchronously, and a DROP DATABASE that still sees it sleeps 100 ms before looking again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = %s", (dbname,)).fetchone():
        time.sleep(0.0005)


def first_error(output: str) -> str:
    """The most telling line of a failed run."""
    lines = output.splitlines()
    for needle in ("cannot be run as root", "Exception:", "Error:"):
        for line in lines:
            if needle in line:
                return line.strip().removeprefix("E").strip()[:200]
    return lines[-1][:200] if lines else "(no output)"


class Bench:
    def __init__(self, work: Path, shm: Path) -> None:
        self.work = work  # on disk (/tmp): where the competitors keep their data by default
        self.shm = shm  # on tmpfs (/dev/shm)
        self.project = work / "project"
        self.startup = work / "startup"
        self.example = work / "example"
        self.results = work / "results"
        self.python = str(VENV_PYTHON)
        self.python_note = ""
        self.probes: dict[str, str] = {}

    def setup(self) -> None:
        os.chmod(self.work, 0o755)
        os.chmod(self.shm, 0o755)
        self.results.mkdir()
        os.chmod(self.results, 0o777)  # the postgres user writes its timings here
        for project in (self.project, self.startup):
            shutil.copytree(GAMEFORGE, project / "db" / "gameforge")
            (project / "pyproject.toml").write_text(PYPROJECT)
        shutil.copy(BENCH / "suite_conftest.py", self.project / "conftest.py")
        (self.project / "test_bench.py").write_text(render_tests())
        (self.startup / "test_trivial.py").write_text("def test_trivial():\n    assert True\n")
        chown_tree(self.project, PG_USER)
        for folder in (self.work / "disk-tmp", self.shm / "ppg", self.shm / "tpg"):
            folder.mkdir()
            chown_tree(folder, PG_USER)
        self.choose_python()

    def choose_python(self) -> None:
        """One interpreter for every variant, and one the postgres user can execute."""
        probe = run([self.python, "-c", "import pytest"], cwd=self.work, env=clean_env(),
                    as_postgres=True)
        self.probes[".venv's python run as postgres"] = (
            "works" if probe.returncode == 0 else probe.tail(1))
        if probe.returncode == 0:
            self.python_note = f"{VENV_PYTHON} for every variant."
            return
        # .venv's interpreter lives where the postgres user cannot go (here: /root's pyenv).
        # Use the system Python of the same minor version in a venv whose site dir chains to
        # .venv's site-packages: the same installed packages, and one interpreter for all.
        site = next((REPO / ".venv" / "lib").glob("python3.*/site-packages"))
        minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
        system = shutil.which(minor, path="/usr/bin:/usr/local/bin:/bin")
        if system is None:
            raise SystemExit(f"The postgres user cannot run {VENV_PYTHON} and there is no "
                             f"system {minor} to run the competitors with.")
        venv = self.work / "pyvenv"
        subprocess.run([system, "-m", "venv", "--without-pip", str(venv)], check=True)
        (venv / "lib" / minor / "site-packages" / "_bench_chain.pth").write_text(
            f"import site; site.addsitedir({str(site)!r})\n")
        self.python = str(venv / "bin" / "python")
        version = subprocess.run([self.python, "-c", "import platform; "
                                  "print(platform.python_version())"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        self.python_note = (
            f"the postgres user cannot execute {VENV_PYTHON} (it resolves to "
            f"{os.path.realpath(VENV_PYTHON)}, out of that user's reach), so every variant, "
            f"ours included, runs on {system} (Python {version}) in a venv whose site dir "
            f"chains to .venv's site-packages: the same packages and the same interpreter for "
            f"all. The driver itself runs on .venv's Python.")

    # --- the pytest variants ----------------------------------------------------------

    def pytest_cmd(self, *extra: str) -> list[str]:
        return [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "timing_plugin", "test_bench.py", *extra]

    def env(self, variant: str, **extra: str) -> dict[str, str]:
        return clean_env(BENCH_VARIANT=variant, BENCH_PG_BINDIR=str(PG_BINDIR),
                         PYTHONPATH=str(BENCH), **extra)

    def ours(self, variant: str, cache: Path, label: str, *extra: str) -> Outcome:
        cmd = self.pytest_cmd("-p", "no:pytest_postgresql", f"--schemasync-cache-dir={cache}",
                              *extra)
        return run(cmd, cwd=self.project, env=self.env(variant),
                   timings=self.results / f"{label}.json")

    def pytest_postgresql(self, label: str, basetemp: Path | None, project: Path | None = None,
                          **env: str) -> Outcome:
        args = ["-p", "no:schemasync", f"--postgresql-exec={PG_BINDIR / 'pg_ctl'}"]
        extra: dict[str, str] = dict(env)
        if basetemp is None:  # its default: tmp_path_factory under the system temp dir
            extra["PYTEST_DEBUG_TEMPROOT"] = str(self.work / "disk-tmp")
        else:
            args.append(f"--basetemp={basetemp}")
        return run(self.pytest_cmd(*args), cwd=project or self.project, as_postgres=True,
                   env=self.env("pytest_postgresql", **extra),
                   timings=self.results / f"{label}.json")

    def testing_postgresql(self, label: str, tmpdir: Path) -> Outcome:
        return run(self.pytest_cmd("-p", "no:schemasync", "-p", "no:pytest_postgresql"),
                   cwd=self.project, as_postgres=True,
                   env=self.env("testing_postgresql", TMPDIR=str(tmpdir)),
                   timings=self.results / f"{label}.json")

    def probe_competitors(self) -> None:
        """Record what fails when the competitors are used as they are, as root."""
        initdb, postgres = str(PG_BINDIR / "initdb"), str(PG_BINDIR / "postgres")
        snippets = {
            "testing.postgresql.skipIfNotFound(f)": "t.skipIfNotFound(lambda: None)",
            "testing.postgresql.Postgresql() as root":
                f"t.Postgresql(initdb={initdb!r}, postgres={postgres!r}).stop()",
        }
        for label, snippet in snippets.items():
            code = (f"import testing.postgresql as t\ntry:\n    {snippet}; print('works')\n"
                    f"except Exception as e:\n    print(f'{{type(e).__name__}}: {{e}}')\n")
            out = run([self.python, "-c", code], cwd=self.work,
                      env=clean_env(TMPDIR=str(self.shm)))
            self.probes[label] = (out.output.strip().splitlines() or ["(no output)"])[0][:200]
        out = run(self.pytest_cmd("-p", "no:schemasync", "-x", "-k", "test_case_00",
                                  f"--basetemp={self.shm / 'ppg-root'}"),
                  cwd=self.project, env=self.env("pytest_postgresql"))
        self.probes["pytest-postgresql as root"] = first_error(out.output)

    # --- the raw baseline and the start overhead ----------------------------------------

    def session(self, project: Path, cache: Path) -> Any:
        from pytest_schemasync.config import build_settings
        from pytest_schemasync.scratch import Scratch

        settings = build_settings(project, cli={"cache_dir": str(cache)},
                                  config_file=project / "pyproject.toml", environ={})
        return Scratch(settings)

    def raw_baseline(self, cache: Path) -> dict[str, list[float]]:
        """CREATE DATABASE ... TEMPLATE + DROP DATABASE, timed directly on our server."""
        session = self.session(self.project, cache)
        timings: dict[str, list[float]] = {}
        try:
            server = session.start()
            (template,) = session.prepare()
            with psycopg.connect(server.conninfo(), autocommit=True) as admin:
                for mode in RAW_MODES:
                    times = timings.setdefault(mode, [])
                    strategy = sql.SQL(mode.split("+")[0])
                    for i in range(N_TESTS):
                        name = f"bench_raw_{i}"
                        started = time.perf_counter()
                        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
                            sql.Identifier(name), sql.Identifier(template.name), strategy))
                        if "+connect" in mode:
                            psycopg.connect(server.conninfo(name)).close()
                        if mode.endswith("+wait"):
                            wait_for_backends(admin, name)
                        admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
                        times.append(1000 * (time.perf_counter() - started))
        finally:
            session.close()
        return timings

    def start_overhead(self, cache: Path) -> dict[str, list[float]]:
        """pytest on one trivial test, warm cache, with and without the plugin."""
        base = [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "no:pytest_postgresql", "test_trivial.py"]
        with_plugin = [*base, f"--schemasync-cache-dir={cache}"]
        warmup = run(with_plugin, cwd=self.startup, env=clean_env())  # builds the template
        if warmup.returncode != 0:
            raise RuntimeError(f"the warm-up of the start-overhead project failed:\n"
                               f"{warmup.tail()}")
        result: dict[str, list[float]] = {"plugin": [], "no:schemasync": []}
        for _ in range(START_REPEATS):
            result["plugin"].append(run(with_plugin, cwd=self.startup, env=clean_env()).seconds)
            result["no:schemasync"].append(
                run([*base, "-p", "no:schemasync"], cwd=self.startup, env=clean_env()).seconds)
        return result

    def start_breakdown(self, cache: Path) -> tuple[dict[str, list[float]],
                                                    dict[str, list[float]]]:
        """Where the start overhead goes: imports, and the server's start/prepare/close."""
        imports: dict[str, list[float]] = {"pytest": [], "pytest+plugin": []}
        for _ in range(START_REPEATS):
            for key, code in (("pytest", "import pytest"),
                              ("pytest+plugin", "import pytest, pytest_schemasync.plugin")):
                imports[key].append(
                    run([self.python, "-c", code], cwd=self.startup, env=clean_env()).seconds)
        server: dict[str, list[float]] = {"start": [], "prepare": [], "close": []}
        for _ in range(3):
            session = self.session(self.startup, cache)
            for key, step in (("start", session.start), ("prepare", session.prepare),
                              ("close", session.close)):
                started = time.perf_counter()
                step()
                server[key].append(time.perf_counter() - started)
        return imports, server

    # --- the schema check and the refresh ------------------------------------------------

    def example_pytest(self, cache: Path, env: dict[str, str], *extra: str) -> Outcome:
        """One trivial test on the copy of example_project. Without -q: the header holds the
        templates' origin and the check's status line."""
        cmd = [self.python, "-m", "pytest", "-p", "no:cacheprovider", "-p",
               "no:pytest_postgresql", f"--schemasync-cache-dir={cache}",
               "tests/test_trivial.py", *extra]
        return run(cmd, cwd=self.example, env=env)

    def example_cli(self, cache: Path, env: dict[str, str], *args: str) -> Outcome:
        """`schemasync ...` (the console script's main, on the interpreter of the pytest runs)."""
        cmd = [self.python, "-m", "pytest_schemasync.cli", f"--schemasync-cache-dir={cache}",
               *args]
        return run(cmd, cwd=self.example, env=env)

    def check_and_refresh(self, cache: Path, result: CheckBench) -> None:
        """The schema check (pytest --schema-check, `schemasync check`, check_set in-process)
        and `schemasync refresh` against a stand-in production holding both sets; fills
        ``result`` as it goes, so that a failure keeps what was measured before it."""
        from pytest_schemasync.binaries import find_binaries
        from pytest_schemasync.migrations import apply_pending
        from pytest_schemasync.standin import OWNER, StandinProduction

        shutil.copytree(EXAMPLE, self.example, ignore=shutil.ignore_patterns(
            "tests", "scripts", "backups", "__pycache__", ".pytest_cache", ".env*"))
        (self.example / "tests").mkdir()
        (self.example / "tests" / "test_trivial.py").write_text(
            "def test_trivial():\n    assert True\n")
        result.staging_schemas = len(STAGING_STAMPS)
        # The stand-in's data folder goes in our tmpfs scratch folder: run.sh's trap stops and
        # removes it should this driver die before the `with` block stops it.
        started = time.perf_counter()
        with StandinProduction(base_dir=self.shm) as prod:
            prod.create_database("carthorse", [self.example / f for f in CARTHORSE_FILES])
            for stamp in STAGING_STAMPS:
                prod.execute("carthorse", f"CREATE SCHEMA staging_{stamp}; CREATE TABLE "
                                          f"staging_{stamp}.trails (id int, name text);")
            prod.create_database("gameforge", [self.example / "db/gameforge/schema.sql"])
            psql = find_binaries(None, need_server=False).tool("psql")
            apply_pending(prod.info("gameforge", OWNER), psql,
                          self.example / "db/gameforge/migrations", self.example,
                          set_name="gameforge")
            result.production_setup = time.perf_counter() - started
            urls = {name: prod.url(name) for name in CHECK_SETS}
            env_of = {name: clean_env(**{f"{name.upper()}_PRODUCTION_URL": urls[name]})
                      for name in CHECK_SETS}
            both = clean_env(**{f"{n.upper()}_PRODUCTION_URL": urls[n] for n in CHECK_SETS})

            result.cold = self.example_pytest(cache, both)  # initdb, then both templates
            for _ in range(CHECK_REPEATS):  # alternating, so that load hits all alike
                result.plain.append(self.example_pytest(cache, both))
                for name in CHECK_SETS:
                    result.pytest_check.setdefault(name, []).append(
                        self.example_pytest(cache, env_of[name], "--schema-check"))
            for _ in range(CHECK_REPEATS):
                for name in CHECK_SETS:
                    result.cli_check.setdefault(name, []).append(
                        self.example_cli(cache, env_of[name], "check", "--set", name))
            self.check_in_process(cache, urls, result)

            prod.execute("carthorse", REFRESH_CHANGE)
            result.refresh.append(("after `" + REFRESH_CHANGE + "` in production",
                                   self.example_cli(cache, env_of["carthorse"], "refresh",
                                                    "--set", "carthorse")))
            result.refresh.append(("again, production unchanged",
                                   self.example_cli(cache, env_of["carthorse"], "refresh",
                                                    "--set", "carthorse")))
            result.after_refresh = self.example_pytest(cache, both)

    def check_in_process(self, cache: Path, urls: dict[str, str], result: CheckBench) -> None:
        """check_set on a started session with warm templates, and its three parts."""
        from pytest_schemasync.check import (
            bundled_snapshot,
            catalog_options,
            check_set,
            production_snapshot,
        )
        from pytest_schemasync.diff import compare
        from pytest_schemasync.production import resolve_production

        session = self.session(self.example, cache)
        try:
            session.start()
            session.prepare()
            settings, manager = session.settings, session.manager
            for name in CHECK_SETS:
                environ = {f"{name.upper()}_PRODUCTION_URL": urls[name]}
                schema_set = settings.schema_set(name)
                check_set(manager, settings, schema_set, environ)  # warm-up: first connects
                times = result.in_process.setdefault(name, {})
                for _ in range(IN_PROCESS_REPEATS):
                    started = time.perf_counter()
                    checked = check_set(manager, settings, schema_set, environ)
                    times.setdefault("check_set", []).append(time.perf_counter() - started)
                    if checked is None or checked.drift:
                        raise RuntimeError(f"check_set {name}: expected no drift, got "
                                           f"{checked and checked.text()}")
                target = resolve_production(settings, schema_set, environ)
                assert target is not None
                options = catalog_options(schema_set)
                for _ in range(IN_PROCESS_REPEATS):
                    started = time.perf_counter()
                    production, _ = production_snapshot(target, schema_set, settings, manager)
                    mid = time.perf_counter()
                    bundled = bundled_snapshot(manager, schema_set)
                    end = time.perf_counter()
                    compare(bundled, production, options)
                    times.setdefault("production", []).append(mid - started)
                    times.setdefault("bundled", []).append(end - mid)
                    times.setdefault("compare", []).append(time.perf_counter() - end)
                result.objects[name] = (len(bundled.objects), len(production.objects))
                result.functions[name] = sum(1 for kind, _ in bundled.objects
                                             if kind in ("function", "procedure"))
        finally:
            session.close()

    # --- the stress suite's inner project, and the carthorse set per test ------------------

    def stress_and_carthorse(self, result: StressBench, repeat: int) -> None:
        """The inner project of tests/test_stress.py (both sets, 306 tests) once each with
        STRESS_WORKERS after a warm-up run; then the carthorse variant of the suite with our
        `db` and `fresh_db`, and with pytest-postgresql (disk and tmpfs). Fills ``result`` as
        it goes."""
        sys.path.insert(0, str(REPO / "tests"))
        try:
            import test_stress  # tests/test_stress.py (it imports tests/conftest.py)
        finally:
            sys.path.remove(str(REPO / "tests"))
        result.expected_inner = test_stress.INNER_TESTS
        stress = self.work / "stress"
        stress.mkdir()
        test_stress.write_project(stress)  # the same generation as the stress test
        cache = self.shm / "cache-stress"
        base = [self.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "no:pytest_postgresql", f"--schemasync-cache-dir={cache}"]
        for i, (label, args) in enumerate([("warm-up (cold cache)", ("-n", "2")),
                                           *STRESS_WORKERS]):
            records = stress / "records" / f"run{i}"
            records.mkdir(parents=True)
            env = clean_env(STRESS_RECORDS=str(records), STRESS_RUN=str(i))
            out = run([*base, *args], cwd=stress, env=env)
            if i == 0:
                result.warmup = out
            else:
                result.runs.append((label, out))

        project = self.work / "carthorse"
        for rel in CARTHORSE_FILES:
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(EXAMPLE / rel, project / rel)
            # what the competitors' load callable will drop (suite.server_sql); raises on a
            # psql meta-command it could not run, before any run starts
            result.carthorse_dropped += server_sql((project / rel).read_text(), rel)[1]
        (project / "pyproject.toml").write_text(CARTHORSE_PYPROJECT)
        shutil.copy(BENCH / "suite_conftest.py", project / "conftest.py")
        (project / "test_bench.py").write_text(render_carthorse_tests())
        chown_tree(project, PG_USER)  # pytest-postgresql runs as the postgres user
        cache = self.shm / "cache-carthorse"
        how = "root; the plugin runs its server as `postgres`; tmpfs"
        for fixture in ("db", "fresh_db"):
            def once(label: str, fixture: str = fixture) -> Outcome:
                cmd = self.pytest_cmd("-p", "no:pytest_postgresql",
                                      f"--schemasync-cache-dir={cache}")
                return run(cmd, cwd=project, env=self.env(fixture, BENCH_SET="carthorse"),
                           timings=self.results / f"carthorse-{label}.json")
            cold = [once(f"{fixture}-cold")] if fixture == "db" else []
            warm = [once(f"{fixture}-warm{i}") for i in range(repeat)]
            result.carthorse.append(Row(f"schemasync `{fixture}`", how, cold, warm))
        # pytest-postgresql exactly as on gameforge (the postgres user, the same interpreter,
        # timing plugin and conftest), its load callable running the carthorse files
        disk: list[Outcome] = []
        shm: list[Outcome] = []
        for i in range(repeat):
            disk.append(self.pytest_postgresql(f"carthorse-ppg-disk{i}", None, project,
                                               BENCH_SET="carthorse"))
            shm.append(self.pytest_postgresql(
                f"carthorse-ppg-shm{i}", self.shm / "ppg" / f"carthorse-basetemp{i}", project,
                BENCH_SET="carthorse"))
        result.carthorse.append(Row("pytest-postgresql (disk, its default)",
                                    "`postgres` user; /tmp (ext4)", disk))
        result.carthorse.append(Row("pytest-postgresql (tmpfs)",
                                    "`postgres` user; --basetemp on /dev/shm", shm))


def keep_scale_section(out: Path, text: str) -> str:
    """The scale section (bench/scale.py, run on its own) survives a full run's rewrite."""
    from scale import BEGIN, END

    old = out.read_text() if out.exists() else ""
    if BEGIN in old and END in old:
        return text.rstrip("\n") + "\n\n" + old[old.index(BEGIN): old.index(END) + len(END)] + "\n"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True, help="scratch folder on disk")
    parser.add_argument("--shm", type=Path, required=True, help="scratch folder on tmpfs")
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each of our warm "
                        "variants and of each pytest-postgresql variant (end-to-end: median)")
    parser.add_argument("--testing-postgresql-disk", action="store_true",
                        help="also run testing.postgresql on its default, disk (slow: ~1 min)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    # run.sh starts us in the background, where SIGINT is ignored: restore it, or our pytest
    # children would inherit "ignored" and could not be interrupted cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.perf_counter()
    load = [f"{os.getloadavg()[0]:.2f}"]

    def step(name: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {name}", file=sys.stderr, flush=True)

    bench = Bench(args.work.resolve(), args.shm.resolve())
    step("setup and probes")
    bench.setup()
    bench.probe_competitors()
    rows: list[Row] = []
    how = "root; the plugin runs its server as `postgres`; tmpfs"
    for fixture in ("db", "fresh_db"):
        cache = bench.shm / f"cache-{fixture}"
        step(f"schemasync {fixture}: cold, then warm x{args.repeat}")
        cold = [bench.ours(fixture, cache, f"{fixture}-cold")]
        warm = [bench.ours(fixture, cache, f"{fixture}-warm{i}") for i in range(args.repeat)]
        rows.append(Row(f"schemasync `{fixture}`", how, cold, warm))
    step(f"schemasync fresh_db, clone pool off: warm x{args.repeat}")
    cache = bench.shm / "cache-fresh_db"
    rows.append(Row("schemasync `fresh_db`, pool off", f"{how}; `--schemasync-pool-size=0`", [],
                    [bench.ours("fresh_db", cache, f"nopool{i}", "--schemasync-pool-size=0")
                     for i in range(args.repeat)]))
    step("raw baseline")
    raw = bench.raw_baseline(bench.shm / "cache-fresh_db")
    step(f"pytest-postgresql: disk and tmpfs, x{args.repeat}")
    disk, shm = [], []
    for i in range(args.repeat):
        disk.append(bench.pytest_postgresql(f"ppg-disk{i}", None))
        shm.append(bench.pytest_postgresql(f"ppg-shm{i}", bench.shm / "ppg" / f"basetemp{i}"))
    rows.append(Row("pytest-postgresql (disk, its default)", "`postgres` user; /tmp (ext4)",
                    disk))
    rows.append(Row("pytest-postgresql (tmpfs)", "`postgres` user; --basetemp on /dev/shm",
                    shm))
    if args.testing_postgresql_disk:
        step("testing.postgresql: disk")
        rows.append(Row("testing.postgresql (disk, its default)", "`postgres` user; /tmp (ext4)",
                        [bench.testing_postgresql("tpg-disk", bench.work / "disk-tmp")]))
    step("testing.postgresql: tmpfs")
    rows.append(Row("testing.postgresql (tmpfs)", "`postgres` user; TMPDIR on /dev/shm",
                    [bench.testing_postgresql("tpg-shm", bench.shm / "tpg")]))
    step("warm session start")
    start = bench.start_overhead(bench.shm / "cache-start")
    imports, server = bench.start_breakdown(bench.shm / "cache-start")
    step(f"CI cache: cold, warm and restored starts x{args.repeat}")
    ci = ci_cache.CiCacheBench()
    try:
        ci = ci_cache.measure(bench.work, bench.shm, python=bench.python, repeat=args.repeat)
    except Exception as exc:
        ci.error = f"{type(exc).__name__}: {exc}"[:2000]
    step("schema check and refresh (stand-in production, example project)")
    load.append(f"{os.getloadavg()[0]:.2f}")
    check = CheckBench()
    try:
        bench.check_and_refresh(bench.shm / "cache-example", check)
    except Exception as exc:  # report what was measured before, and why this part failed
        check.error = f"{type(exc).__name__}: {exc}"[:2000]
    workers = "/".join(flags[-1] for _, flags in STRESS_WORKERS)
    step(f"stress suite (-n {workers}) and the carthorse set per test (ours, then "
         f"pytest-postgresql disk and tmpfs x{args.repeat})")
    stress = StressBench()
    try:
        bench.stress_and_carthorse(stress, args.repeat)
    except Exception as exc:
        stress.error = f"{type(exc).__name__}: {exc}"[:2000]
    load.append(f"{os.getloadavg()[0]:.2f}")
    measured = Measurements(rows, raw, start, imports, server, bench.probes, bench.python_note,
                            load, args.repeat, time.perf_counter() - began, check, stress)
    text = render(measured, PG_BINDIR) + "\n" + ci_cache.render(ci)
    args.out.write_text(keep_scale_section(args.out, text))
    print(text)
    ci_ok = not (ci.failures or ci.error)
    return 0 if all(r.ok for r in rows) and check.ok and stress.ok and ci_ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; stopped the run in progress", file=sys.stderr)
        sys.exit(130)
