"""Migration layouts of the common tools (``migration-style``): how files are named, which
part of a file runs, and the history table each tool keeps.

``numbered`` (``NNN_description.sql`` with our ``schema_migrations``) is the default; the
others are detected from the folder or named per set.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from .names import sql_literal as _literal
from .sqltext import split_statements

STYLES = ("auto", "numbered", "dotted", "flyway", "timestamp", "dbmate", "golang-migrate")


def version_key(version: str) -> tuple[int, ...]:
    """Order of a version by its numeric parts: 1.10 after 1.9, 03.04.00_50 after 03.04.00_1."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def flyway_key(version: str) -> tuple[int, ...]:
    """Flyway's order and equality (its MigrationVersion): parts split on ``.`` or ``_``,
    compared as numbers, trailing zero parts ignored: 1 = 1.0 = 1.0.0 = 01, 1_1 = 1.1."""
    key = version_key(version)
    while len(key) > 1 and key[-1] == 0:
        key = key[:-1]
    return key


def flyway_checksum(data: bytes) -> str:
    """Flyway's checksum: CRC32 of the file's lines without line breaks (BOM dropped), as a
    signed 32-bit integer."""
    crc = 0
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    for line in re.split(r"\r\n|\r|\n", text):  # Java's readLine(): no other breaks
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return f"crc32:{crc - (1 << 32) if crc >= 1 << 31 else crc}"


@dataclass(frozen=True)
class ParsedName:
    version: str  # as the tool records it ("" for a Flyway repeatable)
    description: str
    repeatable: bool = False


