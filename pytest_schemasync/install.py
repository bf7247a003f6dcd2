"""Run schema files the way PostgreSQL's own ``psql`` runs them, and explain failures.

We hand the files to ``psql`` itself (COPY blocks, ``$$`` bodies and pg_dump's ``SET`` lines
just work) after a preflight that refuses meta-commands able to run shell commands or leave
the scratch database. Errors come back as file:line, the statement, the server's message and,
for a missing extension, the package that provides it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .binaries import wheel_of
from .errors import ExtensionMissingError, SchemaFileError, SchemaInstallError
from .masking import mask_secrets
from .server import ServerInfo, ServerKind
from .sqltext import (
    MetaCommand,
    blank_restrict_lines,
    meta_commands,
    split_statements,
    statement_at_line,
)
from .sqlwords import Piece, Token, find_word, pieces, tokens, words_at

# Meta-commands that only print or set psql variables. Anything else (\! \connect \i \o
# \copy \g ...) could run a program, write a file or leave the database, so it is refused.
ALLOWED_META = frozenset({
    "restrict", "unrestrict", "set", "unset", "echo", "qecho", "warn", "pset", "encoding",
    "timing", "if", "elif", "else", "endif",
})
_META_REASONS = {
    "!": "it runs a shell command",
    "c": "it connects to another database", "connect": "it connects to another database",
    "i": "it includes another file; list that file in the schema set instead",
    "ir": "it includes another file; list that file in the schema set instead",
    "include": "it includes another file; list that file in the schema set instead",
    "include_relative": "it includes another file; list that file in the schema set instead",
    "o": "it writes to a file or program", "out": "it writes to a file or program",
    "w": "it writes to a file", "write": "it writes to a file",
    "copy": "it reads or writes client-side files or programs",
    "setenv": "it changes the environment", "cd": "it changes directory",
}

# Extensions outside the core server package, by Debian package ({major} is the server's).
EXTENSION_PACKAGES = {
    "postgis": "postgresql-{major}-postgis-3",
    "postgis_raster": "postgresql-{major}-postgis-3",
    "postgis_topology": "postgresql-{major}-postgis-3",
    "postgis_sfcgal": "postgresql-{major}-postgis-3",
    "postgis_tiger_geocoder": "postgresql-{major}-postgis-3",
    "address_standardizer": "postgresql-{major}-postgis-3",
    "pgrouting": "postgresql-{major}-pgrouting",
    "vector": "postgresql-{major}-pgvector",
    "pg_partman": "postgresql-{major}-partman",
    "pg_cron": "postgresql-{major}-cron",
    "hypopg": "postgresql-{major}-hypopg",
    "h3": "postgresql-{major}-h3",
    "timescaledb": "timescaledb-2-postgresql-{major} (Timescale's repository)",
    "plpython3u": "postgresql-plpython3-{major}",
    "plperl": "postgresql-plperl-{major}",
    "plperlu": "postgresql-plperl-{major}",
    "pltcl": "postgresql-pltcl-{major}",
}
CONTRIB_HINT = "postgresql-contrib (shipped with postgresql-{major} on Debian)"

_PSQL_ERROR = re.compile(
    r"^psql:(?P<file>.*?):(?P<line>\d+): (?P<level>ERROR|FATAL):\s+(?P<msg>.*)$"
)
_SERVER_LINE = re.compile(r"^LINE (\d+):")
_UNKNOWN_SETTING = re.compile(r'unrecognized configuration parameter "(?P<name>[^"]+)"')
_DUMPED_BY = re.compile(r"^-- Dumped by pg_dump version (?P<major>\d+)", re.MULTILINE)
_DUMPED_FROM = re.compile(r"^-- Dumped from database version (?P<major>\d+)", re.MULTILINE)
# Settings pg_dump writes at the top of a dump, by the major that first writes them.
DUMP_SETTINGS_SINCE = {"transaction_timeout": 17, "default_toast_compression": 14,
                       "default_table_access_method": 12}
_MISSING_EXT = (
    re.compile(r'extension control file "[^"]*/(?P<name>[^/"]+)\.control"'),
    re.compile(r'extension "(?P<name>[^"]+)" is not available'),
)


def read_schema_file(path: Path, origin: str, *, scan: bool = True) -> str:
    """The file's text after checks that give a clear error instead of a psql surprise
    (``scan=False`` skips the meta-command scan, which only a build needs)."""
    if not path.exists():
        raise SchemaFileError(
            f"Schema file {path} does not exist (named at {origin}). Create it, or fix the "
            f"path in the configuration."
        )
    if path.is_dir():
        raise SchemaFileError(
            f"{path} is a directory, not an SQL file (named at {origin}). List the files in "
            f"it one by one, or use 'migrations' for a folder of numbered migrations."
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SchemaFileError(f"Cannot read {path} (named at {origin}): {exc.strerror}.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SchemaFileError(
            f"{path}:{line}: not valid UTF-8 (byte {data[exc.start]:#04x}). Re-save the file "
            f"as UTF-8 (pg_dump writes UTF-8 when the database encoding is UTF8)."
        ) from None
    if not text.strip():
        raise SchemaFileError(
            f"Schema file {path} is empty (named at {origin}). An empty file usually means a "
            f"failed export; restore it, or remove it from the set."
        )
    for meta in meta_commands(text) if scan else ():
        if _has_backquote(meta.args):
            raise SchemaFileError(
                f"{path}:{meta.line}: psql meta-command \\{meta.name} with `...` is refused: "
                f"psql runs the text between backquotes as a shell command. Schema files "
                f"must not run shell commands; remove the line."
            )
        _refuse_error_stop_off(path, meta)
        if meta.name not in ALLOWED_META:
            reason = _META_REASONS.get(meta.name, "only psql's printing and variable commands "
                                                  "are allowed in schema files")
            raise SchemaFileError(
                f"{path}:{meta.line}: psql meta-command \\{meta.name} is refused: {reason}. "
                f"Schema files must not run shell commands or leave the scratch database; "
                f"remove the line."
            )
    return text


_ON = frozenset({"on", "1", "true", "yes", ""})


def _has_backquote(args: str) -> bool:
    """A backquote outside single quotes in a meta-command's arguments (psql runs it)."""
    quoted = False
    for char in args:
        if char == "'":
            quoted = not quoted
        elif char == "`" and not quoted:
            return True
    return False


