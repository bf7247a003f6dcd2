"""Re-export the schema files from production, prove them, then replace them atomically.

Order of work: dump production read-only -> normalize (deterministic bytes) -> split the
functions out by real statement boundaries -> stage the new files in a new backup folder ->
build them into a scratch database and compare it with production -> only then swap the files
in through a journal, so an interrupted refresh is rolled forward or was never visible.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import dbprops
from .binaries import find_pg_dump, how_to_get
from .catalog import Snapshot
from .check import bundled_snapshot, catalog_options, production_snapshot
from .config import SchemaSet, Settings
from .databases import DatabaseManager
from .deparse import without_deparsed
from .diff import DiffResult, compare, render_markdown, render_text
from .errors import ConfigError, ProductionError, RefreshError
from .masking import mask_secrets
from .migrations import HistoryRules, history_insert_sql
from .production import ProductionTarget, resolve_production
from .roles import keep_set_role_settings
from .server import ServerInfo
from .sqltext import split_statements
from .swap import recover, replace_files

_LOCK_TIMEOUT = re.compile(r"canceling statement due to statement timeout[\s\S]*?"
                           r"Query was: LOCK TABLE (?P<table>\S+) IN ACCESS SHARE MODE")
_VERSION_HEADER = re.compile(r"^-- Dumped (from database|by pg_dump) version .*$")
_RESTRICT = re.compile(r"^\\(un)?restrict\b.*$")
_FUNCTION = re.compile(r"^CREATE (OR REPLACE )?(FUNCTION|PROCEDURE) (?P<name>[^\s(]+)\(",
                       re.IGNORECASE)
_OR_REPLACE = re.compile(r"^((?:\s*--.*\n|\s*\n)*\s*)CREATE (FUNCTION|PROCEDURE)\b")
_FUNCTION_COMMENT = re.compile(r"^COMMENT ON (FUNCTION|PROCEDURE) (?P<name>[^\s(]+)\(",
                               re.IGNORECASE)


# --- dumping -------------------------------------------------------------------------


def _pg_dump_supports(pg_dump: Path, flag: str) -> bool:
    out = subprocess.run([str(pg_dump), "--help"], capture_output=True, text=True).stdout
    return flag in out


def _refuse_older_server(manager: DatabaseManager, production: Snapshot) -> None:
    """A dump loads into a server of its own major or newer (pg_dump 17+ writes e.g.
    ``SET transaction_timeout``, which 16 and older refuse): the proof needs one."""
    ours = manager.server
    if ours.major < production.server_major:
        raise RefreshError(
            f"Production runs PostgreSQL {production.server_version}, the test server "
            f"PostgreSQL {ours.version}: a dump of production loads only into PostgreSQL "
            f"{production.server_major} or newer, so the refreshed files could not be proven "
            f"here. Run the refresh on PostgreSQL {production.server_major}: "
            f"--schemasync-pg-version {production.server_major}. "
            f"{how_to_get(production.server_major)}"
        )


def dump_schema(info: ServerInfo, server_major: int, *, exclude_schemas: tuple[str, ...] = (),
                pinned_bindir: str | None = None, lock_timeout: int = 5,
                timeout: float = 120, keep_privileges: bool = False) -> tuple[str, str]:
    """``pg_dump --schema-only`` of the database, read-only. Returns (text, pg_dump version).

    A busy production is left alone: pg_dump waits at most ``lock_timeout`` seconds for each
    table lock (queued behind a migration's ACCESS EXCLUSIVE lock it would wait forever, and
    every query on the table would queue behind it), and the whole dump is stopped after
    ``timeout`` seconds (pg_dump sets statement_timeout to 0 itself, so that limit is ours).
    ``keep_privileges`` keeps owners and grants (the build creates the roles they name).
    """
    pg_dump, version = find_pg_dump(server_major, pinned_bindir)
    args = [str(pg_dump), "--schema-only", "--no-tablespaces",
            f"--lock-wait-timeout={lock_timeout * 1000}"]
    if not keep_privileges:
        args += ["--no-owner", "--no-privileges"]
    # pg_dump 15.14+/16.10+/17.6+ guard dumps with \restrict and a random key; a fixed key
    # keeps the output stable where the flag exists (and the lines are stripped anyway).
    if _pg_dump_supports(pg_dump, "--restrict-key"):
        args.append("--restrict-key=schemasync")
    for pattern in exclude_schemas:
        args.append(f"--exclude-schema={pattern}")
    options = "-c default_transaction_read_only=on"
    if server_major >= 14:  # a stopped pg_dump's backend then quits even while it waits
        options += " -c client_connection_check_interval=1000"
    env = info.client_env(info.admin_db, options)
    secrets = (info.password,) if info.password else ()
    try:
        result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:  # run() has killed pg_dump: its locks go with it
        raise ProductionError(mask_secrets(
            f"Production is busy or slow: pg_dump {version} of {info.url()} did not finish "
            f"within {timeout:g} s and was stopped. Nothing was changed. Try again later, or "
            f"allow more time with --schemasync-dump-timeout.", secrets)) from None
    if result.returncode != 0:
        busy = _LOCK_TIMEOUT.search(result.stderr)
        if busy is not None:
            raise ProductionError(mask_secrets(
                f"Production is busy: pg_dump {version} waited {lock_timeout} s for a lock on "
                f"{busy['table']} of {info.url()} (another session holds a conflicting lock, "
                f"such as a migration's ACCESS EXCLUSIVE) and gave up. Nothing was changed. "
                f"Try again when that session is done, or wait longer with "
                f"--schemasync-dump-lock-timeout.", secrets))
        raise RefreshError(mask_secrets(
            f"pg_dump {version} failed against {info.url()}: {result.stderr.strip()}", secrets))
    return result.stdout, version


def normalize_dump(text: str) -> str:
    """Byte-stable text: no restrict keys, no version header, no trailing blanks."""
    lines = []
    for line in text.splitlines():
        if _RESTRICT.match(line) or _VERSION_HEADER.match(line):
            continue
        lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    out = "\n".join(lines) + "\n"
    return re.sub(r"\n{3,}", "\n\n", out)


@dataclass
class SplitDump:
    schema: str
    functions: str
    moved: list[str] = field(default_factory=list)


def split_functions(text: str) -> SplitDump:
    """Move functions nothing else in the dump refers to (triggers, defaults, views keep theirs
    in the schema file, so it installs on its own) into a separate text."""
    lines = text.split("\n")  # psql's notion of a line (splitlines() also splits on \f)
    chunks: list[tuple[str, str, str | None]] = []  # (kind, text with leading comments, name)
    previous_end = 0
    for statement in split_statements(text):
        chunk = "\n".join(lines[previous_end:statement.end_line])
        previous_end = statement.end_line
        kind, name = "other", None
        if statement.kind == "sql":
            for pattern, label in ((_FUNCTION, "function"), (_FUNCTION_COMMENT, "comment")):
                match = pattern.match(statement.text)
                if match:
                    kind, name = label, match["name"]
        chunks.append((kind, chunk, name))
    tail = "\n".join(lines[previous_end:])
    others = "\n".join(c for kind, c, _ in chunks if kind == "other")

    def referenced(name: str, text: str) -> bool:
        bare = name.split(".")[-1].strip('"')
        return re.search(rf"\b{re.escape(bare)}\s*\(", text) is not None

    definitions: dict[str, list[str]] = {}
    for kind, chunk, name in chunks:
        if kind == "function" and name is not None:
            definitions.setdefault(name, []).append(chunk)
    # A function that stays may call others, and a body checked when it is created
    # (BEGIN ATOMIC) needs them to exist already: what a kept function refers to stays too.
    kept = {name for name in definitions if referenced(name, others)}
    while True:
        kept_text = "\n".join(c for name in kept for c in definitions[name])
        more = {name for name in definitions.keys() - kept if referenced(name, kept_text)}
        if not more:
            break
        kept |= more
    movable = definitions.keys() - kept
    prelude = [c for kind, c, _ in chunks[:12] if kind == "other"
               and re.match(r"^\s*(--.*\n\s*)*(SET |SELECT pg_catalog.set_config)", c + "\n")]
    schema_parts: list[str] = []
    function_parts: list[str] = []
    for kind, chunk, name in chunks:
        if kind != "other" and name in movable:
            # The functions file runs after the set's other files, which may define the same
            # functions (carthorse's fix-up file does): replace, as a hand-kept file would.
            function_parts.append(_OR_REPLACE.sub(r"\1CREATE OR REPLACE \2", chunk, count=1))
        else:
            schema_parts.append(chunk)
    moved = sorted(movable)
    schema = normalize_dump("\n".join(schema_parts) + "\n" + tail)
    if not function_parts:
        return SplitDump(schema, "", [])
    head = "--\n-- Functions exported by pytest-schemasync from the production dump.\n--\n"
    functions = normalize_dump(head + "\n".join(prelude) + "\n" + "\n".join(function_parts))
    return SplitDump(schema, functions, moved)


# --- backups -------------------------------------------------------------------------


def new_backup_dir(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    for n in range(1, 1000):
        name = f"schema-sync-{stamp}" + (f"-{n}" if n > 1 else "")
        candidate = base / name
        try:
            candidate.mkdir()  # never overwrite an existing backup
            return candidate
        except FileExistsError:
            continue
    raise RefreshError(f"Could not create a new backup folder in {base}.")


def _backup_order(path: Path) -> tuple[str, int]:
    # schema-sync-STAMP, then schema-sync-STAMP-2, -3, ..., -10 for more in the same second.
    stamp, _, n = path.name.removeprefix("schema-sync-").partition("-")
    return stamp, int(n) if n.isdigit() else 1


def list_backups(base: Path) -> list[Path]:
    """Oldest first."""
    if not base.is_dir():
        return []
    return sorted((p for p in base.iterdir() if p.is_dir() and p.name.startswith("schema-sync-")),
                  key=_backup_order)


def prune_backups(base: Path, keep: int) -> list[Path]:
    if keep <= 0:
        return []
    old = list_backups(base)[:-keep]
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
    return old


# --- the refresh ---------------------------------------------------------------------


@dataclass
class RefreshResult:
    schema_set: SchemaSet
    target: ProductionTarget
    changed: list[Path]
    backup: Path | None
    before: DiffResult  # old files vs production: what the refresh changes
    dry_run: bool

    def summary_line(self) -> str:
        if self.dry_run:
            verb = "would change" if self.changed else "would change nothing in"
        else:
            verb = "updated" if self.changed else "no change to"
        files = ", ".join(str(p) for p in self.changed) or "the schema files"
        where = f" (backup {self.backup})" if self.backup else ""
        return f"refresh {self.schema_set.name!r}: {verb} {files}{where}"

    def report(self) -> list[str]:
        """What to print: the summary line, and on a dry run what would change."""
        lines = [self.summary_line()]
        if self.dry_run and self.before.drift:
            lines.append(render_text(self.before, header=[("schema set", self.schema_set.name)]))
        return lines


def _counts(snap: Snapshot) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, _ in snap.objects:
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def _summary(schema_set: SchemaSet, target: ProductionTarget, production: Snapshot,
             pg_dump_version: str, before: DiffResult, changed: list[str],
             moved: list[str]) -> str:
    lines = [
        f"# Schema sync summary: set `{schema_set.name}`",
        "",
        f"- When: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- From: {target.masked} ({target.source}, read-only)",
        f"- Server: PostgreSQL {production.server_version}; pg_dump {pg_dump_version}",
        f"- Files replaced: {', '.join(changed) or 'none (already identical)'}",
        f"- Functions moved to the functions file: {len(moved)}",
        f"- Database properties: {dbprops.describe(production.database)}",
        "",
        "## Objects in production",
        "",
        "| kind | count |",
        "| --- | ---: |",
        *[f"| {kind} | {n} |" for kind, n in _counts(production).items()],
        "",
        "## What changed against the previous files",
        "",
        render_markdown(before, header=[]) if before.drift else "Nothing: the previous files "
        "already described production.",
    ]
    return "\n".join(lines) + "\n"


def _database_file(manager: DatabaseManager, schema_set: SchemaSet,
                   production: Snapshot) -> Path | None:
    """Where to record production's database properties, or None: the file is written when
    it exists already, or when the set's databases would otherwise differ from production.
    Properties declared in pyproject.toml are the user's: refresh never edits that file."""
    declared = dbprops.for_set(schema_set)
    default = dbprops.read(manager.admin, manager.server.major, "template0")
    matches = dbprops.same(dbprops.effective(declared, default), production.database)
    if schema_set.database is not None:
        if matches:
            return None
        table = f"tool.schemasync.sets.{schema_set.name}.database"
        raise RefreshError(
            f"Production's database properties differ from those set {schema_set.name!r} "
            f"declares in {schema_set.database.source}; refresh does not edit pyproject.toml, "
            f"and nothing was written. Replace the table with production's:\n\n"
            f"{dbprops.to_toml(dbprops.for_recording(production.database, declared), table)}\n"
            f"or delete it, and the next refresh records them in "
            f"{dbprops.file_of(schema_set)}.")
    path = dbprops.file_of(schema_set)
    if path is not None and (path.is_file() or not matches):
        return path
    return None


