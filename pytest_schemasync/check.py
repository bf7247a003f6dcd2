"""The schema check: the bundled files (as built into the cached template) against production.

Both sides are read with the same catalog queries; production only through a read-only
connection. Shared by ``pytest --schema-check`` and ``schemasync check``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from .catalog import Snapshot, paused_gc, snapshot
from .config import SchemaSet, Settings
from .databases import DatabaseManager
from .diff import DiffResult, compare, render_markdown, render_text, to_json
from .errors import ConfigError, ProductionError
from .masking import mask_secrets
from .migrations import (
    AppliedMigration,
    HistoryRules,
    MigrationStatus,
    compare_history,
    discover,
    read_history,
)
from .production import ProductionTarget, connect_readonly, resolve_production, system_identifier
from .snapshots import catalog_options
from .swap import write_atomic

if TYPE_CHECKING:
    from .readahead import ReadAhead


@dataclass
class SetCheck:
    schema_set: SchemaSet
    target: ProductionTarget
    result: DiffResult
    header: list[tuple[str, str]]
    seconds: float
    migrations: MigrationStatus | None = None

    @property
    def drift(self) -> bool:
        return self.result.drift or not (self.migrations is None or self.migrations.in_sync)

    @property
    def extra_sections(self) -> list[str]:
        if self.migrations is None:
            return []
        state = "in sync" if self.migrations.in_sync else "OUT OF SYNC"
        side = self.target.name or "database"
        return ["", f"Migration history (local files vs {side} schema_migrations): {state}",
                self.migrations.render(), self.migrations.summary()]

    @property
    def refresh_hint(self) -> str:
        if self.target.name != "production":  # check --env: the files follow production
            side = self.target.name or "that database"
            return (f"The files describe production: bring {side} up to date, or see how it "
                    f"differs from production with schemasync diff {side} <production>.")
        return (f"If production changed on purpose, refresh the files: pytest --refresh-schema "
                f"(or: schemasync refresh --set {self.schema_set.name}).")

    def status_line(self) -> str:
        if self.drift:
            total = len(self.result.differences)
            state = f"DRIFT ({total} object difference{'s' if total != 1 else ''}"
            if self.migrations is not None and not self.migrations.in_sync:
                state += ", migration history differs"
            state += ")"
        else:
            state = "no drift"
            if self.migrations is not None:
                state += f", migrations in sync ({len(self.migrations.applied)} applied)"
        side = self.target.name or "database"
        line = (f"schema check {self.schema_set.name!r}: {state} against {side} "
                f"PostgreSQL {self.result.production_version} at {self.target.masked} "
                f"({self.seconds:.2f}s)")
        if not self.drift:
            # Not drift (e.g. a different column order), but the user must see it: on drift
            # text() shows the warnings; without drift this line is all that is printed.
            line += "".join(f"\nschemasync: warning: {w}" for w in self.result.warnings)
        return line

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(to_json(self.result, header=self.header))
        data["drift"] = self.drift  # object drift or migration history out of sync
        if self.migrations is not None:
            data["migrations"] = status_json(self.migrations)
        return data

    def text(self) -> str:
        body = render_text(self.result, header=self.header, refresh_hint=self.refresh_hint)
        return "\n".join([body, *self.extra_sections])

    def markdown(self) -> str:
        body = render_markdown(self.result, header=self.header, refresh_hint=self.refresh_hint)
        return "\n".join([f"## Schema set `{self.schema_set.name}`", "", body,
                          *self.extra_sections])


def status_json(m: MigrationStatus) -> dict[str, object]:
    return {
        "in_sync": m.in_sync,
        "applied": [a.version for a, _ in m.applied],
        "pending": [p.version for p in m.pending],
        "unknown": [u.version for u in m.unknown],
        "edited": [e.version for e, _ in m.edited],
        "baseline": [b.version for b in m.baseline],
        "without_checksum": [u.version for u in m.unchecked],
        "failed": [f.version for f in m.failed],
    }


def bundled_snapshot(manager: DatabaseManager, schema_set: SchemaSet, *,
                     remember: bool = True) -> Snapshot:
    """Snapshot of the set's template: the one stored when it was built, else read through
    a throwaway clone (nobody may connect to a template). Without ``remember`` the files are
    built as they are now without becoming the set's template for the rest of the session
    (a refresh's old and staged files)."""
    from .roles import keep_set_role_settings

    template = manager.template_of(schema_set, remember=remember)
    return keep_set_role_settings(
        manager.template_snapshot(template.name, catalog_options(schema_set)), schema_set)


def _refuse_same_server(manager: DatabaseManager, conn: psycopg.Connection[Any] | None,
                        schema_set: SchemaSet, target: ProductionTarget,
                        theirs: str | None = None) -> None:
    """Refuse when production is our scratch server: asked on ``conn``, or compared with
    ``theirs``, production's identifier read ahead (``conn`` None)."""
    ours = manager.server_admin.identifier()
    if ours is not None and ours == (system_identifier(conn) if conn is not None else theirs):
        raise ConfigError(
            f"The {target.name or 'database'} URL for set {schema_set.name!r} ({target.masked}) "
            f"points at the same PostgreSQL server that holds the scratch test databases. "
            f"Refusing, to avoid confusing the two: point it at "
            f"{target.name or 'another server'}, or run tests on another server."
        )


def refuse_scratch_as_production(manager: DatabaseManager, settings: Settings) -> None:
    """Before anything is built on an existing server, make sure it is not production."""
    for schema_set in settings.sets.values():
        target = resolve_production(settings, schema_set)
        if target is not None:
            with connect_readonly(target, settings.connect_timeout) as conn:
                _refuse_same_server(manager, conn, schema_set, target)


def production_snapshot(
    target: ProductionTarget, schema_set: SchemaSet, settings: Settings,
    manager: DatabaseManager | None, *, set_roles_only: bool = True,
    identifier: list[str | None] | None = None,
) -> tuple[Snapshot, list[AppliedMigration] | None]:
    """Production's snapshot (and migration history); with ``set_roles_only`` the role-level
    settings of the roles the set uses (else every role's, none of them as objects yet).
    Without a ``manager`` to compare with, production's system identifier is appended to
    ``identifier`` (if given) for later."""
    from .roles import keep_set_role_settings

    conn = connect_readonly(target, settings.connect_timeout)
    try:
        if manager is not None:
            _refuse_same_server(manager, conn, schema_set, target)
        elif identifier is not None:
            identifier.append(system_identifier(conn))
        taken = snapshot(conn, catalog_options(schema_set))
        history = (read_history(conn, HistoryRules.of(schema_set).style, denied=ProductionError)
                   if schema_set.migrations is not None else None)
        return (keep_set_role_settings(taken, schema_set) if set_roles_only else taken), history
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            advice = ("Another session held a lock on an object the check reads for longer "
                      f"than the check waits (10 s), e.g. a migration running in "
                      f"{target.name or 'that database'}; "
                      "run the check again when it is done.")
        else:
            advice = ("The check needs a role that may read the system catalogs and SELECT "
                      "from public.schema_migrations; it never needs more.")
        raise ProductionError(mask_secrets(
            f"Reading the catalog of {target.described} failed: "
            f"{str(exc).strip()}. {advice}", target.secrets,
        )) from None
    finally:
        conn.close()


@dataclass
class AheadRead:
    """Production read before the scratch server was up (``readahead.ReadAhead``)."""

    target: ProductionTarget
    snapshot: Snapshot
    history: list[AppliedMigration] | None
    identifier: str | None  # production's system identifier, compared once ours is known
    started: float  # perf_counter when the read began: the check's timer starts there


def read_production_ahead(settings: Settings, schema_set: SchemaSet,
                          environ: Mapping[str, str] | None = None) -> AheadRead | None:
    target = resolve_production(settings, schema_set, environ)
    if target is None:
        return None
    started = time.perf_counter()
    identifier: list[str | None] = []
    taken, history = production_snapshot(target, schema_set, settings, None,
                                          identifier=identifier)
    return AheadRead(target, taken, history, identifier[0] if identifier else None, started)


def check_set(manager: DatabaseManager, settings: Settings, schema_set: SchemaSet,
              environ: Mapping[str, str] | None = None,
              target: ProductionTarget | None = None,
              ahead: Future[AheadRead | None] | None = None) -> SetCheck | None:
    """Compare one set with its production (or with ``target``, a database the user named:
    ``check --env staging``); None when no production is configured for it.
    ``ahead``: production's read, already started (``schemasync check``)."""
    target = target or resolve_production(settings, schema_set, environ)
    if target is None:
        return None
    started = time.perf_counter()
    manager.server_admin.identifier()  # asked here: the admin connection is not shared below
    # Production is read in a thread while the bundled side is loaded (both mostly wait).
    with ThreadPoolExecutor(1, thread_name_prefix="schemasync-production") as pool:
        reading = ahead or pool.submit(production_snapshot, target, schema_set, settings,
                                       manager)
        try:
            bundled = bundled_snapshot(manager, schema_set)
        finally:
            read = reading.result()
    if isinstance(read, AheadRead) and read.target == target:
        _refuse_same_server(manager, None, schema_set, target, read.identifier)
        production, history, started = read.snapshot, read.history, min(started, read.started)
    elif ahead is not None:  # read ahead for another target (the environment changed)
        production, history = production_snapshot(target, schema_set, settings, manager)
    else:
        production, history = read
    if schema_set.include_roles:
        _add_roles(manager, settings, schema_set, target, bundled, production)
    with paused_gc():  # tens of thousands of live objects: nothing to collect yet
        result = compare(bundled, production, catalog_options(schema_set))
    if bundled.server_major != production.server_major:
        from .deparse import without_deparsed

        result = without_deparsed(manager, schema_set, result)
    if target.name != "production":
        result.sides = ("bundled", target.name or target.masked)
    migrations = None
    if schema_set.migrations is not None:
        rules = HistoryRules.of(schema_set)
        local = discover(schema_set.migrations, schema_set.origin(schema_set.migrations),
                         rules.style)
        migrations = compare_history(local, history, rules)
    files = [str(settings.shown(p)) for p in schema_set.files]
    if schema_set.migrations is not None:
        files.append(f"{settings.shown(schema_set.migrations)}/*.sql")
    header = [
        ("schema set", schema_set.name),
        (target.name or "database", f"PostgreSQL {production.server_version} at {target.masked} "
                       f"(from {target.source}; read-only)"),
        ("bundled", f"PostgreSQL {bundled.server_version} scratch database built from: "
                    f"{', '.join(files) or '(no files)'}"),
        ("excluded schemas", ", ".join(schema_set.exclude_schemas) or "none"),
    ]
    if production.schemas_excluded:
        header.append(("skipped in production", ", ".join(production.schemas_excluded)))
    return SetCheck(schema_set, target, result, header, time.perf_counter() - started,
                    migrations)


def _add_roles(manager: DatabaseManager, settings: Settings, schema_set: SchemaSet,
               target: ProductionTarget, bundled: Snapshot, production: Snapshot) -> None:
    """include-roles: the attributes and memberships of the set's roles, both sides."""
    from .roles import role_objects, set_roles

    names = set_roles(schema_set)
    bundled.objects.update(role_objects(manager.admin, names))
    with connect_readonly(target, settings.connect_timeout) as conn:
        production.objects.update(role_objects(conn, names))


def check_sets(manager: DatabaseManager, settings: Settings, names: list[str] | None = None,
               environ: Mapping[str, str] | None = None,
               ahead: ReadAhead | None = None) -> list[SetCheck]:
    """Check the sets named (each must have a production), or else every set that has one;
    what ``pytest --schema-check`` and ``schemasync check`` both run. ``ahead``: production
    reads started before the scratch server (``schemasync check``)."""
    checks = []
    for schema_set in ([settings.schema_set(n) for n in names] if names
                       else settings.sets.values()):
        check = check_set(manager, settings, schema_set, environ,
                          ahead=ahead.take(schema_set.name) if ahead is not None else None)
        if check is not None:
            checks.append(check)
        elif names:
            raise ConfigError(
                f"Schema set {schema_set.name!r} names no production database: set "
                f"production-url-env or production-dotenv for it."
            )
    if not checks:
        raise ConfigError(
            "The schema check needs a production database, and no schema set names one. Set "
            "production-url-env (or production-dotenv) under [tool.schemasync.sets.<name>], or "
            "export SCHEMASYNC_PRODUCTION_URL_<SET>."
        )
    return checks


def write_outputs(checks: list[SetCheck], json_path: Path | None,
                  markdown_path: Path | None) -> None:
    """Write the machine-readable results (written aside, then renamed into place)."""
    if json_path is not None:
        payload = {
            "drift": any(c.drift for c in checks),
            "sets": {c.schema_set.name: c.as_json() for c in checks},
        }
        write_atomic(json_path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    if markdown_path is not None:
        write_atomic(markdown_path, "\n\n".join(c.markdown() for c in checks) + "\n")
