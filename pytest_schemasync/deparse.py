"""Differences that are only how another PostgreSQL major prints the same view.

The catalog stores a view as a query tree; its text is printed by the server's deparser,
which changes between majors (e.g. 16 stopped qualifying the columns of a single-relation
view: ``tasks.title`` became ``title``). When production runs another major than the test
server, a changed view is read back by the test server: both texts become temporary views
on a scratch clone of the bundled schema, and if that one deparser prints them identically
they are the same query, so the difference is the deparser's and not drift.

Only views and materialized views are decided this way: their text round-trips through the
parser. Defaults, constraints and function headers showed no deparser differences between
15 and 18 (tests/test_cross_major.py); for them there is no such safe round trip (a default
or a constraint cannot be re-created without touching the table), so a difference there
keeps counting as drift, under the major-mismatch warning.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from .catalog import _SESSION_SETTINGS
from .diff import Difference, DiffResult

if TYPE_CHECKING:
    from .config import SchemaSet
    from .databases import DatabaseManager

VIEW_KINDS = ("view", "materialized view")


def _split(definition: str | None) -> tuple[str, str] | None:
    """(head, query) of a view's definition: everything up to the line ``AS``, and after."""
    if definition is None:
        return None
    lines = definition.split("\n")
    if "AS" not in lines:
        return None
    at = lines.index("AS")
    return "\n".join(lines[:at]), "\n".join(lines[at + 1:]).strip().rstrip(";")


def _reprinted(conn: psycopg.Connection[Any], query: str) -> str | None:
    """``query`` as this server prints it back (None when it cannot take it). Printed as the
    catalog reads views (same settings), in a transaction that is always rolled back."""
    try:
        with conn.transaction(force_rollback=True):
            for setting in _SESSION_SETTINGS:
                conn.execute(setting)  # type: ignore[arg-type]
            conn.execute(sql.SQL("CREATE TEMPORARY VIEW schemasync_reprint AS {}").format(
                sql.SQL(query)))  # type: ignore[arg-type]
            row = conn.execute(
                "SELECT pg_get_viewdef('pg_temp.schemasync_reprint'::regclass, true)").fetchone()
            return str(row[0]) if row else None
    except psycopg.Error:
        return None


def only_deparsed(difference: Difference, conn: psycopg.Connection[Any]) -> bool:
    """Whether a changed view differs only in how its query is printed."""
    if difference.change != "changed" or difference.kind not in VIEW_KINDS:
        return False
    ours, theirs = _split(difference.bundled), _split(difference.production)
    if ours is None or theirs is None or ours[0] != theirs[0]:
        return False  # a different name, options or a text we cannot take apart
    first = _reprinted(conn, ours[1])
    return first is not None and first == _reprinted(conn, theirs[1])


def without_deparsed(manager: DatabaseManager, schema_set: SchemaSet, result: DiffResult, *,
                     remember: bool = True) -> DiffResult:
    """``result`` without the differences that are only another major's deparser (a warning
    names them instead), decided on a throwaway clone of the set's template."""
    if result.bundled_version.split(".")[0] == result.production_version.split(".")[0]:
        return result
    if not any(d.change == "changed" and d.kind in VIEW_KINDS for d in result.differences):
        return result
    with manager.one_off(schema_set, remember=remember) as database, \
            database.connect(autocommit=True) as conn:
        return set_deparsed_aside(result, conn)


def set_deparsed_aside(result: DiffResult, conn: psycopg.Connection[Any]) -> DiffResult:
    """``result`` without the differences that are only another major's deparser, which a
    warning names instead. ``conn``: a scratch database holding the bundled schema."""
    deparsed = [d for d in result.differences if only_deparsed(d, conn)]
    if not deparsed:
        return result
    names = ", ".join(f"{d.kind} {d.identity}" for d in deparsed)
    warning = (
        f"Not counted as drift: {names} differ only in how PostgreSQL "
        f"{result.production_version} prints them; read back by this PostgreSQL "
        f"{result.bundled_version} server, production's definition and the bundled one are "
        f"the same query."
    )
    return replace(result, differences=[d for d in result.differences if d not in deparsed],
                   warnings=[*result.warnings, warning])