def _refuse_error_stop_off(path: Path, meta: MetaCommand) -> None:
    """Every build and migration runs with ON_ERROR_STOP on: a file turning it off would make a
    failed statement pass unnoticed and build a template that lacks what failed."""
    words = meta.args.split(None, 1)
    if not words or words[0] != "ON_ERROR_STOP":
        return
    value = words[1].strip().strip("'").lower() if len(words) > 1 else ""
    if meta.name == "unset" or (meta.name == "set" and value not in _ON):
        raise SchemaFileError(
            f"{path}:{meta.line}: \\{meta.name} {meta.args} is refused: schema files always "
            f"run with ON_ERROR_STOP on, so that a failing statement fails the build instead "
            f"of leaving a template without it. Remove the line."
        )


# Functions that reach the server's files, programs, configuration or other sessions.
_HOST_FUNCTIONS = {
    "lo_import": "it reads a file on the database server",
    "lo_export": "it writes a file on the database server",
    **{f: "it reads the database server's files" for f in (
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir",
        "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir",
        "pg_ls_logicalmapdir", "pg_ls_replslotdir", "pg_logdir_ls")},
    **{f: "it writes the database server's files" for f in (
        "pg_file_write", "pg_file_rename", "pg_file_unlink", "pg_file_sync")},
    **{f: "it changes the running server for everyone" for f in (
        "pg_reload_conf", "pg_rotate_logfile", "pg_promote", "pg_terminate_backend",
        "pg_cancel_backend", "pg_switch_wal", "pg_create_restore_point")},
    **{f: "it connects to another database" for f in (
        "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query")},
}
# Statements that only name a function (grants, comments, definitions) do not call it.
_DECLARING = frozenset({"grant", "revoke", "comment", "drop", "alter", "security"})
_PORTABLE_DATABASE = (
    "Each test database is a clone of a template with a name of its own, and a clone does "
    "not copy database-level grants, settings or comments; PUBLIC may connect to it already. "
    "Remove the line, or keep production-only statements in a file the set does not list")