@dataclass(frozen=True)
class Style:
    name: str
    table: str  # the tool's history table in schema public
    expected: str  # the naming rule, for messages
    pattern: re.Pattern[str]
    ignore: re.Pattern[str] | None = None  # files of the folder that are not migrations
    checksums: bool = False  # whether the history records checksums
    single_row: bool = False  # golang-migrate keeps only the current version

    def parse(self, name: str) -> ParsedName | None:
        """The file's version and description; None when the style ignores the file.
        Raises ValueError for a name the style cannot read."""
        if self.ignore is not None and self.ignore.match(name):
            return None
        match = self.pattern.match(name)
        if not match:
            raise ValueError(name)
        words = match["slug"].replace("_", " ")
        if self.name == "flyway":  # Flyway's description: underscores become spaces
            if match["version"] is None:
                return ParsedName("", words, repeatable=True)
            return ParsedName(match["version"].replace("_", "."), words)
        return ParsedName(match["version"], words.replace("-", " "))

    def checksum(self, data: bytes) -> str:
        if self.name == "flyway":
            return flyway_checksum(data)
        return hashlib.sha256(data).hexdigest()

    def key(self, version: str) -> tuple[int, ...]:
        """The order of a version; equal keys are the same version."""
        return flyway_key(version) if self.name == "flyway" else version_key(version)

    def row_key(self, version: str) -> tuple[int, ...] | None:
        """The numeric key of a history row's version (None: not a version of this style)."""
        pattern = (r"^\d+(?:\.\d+)+(?:_\d+)?(?=_|$)" if self.name == "dotted"
                   else r"^\d+(?:[._]\d+)*" if self.name == "flyway" else r"^\d+(?=_|$)")
        match = re.match(pattern, version)
        return self.key(match[0]) if match else None

    def body(self, text: str) -> str:
        """The part of a file that runs: dbmate's ``-- migrate:up`` section (other lines
        blanked, so errors keep their line numbers); the whole file otherwise."""
        if self.name != "dbmate":
            return text
        lines, keep = text.split("\n"), False
        for k, line in enumerate(lines):
            marker = re.match(r"^--\s*migrate:(up|down)\b", line.strip())
            if marker:
                keep = marker[1] == "up"
                lines[k] = ""
            elif not keep:
                lines[k] = ""
        return "\n".join(lines)

    def transactional(self, text: str) -> bool:
        """Whether the file runs in one transaction: dbmate runs an up section marked
        ``-- migrate:up transaction:false`` outside one (CREATE INDEX CONCURRENTLY, ALTER TYPE
        ... ADD VALUE before PostgreSQL 12), Flyway a file with a statement PostgreSQL refuses
        in one (its PostgreSQLParser's list); every other file runs in one."""
        if self.name == "flyway":
            return not any(_FLYWAY_NO_TRANSACTION.match(" ".join(s.text.upper().split()))
                           for s in split_statements(text) if s.kind == "sql")
        if self.name != "dbmate":
            return True
        marker = re.search(r"^--\s*migrate:up(\s.*)?$", text, re.MULTILINE)
        return not (marker and "transaction:false" in (marker[1] or "").split())

    # --- the tool's history table ---------------------------------------------------

    @property
    def ddl(self) -> str:
        if self.name == "flyway":
            return (
                "CREATE TABLE IF NOT EXISTS public.flyway_schema_history (\n"
                "    installed_rank integer NOT NULL CONSTRAINT flyway_schema_history_pk "
                "PRIMARY KEY,\n    version character varying(50),\n"
                "    description character varying(200) NOT NULL,\n"
                "    type character varying(20) NOT NULL,\n"
                "    script character varying(1000) NOT NULL,\n    checksum integer,\n"
                "    installed_by character varying(100) NOT NULL,\n"
                "    installed_on timestamp without time zone DEFAULT now() NOT NULL,\n"
                "    execution_time integer NOT NULL,\n    success boolean NOT NULL\n);\n"
                "CREATE INDEX IF NOT EXISTS flyway_schema_history_s_idx ON "
                "public.flyway_schema_history USING btree (success);\n")
        if self.name == "golang-migrate":
            return ("CREATE TABLE IF NOT EXISTS public.schema_migrations (version bigint NOT "
                    "NULL PRIMARY KEY, dirty boolean NOT NULL);\n")
        length = "(128)" if self.name == "dbmate" else ""  # Rails: no length
        return ("CREATE TABLE IF NOT EXISTS public.schema_migrations (version character "
                f"varying{length} NOT NULL PRIMARY KEY);\n")

    def read_sql(self) -> str:
        if self.name == "flyway":
            return ("SELECT coalesce(version, ''), description, coalesce('crc32:' || "
                    "checksum, ''), to_char(installed_on, 'YYYY-MM-DD HH24:MI:SS.US'), "
                    "installed_by, execution_time, script, NOT success, type "
                    "FROM public.flyway_schema_history ORDER BY installed_rank")
        if self.name == "golang-migrate":
            return ("SELECT version::text, '', '', '', '', NULL::integer, '', dirty, '' "
                    "FROM public.schema_migrations")
        return ("SELECT version::text, '', '', '', '', NULL::integer, '', false, '' "
                "FROM public.schema_migrations")

    def record_sql(self, version: str, description: str, checksum: str, script: str,
                   who: str, elapsed: str) -> str:
        """SQL that records one applied file, run in the file's transaction."""
        if self.name == "flyway":
            crc = checksum.removeprefix("crc32:")
            return (
                "INSERT INTO public.flyway_schema_history (installed_rank, version, "
                "description, type, script, checksum, installed_by, execution_time, success) "
                "SELECT coalesce(max(installed_rank), 0) + 1, "
                f"{_literal(version) if version else 'NULL'}, {_literal(description)}, 'SQL', "
                f"{_literal(Path(script).name)}, {crc}, {who}, {elapsed}, true "
                "FROM public.flyway_schema_history;\n")
        if self.name == "golang-migrate":
            return ("DELETE FROM public.schema_migrations;\nINSERT INTO public.schema_migrations "
                    f"(version, dirty) VALUES ({int(version)}, false);\n")
        return (f"INSERT INTO public.schema_migrations (version) VALUES ({_literal(version)}) "
                "ON CONFLICT DO NOTHING;\n")

    def insert_sql(self, rows: list[tuple[str, str, str, str, str, int | None, str, bool,
                                          str]]) -> str:
        """Production's history rows as SQL to append to a refreshed dump."""
        if not rows:
            return ""
        if self.name == "flyway":
            values = ",\n".join(
                f"({rank}, {_literal(v) if v else 'NULL'}, {_literal(d)}, {_literal(t or 'SQL')}, "
                f"{_literal(s)}, {c.removeprefix('crc32:') if c else 'NULL'}, {_literal(by)}, "
                f"{_literal(at)}, {ms or 0}, {'false' if failed else 'true'})"
                for rank, (v, d, c, at, by, ms, s, failed, t) in enumerate(rows, 1))
            columns = ("installed_rank, version, description, type, script, checksum, "
                       "installed_by, installed_on, execution_time, success")
        elif self.name == "golang-migrate":
            values = ",\n".join(f"({int(r[0])}, {'true' if r[7] else 'false'})" for r in rows)
            columns = "version, dirty"
        else:
            values = ",\n".join(f"({_literal(r[0])})" for r in rows)
            columns = "version"
        return (f"--\n-- Migration history of production when it was dumped (pytest-schemasync)"
                f".\n--\n\nINSERT INTO public.{self.table} ({columns}) VALUES\n{values};\n")


