"""The "scale" section: the template build and the schema check on generated schemas of 500,
2,000 and 10,000 tables, with ``pg_dump --schema-only`` of the same database for reference.

    bash bench/run.sh --only scale            (or: python bench/scale.py --work DIR --shm DIR)

Each table has 9 columns, a primary key, 2 indexes (btree and trigram GIN), a check
constraint, an FK to the previous table, a trigger and a SQL function; a view per 10 tables.
Production is a stand-in on this machine holding the same file. Per size: the first pytest
session (initdb, template build, the bundled snapshot stored with it), then warm
`schemasync check` runs (whole command, the check's own timer, peak RSS), pg_dump, and an
in-process breakdown of one warm check. Measurement only; the section replaces the one in
bench/RESULTS.md (between the scale markers) and leaves the rest alone.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SIZES = (500, 2000, 10000)
WARM_REPEATS = 3
BEGIN, END = "<!-- scale: begin -->", "<!-- scale: end -->"
TIMEOUT = 1800


def schema_sql(tables: int) -> str:
    out = [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;",
        "CREATE SCHEMA app;",
        "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n  NEW.created_at := now();\n  RETURN NEW;\nEND\n$$;",
    ]
    for i in range(1, tables + 1):
        t = f"t{i:05d}"
        fk = f" REFERENCES app.t{i - 1:05d} (id)" if i > 1 else ""
        out.append(
            f"CREATE TABLE app.{t} (\n"
            f"    id bigint PRIMARY KEY,\n"
            f"    prev_id bigint{fk},\n"
            f"    name text NOT NULL,\n"
            f"    code varchar(32),\n"
            f"    amount numeric(12,2) NOT NULL DEFAULT 0 CONSTRAINT {t}_amount_check "
            f"CHECK (amount >= 0),\n"
            f"    created_at timestamptz NOT NULL DEFAULT now(),\n"
            f"    active boolean NOT NULL DEFAULT true,\n"
            f"    tags text[],\n"
            f"    note jsonb\n);\n"
            f"CREATE INDEX {t}_created_idx ON app.{t} (created_at);\n"
            f"CREATE INDEX {t}_name_trgm ON app.{t} USING gin (name public.gin_trgm_ops);\n"
            f"CREATE FUNCTION app.{t}_total(p_id bigint) RETURNS numeric LANGUAGE sql STABLE\n"
            f"    AS $$ SELECT amount FROM app.{t} WHERE id = p_id $$;\n"
            f"CREATE TRIGGER {t}_touch BEFORE UPDATE ON app.{t}\n"
            f"    FOR EACH ROW EXECUTE FUNCTION app.touch();")
        if i % 10 == 0:
            out.append(
                f"CREATE VIEW app.v{i:05d} AS\n    SELECT a.id, a.name, b.name AS prev_name\n"
                f"    FROM app.{t} a LEFT JOIN app.t{i - 1:05d} b ON b.id = a.prev_id;")
    return "\n".join(out) + "\n"


@dataclass
class Run:
    seconds: float
    code: int
    output: str
    max_rss_mb: float


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """One subprocess, its wall time and peak RSS (wait4 on that process: its own memory,
    not psql's or the server's)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(time.perf_counter() - started, proc.returncode, output, usage.ru_maxrss / 1024)


