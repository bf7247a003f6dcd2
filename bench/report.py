"""Turn the measurements of bench.py into the markdown of bench/RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from suite import CARTHORSE_TESTS, N_TESTS

RAW_MODES = {
    "FILE_COPY": "raw CREATE DATABASE … STRATEGY FILE_COPY + DROP (the baseline)",
    "WAL_LOG": "raw CREATE DATABASE … STRATEGY WAL_LOG + DROP",
    "FILE_COPY+connect": "raw FILE_COPY create + connect + close + DROP",
    "FILE_COPY+connect+wait": "raw FILE_COPY create + connect + close + wait until the "
                              "backend has exited + DROP",
}


@dataclass
class Outcome:
    """One subprocess: its wall time, exit code, output and per-test timings."""

    seconds: float
    returncode: int
    output: str
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(1 for t in self.tests.values() if "call" in t and not t.get("failed"))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.passed == N_TESTS

    def ms(self, *phases: str) -> list[float]:
        return [1000 * sum(t.get(p, 0.0) for p in phases) for t in self.tests.values()]

    @property
    def summary(self) -> str:
        lines = [ln.strip("= ") for ln in self.output.splitlines()
                 if " in " in ln and ("passed" in ln or "failed" in ln or "error" in ln)]
        return lines[-1] if lines else self.tail(1)

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self.output.strip().splitlines()[-lines:])


@dataclass
class Row:
    """One variant: its cold runs (the only kind without a cache) and its warm runs."""

    name: str
    how: str
    cold: list[Outcome]
    warm: list[Outcome] = field(default_factory=list)

    @property
    def main(self) -> list[Outcome]:
        """The runs the per-test numbers come from: the warm ones where there is a cache."""
        return self.warm or self.cold

    @property
    def ok(self) -> bool:
        return all(out.ok for out in self.cold + self.warm)

    def ms(self, *phases: str) -> list[float]:
        """Per-test milliseconds of ``phases``, pooled over the main runs."""
        return [v for out in self.main for v in out.ms(*phases)]

    def first_ms(self) -> float:
        return median([out.ms("setup", "call", "teardown")[0] for out in self.main if out.tests])

    def outside(self) -> float:
        """Median seconds of a main run spent outside the tests: interpreter start, server
        start, schema build or load, collection, session teardown."""
        return median([out.seconds - sum(out.ms("setup", "call", "teardown")) / 1000
                       for out in self.main])

    def seconds(self, warm: bool = True) -> float:
        """Median end-to-end seconds of the warm runs (or the cold ones)."""
        return median([out.seconds for out in (self.main if warm else self.cold)])

    def spread(self, warm: bool = True) -> str:
        runs = [out.seconds for out in (self.main if warm else self.cold)]
        if len(runs) < 2:
            return fmt(runs[0], 2) if runs else "—"
        return f"{fmt(median(runs), 2)} ({fmt(min(runs), 2)}-{fmt(max(runs), 2)}, n={len(runs)})"


@dataclass
class Measurements:
    rows: list[Row]
    raw: dict[str, list[float]]  # RAW_MODES key -> ms per create(+connect)+drop
    start: dict[str, list[float]]  # "plugin" / "no:schemasync" -> seconds per session
    imports: dict[str, list[float]]  # "pytest" / "pytest+plugin" -> seconds per interpreter
    server: dict[str, list[float]]  # "start" / "prepare" / "close" -> seconds, in-process
    probes: dict[str, str]
    python_note: str
    load: list[str]
    repeat: int  # runs of each of our warm variants and of each pytest-postgresql variant
    elapsed: float = 0.0
    check: CheckBench | None = None
    stress: StressBench | None = None


NAN = float("nan")
LOAD_POINTS = {3: "before the schema check section / "}
_STATUS = re.compile(r"schema check '(?P<set>[^']+)': .*?\((?P<seconds>[0-9.]+)s\)$",
                     re.MULTILINE)


@dataclass
class CheckBench:
    """The schema check and refresh section: subprocess runs on the copy of example_project
    against a stand-in production, and in-process timings of check_set."""

    staging_schemas: int = 0  # staging_<timestamp> schemas in production's carthorse
    production_setup: float = NAN  # seconds: start the stand-in, install both sets into it
    cold: Outcome | None = None  # first session on a new, empty cache dir (no check)
    plain: list[Outcome] = field(default_factory=list)  # warm, without --schema-check
    pytest_check: dict[str, list[Outcome]] = field(default_factory=dict)  # set -> warm runs
    cli_check: dict[str, list[Outcome]] = field(default_factory=dict)  # set -> runs
    # set -> "check_set" / "production" / "bundled" / "compare" -> seconds per call
    in_process: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    objects: dict[str, tuple[int, int]] = field(default_factory=dict)  # set -> (bundled, prod)
    functions: dict[str, int] = field(default_factory=dict)  # set -> its own functions
    refresh: list[tuple[str, Outcome]] = field(default_factory=list)  # (what, run)
    after_refresh: Outcome | None = None  # the next pytest session on the refreshed files
    error: str = ""  # the section stopped with this exception

    def expectations(self) -> list[tuple[str, Outcome, str]]:
        """(label, run, text its output must hold) for every subprocess of the section."""
        runs: list[tuple[str, Outcome, str]] = []
        if self.cold is not None:
            runs.append(("pytest, cold", self.cold, "1 passed"))
        runs += [("pytest, warm", out, "1 passed") for out in self.plain]
        for name, outs in self.pytest_check.items():
            runs += [(f"pytest --schema-check ({name})", out, f"schema check {name!r}: no drift")
                     for out in outs]
        for name, outs in self.cli_check.items():
            runs += [(f"schemasync check --set {name}", out, f"schema check {name!r}: no drift")
                     for out in outs]
        for i, (what, out) in enumerate(self.refresh):
            runs.append((f"schemasync refresh --set carthorse, {what}", out,
                         "refresh 'carthorse': " + ("updated" if i == 0 else "no change to")))
        if self.after_refresh is not None:
            runs.append(("pytest after the refresh", self.after_refresh, "1 passed"))
        return runs

    def failures(self) -> list[tuple[str, Outcome]]:
        return [(label, out) for label, out, needle in self.expectations()
                if out.returncode != 0 or needle not in out.output]

    @property
    def ok(self) -> bool:
        return not self.error and not self.failures()

    def own_seconds(self, name: str) -> list[float]:
        """What the check's status line says it took, inside the pytest runs."""
        return [float(m["seconds"]) for out in self.pytest_check.get(name, [])
                for m in _STATUS.finditer(out.output) if m["set"] == name]