# Statements Flyway runs outside a transaction on PostgreSQL (ALTER TYPE ... ADD VALUE too,
# before 12; from 12 on it runs in one, as here).
_FLYWAY_NO_TRANSACTION = re.compile(
    r"^((CREATE|DROP) (DATABASE|TABLESPACE|SUBSCRIPTION)|ALTER SYSTEM|(CREATE|DROP)( UNIQUE)? "
    r"INDEX CONCURRENTLY|REINDEX( VERBOSE)? (SCHEMA|DATABASE|SYSTEM)|VACUUM|DISCARD ALL)\b")
_NUMBERED = re.compile(r"^(?P<version>\d+)_(?P<slug>[A-Za-z0-9_\-]+)\.sql$")
STYLE_TABLE: dict[str, Style] = {
    "numbered": Style("numbered", "schema_migrations", "NNN_description.sql (e.g. "
                      "003_add_asset_search.sql)", _NUMBERED, checksums=True),
    "dotted": Style("dotted", "schema_migrations", "a dotted version and a description, e.g. "
                    "03.04.00_50_add_retry.sql", re.compile(
                        r"^(?P<version>\d+(?:\.\d+)+(?:_\d+)?)_(?P<slug>[A-Za-z0-9_\-.]+)\.sql$"),
                    checksums=True),
    "flyway": Style("flyway", "flyway_schema_history", "V<version>__description.sql (e.g. "
                    "V1_2__add_users.sql) or R__description.sql", re.compile(
                        r"^(?:V(?P<version>\d+(?:[._]\d+)*)|R)__(?P<slug>.+)\.sql$"),
                    ignore=re.compile(r"^U\d.*__.*\.sql$"), checksums=True),
    "timestamp": Style("timestamp", "schema_migrations", "YYYYMMDDHHMMSS_description.sql",
                       re.compile(r"^(?P<version>\d{14})_(?P<slug>.+)\.sql$")),
    "dbmate": Style("dbmate", "schema_migrations", "<version>_description.sql with "
                    "-- migrate:up / -- migrate:down sections",
                    re.compile(r"^(?P<version>\d+)_(?P<slug>.+)\.sql$")),
    "golang-migrate": Style("golang-migrate", "schema_migrations",
                            "<version>_description.up.sql (and .down.sql)",
                            re.compile(r"^(?P<version>\d+)_(?P<slug>.+)\.up\.sql$"),
                            ignore=re.compile(r"^.*\.down\.sql$"), single_row=True),
}
NUMBERED = STYLE_TABLE["numbered"]


def detect(folder: Path) -> Style:
    """The style of a migrations folder; numbered unless its files say otherwise (14-digit
    numbered files stay numbered: name "timestamp" to use the Rails/dbmate table)."""
    names = sorted(p.name for p in folder.glob("*.sql")) if folder.is_dir() else []
    if any(re.match(r"^(V\d[^_]*(?:_\d+)*__|R__).+\.sql$", n) for n in names):
        return STYLE_TABLE["flyway"]
    if any(n.endswith((".up.sql", ".down.sql")) for n in names):
        return STYLE_TABLE["golang-migrate"]
    if any(re.match(r"^\d+(?:\.\d+)+_", n) for n in names):
        return STYLE_TABLE["dotted"]
    for name in names:
        head = (folder / name).read_bytes()[:4096].decode("utf-8", errors="replace")
        if re.search(r"^--\s*migrate:up\b", head, re.MULTILINE):
            return STYLE_TABLE["dbmate"]
    return NUMBERED


def resolve(name: str, folder: Path | None) -> Style:
    if name == "auto":
        return detect(folder) if folder is not None else NUMBERED
    return STYLE_TABLE[name]