@dataclass
class Size:
    tables: int
    file_mb: float = 0.0
    objects: int = 0
    production_load: float = 0.0  # psql running the file into the stand-in
    first_session: Run | None = None
    built_in: float | None = None  # the header's "built in"
    warm: list[Run] = field(default_factory=list)
    own: list[float] = field(default_factory=list)  # the check's own timer
    dumps: list[float] = field(default_factory=list)
    parts: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "SCHEMASYNC_", "PYTEST_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def measure(size: Size, work: Path, prod: object, python: str) -> None:
    from pytest_schemasync.binaries import find_binaries
    from pytest_schemasync.standin import StandinProduction

    assert isinstance(prod, StandinProduction)
    n = size.tables
    project = work / f"scale-{n}"
    (project / "tests").mkdir(parents=True)
    schema = project / "schema.sql"
    schema.write_text(schema_sql(n))
    size.file_mb = schema.stat().st_size / 1e6
    (project / "pyproject.toml").write_text(
        '[tool.schemasync.sets.scale]\nfiles = ["schema.sql"]\n'
        'production-url-env = "SCALE_PRODUCTION_URL"\n')
    (project / "tests" / "test_trivial.py").write_text("def test_trivial():\n    assert True\n")
    started = time.perf_counter()
    prod.create_database(f"scale{n}", [schema])
    size.production_load = time.perf_counter() - started
    env = clean_env(SCALE_PRODUCTION_URL=prod.url(f"scale{n}"))
    cache = work / f"cache-{n}"
    first = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:pytest_postgresql",
                 f"--schemasync-cache-dir={cache}", "tests/test_trivial.py"], project, env)
    size.first_session = first
    built = re.search(r"template built in ([0-9.]+)s", first.output)
    size.built_in = float(built[1]) if built else None
    if first.code != 0:
        size.error = f"first session failed:\n{first.output[-3000:]}"
        return
    check = [python, "-m", "pytest_schemasync.cli", f"--schemasync-cache-dir={cache}",
             "check", "--set", "scale"]
    for _ in range(WARM_REPEATS):
        warm = run(check, project, env)
        size.warm.append(warm)
        own = re.search(r"no drift .*\(([0-9.]+)s\)", warm.output)
        if warm.code != 0 or own is None:
            size.error = f"warm check failed (exit {warm.code}):\n{warm.output[-3000:]}"
            return
        size.own.append(float(own[1]))
    pg_dump = find_binaries(None, need_server=False).tool("pg_dump")
    info = prod.info(f"scale{n}")
    for _ in range(WARM_REPEATS):
        dumped = run([str(pg_dump), "--schema-only", "-f", os.devnull, f"scale{n}"], project,
                     {**env, **info.client_env(f"scale{n}")})
        if dumped.code != 0:
            size.error = f"pg_dump failed:\n{dumped.output[-2000:]}"
            return
        size.dumps.append(dumped.seconds)
    breakdown(size, project, cache, env)


def breakdown(size: Size, project: Path, cache: Path, env: dict[str, str]) -> None:
    """One warm check in this process, by part (after one warm-up call)."""
    from pytest_schemasync.check import bundled_snapshot, catalog_options, production_snapshot
    from pytest_schemasync.config import build_settings
    from pytest_schemasync.diff import compare
    from pytest_schemasync.production import resolve_production
    from pytest_schemasync.scratch import Scratch

    settings = build_settings(project, cli={"cache_dir": str(cache)}, environ=env)
    schema_set = settings.schema_set("scale")
    target = resolve_production(settings, schema_set, env)
    assert target is not None
    with Scratch(settings) as scratch:
        manager = scratch.manager
        bundled_snapshot(manager, schema_set)
        started = time.perf_counter()
        production, _ = production_snapshot(target, schema_set, settings, manager)
        mid = time.perf_counter()
        bundled = bundled_snapshot(manager, schema_set)
        end = time.perf_counter()
        compare(bundled, production, catalog_options(schema_set))
        size.parts = {"production snapshot": mid - started, "bundled (stored) snapshot":
                      end - mid, "compare": time.perf_counter() - end}
        size.objects = len(bundled.objects)


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def _ratio(x: list[float], y: list[float]) -> str:
    if not x or not y:
        return "-"
    return f"x{statistics.median(y) / statistics.median(x):.1f}"