def refuse_cluster_statements(path: Path, text: str, superuser: str,
                              hazards: dict[str, str] | None = None) -> None:
    """Refuse, before anything runs, statements that act on the cluster or the server's host
    rather than on the scratch database (see README "What a build may not do").

    ``hazards`` (function name -> what it does), shared across a build's files, holds the
    functions whose bodies would be refused: defining one is fine, calling it in the build
    (SELECT f(), a trigger, a DO block) is refused like the statement in its body."""
    hazards = {} if hazards is None else hazards
    for piece in pieces(text):
        statement = piece.statement
        if piece.head[0] == "create" and (piece.head[1] in ("function", "procedure") or (
                piece.head[1] == "or" and _DEFINES_FUNCTION.search(piece.lower))):
            _note_hazard(path, piece, superuser, hazards)
            continue
        reason = _hazard_call(piece, hazards) if hazards else None
        if reason is None and _may_act_on_cluster(piece):
            reason = _cluster_reason(piece.toks, superuser)
        if reason is not None:
            tok, why = reason
            line = statement.start_line + statement.text.count("\n", 0, tok.start)
            first = statement.text.splitlines()[0].strip()
            raise SchemaFileError(
                f"{path}:{line}: refused before the build ran: {first[:80]}\n  {why}")


_DEFINES_FUNCTION = re.compile(r"\bcreate\s+or\s+replace\s+(function|procedure)\b")
# What a function body must mention to be worth tokenizing (most bodies mention none).
_BODY_HINT = re.compile(r"\bprogram\b|\bcopy\b|\b(alter|create|drop)\s+(system|database|"
                        r"tablespace|role|user|group)\b|\b(reassign|drop)\s+owned\b")


def _note_hazard(path: Path, piece: Piece, superuser: str, hazards: dict[str, str]) -> None:
    lower = piece.lower
    if not (_HOST_CALL.search(lower) or _BODY_HINT.search(lower)
            or (hazards and any(n in lower for n in hazards))):
        return
    toks = piece.toks
    at = next((i for i, t in enumerate(toks) if t.is_word("function", "procedure")), -1)
    paren = next((i for i in range(at + 1, len(toks)) if toks[i].value == "("), -1)
    if at < 0 or paren <= at + 1 or toks[paren - 1].name is None:
        return
    name = toks[paren - 1].value
    for tok in toks[paren:]:
        if tok.kind not in ("body", "string") or tok.depth:
            continue
        found = _block_reason(tok, superuser, 0) or _hazard_call_in(tokens(tok.value), hazards)
        if found is not None:
            line = piece.statement.start_line + piece.statement.text.count("\n", 0, tok.start)
            hazards[name] = (f"It calls {name}() (defined at {path}:{line}), whose body does "
                             f"what a build may not: {found[1]}")
            return


def _hazard_call(piece: Piece, hazards: dict[str, str]) -> tuple[Token, str] | None:
    if piece.head[0] in _DECLARING or not any(n in piece.lower for n in hazards):
        return None
    found = _hazard_call_in(piece.toks, hazards)
    if found is not None:
        return found
    for tok in piece.toks:  # a DO block's body, or EXECUTE 'SELECT f()' in one
        if tok.kind in ("body", "string"):
            inner = _hazard_call_in(tokens(tok.value), hazards)
            if inner is not None:
                return tok, inner[1]
    return None