def refresh_set(manager: DatabaseManager, settings: Settings, schema_set: SchemaSet, *,
                dry_run: bool = False) -> RefreshResult:
    target = resolve_production(settings, schema_set)
    if target is None:
        raise RefreshError(
            f"Schema set {schema_set.name!r} names no production database to refresh from: set "
            f"production-url-env or production-dotenv for it."
        )
    if schema_set.schema_file is None:
        raise RefreshError(f"Schema set {schema_set.name!r} has no files to refresh.")
    root = settings.root
    recover(root)
    production, history = production_snapshot(target, schema_set, settings, manager,
                                              set_roles_only=False)
    _refuse_older_server(manager, production)
    raw, pg_dump_version = dump_schema(target.info, production.server_major,
                                       exclude_schemas=schema_set.exclude_schemas,
                                       pinned_bindir=settings.pg_bindir,
                                       lock_timeout=settings.dump_lock_timeout,
                                       timeout=settings.dump_timeout,
                                       keep_privileges=schema_set.keep_privileges)
    normalized = normalize_dump(raw)
    split = (split_functions(normalized) if schema_set.functions_file is not None
             else SplitDump(normalized, "", []))
    schema_text = split.schema
    if schema_set.migrations is not None and history:
        schema_text = normalize_dump(schema_text + "\n" + history_insert_sql(
            history, HistoryRules.of(schema_set).style))
    new_texts: dict[Path, str] = {schema_set.schema_file: schema_text}
    if schema_set.functions_file is not None:
        new_texts[schema_set.functions_file] = split.functions or "-- no functions\n"
    # The role-level settings of the roles the new files use (the proof and later checks
    # compare those): a first refresh, or a new role in the dump, brings in more.
    production = keep_set_role_settings(production, schema_set, new_texts)
    props_path = _database_file(manager, schema_set, production)
    if props_path is not None:
        previous = dbprops.for_set(schema_set)
        new_texts[props_path] = dbprops.to_toml(dbprops.for_recording(production.database,
                                                                      previous))
    changed = [p for p, text in new_texts.items()
               if not p.exists() or p.read_text(encoding="utf-8") != text]
    if any(not p.exists() for p in new_texts if p != props_path):
        # A first refresh creates the file (e.g. a newly configured functions-file): the old
        # files cannot be built, and described nothing.
        empty = Snapshot(production.server_version, production.server_major, {}, [])
        before = compare(empty, production, catalog_options(schema_set))
    else:
        # Not as the set's template: a pytest session would then run on the old files.
        before = compare(bundled_snapshot(manager, schema_set, remember=False), production,
                         catalog_options(schema_set))
    if dry_run or not changed:
        # Nothing to replace: an unchanged production leaves the files (and backups) alone.
        return RefreshResult(schema_set, target, [settings.shown(p) for p in changed], None,
                             before, dry_run=dry_run)

    outside = [str(p) for p in new_texts if not p.is_relative_to(root)]
    if outside:
        raise RefreshError(
            f"Refresh writes only files inside the project ({root}); set {schema_set.name!r} "
            f"names {', '.join(outside)}. Move them into the project or refresh them by hand "
            f"with `schemasync dump`."
        )
    backup = new_backup_dir(settings.backup_dir)
    (backup / "production-schema.sql").write_text(normalized, encoding="utf-8")
    (backup / "production-functions.sql").write_text(split.functions, encoding="utf-8")
    staged: dict[Path, Path] = {}
    created: list[str] = []
    for path, text in new_texts.items():
        rel = settings.shown(path)
        if path.exists():
            (backup / "previous" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, backup / "previous" / rel)
        else:
            created.append(str(rel))  # a rollback removes it again
        (backup / "new" / rel).parent.mkdir(parents=True, exist_ok=True)
        (backup / "new" / rel).write_text(text, encoding="utf-8")
        staged[path] = backup / "new" / rel

    if created:
        (backup / "created.txt").write_text("\n".join(created) + "\n", encoding="utf-8")

    # Prove: the staged files (plus the set's other files, unchanged) must rebuild production.
    proof_set = replace(schema_set, files=tuple(staged.get(p, p) for p in schema_set.files),
                        database_file=staged.get(props_path) if props_path
                        else schema_set.database_file,
                        origins={**schema_set.origins,
                                 **{v: f"staged {v.relative_to(backup)}" for v in staged.values()}})
    try:
        after = compare(bundled_snapshot(manager, proof_set, remember=False), production,
                        catalog_options(schema_set))
        # Production on another major than this server: its views' other print is no failure.
        after = without_deparsed(manager, proof_set, after, remember=False)
    except Exception as exc:
        raise RefreshError(
            f"The refreshed files for set {schema_set.name!r} do not install; nothing was "
            f"replaced. The dump is kept in {backup} for inspection.\n{exc}"
        ) from None
    if after.drift:
        header = [("staged files", str(backup / "new"))]
        raise RefreshError(
            f"The refreshed files for set {schema_set.name!r} install but do not reproduce "
            f"production; nothing was replaced. The dump is kept in {backup}.\n"
            + render_text(after, header=header)
        )
    changed_rel = [str(settings.shown(p)) for p in changed]
    (backup / "sync-summary.md").write_text(
        _summary(schema_set, target, production, pg_dump_version, before, changed_rel,
                 split.moved), encoding="utf-8")
    if changed:
        replace_files(root, {p: new_texts[p] for p in changed})
    prune_backups(settings.backup_dir, settings.backup_keep)
    return RefreshResult(schema_set, target, [settings.shown(p) for p in changed], backup,
                         before, dry_run=False)


