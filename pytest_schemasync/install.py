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

from .errors import SchemaFileError, SchemaInstallError
from .masking import mask_secrets
from .server import ServerInfo
from .sqltext import blank_restrict_lines, meta_commands, statement_at_line

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
        if meta.name not in ALLOWED_META:
            reason = _META_REASONS.get(meta.name, "only psql's printing and variable commands "
                                                  "are allowed in schema files")
            raise SchemaFileError(
                f"{path}:{meta.line}: psql meta-command \\{meta.name} is refused: {reason}. "
                f"Schema files must not run shell commands or leave the scratch database; "
                f"remove the line."
            )
    return text


@dataclass(frozen=True)
class InstallTarget:
    server: ServerInfo
    dbname: str
    psql: Path


def describe_failure(path: Path, text: str, line: int, stderr_lines: list[str], major: int,
                     *, set_name: str, origin: str, secrets: tuple[str, ...] = (),
                     action: str | None = None) -> str:
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
    for pattern in _MISSING_EXT:
        match = pattern.search(joined)
        if match:
            ext = match["name"]
            package = EXTENSION_PACKAGES.get(ext, CONTRIB_HINT).format(major=major)
            parts.append(
                f"  The extension {ext!r} is not installed on this PostgreSQL {major} server. "
                f"Install the package that provides it: {package} (Debian: `apt-get install "
                f"{package.split(' ')[0]}`), or run scripts/install-system-deps.sh."
            )
            break
    else:
        parts.append("  Fix the file and run again."
                     + ("" if action.startswith("Migration") else
                        " The template is rebuilt when a file changes."))
    return mask_secrets("\n".join(parts), secrets)


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
            action: str | None = None, progress: Progress | None = None) -> None:
    """Feed ``text`` to psql on stdin (restrict lines blanked, line numbers kept)."""
    # A BOM is only harmless at the very start of psql's input; a prelude would move it.
    script = prelude + blank_restrict_lines(text).removeprefix("\ufeff") + "\n" + epilogue
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
            raise SchemaInstallError(describe_failure(
                path, text, line, detail, target.server.major,
                set_name=set_name, origin=origin, secrets=secrets, action=action))
    raise SchemaInstallError(mask_secrets(
        f"psql failed while installing {path} into scratch database {target.dbname} "
        f"(exit {code}):\n{stderr.strip()}", secrets))
