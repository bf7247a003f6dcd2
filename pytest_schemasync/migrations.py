"""Numbered migration files (``NNN_description.sql``) and the ``schema_migrations`` history."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import MigrationError

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


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def recording_sql(migration: Migration, script_path: str, applied_by: str | None) -> tuple[str, str]:
    """psql text to run before and after a migration so it is recorded in the same transaction."""
    prelude = "SELECT clock_timestamp() AS schemasync_t0 \\gset\n"
    who = _literal(applied_by) if applied_by else "current_user"
    epilogue = (
        HISTORY_TABLE_DDL
        + "INSERT INTO public.schema_migrations (version, description, checksum, applied_at, "
        "applied_by, execution_time_ms, script_path) VALUES ("
        f"{_literal(migration.version)}, {_literal(migration.description)}, "
        f"{_literal(migration.checksum)}, now(), {who}, "
        "(extract(epoch FROM clock_timestamp() - :'schemasync_t0'::timestamptz) * 1000)::integer, "
        f"{_literal(script_path)});\n"
    )
    return prelude, epilogue