_PASSED = re.compile(r"(\d+) passed")


def passed_count(out: Outcome) -> int:
    """The passed count of pytest's summary line (the stress runs have no timing file)."""
    found = _PASSED.findall(out.summary)
    return int(found[-1]) if found else 0


@dataclass
class StressBench:
    """The stress suite's inner project under -n 0/1/2/4, and the carthorse suite per test."""

    expected_inner: int = 0  # tests/test_stress.py's INNER_TESTS
    warmup: Outcome | None = None  # the first run, on a new cache dir (-n 2)
    runs: list[tuple[str, Outcome]] = field(default_factory=list)  # ("-n 2", run), warm
    # the carthorse suite: our fixtures, then pytest-postgresql (disk, tmpfs); row names as in
    # Measurements.rows
    carthorse: list[Row] = field(default_factory=list)
    carthorse_dropped: int = 0  # psql-only lines suite.server_sql drops from the set's files
    error: str = ""  # the section stopped with this exception

    def expectations(self) -> list[tuple[str, Outcome, int]]:
        """(label, run, tests it must pass) for every subprocess of the section."""
        runs = [("stress suite, warm-up -n 2", self.warmup, self.expected_inner)
                ] if self.warmup is not None else []
        runs += [(f"stress suite, {label}", out, self.expected_inner)
                 for label, out in self.runs]
        runs += [(f"carthorse {row.name}, {when}", out, CARTHORSE_TESTS) for row in self.carthorse
                 for when, outs in (("cold", row.cold), ("warm", row.warm)) for out in outs]
        return runs

    def failures(self) -> list[tuple[str, Outcome]]:
        return [(label, out) for label, out, n in self.expectations()
                if out.returncode != 0 or passed_count(out) != n]

    @property
    def ok(self) -> bool:
        return not self.error and not self.failures()

    def carthorse_row(self, prefix: str) -> Row | None:
        """The carthorse row whose name starts with ``prefix``, if it ran and all passed."""
        row = next((r for r in self.carthorse if r.name.startswith(prefix)), None)
        return row if row is not None and carthorse_ok(row) else None


def carthorse_ok(row: Row) -> bool:
    """Every run of a carthorse row exited 0 with all its tests passed."""
    runs = row.cold + row.warm
    return bool(runs) and all(out.returncode == 0 and passed_count(out) == CARTHORSE_TESTS
                              for out in runs)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else NAN


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else NAN


def p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else NAN
    return statistics.quantiles(values, n=10)[-1]


def fmt(value: float, digits: int = 1) -> str:
    return "—" if value != value else f"{value:,.{digits}f}"


