"""``schemasync diff``: any two databases compared the way the schema check compares the
bundled schema with production (same snapshot, diff and report), plus both migration
histories side by side. Both sides are read through read-only connections only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from .check import catalog_options, production_snapshot, status_json
from .config import SchemaSet, Settings
from .diff import DiffResult, compare, render_markdown, render_text, to_json
from .migrations import HistoryRules, MigrationStatus, compare_history, discover
from .production import ProductionTarget
from .swap import write_atomic


@dataclass
class EnvironmentDiff:
    names: tuple[str, str]
    targets: tuple[ProductionTarget, ProductionTarget]
    schema_set: SchemaSet
    result: DiffResult
    header: list[tuple[str, str]]
    histories: tuple[MigrationStatus, MigrationStatus] | None
    seconds: float
    folder: str = ""  # the migrations folder as messages show it

    @property
    def histories_differ(self) -> bool:
        if self.histories is None:
            return False
        # Whether a checksum was recorded, or a baseline row, is no difference in what ran.
        left, right = ({k: v.split(" (")[0] for k, v in _states(s).items() if v != "baseline"}
                       for s in self.histories)
        return left != right

    @property
    def drift(self) -> bool:
        return self.result.drift or self.histories_differ

    def status_line(self) -> str:
        left, right = self.names
        if self.drift:
            total = len(self.result.differences)
            state = f"DRIFT ({total} object difference{'s' if total != 1 else ''}"
            state += ", migration histories differ)" if self.histories_differ else ")"
        else:
            state = "no drift"
        return (f"schema diff {left} -> {right} (set {self.schema_set.name!r}): {state} "
                f"({self.seconds:.2f}s)")

    def history_table(self) -> list[str]:
        """Every local migration (and every row without a file) with its state on each side."""
        if self.histories is None:
            return []
        left, right = (_states(s) for s in self.histories)
        versions = sorted({*left, *right})
        width = max([len("migration"), *(len(v) for v in versions)])
        cols = [max([len(n), *(len(v) for v in side.values())])
                for n, side in zip(self.names, (left, right), strict=True)]
        lines = ["", f"Migration history of both sides (files in {self.folder}):",
                 f"  {'migration':<{width}}  {self.names[0]:<{cols[0]}}  {self.names[1]}"]
        for version in versions:
            lines.append(f"  {version:<{width}}  {left.get(version, '-'):<{cols[0]}}  "
                         f"{right.get(version, '-')}")
        for name, status in zip(self.names, self.histories, strict=True):
            lines.append(f"  {name}: {status.summary()}")
        return lines

    def text(self) -> str:
        return "\n".join([render_text(self.result, header=self.header), *self.history_table()])

    def markdown(self) -> str:
        left, right = self.names
        table = self.history_table()
        body = render_markdown(self.result, header=self.header)
        extra = ["", "```", *table[1:], "```"] if table else []
        return "\n".join([f"## Schema diff `{left}` → `{right}`", "", body, *extra])

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(to_json(self.result, header=self.header))
        data["drift"] = self.drift
        data["sides"] = list(self.names)
        if self.histories is not None:
            data["migrations"] = {name: status_json(status) for name, status
                                  in zip(self.names, self.histories, strict=True)}
            data["histories_differ"] = self.histories_differ
        return data

    def write_outputs(self, json_path: Path | None, markdown_path: Path | None) -> None:
        if json_path is not None:
            write_atomic(json_path, json.dumps(self.as_json(), indent=2, sort_keys=True) + "\n")
        if markdown_path is not None:
            write_atomic(markdown_path, self.markdown())


def _states(status: MigrationStatus) -> dict[str, str]:
    """Migration (file version, or row version without a file) -> its state on one side."""
    states: dict[str, str] = {}
    for migration, applied in status.applied:
        states[migration.stem] = "applied" if applied.has_checksum else "applied (no checksum)"
    for migration, _ in status.edited:
        states[migration.stem] = "EDITED"
    for migration in status.pending:
        states[migration.stem] = "pending"
    for applied in status.baseline:
        states[applied.version] = "baseline"
    for applied in status.unknown:
        states[applied.version] = "UNKNOWN (no file)"
    return dict(sorted(states.items()))


def diff_environments(settings: Settings, schema_set: SchemaSet,
                      sides: list[tuple[str, ProductionTarget]]) -> EnvironmentDiff:
    """Snapshot both databases (read-only) and compare them like the schema check does."""
    started = time.perf_counter()
    (left_name, left), (right_name, right) = sides
    left_snap, left_history = production_snapshot(left, schema_set, settings, None)
    right_snap, right_history = production_snapshot(right, schema_set, settings, None)
    result = compare(left_snap, right_snap, catalog_options(schema_set))
    result.sides = (left_name, right_name)
    histories = None
    if schema_set.migrations is not None:
        rules = HistoryRules.of(schema_set)
        local = discover(schema_set.migrations, schema_set.origin(schema_set.migrations),
                         rules.style)
        histories = (compare_history(local, left_history, rules),
                     compare_history(local, right_history, rules))
    header = [
        (left_name, f"PostgreSQL {left_snap.server_version} at {left.masked} "
                    f"(from {left.source}; read-only)"),
        (right_name, f"PostgreSQL {right_snap.server_version} at {right.masked} "
                     f"(from {right.source}; read-only)"),
        ("schema set", f"{schema_set.name} (excluded schemas: "
                       f"{', '.join(schema_set.exclude_schemas) or 'none'})"),
    ]
    folder = str(settings.shown(schema_set.migrations)) if schema_set.migrations else ""
    return EnvironmentDiff((left_name, right_name), (left, right), schema_set, result, header,
                           histories, time.perf_counter() - started, folder)