def _hazard_call_in(toks: list[Token], hazards: dict[str, str]) -> tuple[Token, str] | None:
    for i, tok in enumerate(toks[:-1]):
        if tok.name in hazards and toks[i + 1].value == "(":
            return tok, hazards[tok.value]
    return None


_HOST_CALL = re.compile("|".join(sorted(_HOST_FUNCTIONS)))


def _may_act_on_cluster(piece: Piece) -> bool:
    """Cheap test on a statement's first words and text: only the statements that may be
    refused are tokenized (a dump is mostly tables, functions and indexes)."""
    first, second, _ = piece.head
    if first in ("copy", "do", "reassign") or _HOST_CALL.search(piece.lower):
        return True
    if first in ("alter", "create", "drop") and second in (
            "system", "database", "tablespace", "role", "user", "group", "owned"):
        return True
    if first in ("grant", "revoke", "comment", "security"):
        return "database" in piece.lower or "tablespace" in piece.lower
    return first in ("create", "alter", "import") and second in ("foreign", "server") and (
        "program" in piece.lower or "filename" in piece.lower)  # file_fdw's options


def _cluster_reason(toks: list[Token], superuser: str, depth: int = 0) -> tuple[Token, str] | None:
    if not toks:
        return None
    head = toks[0]
    shared = ("Test builds share the cluster with other projects and sessions; remove the "
              "line from the files the set lists.")
    if words_at(toks, 0, "alter", "system"):
        return head, f"ALTER SYSTEM changes the server's configuration for every database. {shared}"
    for verb in ("create", "drop", "alter"):
        if words_at(toks, 0, verb, "database"):
            if verb == "alter":
                return head, (f"ALTER DATABASE changes a database by name, not the test "
                              f"database. {_PORTABLE_DATABASE}.")
            return head, (f"{verb.upper()} DATABASE creates or removes a whole database of "
                          f"the cluster. {shared}")
        if words_at(toks, 0, verb, "tablespace"):
            return head, f"{verb.upper()} TABLESPACE changes the server's disk layout. {shared}"
    if head.value in ("grant", "revoke", "comment", "security"):
        on = find_word(toks, "on")
        named = toks[on + 2] if on >= 0 and on + 2 < len(toks) else None
        if (on >= 0 and words_at(toks, on + 1, "database") and named is not None
                and not named.is_word("current_database") and named.value != "%"):
            portable = (
                "COMMENT ON DATABASE CURRENT_DATABASE IS '...'" if head.is_word("comment")
                else "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO app_user', "
                     "current_database()); END $$;")
            return toks[on], (f"{head.value.upper()} ... ON DATABASE {named.value} names a "
                              f"database (production's), not the test database. "
                              f"{_PORTABLE_DATABASE}; or name no database: {portable}")
        if on >= 0 and words_at(toks, on + 1, "tablespace"):
            return toks[on], f"It changes a tablespace, which belongs to the cluster. {shared}"
    own = {superuser, "current_user", "session_user", "current_role"}
    if (head.value in ("alter", "drop") and len(toks) > 2
            and toks[1].value in ("role", "user", "group")
            and not words_at(toks, 1, "user", "mapping")):
        targets = toks[2:]
        if words_at(targets, 0, "if", "exists"):
            targets = targets[2:]
        names = {t.value for t in targets[:1]} if head.value == "alter" else {
            t.value for t in targets if t.kind in ("word", "ident")}
        if names & (own | {"all"}):
            return head, (f"It changes the role the plugin builds with ({superuser}), which "
                          f"every later build of every project on this cluster uses. Remove "
                          f"the line; to give a production role settings, name that role.")
    if (words_at(toks, 0, "reassign", "owned") or words_at(toks, 0, "drop", "owned")):
        by = find_word(toks, "by")
        if by >= 0 and any(t.value in own for t in toks[by + 1:] if t.kind in ("word", "ident")):
            return head, (f"It acts on everything the plugin's own role ({superuser}) owns. "
                          f"Name the production role instead.")
    if head.value in ("create", "alter", "import") and any(
            t.is_word("foreign", "server") for t in toks[1:3]):
        for i, tok in enumerate(toks[:-1]):
            if tok.is_word("program", "filename") and tok.depth and toks[i + 1].kind == "string":
                return tok, (
                    f"The foreign-data option {tok.value} (file_fdw) "
                    + ("runs a shell command on the database server, like COPY ... PROGRAM "
                       "and \\! in psql." if tok.value == "program" else
                       "reads a file on the database server, like COPY with a file name.")
                    + " Keep such tables out of the files the set lists.")
    if head.is_word("copy"):
        for i, tok in enumerate(toks):
            if tok.depth == 0 and tok.value in ("from", "to") and tok.kind == "word":
                nxt = toks[i + 1] if i + 1 < len(toks) else None
                if nxt is not None and nxt.is_word("program"):
                    return nxt, ("COPY ... PROGRAM runs a shell command on the database "
                                 "server (like \\! in psql, which is refused too).")
                if nxt is not None and nxt.kind == "string":
                    return nxt, ("COPY with a file name reads or writes a file on the database "
                                 "server. Put the rows in the file (COPY ... FROM stdin, as "
                                 "pg_dump writes them) instead.")
                break
    if head.value not in _DECLARING and not (
            head.is_word("create") and any(t.value in ("function", "procedure", "aggregate")
                                           for t in toks[1:4])):
        call = _host_call(toks)
        if call is not None:
            return call
    if head.is_word("do") and depth < 3:
        for tok in toks[1:]:
            if tok.kind in ("body", "string"):
                found = _block_reason(tok, superuser, depth)
                if found is not None:
                    return found
    return None