def refresh_sets(manager: DatabaseManager, settings: Settings, names: list[str] | None = None,
                 *, dry_run: bool = False) -> list[RefreshResult]:
    """Refresh the sets named (each must have a production), or else every set that has
    one; what ``pytest --refresh-schema`` and ``schemasync refresh`` both run."""
    if names:
        chosen = [settings.schema_set(name) for name in names]
    else:
        chosen = [s for s in settings.sets.values()
                  if resolve_production(settings, s) is not None]
        if not chosen:
            raise ConfigError(
                "No schema set names a production database to refresh from. Set "
                "production-url-env (or production-dotenv) under [tool.schemasync.sets.<name>], "
                "or export SCHEMASYNC_PRODUCTION_URL_<SET>.")
    return [refresh_set(manager, settings, s, dry_run=dry_run) for s in chosen]


def rollback(settings: Settings, backup: Path | None = None) -> tuple[Path, list[Path]]:
    """Restore the files a refresh replaced, from ``backup`` (default: the newest)."""
    backups = list_backups(settings.backup_dir)
    if backup is None:
        if not backups:
            raise RefreshError(
                f"No backups in {settings.backup_dir} to roll back to. Backups are made by "
                f"`schemasync refresh` / `pytest --refresh-schema`; if yours are elsewhere, "
                f"point --schemasync-backup-dir at them."
            )
        backup = backups[-1]
    elif not backup.is_absolute() and not backup.exists():
        backup = settings.backup_dir / backup
    previous = backup / "previous"
    restored = {settings.root / p.relative_to(previous): p.read_text(encoding="utf-8")
                for p in sorted(previous.rglob("*")) if p.is_file()} if previous.is_dir() else {}
    created_list = backup / "created.txt"
    created = ([settings.root / line for line in created_list.read_text().split()]
               if created_list.is_file() else [])
    if not restored and not created:
        raise RefreshError(
            f"{backup} holds no previous files to restore (known backups: "
            f"{', '.join(b.name for b in backups) or 'none'}). Name another backup."
        )
    recover(settings.root)
    if restored:
        replace_files(settings.root, restored)
    for path in created:  # files the refresh created did not exist before it
        path.unlink(missing_ok=True)
    return backup, sorted([*restored, *created])
