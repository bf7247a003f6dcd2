"""Comparing two catalog snapshots and reporting the drift (text, Markdown, JSON).

Directions are always told from production's side: ``missing`` is in production but not in
the bundled files, ``extra`` is in the bundled files but not in production, ``changed`` is in
both with a different definition. A missing or extra table carries its columns, constraints,
indexes, triggers and policies inside its own difference instead of one line each.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import dbprops
from .binaries import how_to_get
from .catalog import DEFAULT_OPTIONS, KINDS, CatalogObject, CatalogOptions, Snapshot
from .masking import mask_dsn

CHANGES: tuple[str, ...] = ("missing", "extra", "changed")
# "column order" only appears with CatalogOptions(column_order="drift").
DIFF_KINDS: tuple[str, ...] = (*KINDS[: KINDS.index("column") + 1], "column order",
                               *KINDS[KINDS.index("column") + 1:])
_KIND_ORDER = {kind: i for i, kind in enumerate(DIFF_KINDS)}

_CHANGE_LEGEND = ("missing = in production, not in the bundled files; extra = in the bundled "
                  "files, not in production; changed = in both, defined differently")


@dataclass(frozen=True)
class Difference:
    kind: str
    identity: str
    change: str  # "missing" | "extra" | "changed"
    bundled: str | None  # definition on the bundled side
    production: str | None

    @property
    def title(self) -> str:
        return f"{self.change} {self.kind} {self.identity}"


@dataclass
class DiffResult:
    differences: list[Difference]  # sorted by kind order, then identity
    warnings: list[str]
    bundled_version: str
    production_version: str
    compared: int = 0  # objects looked at on both sides together
    schemas_excluded: list[str] = field(default_factory=list)
    # What the two sides are called in reports; `schemasync diff` names its two databases.
    sides: tuple[str, str] = ("bundled", "production")

    @property
    def drift(self) -> bool:
        return bool(self.differences)

    def summary(self) -> dict[str, dict[str, int]]:
        """kind -> {"missing": n, "extra": n, "changed": n}, for kinds with differences."""
        counts: dict[str, dict[str, int]] = {}
        for d in self.differences:
            counts.setdefault(d.kind, dict.fromkeys(CHANGES, 0))[d.change] += 1
        return counts


def _sort_key(kind: str, identity: str) -> tuple[int, str, str]:
    return (_KIND_ORDER.get(kind, len(_KIND_ORDER)), kind, identity)


def _with_children(obj: CatalogObject, children: list[CatalogObject]) -> str:
    if not children:
        return obj.definition
    lines = [obj.definition]
    for child in children:
        lines.extend("  " + line for line in child.definition.split("\n"))
    return "\n".join(lines)


def _descendants(key: tuple[str, str], side: dict[tuple[str, str], CatalogObject],
                 kids: dict[tuple[str, str], list[tuple[str, str]]]) -> list[CatalogObject]:
    found: list[CatalogObject] = []
    stack = list(kids.get(key, ()))
    while stack:
        child = stack.pop()
        if child in side:
            found.append(side[child])
            stack.extend(kids.get(child, ()))
    return sorted(found, key=lambda o: _sort_key(o.kind, o.identity))


def _column_orders(bundled: Snapshot, production: Snapshot
                   ) -> list[tuple[str, list[str], list[str]]]:
    """Tables whose shared columns come in a different order: (table, bundled, production)."""

    def by_table(snap: Snapshot) -> dict[str, list[tuple[int, str]]]:
        tables: dict[str, list[tuple[int, str]]] = {}
        for obj in snap.objects.values():
            if obj.kind == "column" and obj.parent is not None and obj.position is not None:
                name = obj.identity[len(obj.parent[1]) + 1:]
                tables.setdefault(obj.parent[1], []).append((obj.position, name))
        return {t: [n for _, n in sorted(cols)] for t, cols in tables.items()}

    # Only tables where a column is missing on one side or has another rank can differ in
    # order: on 2,000 tables that is usually none, and the per-table lists are not built.
    b, p = bundled.objects, production.objects
    suspects: set[str] = set()
    for mine, other in ((b, p), (p, b)):
        for key, obj in mine.items():
            if obj.kind == "column" and obj.parent is not None and obj.position is not None:
                theirs_obj = other.get(key)
                if theirs_obj is None or theirs_obj.position != obj.position:
                    suspects.add(obj.parent[1])
    if not suspects:
        return []
    ours, theirs = by_table(bundled), by_table(production)
    out = []
    for table in sorted(ours.keys() & theirs.keys() & suspects):
        shared = set(ours[table]) & set(theirs[table])
        if [c for c in ours[table] if c in shared] != [c for c in theirs[table] if c in shared]:
            out.append((table, ours[table], theirs[table]))
    return out


def compare(bundled: Snapshot, production: Snapshot,
            options: CatalogOptions = DEFAULT_OPTIONS) -> DiffResult:
    """Every object that is missing, extra or changed, plus warnings that are not drift."""
    b, p = bundled.objects, production.objects
    change_of: dict[tuple[str, str], str] = {}
    for key, obj in b.items():  # one lookup per object (70,000 on 2,000 tables)
        theirs = p.get(key)
        if theirs is None:
            change_of[key] = "extra"
        elif obj.definition != theirs.definition:
            change_of[key] = "changed"
    missing = p.keys() - b.keys()
    for key in missing:
        change_of[key] = "missing"

    kids: dict[tuple[str, str], list[tuple[str, str]]] = {}
    if any(change != "changed" for change in change_of.values()):  # only these fold children
        for side in (b, p):
            for key, obj in side.items():
                if obj.parent is not None:
                    kids.setdefault(obj.parent, []).append(key)

    differences: list[Difference] = []
    for key, change in change_of.items():
        obj = b.get(key) or p[key]
        parent = obj.parent
        # A child of a missing/extra parent is shown inside the parent's difference.
        if change != "changed" and parent is not None and change_of.get(parent) == change:
            continue
        if change == "changed":
            differences.append(Difference(*key, change, b[key].definition, p[key].definition))
        else:
            side = p if change == "missing" else b
            text = _with_children(side[key], [d for d in _descendants(key, side, kids)
                                              if change_of.get((d.kind, d.identity)) == change])
            differences.append(Difference(*key, change, text if change == "extra" else None,
                                          text if change == "missing" else None))

    warnings: list[str] = []
    if bundled.server_major != production.server_major:
        warnings.append(
            f"The bundled schema was read on PostgreSQL {bundled.server_version} and production "
            f"runs PostgreSQL {production.server_version}. Deparsed text (views, defaults, "
            f"constraints, function headers) can differ between PostgreSQL major versions even "
            f"when the schema is the same, so some differences below may be spurious: build the "
            f"scratch database on PostgreSQL {production.server_major} for an exact check "
            f"(--schemasync-pg-version {production.server_major}). "
            f"{how_to_get(production.server_major)}"
        )
    database_level = {name.lower() for side in (bundled, production)
                      for name, _ in side.database.settings}
    warnings.extend(dbprops.server_warnings(bundled.server_settings, production.server_settings,
                                            database_level))
    if options.column_order != "ignore":
        for table, ours, theirs in _column_orders(bundled, production):
            if options.column_order == "drift":
                differences.append(Difference("column order", table, "changed",
                                              "\n".join(ours), "\n".join(theirs)))
            else:
                warnings.append(
                    f"Column order of table {table} differs (bundled: {', '.join(ours)}; "
                    f"production: {', '.join(theirs)}). Not counted as drift, but SELECT * and "
                    f"INSERT without a column list see the columns in a different order."
                )

    differences.sort(key=lambda d: (*_sort_key(d.kind, d.identity), d.change))
    return DiffResult(differences, warnings, bundled.server_version, production.server_version,
                      compared=len(b) + len(missing),
                      schemas_excluded=sorted(set(bundled.schemas_excluded)
                                              | set(production.schemas_excluded)))


# --- rendering -------------------------------------------------------------------------------


def _unified(diff: Difference, max_lines: int,
             sides: tuple[str, str] = ("bundled", "production")) -> list[str]:
    before = diff.bundled.split("\n") if diff.bundled is not None else []
    after = diff.production.split("\n") if diff.production is not None else []
    lines = list(difflib.unified_diff(before, after, fromfile=sides[0], tofile=sides[1],
                                      lineterm=""))
    if max_lines > 0 and len(lines) > max_lines:
        hidden = len(lines) - max_lines
        lines = [*lines[:max_lines], f"... {hidden} more line{'s' if hidden != 1 else ''}"]
    return lines


def _legend(result: DiffResult) -> str:
    if result.sides == ("bundled", "production"):
        return _CHANGE_LEGEND
    left, right = result.sides
    return (f"missing = in {right}, not in {left}; extra = in {left}, not in {right}; "
            f"changed = in both, defined differently")


def _headline(result: DiffResult) -> str:
    total = len(result.differences)
    if result.sides != ("bundled", "production"):
        left, right = result.sides
        if not total:
            return (f"No schema drift: {left} matches {right} ({result.compared} catalog "
                    f"objects compared).")
        return f"Schema drift: {total} difference{'s' if total != 1 else ''} between " \
               f"{left} and {right}."
    if not total:
        return (f"No schema drift: the bundled schema matches production "
                f"({result.compared} catalog objects compared).")
    return (f"Schema drift: {total} difference{'s' if total != 1 else ''} between the bundled "
            f"schema and production.")


def _summary_rows(result: DiffResult) -> list[tuple[str, int, int, int]]:
    rows = [(kind, c["missing"], c["extra"], c["changed"])
            for kind, c in result.summary().items()]
    rows.sort(key=lambda r: _sort_key(r[0], ""))
    return rows


def render_text(result: DiffResult, *, header: list[tuple[str, str]], max_lines: int = 40,
                refresh_hint: str | None = None) -> str:
    """Plain text for a terminal or CI log: header, summary table, one unified diff per object."""
    out = [_headline(result)]
    width = max((len(label) for label, _ in header), default=0)
    out.extend(f"  {label:<{width}}  {value}" for label, value in header)
    out.extend(f"warning: {w}" for w in result.warnings)
    rows = _summary_rows(result)
    if rows:
        kw = max(len("total"), *(len(r[0]) for r in rows))
        out.append("")
        out.append(f"  {'kind':<{kw}}  missing  extra  changed")
        for kind, missing, extra, changed in rows:
            out.append(f"  {kind:<{kw}}  {missing:>7}  {extra:>5}  {changed:>7}")
        totals = [sum(r[i] for r in rows) for i in (1, 2, 3)]
        out.append(f"  {'total':<{kw}}  {totals[0]:>7}  {totals[1]:>5}  {totals[2]:>7}")
        out.append(f"  ({_legend(result)})")
    for diff in result.differences:
        out.append("")
        out.append(diff.title)
        out.extend(_unified(diff, max_lines, result.sides))
    if refresh_hint and result.drift:
        out.append("")
        out.append(refresh_hint)
    return mask_dsn("\n".join(out))


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    ticks = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (ticks + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markdown(result: DiffResult, *, header: list[tuple[str, str]], max_lines: int = 40,
                    refresh_hint: str | None = None) -> str:
    """For a GitHub job summary: header table, summary table, a ```diff block per object."""
    out = [f"**{_headline(result)}**", ""]
    if header:
        out.extend(["| | |", "|---|---|"])
        out.extend(f"| {_md_cell(label)} | {_md_cell(value)} |" for label, value in header)
        out.append("")
    for warning in result.warnings:
        out.extend([f"> **Warning:** {warning}", ""])
    rows = _summary_rows(result)
    if rows:
        out.extend(["| kind | missing | extra | changed |", "|---|--:|--:|--:|"])
        out.extend(f"| {kind} | {m} | {e} | {c} |" for kind, m, e, c in rows)
        totals = [sum(r[i] for r in rows) for i in (1, 2, 3)]
        out.append(f"| **total** | {totals[0]} | {totals[1]} | {totals[2]} |")
        out.extend(["", f"_{_legend(result)}_", ""])
    for diff in result.differences:
        body = "\n".join(_unified(diff, max_lines, result.sides))
        fence = "`" * max([3, *(len(m) + 1 for m in re.findall(r"`{3,}", body))])
        out.extend([
            "<details open>" if len(result.differences) <= 10 else "<details>",
            f"<summary>{diff.change} {diff.kind} {_md_code(diff.identity)}</summary>",
            "",
            f"{fence}diff",
            body,
            fence,
            "",
            "</details>",
            "",
        ])
    if refresh_hint and result.drift:
        out.append(refresh_hint)
    return mask_dsn("\n".join(out).rstrip() + "\n")


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_dsn(value)
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def to_json(result: DiffResult, *, header: list[tuple[str, str]]) -> str:
    """Machine-readable result; the keys are stable (see the README)."""
    payload = {
        "drift": result.drift,
        "bundled_version": result.bundled_version,
        "production_version": result.production_version,
        "header": {label: value for label, value in header},
        "summary": result.summary(),
        "differences": [
            {"kind": d.kind, "identity": d.identity, "change": d.change,
             "bundled": d.bundled, "production": d.production}
            for d in result.differences
        ],
        "warnings": list(result.warnings),
    }
    return json.dumps(_masked(payload), indent=2)