def _block_reason(body: Token, superuser: str, depth: int) -> tuple[Token, str] | None:
    """A DO block runs during the build: look at each statement-like piece of its body and at
    the SQL in its string literals (EXECUTE '...')."""
    inner = tokens(body.value)
    pieces: list[list[Token]] = [[]]
    for tok in inner:
        if tok.kind == "punct" and tok.value == ";":
            pieces.append([])
        elif tok.is_word("begin", "then", "else", "loop", "execute", "perform") and not pieces[-1]:
            continue
        else:
            pieces[-1].append(tok)
    for piece in pieces:
        for start in range(len(piece)):
            if start and not piece[start - 1].is_word("then", "else", "loop", "begin",
                                                      "execute", "perform"):
                continue
            found = _cluster_reason(piece[start:], superuser, depth + 1)
            if found is not None:
                return body, found[1]
        for tok in piece:
            if tok.kind == "string":
                for statement in split_statements(tok.value):
                    found = _cluster_reason(tokens(statement.text), superuser, depth + 1)
                    if found is not None:
                        return body, found[1]
    call = _host_call(inner)  # anywhere in the block (SELECT lo_import(...) INTO x;)
    return (body, call[1]) if call is not None else None


# A name in these places followed by '(' is a table's or a type's, not a call.
_NOT_A_CALL_AFTER = frozenset({"table", "into", "references", "on", "index", "view", "type",
                               "exists", "function", "procedure", "only"})


def _host_call(toks: list[Token]) -> tuple[Token, str] | None:
    for i, tok in enumerate(toks):
        if (tok.kind == "word" and tok.value in _HOST_FUNCTIONS and i + 1 < len(toks)
                and toks[i + 1].value == "("
                and not (i and toks[i - 1].kind == "word"
                         and toks[i - 1].value in _NOT_A_CALL_AFTER)):
            return tok, f"{tok.value}() is refused: {_HOST_FUNCTIONS[tok.value]}."
    return None


@dataclass(frozen=True)
class InstallTarget:
    server: ServerInfo
    dbname: str
    psql: Path