def render(sizes: list[Size], load: list[str], uptime: str, seconds: float) -> str:
    lines = [BEGIN, "## Scale: generated schemas of 500 / 2,000 / 10,000 tables", "",
             f"One run of `bash bench/run.sh --only scale` ({seconds:.0f} s), "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine load: `uptime` "
             f"before: {uptime}; 1-min load average before / after each size: "
             f"{' / '.join(load)}. The machine is shared with other engineers' work: "
             f"timings move with that load.", "",
             "Each table: 9 columns, a primary key, 2 indexes (btree, trigram GIN), a check "
             "constraint, an FK to the previous table, a trigger and a SQL function; a view "
             "per 10 tables. Production is a stand-in on this machine holding the same file "
             "(max_locks_per_transaction = 256, so that pg_dump can lock 10,000 tables). "
             f"Warm figures are the median of {WARM_REPEATS} runs; seconds unless marked.", "",
             "| tables | file (MB) | catalog objects | psql loads the file into production | "
             "first session (initdb, build, snapshot stored), whole | template built in "
             "(header) | warm `schemasync check`, whole command | the check's own timer | "
             "`pg_dump --schema-only` | peak RSS of the check (MB) | peak RSS of the first "
             "session (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in sizes:
        first = s.first_session
        lines.append(
            f"| {s.tables:,} | {s.file_mb:.1f} | {s.objects:,} | {s.production_load:.2f} | "
            f"{first.seconds if first else float('nan'):.2f} | "
            f"{s.built_in if s.built_in is not None else '-'} | "
            f"{med([w.seconds for w in s.warm])} | {med(s.own)} | {med(s.dumps)} | "
            f"{max((w.max_rss_mb for w in s.warm), default=0):.0f} | "
            f"{first.max_rss_mb if first else 0:.0f} |")
    lines += ["", "Growth (each size over the one before; the tables grow x4 then x5):", "",
              "| from → to | tables | warm check, own timer | whole command | pg_dump | "
              "template build |", "|---|---|---|---|---|---|"]
    for a, b in itertools.pairwise(sizes):
        whole_a, whole_b = [w.seconds for w in a.warm], [w.seconds for w in b.warm]
        built_a = [a.built_in] if a.built_in else []
        built_b = [b.built_in] if b.built_in else []
        lines.append(
            f"| {a.tables:,} → {b.tables:,} | x{b.tables / a.tables:.0f} | "
            f"{_ratio(a.own, b.own)} | {_ratio(whole_a, whole_b)} | "
            f"{_ratio(a.dumps, b.dumps)} | {_ratio(built_a, built_b)} |")
    lines += ["", "One warm check in process, by part (after a warm-up call; the check itself "
              "overlaps the production read with the bundled load, so its timer is less than "
              "the sum):", "", "| tables | " + " | ".join(
                  ["production snapshot", "bundled (stored) snapshot", "compare"]) + " |",
              "|---|---|---|---|"]
    for s in sizes:
        lines.append(f"| {s.tables:,} | " + " | ".join(
            f"{s.parts.get(k, float('nan')):.2f}" for k in
            ("production snapshot", "bundled (stored) snapshot", "compare")) + " |")
    for s in sizes:
        if s.error:
            lines += ["", f"**{s.tables:,} tables failed:**", "", "```", s.error, "```"]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(out: Path, section: str) -> None:
    text = out.read_text() if out.exists() else ""
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section.rstrip("\n") + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--shm", type=Path, required=True)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--out", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    from pytest_schemasync.standin import StandinProduction

    began = time.perf_counter()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    load: list[str] = []
    sizes = [Size(int(n)) for n in args.sizes.split(",")]
    # On disk: the 10,000-table databases (stand-in, template, clones) are too big to park
    # in a shared tmpfs.
    work = args.work.resolve()
    os.chmod(work, 0o755)
    with StandinProduction(base_dir=work) as prod:
        # pg_dump locks every table it dumps: 10,000 of them need more than the default lock
        # table (64 per connection), as a production of that size would have configured.
        prod.execute("postgres", "ALTER SYSTEM SET max_locks_per_transaction = 256")
        assert prod.cluster is not None
        prod.cluster.stop()
        prod.cluster.start()
        for size in sizes:
            load.append(f"{os.getloadavg()[0]:.1f}")
            print(f"[{time.perf_counter() - began:6.1f}s] scale: {size.tables} tables",
                  file=sys.stderr, flush=True)
            try:
                measure(size, work, prod, sys.executable)
            except Exception as exc:
                size.error = f"{type(exc).__name__}: {exc}"[:3000]
            load[-1] += f"→{os.getloadavg()[0]:.1f}"
            done = sizes[: sizes.index(size) + 1]  # written after each size: a long run
            write_section(args.out, render(done, load, uptime,  # that is stopped keeps them
                                           time.perf_counter() - began))
            shutil.rmtree(work / f"scale-{size.tables}", ignore_errors=True)
            shutil.rmtree(work / f"cache-{size.tables}", ignore_errors=True)
            with contextlib.suppress(Exception):
                prod.execute("postgres", f"DROP DATABASE IF EXISTS scale{size.tables}")
    section = render(sizes, load, uptime, time.perf_counter() - began)
    write_section(args.out, section)
    print(section)
    return 0 if not any(s.error for s in sizes) else 1


if __name__ == "__main__":
    sys.exit(main())
