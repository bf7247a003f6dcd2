"""Migration files (``NNN_description.sql`` by default, other tools' layouts by
``migration-style``) and their history table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from .config import SchemaSet
from .errors import MigrationError, SchemaSyncError
from .install import InstallTarget, Progress, read_schema_file, run_sql
from .masking import mask_dsn
from .names import LOCK_NAMESPACE, MIGRATE_LOCK, sql_literal
from .server import ServerInfo
from .sqltext import split_statements
from .styles import NUMBERED, Style, resolve, version_key

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
    checksum: str  # sha256 of the file's bytes (Flyway: its CRC32), as the history records it
    repeatable: bool = False  # Flyway's R__ files: run again whenever they change
    order: tuple[int, ...] | None = None  # the style's key (Flyway: 1.0 is 1), if not numeric

    @property
    def number(self) -> int:
        return self.key[0] if self.key else -1

    @property
    def key(self) -> tuple[int, ...]:
        return self.order if self.order is not None else version_key(self.version)

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def shown(self) -> str:
        """The version as messages show it (Flyway's repeatables have none)."""
        return self.version or "R"


def discover(folder: Path, origin: str = "configuration",
             style: Style = NUMBERED) -> list[Migration]:
    """Migrations in version order (Flyway's repeatables last, by description); refuses
    unparseable names and duplicate versions."""
    if not folder.is_dir():
        raise MigrationError(
            f"Migrations folder {folder} does not exist or is not a folder (named at {origin}). "
            f"Create it or fix the 'migrations' path."
        )
    found: dict[tuple[int, ...], Migration] = {}
    repeatable: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        try:
            parsed = style.parse(path.name)
        except ValueError:
            hint = "" if style is NUMBERED else f" ({style.name} style)"
            raise MigrationError(
                f"{path}: migration files must be named {style.expected}{hint}. Rename it, or "
                f"set migration-style for the set if the folder follows another tool."
            ) from None
        if parsed is None:
            continue
        migration = Migration(parsed.version, parsed.description, path,
                              style.checksum(path.read_bytes()), parsed.repeatable,
                              style.key(parsed.version))
        if migration.repeatable:
            repeatable[migration.description] = migration
            continue
        if migration.key in found:
            other = found[migration.key].path.name
            raise MigrationError(
                f"Two migrations share version {migration.version}: {other} and {path.name} in "
                f"{folder}. Give one of them the next free number."
            )
        found[migration.key] = migration
    return [found[k] for k in sorted(found)] + [repeatable[d] for d in sorted(repeatable)]


def select_before(migrations: list[Migration], before: str | None,
                  style: Style = NUMBERED) -> list[Migration]:
    """The migrations strictly older than ``before`` (all of them when None; repeatables,
    which run after every versioned one, only then)."""
    if before is None:
        return migrations
    limit = style.key(before)
    if not limit:
        raise MigrationError(f"before={before!r} is not a migration version number.")
    if not any(m.key == limit for m in migrations if not m.repeatable):
        known = ", ".join(m.version for m in migrations if not m.repeatable) or "none"
        raise MigrationError(f"No migration has version {before!r} (known: {known}).")
    return [m for m in migrations if not m.repeatable and m.key < limit]


# --- matching history rows to files -------------------------------------------------
#
# Teams record a file under its stem (``004_add_user_notifications``), its number (``004``)
# or the number with a suffix of their own; a row whose leading number is a file's number is
# that file's row, whatever the suffix. ``history-version`` only decides what *we* write.

_ROW_NUMBER = re.compile(r"^(\d+)(?:_|$)")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_CRC32 = re.compile(r"^crc32:-?\d+$")
_BASELINE = re.compile(r"^(\d+_)?baseline$", re.IGNORECASE)


@dataclass(frozen=True)
class HistoryRules:
    """How a set's files appear in ``schema_migrations``."""

    version: str = "auto"  # what we write: "stem", "number", or "auto" (follow the rows)
    baseline: str | None = None  # a row standing for the schema before any migration
    style: Style = NUMBERED

    @classmethod
    def of(cls, schema_set: SchemaSet) -> HistoryRules:
        return cls(schema_set.history_version, schema_set.baseline,
                   resolve(schema_set.migration_style, schema_set.migrations))

    def row_key(self, applied: AppliedMigration) -> tuple[int, ...] | None:
        if self.style is NUMBERED:
            return (applied.number,) if applied.number >= 0 else None
        return self.style.row_key(applied.version)

    def matches(self, migration: Migration, applied: AppliedMigration) -> bool:
        if migration.repeatable or not applied.version:
            return (migration.repeatable and not applied.version
                    and applied.description == migration.description)
        return applied.version == migration.stem or self.row_key(applied) == migration.key

    def is_baseline(self, version: str, local_stems: set[str], kind: str = "") -> bool:
        if kind in ("BASELINE", "SCHEMA"):  # Flyway's own bookkeeping rows
            return True
        if self.baseline is not None:
            return version == self.baseline
        return bool(_BASELINE.match(version)) and version not in local_stems

    def baseline_sql(self) -> str:
        """SQL condition true for rows that are a baseline (for the inferred write form)."""
        if self.baseline is not None:
            return f"version = {sql_literal(self.baseline)}"
        return "version ~* '^([0-9]+_)?baseline$'"


def has_checksum(value: str | None) -> bool:
    """Only a real sha256 (or a Flyway CRC32) is a recorded checksum; placeholders
    ('sha256_checksum', 'baseline', '') and NULL mean "not recorded"."""
    return bool(value) and bool(_SHA256.match(value or "") or _CRC32.match(value or ""))


def _own_rows_sql(migration: Migration, known: list[str]) -> str:
    """SQL condition for the history rows a running migration wrote itself: rows matching
    the file that were not there before it ran."""
    if "." in migration.version:  # dotted: the version itself, or with a suffix
        condition = (f"(version = {sql_literal(migration.stem)} OR version = "
                     f"{sql_literal(migration.version)} OR starts_with(version, "
                     f"{sql_literal(migration.version + '_')}))")
    else:
        condition = (f"(version = {sql_literal(migration.stem)} OR (version ~ '^[0-9]+(_|$)' AND "
                     f"substring(version from '^[0-9]+')::numeric = {migration.number}))")
    if known:
        condition += f" AND version <> ALL (ARRAY[{', '.join(map(sql_literal, known))}]::text[])"
    return condition


def _version_sql(migration: Migration, rules: HistoryRules) -> str:
    """The version we write: the configured form, or the form most rows already use."""
    if rules.version == "stem":
        return sql_literal(migration.stem)
    if rules.version == "number" or rules.style is not NUMBERED:
        return sql_literal(migration.version)
    return (f"(SELECT CASE WHEN count(*) FILTER (WHERE version ~ '^[0-9]+_') > "
            f"count(*) FILTER (WHERE version ~ '^[0-9]+$') THEN {sql_literal(migration.stem)} "
            f"ELSE {sql_literal(migration.version)} END FROM public.schema_migrations "
            f"WHERE NOT ({rules.baseline_sql()}))")


def recording_sql(migration: Migration, script_path: str, applied_by: str | None,
                  rules: HistoryRules = HistoryRules(),
                  known: list[str] | None = None) -> tuple[str, str]:
    """psql text to run before and after a migration so it is recorded in the same
    transaction: a row the file wrote itself (``record_migration(...)``) is completed where
    it lacks checksum, timing or path; otherwise we write one. ``known``: the versions the
    history held before the file ran."""
    prelude = "SELECT clock_timestamp() AS schemasync_t0 \\gset\n"
    who = sql_literal(applied_by) if applied_by else "current_user"
    elapsed = ("(extract(epoch FROM clock_timestamp() - :'schemasync_t0'::timestamptz) "
               "* 1000)::integer")
    if rules.style.table != "schema_migrations" or not rules.style.checksums:
        # Another tool's table: recorded as that tool records it.
        return prelude, (";\n" + rules.style.ddl + rules.style.record_sql(
            migration.version, migration.description, migration.checksum, script_path, who,
            elapsed))
    own = _own_rows_sql(migration, known or [])
    checksum = sql_literal(migration.checksum)
    # psql runs a file's last statement at end of input even without a ';'; the ';' here
    # ends such a statement so it does not run into the history DDL (alone it is a no-op).
    epilogue = (
        ";\n"
        + HISTORY_TABLE_DDL
        + "UPDATE public.schema_migrations SET "
        f"checksum = CASE WHEN coalesce(checksum, '') ~ '^[0-9a-fA-F]{{64}}$' THEN checksum "
        f"ELSE {checksum} END, execution_time_ms = coalesce(execution_time_ms, {elapsed}), "
        f"script_path = coalesce(nullif(script_path, ''), {sql_literal(script_path)}) "
        f"WHERE {own};\n"
        "INSERT INTO public.schema_migrations (version, description, checksum, applied_at, "
        f"applied_by, execution_time_ms, script_path) SELECT {_version_sql(migration, rules)}, "
        f"{sql_literal(migration.description)}, {checksum}, now(), {who}, {elapsed}, "
        f"{sql_literal(script_path)} WHERE NOT EXISTS (SELECT FROM public.schema_migrations "
        f"WHERE {own});\n"
    )
    return prelude, epilogue


_BEGIN = re.compile(r"^(BEGIN|START\s+TRANSACTION)\b", re.IGNORECASE)
_END = re.compile(r"^(COMMIT|END)\b", re.IGNORECASE)
_CONTROL = re.compile(r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b"
                      r"(?!\s+(PREPARED|TO)\b)", re.IGNORECASE)


def transaction_body(text: str, path: Path) -> str:
    """The file with its own ``BEGIN; ... COMMIT;`` blanked out (lines kept), so it runs
    in our transaction together with its history row: atomically. A file that commits
    in the middle cannot be applied atomically and is refused."""
    statements = [s for s in split_statements(text) if s.kind == "sql"]
    wrapped = (len(statements) >= 2 and _BEGIN.match(statements[0].text)
               and _END.match(statements[-1].text))
    inner = statements[1:-1] if wrapped else statements
    for statement in inner:
        control = _CONTROL.match(statement.text)
        if control:
            raise MigrationError(
                f"{path}:{statement.start_line}: {control[1].upper()} inside the "
                f"migration: a migration is applied in one transaction with its history row, "
                f"so it may wrap itself in one BEGIN; ... COMMIT; but not end or start "
                f"transactions in between. Split it into two migration files."
            )
    if not wrapped:
        return text
    for statement in (statements[-1], statements[0]):  # last first: offsets stay valid
        line_start = sum(len(line) + 1 for line in text.split("\n")[:statement.start_line - 1])
        at = text.index(statement.text, line_start)
        blank = "".join(c if c == "\n" else " " for c in statement.text)
        text = text[:at] + blank + text[at + len(statement.text):]
    return text


def run_migration(target: InstallTarget, migration: Migration, *, script_path: str,
                  applied_by: str | None, rules: HistoryRules, known: list[str],
                  set_name: str, origin: str, action: str | None = None,
                  text: str | None = None, shown: str | None = None,
                  progress: Progress | None = None) -> None:
    """Apply one migration file and its history row in one transaction (a dbmate file marked
    ``transaction:false``: statement by statement, then its row, as dbmate does). ``text``
    replaces the file's text (a rewrite with the same lines, e.g. a build's role rewrites)
    and ``shown`` is then the file as written, for error messages."""
    if text is None:
        text = read_schema_file(migration.path, origin)
    atomic = rules.style.transactional(text)
    text = rules.style.body(text)
    if atomic:
        text = transaction_body(text, migration.path)
    prelude, epilogue = recording_sql(migration, script_path, applied_by, rules, known)
    run_sql(target, migration.path, text, set_name=set_name, origin=origin,
            single_transaction=atomic, prelude=prelude, epilogue=epilogue, action=action,
            shown=shown, progress=progress)


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
    failed: bool = False  # Flyway success = false, golang-migrate dirty
    kind: str = ""  # Flyway's type (SQL, BASELINE, ...)

    @property
    def number(self) -> int:
        """The leading number of ``003``, ``003_add_x`` or ``003_anything``; -1 if none."""
        match = _ROW_NUMBER.match(self.version)
        return int(match[1]) if match else -1

    @property
    def has_checksum(self) -> bool:
        return has_checksum(self.checksum)

    def insert_values(self) -> str:
        timing = "NULL" if self.execution_time_ms is None else str(self.execution_time_ms)
        return (f"({sql_literal(self.version)}, {sql_literal(self.description)}, "
                f"{sql_literal(self.checksum)}, {sql_literal(self.applied_at)}, "
                f"{sql_literal(self.applied_by)}, {timing}, {sql_literal(self.script_path)})")


def history_insert_sql(history: list[AppliedMigration], style: Style = NUMBERED) -> str:
    """production's history as SQL to append to a refreshed dump (as Rails' structure.sql
    carries schema_migrations): builds then skip the migrations the dump already contains."""
    if not history:
        return ""
    if style.table != "schema_migrations" or not style.checksums:
        return style.insert_sql([(a.version, a.description, a.checksum, a.applied_at,
                                  a.applied_by, a.execution_time_ms, a.script_path, a.failed,
                                  a.kind) for a in history])
    rows = ",\n".join(a.insert_values() for a in history)
    return (
        "--\n-- Migration history of production when it was dumped (pytest-schemasync): these "
        "migrations\n-- are part of this schema already and are not applied again.\n--\n\n"
        "INSERT INTO public.schema_migrations (version, description, checksum, applied_at, "
        f"applied_by, execution_time_ms, script_path) VALUES\n{rows};\n"
    )


def read_history(conn: psycopg.Connection[Any], style: Style = NUMBERED, *,
                 denied: type[SchemaSyncError] = MigrationError) -> list[AppliedMigration] | None:
    """The recorded migrations, or None when the database has no history table. Read-only.
    ``denied`` is the error raised when the role may not read it (ProductionError where
    the database is production)."""
    try:
        with conn.transaction():
            exists = conn.execute(f"SELECT to_regclass('public.{style.table}') IS NOT NULL"
                                  ).fetchone()
            if not exists or not exists[0]:
                return None
            if style.table != "schema_migrations" or not style.checksums:
                return [AppliedMigration(*row) for row in conn.execute(style.read_sql())]
            rows = conn.execute(
                # UTC text and to_jsonb for the optional script_path: the same history
                # reads the same on any server and from tables without that column.
                "SELECT version, coalesce(description, ''), coalesce(checksum, ''), "
                "coalesce(to_char(applied_at AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD HH24:MI:SS.US') || '+00', ''), coalesce(applied_by, ''), "
                "execution_time_ms, coalesce(to_jsonb(m) ->> 'script_path', '') "
                "FROM public.schema_migrations m").fetchall()
    except psycopg.errors.UndefinedColumn as exc:
        if style is not NUMBERED:
            raise MigrationError(
                f"public.{style.table} in database {conn.info.dbname!r} is not the history "
                f"table of a {style.name} project ({str(exc).strip().splitlines()[0]}). Set "
                f"migration-style for the set to the tool that owns that table."
            ) from None
        raise MigrationError(
            f"public.schema_migrations in database {conn.info.dbname!r} is not a history "
            f"table schemasync can read ({str(exc).strip().splitlines()[0]}): it needs the "
            f"columns version, description, checksum, applied_at, applied_by and "
            f"execution_time_ms. Another migration tool may own that table: set migration-style "
            f"for the set (e.g. \"timestamp\" for Rails or dbmate)."
        ) from None
    except psycopg.errors.InsufficientPrivilege as exc:
        raise denied(
            f"Cannot read public.{style.table} in database {conn.info.dbname!r} as role "
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
    baseline: list[AppliedMigration] = field(default_factory=list)  # schema before migrations
    unchecked: list[AppliedMigration] = field(default_factory=list)  # rows without a checksum
    failed: list[AppliedMigration] = field(default_factory=list)  # Flyway failed, golang dirty
    checksums: bool = True  # whether the tool's history records checksums at all

    @property
    def in_sync(self) -> bool:
        return not (self.pending or self.unknown or self.edited or self.failed)

    def render(self) -> str:
        lines = []
        for applied in self.baseline:
            lines.append(f"  baseline  {applied.version}  {applied.description}  (the schema "
                         f"before the first migration; not a migration)")
        for migration, applied in self.applied:
            notes = [f"{applied.applied_at} by {applied.applied_by}"] if applied.applied_at else []
            if applied.version != migration.version and applied.kind != "BASELINE":
                notes.append(f"recorded as {applied.version}")
            if applied.kind == "BASELINE":
                notes.append("below the baseline: Flyway never runs it")
            elif not applied.has_checksum and self.checksums:
                notes.append("no checksum recorded")
            lines.append(f"  applied   {migration.shown}  {migration.description}"
                         + (f"  ({'; '.join(notes)})" if notes else ""))
        for migration, applied in self.edited:
            lines.append(f"  EDITED    {migration.version}  {migration.description}  checksum "
                         f"applied {applied.checksum[:12]}… local {migration.checksum[:12]}…")
        for migration in self.pending:
            late = "  (older than the newest applied one)" if migration in self.out_of_order else ""
            lines.append(f"  pending   {migration.shown}  {migration.description}{late}")
        for applied in self.unknown:
            lines.append(f"  UNKNOWN   {applied.version}  {applied.description}  (applied, but "
                         f"no local file)")
        for applied in self.failed:
            lines.append(f"  FAILED    {applied.version}  {applied.description}  (the tool "
                         f"recorded it as failed or dirty: repair it with that tool)")
        return "\n".join(lines) or "  (no migrations)"

    def summary(self) -> str:
        line = (f"{len(self.applied)} applied, {len(self.pending)} pending, "
                f"{len(self.unknown)} unknown, {len(self.edited)} edited")
        if self.failed:
            line += f", {len(self.failed)} failed"
        if self.unchecked and self.checksums:
            count = len(self.unchecked)
            line += (f"; {count} row{'s' if count != 1 else ''} had no checksum (placeholder "
                     f"or empty: those files cannot be checked for edits)")
        if self.baseline:
            line += f"; baseline {', '.join(a.version for a in self.baseline)}"
        return line


def compare_history(local: list[Migration], history: list[AppliedMigration] | None,
                    rules: HistoryRules = HistoryRules()) -> MigrationStatus:
    """Files against rows: a row is a file's when its version is the file's stem, number or
    number_suffix; a file is edited only where a real sha256 was recorded."""
    status = MigrationStatus(checksums=rules.style.checksums)
    stems = {m.stem for m in local}
    rows = []
    for applied in _expanded(history or [], local, rules):
        (status.baseline if rules.is_baseline(applied.version, stems, applied.kind)
         else rows).append(applied)
    claimed: set[int] = set()
    below = _flyway_baseline(status.baseline, rules)
    for migration in local:
        mine = [k for k, a in enumerate(rows) if rules.matches(migration, a)]
        claimed.update(mine)
        failed = [rows[k] for k in mine if rows[k].failed]
        if failed:
            status.failed.extend(failed)
            continue
        if not mine and below is not None and not migration.repeatable \
                and migration.key <= (rules.row_key(below) or ()):
            status.applied.append((migration, below))  # Flyway's "below baseline"
            continue
        if not mine:
            status.pending.append(migration)
            continue
        if migration.repeatable:  # the latest run counts; a changed file runs again
            if rows[mine[-1]].checksum != migration.checksum:
                status.pending.append(migration)
            else:
                status.applied.append((migration, rows[mine[-1]]))
            continue
        checked = [rows[k] for k in mine if rows[k].has_checksum]
        applied = checked[0] if checked else rows[mine[0]]
        if applied.has_checksum and applied.checksum.lower() != migration.checksum.lower():
            status.edited.append((migration, applied))
        else:
            status.applied.append((migration, applied))
    newest = max((key for a in rows if (key := rules.row_key(a)) is not None), default=())
    status.out_of_order = [m for m in status.pending if not m.repeatable and m.key < newest]
    status.unknown = [a for k, a in enumerate(rows) if k not in claimed]
    status.unchecked = [a for a in rows if not a.has_checksum]
    return status


def _flyway_baseline(baseline: list[AppliedMigration],
                     rules: HistoryRules) -> AppliedMigration | None:
    """Flyway's newest BASELINE row: it never runs the files at or below its version."""
    rows = [a for a in baseline if a.kind == "BASELINE" and rules.row_key(a) is not None]
    return max(rows, key=lambda a: rules.row_key(a) or (), default=None)


def _expanded(history: list[AppliedMigration], local: list[Migration],
              rules: HistoryRules) -> list[AppliedMigration]:
    """golang-migrate keeps one row, the current version: every file up to it is applied,
    and a dirty row means that version failed half-way."""
    if not rules.style.single_row or not history:
        return history
    current = history[-1]
    top = rules.row_key(current) or ()
    rows = [AppliedMigration(m.version, m.description, "", "", "", None,
                             failed=current.failed and m.key == top)
            for m in local if m.key <= top]
    if all(m.key != top for m in local):
        rows.append(current)  # no local file: unknown
    return rows


def unrecorded(migrations: list[Migration], history: list[AppliedMigration],
               rules: HistoryRules, before: str | None, where: str) -> list[Migration]:
    """The migrations a base file (a refreshed dump carrying production's history rows)
    does not record yet; a recorded one whose file changed since is refused as edited."""
    status = compare_history(migrations, history, rules)
    if status.edited:
        migration, applied = status.edited[0]
        raise MigrationError(edited_message(migration, applied, where))
    recorded = [a for _, a in status.applied] + status.unknown
    keys = {a.version: rules.row_key(a) or () for a in recorded}
    if before is not None and any(k >= rules.style.key(before) for k in keys.values()):
        newest = max(recorded, key=lambda a: keys[a.version])
        raise MigrationError(
            f"before={before!r} asks for a database without migration {before}, but {where} "
            f"already contain migrations up to {newest.version} (their schema_migrations "
            f"rows). Only later migrations can be left out."
        )
    return status.pending


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
                  set_name: str, dry_run: bool = False, allow_out_of_order: bool = False,
                  rules: HistoryRules = HistoryRules(),
                  ) -> tuple[MigrationStatus, list[Migration]]:
    """Apply the pending migrations to a database the user named, each in its own
    transaction together with its history row. Returns the status before and what ran."""
    local = discover(migrations_dir, style=rules.style)
    where = info.describe() + f" database {info.admin_db}"
    try:
        conn = psycopg.connect(info.conninfo(connect_timeout=10), autocommit=True)
    except psycopg.OperationalError as exc:
        raise MigrationError(mask_dsn(f"Cannot connect to {info.url()}: {exc}".strip())) from None
    with conn:
        # One migrator at a time per database; released when the connection closes.
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATE_LOCK))
        history = read_history(conn, rules.style)
        status = compare_history(local, history, rules)
        if status.failed:
            versions = ", ".join(a.version for a in status.failed)
            raise MigrationError(
                f"{where} has migration(s) {versions} recorded as failed (dirty): the tool "
                f"stopped half-way. Repair the database and its history with that tool first."
            )
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
            try:
                run_migration(target, migration, script_path=str(script), applied_by=None,
                              rules=rules, known=[a.version for a in history or []],
                              set_name=set_name, origin=f"migrations folder {migrations_dir}",
                              action=f"Migration {migration.shown} of set {set_name!r}")
            except SchemaSyncError as exc:
                done = ", ".join(m.shown for m in ran) or "none"
                how = "failed and was rolled back"
                if not rules.style.transactional(migration.path.read_text(errors="replace")):
                    why = ("-- migrate:up transaction:false" if rules.style.name == "dbmate"
                           else "it has a statement PostgreSQL refuses in one, such as CREATE "
                                "INDEX CONCURRENTLY, so Flyway runs it without one")
                    how = (f"failed outside a transaction ({why}): the statements before the "
                           f"failing one stay applied; check the database, undo or finish "
                           f"them by hand, then migrate again")
                raise MigrationError(
                    f"Migration {migration.shown} {how}; its history row was not written "
                    f"(applied in this run before it: {done}).\n{exc}"
                ) from None
            ran.append(migration)
        return status, ran