def describe_failure(path: Path, text: str, line: int, stderr_lines: list[str], major: int,
                     *, set_name: str, origin: str, secrets: tuple[str, ...] = (),
                     action: str | None = None, target: InstallTarget | None = None) -> str:
    message = "\n".join(f"    {ln}" for ln in stderr_lines if ln.strip())
    statement = statement_at_line(text, line)
    action = action or f"Installing schema set {set_name!r}"
    # psql names the line where the statement was sent (its end); the server's "LINE n:"
    # counts from the statement's first line, which pins the failing line itself.
    server_line = next((int(m[1]) for ln in stderr_lines if (m := _SERVER_LINE.match(ln))), None)
    if statement is not None and server_line is not None:
        exact = statement.start_line + server_line - 1
        if statement.start_line <= exact <= statement.end_line:
            line = exact
    parts = [
        f"{action} failed at {path}:{line} (named at {origin}).",
        "  PostgreSQL said:",
        message,
    ]
    if statement is not None:
        shown = statement.text.splitlines()
        if len(shown) > 15:
            shown = [*shown[:12], f"... ({len(shown) - 12} more lines)"]
        parts.append(f"  The statement (lines {statement.start_line}-{statement.end_line}):")
        parts.extend(f"    {ln}" for ln in shown)
    joined = "\n".join(stderr_lines)
    newer = _newer_dump_hint(text, joined, major, path, line)
    if newer is not None:
        parts.append(newer)
        return mask_secrets("\n".join(parts), secrets)
    for pattern in _MISSING_EXT:
        match = pattern.search(joined)
        if match:
            parts.append(_extension_hint(match["name"], major, target))
            break
    else:
        parts.append("  Fix the file and run again."
                     + ("" if action.startswith("Migration") else
                        " The template is rebuilt when a file changes."))
    return mask_secrets("\n".join(parts), secrets)


def _extension_hint(ext: str, major: int, target: InstallTarget | None) -> str:
    """Where to get a missing extension: from the test server's own origin."""
    package = EXTENSION_PACKAGES.get(ext, CONTRIB_HINT).format(major=major)
    debian = (f"the package that provides it: {package} (Debian: `apt-get install "
              f"{package.split(' ')[0]}`)")
    missing = f"  The extension {ext!r} is not installed on this PostgreSQL {major} server."
    if target is not None and target.server.kind is ServerKind.EXISTING:
        return (f"{missing} Install {debian} on the host of the server named by "
                f"--schemasync-server-url, or test on another server.")
    wheel = wheel_of(target.psql.parent) if target is not None else None
    if wheel is not None:
        dist, _, lacks = wheel
        return (f"{missing} It runs from the `{dist}` wheel ({lacks}). Test on a PostgreSQL "
                f"that has the extension: install {debian} and select it with "
                f"--schemasync-pg-version / --schemasync-pg-bindir.")
    return f"{missing} Install {debian}."


def _newer_dump_hint(text: str, stderr: str, major: int, path: Path, line: int) -> str | None:
    """For a SET of a setting this server lacks in a file pg_dump wrote: the file comes from
    a newer pg_dump (e.g. ``SET transaction_timeout = 0`` from pg_dump 17 on PostgreSQL 15)."""
    unknown = _UNKNOWN_SETTING.search(stderr)
    statement = statement_at_line(text, line)
    if unknown is None or statement is None or not re.match(
            r"\s*(SET|SELECT pg_catalog\.set_config)\b", statement.text, re.IGNORECASE):
        return None
    name = unknown["name"]
    dumped = _DUMPED_BY.search(text)
    newer = int(dumped["major"]) if dumped else DUMP_SETTINGS_SINCE.get(name)
    if newer is None or newer <= major:
        return None
    source = _DUMPED_FROM.search(text)
    if source is not None and int(source["major"]) <= major:
        # A newer pg_dump of a database this server's major can hold: the line is the trouble.
        return (
            f"  This file was dumped by pg_dump {newer} from a PostgreSQL {source['major']} "
            f"database; pg_dump {newer} writes settings PostgreSQL {major} does not know "
            f"({name!r}). Fix: delete the line ({path}:{line}), or dump with pg_dump {major}."
        )
    return (
        f"  This file was dumped by a newer pg_dump ({newer}) than this PostgreSQL {major} "
        f"server: PostgreSQL {major} does not know the setting {name!r}. Fix: delete the line "
        f"({path}:{line}), or run the tests on PostgreSQL {newer} (point "
        f"--schemasync-pg-bindir at its bin directory, e.g. /usr/lib/postgresql/{newer}/bin), "
        f"or dump with pg_dump {major}."
    )


