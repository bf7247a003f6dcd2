"""Numbered migration files (``NNN_description.sql``) and the ``schema_migrations`` history."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from .errors import MigrationError, SchemaSyncError
from .install import InstallTarget, read_schema_file, run_sql
from .masking import mask_dsn
from .names import LOCK_NAMESPACE, MIGRATE_LOCK, sql_literal
from .server import ServerInfo

_NAME = re.compile(r"^(?P<version>\d+)_(?P<slug>[A-Za-z0-9_\-]+)\.sql$")

HISTORY_TABLE_DDL = """\
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version text PRIMARY KEY,
    description text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL DEFAULT current_user,
    execution_time_ms integer,
    script_path text
);
"""


@dataclass(frozen=True)
class Migration:
    version: str
    description: str
    path: Path
    checksum: str  # sha256 of the file's bytes, as recorded in schema_migrations

    @property
    def number(self) -> int:
        return int(self.version)


def discover(folder: Path, origin: str = "configuration") -> list[Migration]:
    """Migrations in version order; refuses unparseable names and duplicate versions."""
    if not folder.is_dir():
        raise MigrationError(
            f"Migrations folder {folder} does not exist or is not a folder (named at {origin}). "
            f"Create it or fix the 'migrations' path."
        )
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(
                f"{path}: migration files must be named NNN_description.sql (e.g. "
                f"003_add_asset_search.sql). Rename it."
            )
        migration = Migration(
            version=match["version"],
            description=match["slug"].replace("_", " ").replace("-", " "),
            path=path,
            checksum=hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        if migration.number in found:
            other = found[migration.number].path.name
            raise MigrationError(
                f"Two migrations share version {migration.version}: {other} and {path.name} in "
                f"{folder}. Give one of them the next free number."
            )
        found[migration.number] = migration
    return [found[n] for n in sorted(found)]


def select_before(migrations: list[Migration], before: str | None) -> list[Migration]:
    """The migrations strictly older than ``before`` (all of them when None)."""
    if before is None:
        return migrations
    try:
        limit = int(before)
    except ValueError:
        raise MigrationError(f"before={before!r} is not a migration version number.") from None
    if not any(m.number == limit for m in migrations):
        known = ", ".join(m.version for m in migrations) or "none"
        raise MigrationError(f"No migration has version {before!r} (known: {known}).")
    return [m for m in migrations if m.number < limit]


def recording_sql(migration: Migration, script_path: str,
                  applied_by: str | None) -> tuple[str, str]:
    """psql text to run before and after a migration so it is recorded in the same transaction."""
    prelude = "SELECT clock_timestamp() AS schemasync_t0 \\gset\n"
    who = sql_literal(applied_by) if applied_by else "current_user"
    # psql runs a file's last statement at end of input even without a ';'; the ';' here
    # ends such a statement so it does not run into the history DDL (alone it is a no-op).
    epilogue = (
        ";\n"
        + HISTORY_TABLE_DDL
        + "INSERT INTO public.schema_migrations (version, description, checksum, applied_at, "
        "applied_by, execution_time_ms, script_path) VALUES ("
        f"{sql_literal(migration.version)}, {sql_literal(migration.description)}, "
        f"{sql_literal(migration.checksum)}, now(), {who}, "
        "(extract(epoch FROM clock_timestamp() - :'schemasync_t0'::timestamptz) * 1000)::integer, "
        f"{sql_literal(script_path)});\n"
    )
    return prelude, epilogue


# --- history in a real database ------------------------------------------------------


@dataclass(frozen=True)
class AppliedMigration:
    version: str
    description: str
    checksum: str
    applied_at: str
    applied_by: str
    execution_time_ms: int | None
    script_path: str = ""

    @property
    def number(self) -> int:
        return int(self.version) if self.version.isdigit() else -1

    def insert_values(self) -> str:
        timing = "NULL" if self.execution_time_ms is None else str(self.execution_time_ms)
        return (f"({sql_literal(self.version)}, {sql_literal(self.description)}, "
                f"{sql_literal(self.checksum)}, {sql_literal(self.applied_at)}, "
                f"{sql_literal(self.applied_by)}, {timing}, {sql_literal(self.script_path)})")


def history_insert_sql(history: list[AppliedMigration]) -> str:
    """production's history as SQL to append to a refreshed dump (as Rails' structure.sql
    carries schema_migrations): builds then skip the migrations the dump already contains."""
    if not history:
        return ""
    rows = ",\n".join(a.insert_values() for a in history)
    return (
        "--\n-- Migration history of production when it was dumped (pytest-schemasync): these "
        "migrations\n-- are part of this schema already and are not applied again.\n--\n\n"
        "INSERT INTO public.schema_migrations (version, description, checksum, applied_at, "
        f"applied_by, execution_time_ms, script_path) VALUES\n{rows};\n"
    )


def read_history(conn: psycopg.Connection[Any], *,
                 denied: type[SchemaSyncError] = MigrationError) -> list[AppliedMigration] | None:
    """The recorded migrations, or None when the database has no history table. Read-only.
    ``denied`` is the error raised when the role may not read it (ProductionError where
    the database is production)."""
    try:
        with conn.transaction():
            exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL"
                                  ).fetchone()
            if not exists or not exists[0]:
                return None
            rows = conn.execute(
                # UTC text and to_jsonb for the optional script_path: the same history
                # reads the same on any server and from tables without that column.
                "SELECT version, coalesce(description, ''), coalesce(checksum, ''), "
                "coalesce(to_char(applied_at AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD HH24:MI:SS.US') || '+00', ''), coalesce(applied_by, ''), "
                "execution_time_ms, coalesce(to_jsonb(m) ->> 'script_path', '') "
                "FROM public.schema_migrations m").fetchall()
    except psycopg.errors.UndefinedColumn as exc:
        raise MigrationError(
            f"public.schema_migrations in database {conn.info.dbname!r} is not a history "
            f"table schemasync can read ({str(exc).strip().splitlines()[0]}): it needs the "
            f"columns version, description, checksum, applied_at, applied_by and "
            f"execution_time_ms. Another migration tool may own that table."
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise denied(
            f"Cannot read public.schema_migrations in database {conn.info.dbname!r} as role "
            f"{conn.info.user!r}: {str(exc).strip().splitlines()[0]}. Grant it SELECT on "
            f"that table (reading the history needs nothing more)."
        ) from None
    history = [AppliedMigration(*row) for row in rows]
    return sorted(history, key=lambda a: (a.number, a.version))


@dataclass
class MigrationStatus:
    applied: list[tuple[Migration, AppliedMigration]] = field(default_factory=list)
    pending: list[Migration] = field(default_factory=list)
    unknown: list[AppliedMigration] = field(default_factory=list)  # applied, no local file
    edited: list[tuple[Migration, AppliedMigration]] = field(default_factory=list)
    out_of_order: list[Migration] = field(default_factory=list)  # pending, older than applied

    @property
    def in_sync(self) -> bool:
        return not (self.pending or self.unknown or self.edited)

    def render(self) -> str:
        lines = []
        for migration, applied in self.applied:
            lines.append(f"  applied   {migration.version}  {migration.description}  "
                         f"({applied.applied_at} by {applied.applied_by})")
        for migration, applied in self.edited:
            lines.append(f"  EDITED    {migration.version}  {migration.description}  checksum "
                         f"applied {applied.checksum[:12]}… local {migration.checksum[:12]}…")
        for migration in self.pending:
            late = "  (older than the newest applied one)" if migration in self.out_of_order else ""
            lines.append(f"  pending   {migration.version}  {migration.description}{late}")
        for applied in self.unknown:
            lines.append(f"  UNKNOWN   {applied.version}  {applied.description}  (applied, but "
                         f"no local file)")
        return "\n".join(lines) or "  (no migrations)"


def compare_history(local: list[Migration],
                    history: list[AppliedMigration] | None) -> MigrationStatus:
    status = MigrationStatus()
    by_number = {a.number: a for a in history or []}
    newest = max(by_number, default=-1)
    local_numbers = {m.number for m in local}
    for migration in local:
        applied = by_number.get(migration.number)
        if applied is None:
            status.pending.append(migration)
            if migration.number < newest:
                status.out_of_order.append(migration)
        elif applied.checksum != migration.checksum:
            status.edited.append((migration, applied))
        else:
            status.applied.append((migration, applied))
    status.unknown = [a for a in history or [] if a.number not in local_numbers]
    return status


def edited_message(migration: Migration, applied: AppliedMigration, where: str) -> str:
    return (
        f"Migration checksum mismatch for version {migration.version} "
        f"({migration.path.name}) in {where}:\n"
        f"  -> applied to database : {applied.checksum}\n"
        f"  -> resolved locally    : {migration.checksum}\n"
        f"The file was edited after it was applied. Revert the edit and put the change in a "
        f"new migration; never rewrite history that a database has already run."
    )


def apply_pending(info: ServerInfo, psql: Path, migrations_dir: Path, root: Path, *,
                  set_name: str, dry_run: bool = False,
                  allow_out_of_order: bool = False) -> tuple[MigrationStatus, list[Migration]]:
    """Apply the pending migrations to a database the user named, each in its own
    transaction together with its history row. Returns the status before and what ran."""
    local = discover(migrations_dir)
    where = info.describe() + f" database {info.admin_db}"
    try:
        conn = psycopg.connect(info.conninfo(connect_timeout=10), autocommit=True)
    except psycopg.OperationalError as exc:
        raise MigrationError(mask_dsn(f"Cannot connect to {info.url()}: {exc}".strip())) from None
    with conn:
        # One migrator at a time per database; released when the connection closes.
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATE_LOCK))
        status = compare_history(local, read_history(conn))
        if status.edited:
            migration, applied = status.edited[0]
            raise MigrationError(edited_message(migration, applied, where))
        if status.unknown:
            versions = ", ".join(a.version for a in status.unknown)
            raise MigrationError(
                f"{where} has applied migration(s) {versions} that have no file in "
                f"{migrations_dir}. Pull the latest migrations (or restore the deleted files) "
                f"before migrating."
            )
        if status.out_of_order and not allow_out_of_order:
            versions = ", ".join(m.version for m in status.out_of_order)
            raise MigrationError(
                f"Pending migration(s) {versions} are older than the newest applied one in "
                f"{where}. Renumber them after it, or pass --allow-out-of-order if running "
                f"them late is really intended."
            )
        if dry_run:
            return status, []
        ran: list[Migration] = []
        target = InstallTarget(info, info.admin_db, psql)
        for migration in status.pending:
            script = (migration.path.relative_to(root)
                      if migration.path.is_relative_to(root) else migration.path)
            prelude, epilogue = recording_sql(migration, str(script), None)
            try:
                run_sql(target, migration.path,
                        read_schema_file(migration.path, f"migrations folder {migrations_dir}"),
                        set_name=set_name, origin=f"migration {migration.version}",
                        single_transaction=True, prelude=prelude, epilogue=epilogue,
                        action=f"Migration {migration.version} of set {set_name!r}")
            except SchemaSyncError as exc:
                done = ", ".join(m.version for m in ran) or "none"
                raise MigrationError(
                    f"Migration {migration.version} failed and was rolled back; its history "
                    f"row was not written (applied in this run before it: {done}).\n{exc}"
                ) from None
            ran.append(migration)
        return status, ran