def mark(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def plugin_revision() -> str:
    """The commit measured, and whether the plugin's files differed from it."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                              text=True).stdout.strip()

    changed = git("status", "--porcelain", "--", "pytest_schemasync").splitlines()
    dirty = (f" plus uncommitted changes to {len(changed)} file(s) of pytest_schemasync/"
             if changed else "")
    return f"{git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}"


def machine(pg_bindir: Path) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    pg = subprocess.run([str(pg_bindir / "postgres"), "--version"], capture_output=True,
                        text=True).stdout.strip()
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in (
        "pytest", "psycopg", "pytest-postgresql", "testing.postgresql", "pg8000"))
    return [
        f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- machine: nproc {len(os.sched_getaffinity(0))}, {cpu}, "
        f"{platform.system()} {platform.release()}",
        f"- PostgreSQL: {pg} ({pg_bindir})",
        f"- pytest-schemasync: commit {plugin_revision()}",
        f"- {versions}",
    ]


def find(m: Measurements, prefix: str) -> Row:
    return next(r for r in m.rows if r.name.startswith(prefix))


def per_test_table(m: Measurements) -> list[str]:
    ppg = find(m, "pytest-postgresql (disk")
    ppg_test = median(ppg.ms("setup", "call", "teardown"))
    raw = median(m.raw.get("FILE_COPY", []))
    lines = [
        "| variant | how it ran | per-test median | per-test mean | per-test p90 | fixture "
        "median | fixture p90 | first test | fixture / raw create+drop | per-test speed-up vs "
        "pytest-postgresql disk |",
        "|" + "---|" * 10,
    ]
    for row in m.rows:
        if not row.ok:
            lines.append(f"| {row.name} | {row.how} | FAILED (see Failures) |" + " |" * 7)
            continue
        total, fixture = row.ms("setup", "call", "teardown"), row.ms("setup", "teardown")
        lines.append(
            f"| {row.name} | {row.how} | {fmt(median(total), 2)} | {fmt(mean(total), 2)} | "
            f"{fmt(p90(total), 2)} | {fmt(median(fixture), 2)} | {fmt(p90(fixture), 2)} | "
            f"{fmt(row.first_ms())} | {fmt(median(fixture) / raw, 2)}x | "
            f"{fmt(ppg_test / median(total))}x |")
    for key, label in RAW_MODES.items():
        values = m.raw.get(key, [])
        lines.append(
            f"| {label} | psycopg on our embedded server (tmpfs), {len(values)} times | "
            f"{fmt(median(values), 2)} | {fmt(mean(values), 2)} | {fmt(p90(values), 2)} | "
            f"| | {fmt(values[0] if values else NAN)} | {fmt(median(values) / raw, 2)}x | |")
    return lines


def end_to_end_table(m: Measurements) -> list[str]:
    ppg, ppg_shm = find(m, "pytest-postgresql (disk"), find(m, "pytest-postgresql (tmpfs")
    lines = [
        "| variant | cold | warm | outside the tests (median run) | speed-up vs "
        "pytest-postgresql disk | speed-up vs pytest-postgresql tmpfs |",
        "|" + "---|" * 6,
    ]
    for row in m.rows:
        if row.ok:
            lines.append(
                f"| {row.name} | {row.spread(warm=False)} | "
                f"{row.spread() if row.warm else 'no cache'} | {fmt(row.outside(), 2)} | "
                f"{fmt(ppg.seconds() / row.seconds())}x | "
                f"{fmt(ppg_shm.seconds() / row.seconds())}x |")
    return lines


def clone_target(m: Measurements) -> list[str]:
    db, raw = find(m, "schemasync `db`"), median(m.raw.get("FILE_COPY", []))
    lines = []
    for prefix, what in (("schemasync `fresh_db`, pool off", "with the clone pool off "
                          "(clone, connect, close and drop all in the test's thread)"),
                         ("schemasync `fresh_db`", "with the default clone pool (a clone "
                          "made ahead is taken, the drop is queued behind)")):
        fixture = find(m, prefix).ms("setup", "teardown")
        ratio = median(fixture) / raw
        slow = sum(1 for v in fixture if v >= 100)
        lines.append(
            f"  - {what}: the `fresh_db` fixture median is {fmt(median(fixture), 2)} ms = "
            f"{fmt(ratio, 2)}x → {mark(ratio <= 1.5)} (p90 {fmt(p90(fixture), 2)} ms; {slow} "
            f"of {len(fixture)} took ≥ 100 ms).")
    fresh = find(m, "schemasync `fresh_db`")
    per_test = 1000 * (fresh.seconds() - db.seconds()) / N_TESTS
    return [
        f"- clone within 1.5x of raw create+drop (raw FILE_COPY create+drop median "
        f"{fmt(raw, 2)} ms):", *lines,
        f"  - the pool moves work off the test's thread rather than removing it: end to end, "
        f"`fresh_db` costs {fmt(per_test, 2)} ms per test more than `db` (difference of the "
        f"warm medians / {N_TESTS}). Raw create + connect + close + DROP takes "
        f"{fmt(median(m.raw.get('FILE_COPY+connect', [])), 2)} ms (median; p90 "
        f"{fmt(p90(m.raw.get('FILE_COPY+connect', [])), 2)} ms), and "
        f"{fmt(median(m.raw.get('FILE_COPY+connect+wait', [])), 2)} ms (p90 "
        f"{fmt(p90(m.raw.get('FILE_COPY+connect+wait', [])), 2)} ms) when the DROP is only "
        f"sent once the closed connection's backend has exited.",
    ]


def targets(m: Measurements) -> list[str]:
    db, fresh = find(m, "schemasync `db`"), find(m, "schemasync `fresh_db`")
    ppg, ppg_shm = find(m, "pytest-postgresql (disk").seconds(), find(
        m, "pytest-postgresql (tmpfs").seconds()
    ppg_fastest = min(out.seconds for out in find(m, "pytest-postgresql (disk").main)
    db_fixture = median(db.ms("setup", "teardown"))
    db_total = median(db.ms("setup", "call", "teardown"))
    plugin, bare = median(m.start["plugin"]), median(m.start["no:schemasync"])
    delta = plugin - bare
    c_db, c_fresh, c_ppg, c_ppg_shm = (
        m.stress.carthorse_row(prefix) if m.stress is not None else None
        for prefix in ("schemasync `db`", "schemasync `fresh_db`",
                       "pytest-postgresql (disk", "pytest-postgresql (tmpfs"))
    on_carthorse = ""
    if c_db is not None:
        c_fixture = median(c_db.ms("setup", "teardown"))
        c_total = median(c_db.ms("setup", "call", "teardown"))
        on_carthorse = (
            f" On the carthorse set (PostGIS + pgRouting, see \"Stress suite and both sets\"): "
            f"fixture {fmt(c_fixture, 2)} ms → {mark(c_fixture <= 1)}; with the test body "
            f"{fmt(c_total, 2)} ms → {mark(c_total <= 1)}.")
    carthorse_e2e = []
    if c_db is not None and c_fresh is not None and c_ppg is not None:
        c_disk = c_ppg.seconds()
        against_shm = ""
        if c_ppg_shm is not None:
            against_shm = (f" Against its tmpfs variant ({fmt(c_ppg_shm.seconds(), 2)} s): "
                           f"`db` {fmt(c_ppg_shm.seconds() / c_db.seconds())}x, `fresh_db` "
                           f"{fmt(c_ppg_shm.seconds() / c_fresh.seconds())}x.")
        carthorse_e2e = [
            f"  - the same yardstick on the carthorse set ({CARTHORSE_TESTS} tests, PostGIS + "
            f"pgRouting; pytest-postgresql disk {fmt(c_disk, 2)} s): `db` "
            f"{fmt(c_db.seconds(), 2)} s, {fmt(c_disk / c_db.seconds())}x → "
            f"{mark(c_disk / c_db.seconds() >= 10)}; `fresh_db` {fmt(c_fresh.seconds(), 2)} s, "
            f"{fmt(c_disk / c_fresh.seconds())}x → {mark(c_disk / c_fresh.seconds() >= 10)}."
            f"{against_shm}"]
    return [
        f"- `db` ≤ 1 ms/test, judged on the fixture's own cost (setup+teardown median): "
        f"{fmt(db_fixture, 2)} ms → {mark(db_fixture <= 1)}. With the test body counted "
        f"(setup+call+teardown median) it is {fmt(db_total, 2)} ms → {mark(db_total <= 1)}."
        f"{on_carthorse}",
        *clone_target(m),
        f"- warm session start < 0.5 s: median {fmt(plugin, 2)} s with the plugin vs "
        f"{fmt(bare, 2)} s with `-p no:schemasync` → +{fmt(delta, 3)} s → {mark(delta < 0.5)}.",
        f"- ≥ 10x faster than pytest-postgresql end to end on {N_TESTS} tests (medians; our "
        f"warm runs vs its default, disk, {fmt(ppg, 2)} s): `db` {fmt(db.seconds(), 2)} s, "
        f"{fmt(ppg / db.seconds())}x → {mark(ppg / db.seconds() >= 10)}; `fresh_db` "
        f"{fmt(fresh.seconds(), 2)} s, {fmt(ppg / fresh.seconds())}x → "
        f"{mark(ppg / fresh.seconds() >= 10)}. Against its tmpfs variant ({fmt(ppg_shm, 2)} s):"
        f" `db` {fmt(ppg_shm / db.seconds())}x, `fresh_db` {fmt(ppg_shm / fresh.seconds())}x.",
        *spread_note(find(m, "pytest-postgresql (disk"), db, fresh),
        *(clone_floor(m, ppg_fastest, plugin, fresh.seconds())
          if ppg_fastest / fresh.seconds() < 10 else []),
        *carthorse_e2e,
    ]


def spread_note(ppg: Row, db: Row, fresh: Row) -> list[str]:
    """pytest-postgresql on disk swings from run to run; the verdict should not hang on it."""
    runs = [out.seconds for out in ppg.main]
    if len(runs) < 2:
        return []
    fastest = min(runs)
    return [
        f"  - pytest-postgresql on disk took {fmt(fastest, 2)} to {fmt(max(runs), 2)} s in its "
        f"{len(runs)} runs (the disk is shared); against its fastest run: `db` "
        f"{fmt(fastest / db.seconds())}x → {mark(fastest / db.seconds() >= 10)}, `fresh_db` "
        f"{fmt(fastest / fresh.seconds())}x → {mark(fastest / fresh.seconds() >= 10)}."]


def clone_floor(m: Measurements, ppg: float, start: float, fresh: float) -> list[str]:
    """What 10x would take of a database per test, against what the server needs for one."""
    raw = median(m.raw.get("FILE_COPY+connect", []))
    if raw != raw or start != start:  # NaN: not measured
        return []
    budget = 1000 * (ppg / 10 - start) / N_TESTS
    floor = start + N_TESTS * raw / 1000
    return [
        f"  - what 10x (of pytest-postgresql's fastest disk run, {fmt(ppg, 2)} s) would take of "
        f"a database per test: after the warm session start "
        f"({fmt(start, 2)} s), {N_TESTS} tests in {fmt(ppg / 10 - start, 2)} s, i.e. "
        f"{fmt(budget, 1)} ms per test including its body. The server alone needs "
        f"{fmt(raw, 2)} ms per test for create + connect + close + DROP one after the other "
        f"({fmt(floor, 2)} s for {N_TESTS}, {fmt(ppg / floor)}x). The pool overlaps the "
        f"create and the drop with the tests on the second core, which is how `fresh_db` "
        f"({fmt(fresh, 2)} s) lands {'below' if fresh < floor else 'above'} that line; "
        + (f"it cannot make up the missing factor of {fmt(raw / budget, 1)} when the tests, "
           f"their backends and the clone work share 2 cores. " if raw > budget else
           "the rest goes to the test bodies, each on a new connection to a new database "
           "(cold caches), sharing 2 cores with the clone work. ")
        + "The "
        "yardstick is carried by `db` (one database per process, every test in a rolled-back "
        "transaction), the fixture the README recommends by default."]


def start_details(m: Measurements) -> list[str]:
    def series(values: list[float]) -> str:
        return ", ".join(fmt(v, 2) for v in values)

    imports = median(m.imports["pytest+plugin"]) - median(m.imports["pytest"])
    return [
        f"Warm session start: one trivial test (no fixture) on a project with the gameforge "
        f"set, {len(m.start['plugin'])} runs each, alternating. With the plugin: "
        f"{series(m.start['plugin'])} s; with `-p no:schemasync`: "
        f"{series(m.start['no:schemasync'])} s.", "",
        "Where the difference goes (medians): importing the plugin (`python -c 'import pytest, "
        f"pytest_schemasync.plugin'` vs `import pytest`) +{fmt(1000 * imports, 0)} ms; "
        f"in-process on the warm cache, `Scratch.start()` (find binaries, lock, start the "
        f"server, connect, claim, sweep) {fmt(1000 * median(m.server['start']), 0)} ms, "
        f"`prepare()` (hash files, find the template) "
        f"{fmt(1000 * median(m.server['prepare']), 0)} ms, `close()` (stop the server) "
        f"{fmt(1000 * median(m.server['close']), 0)} ms.",
    ]


def spread(values: list[float]) -> str:
    """Median (min-max, n) of seconds."""
    if len(values) < 2:
        return fmt(values[0], 2) if values else "—"
    return (f"{fmt(median(values), 2)} ({fmt(min(values), 2)}-{fmt(max(values), 2)}, "
            f"n={len(values)})")


def signed(value: float) -> str:
    return "—" if value != value else f"{value:+.2f}"


def check_section(m: Measurements) -> list[str]:
    c = m.check
    if c is None:
        return []
    head = ["## Schema check and refresh", ""]
    if c.error:
        head += [f"This part stopped with an error (see Failures): `{c.error.splitlines()[0]}`",
                 ""]
    if c.cold is None:
        return head

    def secs(outs: list[Outcome]) -> list[float]:
        return [out.seconds for out in outs]

    warm = median(secs(c.plain))
    built = ", ".join(f"{name} {fmt(float(sec), 2)} s" for name, sec in re.findall(
        r"set '([^']+)': template built in ([0-9.]+)s", c.cold.output))
    rows = [
        ("session start, **cold**: a new, empty cache dir (initdb, then both templates built: "
         "carthorse with PostGIS and pgRouting, gameforge with its migrations; the header says "
         f"built in: {built or '?'})", fmt(c.cold.seconds, 2), ""),
        ("session start, **warm**: the same cache dir again (no check)", spread(secs(c.plain)),
         ""),
    ]
    verdicts = []
    for name in ("carthorse", "gameforge"):
        checked = secs(c.pytest_check.get(name, []))
        extra = median(checked) - warm
        verdict = "not measured" if extra != extra else mark(extra <= 1)
        parts = c.in_process.get(name, {})
        objects = c.objects.get(name)
        counted = (f"; {objects[0]} objects bundled / {objects[1]} in production compared"
                   if objects else "")
        rows += [
            (f"`pytest --schema-check`, only {name} has a production (warm)", spread(checked),
             ""),
            (f"→ extra over the warm session (medians: with minus without), {name}",
             signed(extra), f"≤ 1 s → {verdict}"),
            (f"↳ the check's own timer in those runs ({name}: the `(…s)` of its status line)",
             spread(c.own_seconds(name)), ""),
            (f"`schemasync check --set {name}` (interpreter start to exit)",
             spread(secs(c.cli_check.get(name, []))), ""),
            (f"`check_set` alone, in process, warm ({name}{counted})",
             spread(parts.get("check_set", [])), ""),
            ("↳ production snapshot: connect read-only, read the catalog",
             spread(parts.get("production", [])), ""),
            ("↳ bundled snapshot: clone the template, read the catalog, drop the clone",
             spread(parts.get("bundled", [])), ""),
            ("↳ compare the two snapshots", spread(parts.get("compare", [])), ""),
        ]
        pairs = [w.seconds - p.seconds
                 for w, p in zip(c.pytest_check.get(name, []), c.plain, strict=False)]
        note = (f"; below the run-to-run noise at this load: its own timer says "
                f"{fmt(median(c.own_seconds(name)), 2)} s" if extra < 0 else "")
        verdicts.append(f"{name} {signed(extra)} s → {verdict} (median of the "
                        f"per-round differences {signed(median(pairs))} s{note})")
    for what, out in c.refresh:
        said = re.search(r"refresh 'carthorse': ([^(\n]*)", out.output)
        shown = f": {said[1].strip()}" if said else ""
        rows.append((f"`schemasync refresh --set carthorse`, {what}{shown}",
                     fmt(out.seconds, 2), ""))
    if c.after_refresh is not None:
        reused = "set 'carthorse': template from cache" in c.after_refresh.output
        rows.append(("the next pytest session on the refreshed files (carthorse template "
                     + ("reused from the refresh's proof build)" if reused else "rebuilt)"),
                     fmt(c.after_refresh.seconds, 2), ""))
    return [
        *head,
        "A copy of example_project (both sets configured; its tests replaced by one trivial "
        "test) against a stand-in production (`pytest_schemasync.standin.StandinProduction`: "
        "a second local cluster on tmpfs, TCP with a password, read through its read-only "
        "role) holding the same files: carthorse (PostGIS, pgRouting and "
        f"{c.functions.get('carthorse', '?')} functions of its own, as the check counts them) "
        "plus "
        f"{c.staging_schemas} `staging_<timestamp>` schemas that `exclude-schemas = "
        "[\"staging_*\"]` skips, and gameforge with its migrations applied by `apply_pending`. "
        "All runs as root with `--schemasync-cache-dir=` a new folder on /dev/shm; the pytest "
        "runs are `python -m pytest -p no:cacheprovider -p no:pytest_postgresql "
        "tests/test_trivial.py` (without -q, so the header shows the check's status line), "
        "alternating each round: without the check, `--schema-check` with only "
        "`CARTHORSE_PRODUCTION_URL` set, then with only `GAMEFORGE_PRODUCTION_URL` (every set "
        "is prepared in all of them; only the set with a production is checked). "
        "`schemasync ...` runs as `python -m pytest_schemasync.cli` (the script's `main`) on "
        "the same interpreter. Every check must report no drift, and the refreshes must say "
        "updated / no change, or the run is listed under Failures. Wall times in seconds, "
        "median (min-max, n).", "",
        "| measurement | seconds | target |", "|---|---|---|",
        *(f"| {what} | {value} | {target} |" for what, value, target in rows), "",
        f"- schema check adds ≤ 1 s to a warm session: {'; '.join(verdicts)}.",
        f"- setting up the stand-in (initdb, start, both databases installed, not part of any "
        f"number above): {fmt(c.production_setup, 1)} s.",
        "- the in-process parts are timed in separate calls after the `check_set` calls, so "
        "they need not add up to it exactly.",
        "",
    ]


def stress_section(m: Measurements) -> list[str]:
    s = m.stress
    if s is None:
        return []
    head = ["## Stress suite and both sets", ""]
    if s.error:
        head += [f"This part stopped with an error (see Failures): `{s.error.splitlines()[0]}`",
                 ""]
    lines = [
        *head,
        f"The inner project of tests/test_stress.py ({s.expected_inner} tests over two small "
        "sets, a gameforge-like one with migrations and a carthorse-like one without PostGIS; "
        "`db`, `fresh_db`, `fresh_db_url`, the factory, class-scoped and `before=` fixtures "
        "mixed), written by that file's own `write_project`. Each run is one `python -m pytest "
        "-q -p no:cacheprovider -p no:pytest_postgresql --schemasync-cache-dir=<dir on "
        "/dev/shm>` subprocess as root, all on one cache dir: first a warm-up run (`-n 2`, "
        "on the new, empty cache: initdb and the three templates), then one run each with "
        "`-n 0` (no xdist workers: tests run in the pytest process itself), `-n 1` (one "
        "worker process), `-n 2` and `-n 4`. Wall time = interpreter start to "
        "exit of that pytest process; \"pytest says\" is the time on its summary line. One run "
        "each: expect run-to-run spread (see the load average above).", "",
        "| run | wall time (s) | passed | pytest says |", "|---|---|---|---|",
    ]
    runs = ([("warm-up, `-n 2`, cold cache", s.warmup)] if s.warmup is not None else [])
    runs += [(f"`{label}`, warm", out) for label, out in s.runs]
    for label, out in runs:
        said = re.search(r" in ([0-9.]+s)", out.summary)
        lines.append(f"| {label} | {fmt(out.seconds, 2)} | {passed_count(out)} / "
                     f"{s.expected_inner} | {said[1] if said else '—'} |")
    lines.append("")
    if not s.carthorse:
        return lines
    gameforge = {r.name: r for r in m.rows}
    ppg = s.carthorse_row("pytest-postgresql (disk")
    ppg_test = median(ppg.ms("setup", "call", "teardown")) if ppg is not None else NAN
    ppg_seconds = ppg.seconds() if ppg is not None else NAN
    dropped = (f"it dropped {s.carthorse_dropped} such line(s) here" if s.carthorse_dropped
               else "the files here have none")
    lines += [
        f"Per test on the carthorse set (example_project's: PostGIS + pgRouting, the "
        f"complete-schema dump, fix_routing_functions.sql, missing-functions.sql): "
        f"{CARTHORSE_TESTS} generated tests (bench/suite.py, `render_carthorse_tests`), each "
        "inserting a region, three trails (LineStringZ, the length/bbox trigger fires), three "
        "routing nodes and two routing edges, then one spatial query (`ST_DWithin` on "
        "geography). Same conftest and timing plugin as above. Ours: one cache dir for both "
        "fixtures, one cold `db` run (initdb, PostGIS/pgRouting template build), then "
        f"{m.repeat} warm runs each; per-test numbers pool the warm runs. pytest-postgresql: "
        "run as on gameforge (the `postgres` user through runuser, the same interpreter; disk "
        "= its default temp dir on /tmp, tmpfs = `--basetemp` on /dev/shm), "
        f"{m.repeat} runs each, alternating; it has no cache, so every run loads the set into "
        "its template database (that is in its first test and its end-to-end time) and the "
        "per-test numbers pool all its runs. Its `load` callable runs the three files in "
        "order, each on its own connection and in its own transaction, the whole file text in "
        "one psycopg `execute` (as pytest-postgresql's own .sql loader does). The dump's "
        "`SET ...` and `SELECT pg_catalog.set_config('search_path', '', false);` lines are "
        "plain SQL and run as they are (for that file's connection only); pg_dump's "
        "psql-only `\\restrict` / `\\unrestrict` lines would be dropped and any other psql "
        f"meta-command would stop the load (bench/suite.py, `server_sql`): {dropped}. "
        "Speed-ups are against pytest-postgresql on disk (its default): per test, its "
        "per-test median over the row's; end to end, its median wall time over the row's "
        "(our warm runs). Milliseconds, except the end-to-end columns (seconds).", "",
        "| variant | how it ran | per-test median | per-test mean | per-test p90 | fixture "
        "median | fixture p90 | first test | end to end warm (s) | cold (s) | per-test "
        "speed-up vs pytest-postgresql disk | end-to-end speed-up vs pytest-postgresql disk | "
        "gameforge per-test median (table above) |",
        "|" + "---|" * 13,
    ]
    for row in s.carthorse:
        if not carthorse_ok(row):
            lines.append(f"| {row.name} | {row.how} | FAILED (see Failures) |" + " |" * 10)
            continue
        total, fixture = row.ms("setup", "call", "teardown"), row.ms("setup", "teardown")
        other = gameforge.get(row.name)
        lines.append(
            f"| {row.name} | {row.how} | {fmt(median(total), 2)} | {fmt(mean(total), 2)} | "
            f"{fmt(p90(total), 2)} | {fmt(median(fixture), 2)} | {fmt(p90(fixture), 2)} | "
            f"{fmt(row.first_ms())} | {row.spread() if row.warm else 'no cache'} | "
            f"{row.spread(warm=False)} | {fmt(ppg_test / median(total))}x | "
            f"{fmt(ppg_seconds / row.seconds())}x | "
            f"{fmt(median(other.ms('setup', 'call', 'teardown')), 2) if other else '—'} |")
    return [*lines, ""]


METHOD = """\
- One generated project with one generated module of {n} tests (bench/suite.py): each
  inserts a user (citext e-mail), a studio, three projects and an asset, then finds the user
  by e-mail in another letter case (citext), runs `search_projects` with a typo (pg_trgm,
  schema.sql), `search_assets` (pg_trgm, migration 003) and counts the studio's rows in the
  `project_overview` view. Every test takes the fixture `conn`; the project's conftest
  (bench/suite_conftest.py) maps it to the variant's real fixture, so the bodies are identical.
- Schema: example_project/db/gameforge/schema.sql, then migrations 000..003 in order. Ours
  builds it with psql into a cached template; the competitors load it with a Python callable
  (each file in its own connection and transaction, migrations recorded in
  public.schema_migrations): pytest-postgresql's `load=[callable]`, testing.postgresql's
  `on_initialized`. The carthorse set (under "Stress suite and both sets") is loaded by the
  same callable, with that set's three files instead.
- Each variant is one `python -m pytest -q -p no:cacheprovider -p timing_plugin test_bench.py`
  subprocess; "end-to-end" is its wall time (interpreter start to exit: server start, schema
  build or load, {n} tests, teardown). The other library's plugin is disabled
  (`-p no:pytest_postgresql` for ours, `-p no:schemasync` for the competitors).
- Repeats (`--repeat`): each of our warm variants and each pytest-postgresql variant runs
  {repeat} times, on gameforge and on carthorse (end-to-end = the median, shown with min-max
  and n); per-test numbers pool all tests of those runs. Our cold runs and testing.postgresql
  run once.
- Per-test times come from bench/timing_plugin.py: the duration pytest reports for the setup,
  call and teardown of each test. "per-test" = setup+call+teardown, "fixture" =
  setup+teardown (what the database fixture costs without the test body). A competitor's first
  test also pays for its session fixture (server start, schema load): that moves the mean, not
  the median.
- pytest-schemasync: run as root (the plugin runs its server as the unprivileged `postgres`
  user by itself), cache dir on /dev/shm (its default is tmpfs too). Cold = a new, empty
  `--schemasync-cache-dir` (initdb and template build); warm = the same folder again.
- pytest-postgresql 10: `postgresql_proc(load=[load_schema])` + `postgresql("postgresql_proc")`.
  It loads the schema once into a template database (`tests_tmpl`), then for every test runs
  `CREATE DATABASE tests TEMPLATE tests_tmpl` (server default strategy, WAL_LOG on 15) and,
  after it, disallows connections, terminates backends and drops it, each step on a new TCP
  connection to 127.0.0.1. Its server runs with `-F` (fsync off), otherwise default settings.
  initdb refuses root, so the pytest process runs as `postgres` (`runuser -u postgres -- env
  -i ...`), with `--postgresql-exec=<bindir>/pg_ctl` (its own discovery also finds 15 here,
  through pg_config). "disk" = its default: data dir under pytest's tmp_path_factory in the
  system temp dir (/tmp, ext4; we only move that root into our scratch folder on /tmp with
  PYTEST_DEBUG_TEMPROOT so it can be cleaned up); "tmpfs" = `--basetemp` on /dev/shm.
- testing.postgresql 1.3: a session fixture `PostgresqlFactory(cache_initialized_db=True,
  on_initialized=load, initdb=..., postgres=...)`; every test copies the initialised data
  directory, starts its own postgres on a new port (`-F`, TCP on 127.0.0.1) and stops it
  (SIGINT) afterwards. Run as `postgres` like pytest-postgresql; "tmpfs" = TMPDIR on
  /dev/shm; "disk" = its default `tempfile.mkdtemp()` on /tmp, run only with
  `bash bench/run.sh --testing-postgresql-disk` (that variant alone takes 1-1.5 minutes).
- What had to be worked around (see also the probes below):
  - initdb refuses root (and so pg_ctl and postgres): both competitors' pytest processes run as
    the `postgres` user through runuser; the project and their data folders (in our scratch
    folders) belong to `postgres`. Ours needs nothing: as root it runs its server as
    `postgres` by itself.
  - the postgres user cannot run .venv's interpreter: see "Interpreter".
  - testing.postgresql: `skipIfNotFound` crashes on Python 3.10+ (`collections.Callable` is
    gone), so it is not used (it is only a skip decorator; `PostgresqlFactory` and
    `Postgresql` work on 3.11 with pg8000 1.31). It picks a port by binding localhost:0,
    closing the socket and starting postgres later, which can collide when several sessions
    run at once (e.g. under xdist); the runs here are sequential and did not collide.
    initdb/postgres are passed explicitly; its own search (`which postgres`, then
    /usr/local/pgsql, /usr/local, /usr/lib/postgresql/*) finds 15 here too.
  - pytest-postgresql: nothing beyond the user. Its default `postgresql_exec` is
    /usr/lib/postgresql/14/bin/pg_ctl, missing here; it then falls back to `pg_config
    --bindir` (15). `--postgresql-exec` is passed anyway, to pin the same binaries.
- Raw baseline: right after our `fresh_db` runs, the driver starts our embedded server on that
  warm cache (pytest_schemasync's `Scratch`) and times with psycopg, {n} times each,
  `CREATE DATABASE x TEMPLATE t STRATEGY ...` + `DROP DATABASE x`.
- Interpreter: {python} PYTHONDONTWRITEBYTECODE (set in this workplace) is removed from
  the runs' environment, so imports use cached bytecode as on a developer's machine.
- The whole benchmark took {elapsed:.0f} s."""


def render(m: Measurements, pg_bindir: Path) -> str:
    runs = [(r.name, when, out) for r in m.rows
            for when, outs in (("cold", r.cold), ("warm", r.warm)) for out in outs]
    failures = [f"- {name} ({when}): exit {out.returncode}, {out.passed}/{N_TESTS} passed:"
                f"\n\n```\n{out.tail()}\n```" for name, when, out in runs if not out.ok]
    summaries = [f"- {name}, {when}: `{out.summary}`" for name, when, out in runs]
    if m.check is not None:
        failures += [f"- schema check and refresh: {label}: exit {out.returncode}, not the "
                     f"expected output:\n\n```\n{out.tail()}\n```"
                     for label, out in m.check.failures()]
        if m.check.error:
            failures.append(f"- schema check and refresh stopped:\n\n```\n{m.check.error}\n```")
        summaries += [f"- schema check and refresh, {label}: `{out.summary}`"
                      for label, out, _ in m.check.expectations()]
    if m.stress is not None:
        failures += [f"- {label}: exit {out.returncode}, {passed_count(out)} passed:"
                     f"\n\n```\n{out.tail()}\n```" for label, out in m.stress.failures()]
        if m.stress.error:
            failures.append(f"- stress suite and both sets stopped:\n\n```\n"
                            f"{m.stress.error}\n```")
        summaries += [f"- {label}: `{out.summary}`"
                      for label, out, _ in m.stress.expectations()]
    return "\n".join([
        "# pytest-schemasync benchmark", "",
        "Written by `bash bench/run.sh` (bench/bench.py). Numbers from one run on:", "",
        *machine(pg_bindir),
        f"- load average (1 min) at start / {LOAD_POINTS.get(len(m.load), '')}end: "
        f"{' / '.join(m.load)}; the machine is shared "
        f"with other work, so timings vary from run to run.", "",
        "## Per test (milliseconds)", "",
        "per-test = setup+call+teardown of each test; fixture = setup+teardown (the database "
        "fixture without the test body); pooled over the warm runs where there is a cache.", "",
        *per_test_table(m), "",
        "## End to end (seconds, one pytest process, 50 tests)", "",
        "Median of the runs, with (min-max, n). The speed-ups compare warm medians where there "
        "is a cache. \"Outside the tests\" = wall time minus the sum of per-test times: "
        "interpreter start, server start, schema build or load, collection, session teardown.",
        "", *end_to_end_table(m), "",
        "## Targets", "", *targets(m), "",
        *start_details(m), "",
        *check_section(m),
        *stress_section(m),
        *(["## Failures", "", *failures, ""] if failures else []),
        "## Method", "",
        METHOD.format(n=N_TESTS, python=m.python_note, elapsed=m.elapsed,
                      repeat=m.repeat), "",
        "## The competitors as they are, on this machine (probes run by the benchmark)", "",
        *(f"- {k}: `{v}`" for k, v in m.probes.items()), "",
        "## pytest summaries", "", *summaries, "",
    ])