Progress = Callable[[int, int, int, int], None]  # bytes done, of, lines done, of


def _feed(args: list[str], script: str, env: dict[str, str], progress: Progress) -> tuple[int, str]:
    """Run psql on ``script`` through a small pipe, reporting how far it has read: what we
    have written is what psql has read, give or take the pipe's and its own 4 kB buffers."""
    data = script.encode()
    total, lines = len(data), data.count(b"\n")
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stderr is not None
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()),  # type: ignore[union-attr]
                              name="schemasync-psql-stderr", daemon=True)
    reader.start()
    fd = proc.stdin.fileno()
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)
    done, line = 0, 0
    try:
        while done < total:
            wrote = os.write(fd, data[done:done + _CHUNK])
            line += data.count(b"\n", done, done + wrote)
            done += wrote
            progress(done, total, line, lines)
    except BrokenPipeError:
        pass  # psql stopped (ON_ERROR_STOP): its stderr says why
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    code = proc.wait()
    reader.join()
    return code, b"".join(errors).decode("utf-8", "replace")


_CHUNK = 4096


def run_sql(target: InstallTarget, path: Path, text: str, *, set_name: str, origin: str,
            single_transaction: bool = False, prelude: str = "", epilogue: str = "",
            action: str | None = None, shown: str | None = None,
            progress: Progress | None = None) -> None:
    """Feed ``text`` to psql on stdin (restrict lines blanked, line numbers kept); errors
    quote ``shown`` (the file as written, when ``text`` is a rewrite with the same lines)."""
    # A BOM is only harmless at the very start of psql's input; a prelude would move it.
    script = prelude + blank_restrict_lines(text).removeprefix("\ufeff") + "\n" + epilogue
    text = shown if shown is not None else text
    offset = prelude.count("\n")
    env = target.server.client_env(target.dbname, "-c client_min_messages=warning")
    args = [str(target.psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]
    if single_transaction:
        args.insert(1, "--single-transaction")
    if progress is None:
        result = subprocess.run(args, input=script, capture_output=True, text=True, env=env)
        code, stderr = result.returncode, result.stderr
    else:
        code, stderr = _feed(args, script, env, progress)
    if code == 0:
        return
    lines = stderr.splitlines()
    secrets = (target.server.password or "",)
    for index, raw in enumerate(lines):
        match = _PSQL_ERROR.match(raw)
        if match:
            # A last statement without ';' runs at end of input: psql then reports a line
            # past the file (our epilogue's); it belongs to the file's last line.
            line = min(int(match["line"]) - offset, text.rstrip("\n").count("\n") + 1)
            detail = [f"{match['level']}:  {match['msg']}", *lines[index + 1:]]
            missing = any(p.search("\n".join(detail)) for p in _MISSING_EXT)
            raise (ExtensionMissingError if missing else SchemaInstallError)(describe_failure(
                path, text, line, detail, target.server.major,
                set_name=set_name, origin=origin, secrets=secrets, action=action,
                target=target))
    raise SchemaInstallError(mask_secrets(
        f"psql failed while installing {path} into scratch database {target.dbname} "
        f"(exit {code}):\n{stderr.strip()}", secrets))
