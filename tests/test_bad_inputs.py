"""Bad inputs, one table: every case must fail cleanly through the entry point a user runs.

Each case sets up a project (and, where it matters, a stand-in production or an odd cache
directory), runs ``pytest`` (``runpytest_subprocess``) or the ``schemasync`` command
(``python -m pytest_schemasync.cli``, cwd = the project) and requires:

- the expected exit status, and an error that says what went wrong, where (file:line for SQL)
  and what to do (the case's substrings);
- no Python traceback (``Traceback`` / ``INTERNALERROR`` absent);
- no secret: every URL carries the password ``Zq9-s3cret-XYZ``, which must appear neither in
  stdout/stderr nor in any file under the project or the cache directory;
- no change: the project's files are byte-identical before and after, and the stand-in
  servers' databases, objects and rows are unchanged.

Cases that expose a bug are kept with the right expectation and marked ``xfail(strict=True)``
naming the code at fault, so they start passing (and the mark must go) once it is fixed.

One stand-in production (plain, and one with SSL only when a case asks for it) and one cache
directory are shared per module, i.e. per xdist worker: the embedded cluster's ``initdb`` is
paid once per worker; each case's own databases and files are new.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    SIMPLE_SCHEMA,
    kill_and_wait,
    make_project,
    output_of,
    postmaster_pids,
    run_inner,
    run_schemasync,
    scratch_cache_dir,
)
from psycopg import sql

from pytest_schemasync.binaries import find_binaries
from pytest_schemasync.errors import ConfigError, DriftError, ProductionError
from pytest_schemasync.standin import OWNER, READER, StandinProduction

SECRET = "Zq9-s3cret-XYZ"  # the stand-ins' password, and in every URL a case passes
WRONG_PASSWORD = SECRET + "-wrong"  # contains SECRET, so the same scan covers it
ENV = "MAIN_PRODUCTION_URL"
USAGE, UNREACHABLE, DRIFT = ConfigError.exit_code, ProductionError.exit_code, DriftError.exit_code
TESTS_FAILED = int(pytest.ExitCode.TESTS_FAILED)
assert (USAGE, UNREACHABLE, DRIFT, TESTS_FAILED) == (4, 11, 10, 1)
CLI_TIMEOUT = 120
# Written by pytester or by pytest itself, not by the code under test.
RUNNER_FILES = ("stdout", "stderr")
RUNNER_DIRS = ("__pycache__",)


# --- shared servers and cache (one per module, i.e. per xdist worker) ------------------------


class Standins:
    """The stand-in productions, started on first use and stopped with the module."""

    def __init__(self) -> None:
        self._started: dict[str, StandinProduction] = {}

    def _get(self, kind: str) -> StandinProduction:
        if kind not in self._started:
            if kind == "ssl" and not shutil.which("openssl"):
                pytest.skip("openssl is needed for the SSL stand-in")
            standin = StandinProduction(ssl=kind == "ssl", password=SECRET)
            standin.start()
            self._started[kind] = standin
        return self._started[kind]

    @property
    def plain(self) -> StandinProduction:
        return self._get("plain")

    @property
    def ssl(self) -> StandinProduction:
        return self._get("ssl")

    def stop(self) -> None:
        for standin in self._started.values():
            standin.stop()


@pytest.fixture(scope="module")
def standins() -> Iterator[Standins]:
    holder = Standins()
    try:
        yield holder
    finally:
        holder.stop()


@pytest.fixture(scope="module")
def shared_cache() -> Iterator[Path]:
    """conftest's ``cache_dir``, kept for the module: each case still starts and stops the
    embedded server itself, but ``initdb`` runs once per worker."""
    with scratch_cache_dir("schemasync-bad-") as path:
        yield path


# --- what a case gets ------------------------------------------------------------------------


@dataclass
class Ctx:
    pytester: pytest.Pytester
    standins: Standins
    cache: Path  # --schemasync-cache-dir for this case (the shared one unless setup changes it)
    own_cache: Path  # conftest's cache_dir: a fresh place under /dev/shm for odd caches
    tmp: Path  # outside the project: stand-in schema files, fake bin directories
    env: dict[str, str] = field(default_factory=dict)
    vars: dict[str, str] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    used: dict[str, StandinProduction] = field(default_factory=dict)  # stand-ins to compare

    @property
    def prod(self) -> StandinProduction:
        self.used["plain"] = self.standins.plain
        return self.used["plain"]

    @property
    def ssl_prod(self) -> StandinProduction:
        self.used["ssl"] = self.standins.ssl
        return self.used["ssl"]

    @property
    def root(self) -> Path:
        return self.pytester.path

    def project(self, contents: dict[str, str | bytes], **set_keys: Any) -> None:
        """Files with ``contents``, one set ``main`` with ``set_keys``, and a test that would
        use it."""
        make_project(self.pytester, sets={"main": set_keys}, files=contents)
        self.pytester.makepyfile(test_x="def test_x(db):\n    pass\n")

    def config_line(self, needle: str) -> str:
        lines = (self.root / "pyproject.toml").read_text().splitlines()
        numbers = [n for n, line in enumerate(lines, 1) if needle in line]
        assert len(numbers) == 1, (needle, lines)
        return f"pyproject.toml:{numbers[0]}"

    def production_db(self, standin: StandinProduction, schema: str = SIMPLE_SCHEMA) -> str:
        """A new database on the stand-in with ``schema`` installed; its name."""
        name = f"prod_{uuid.uuid4().hex[:10]}"
        path = self.tmp / f"{name}.sql"
        path.write_text(schema, encoding="utf-8")
        standin.create_database(name, [path])
        return name

    def mount_tmpfs(self, target: Path, options: str) -> bool:
        """Mount a tmpfs (we are root); False where this sandbox does not permit it."""
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return False

        def unmount() -> None:
            for pid in postmaster_pids(target):
                kill_and_wait(pid, signal.SIGQUIT)
            if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], capture_output=True)

        self.cleanups.append(unmount)
        return True


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- setups ----------------------------------------------------------------------------------

SCHEMA = "db/schema.sql"


def schema_file(content: str | bytes | None) -> Callable[[Ctx], None]:
    """A project whose one schema file holds ``content`` (None: the file is missing)."""

    def setup(ctx: Ctx) -> None:
        files: dict[str, str | bytes] = {"db/good.sql": "CREATE TABLE good (id int);\n"}
        if content is not None:
            files[SCHEMA] = content
        ctx.project(files, files=["db/good.sql", SCHEMA])
        ctx.vars["origin"] = ctx.config_line(SCHEMA)

    return setup


def schema_directory(ctx: Ctx) -> None:
    (ctx.root / SCHEMA).mkdir(parents=True)
    schema_file(None)(ctx)


def default_set_unknown(ctx: Ctx) -> None:
    make_project(ctx.pytester, tool={"default-set": "nosuch"},
                 sets={"main": {"files": [SCHEMA]}}, files={SCHEMA: SIMPLE_SCHEMA})
    ctx.pytester.makepyfile(test_x="def test_x(db):\n    pass\n")


def marker_test(test_source: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        ctx.project({SCHEMA: SIMPLE_SCHEMA}, files=[SCHEMA])
        ctx.pytester.makepyfile(test_x="import pytest\n\n" + test_source)

    return setup


def duplicate_set(ctx: Ctx) -> None:
    text = ("[tool.pytest.ini_options]\n"                 # 1
            "\n"                                          # 2
            "[tool.schemasync]\n"                         # 3
            "\n"                                          # 4
            "[tool.schemasync.sets.main]\n"               # 5
            f'files = ["{SCHEMA}"]\n'                     # 6
            "\n"                                          # 7
            "[tool.schemasync.sets.main]\n"               # 8
            'files = ["db/other.sql"]\n')                 # 9
    make_project(ctx.pytester, pyproject=text,
                 files={SCHEMA: SIMPLE_SCHEMA, "db/other.sql": SIMPLE_SCHEMA})
    ctx.pytester.makepyfile(test_x="def test_x(db):\n    pass\n")


def migrations(names: dict[str, str]) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        files: dict[str, str | bytes] = {SCHEMA: SIMPLE_SCHEMA}
        files.update({f"mig/{name}": text for name, text in names.items()})
        ctx.project(files, files=[SCHEMA], migrations="mig")
        prod = ctx.prod
        ctx.vars["owner_url"] = prod.url(ctx.production_db(prod), OWNER)

    return setup


def production(kind: str) -> Callable[[Ctx], None]:
    """A set whose production (in $MAIN_PRODUCTION_URL) cannot be reached in some way."""

    def setup(ctx: Ctx) -> None:
        ctx.project({SCHEMA: SIMPLE_SCHEMA}, files=[SCHEMA], **{"production-url-env": ENV})
        if kind == "closed-port":
            url = f"postgresql://{READER}:{SECRET}@127.0.0.1:{_closed_port()}/app?sslmode=disable"
        elif kind == "hostssl-client-disable":
            url = ctx.ssl_prod.url("postgres", sslmode="disable")
        else:
            prod = ctx.prod
            db = ctx.production_db(prod)
            url = {
                "wrong-password": prod.url(db).replace(f":{SECRET}@", f":{WRONG_PASSWORD}@"),
                "missing-database": prod.url("nosuchdb"),
                "server-without-ssl": prod.url(db, sslmode="require"),
                "same-server": prod.url(db),
            }[kind]
            ctx.vars["scratch_url"] = prod.url("postgres", OWNER)
        assert SECRET in url
        ctx.env[ENV] = url

    return setup


def linked_bindir(bindir: Path) -> Path:
    """A bin directory holding links to the real server tools and psql."""
    real = find_binaries(None)
    bindir.mkdir(parents=True)
    for tool in ("initdb", "pg_ctl", "postgres", "psql"):
        (bindir / tool).symlink_to(real.bindir / tool)
    return bindir


def old_pg_dump(ctx: Ctx) -> None:
    """A bin directory whose pg_dump is 12 (it answers ``--version`` like pg_dump 12 does)
    while the server is newer; the server tools are the real ones, linked. It lives where the
    unprivileged server user can reach it (conftest's cache_dir parent, mode 0755)."""
    bindir = linked_bindir(ctx.own_cache.parent / "bin")
    fake = bindir / "pg_dump"
    fake.write_text('#!/bin/sh\n'
                    'if [ "$1" = "--version" ]; then\n'
                    '    echo "pg_dump (PostgreSQL) 12.22"; exit 0\n'
                    'fi\n'
                    'echo "pg_dump 12: server version mismatch" >&2\n'
                    'exit 1\n')
    fake.chmod(0o755)
    prod = ctx.prod
    ctx.project({SCHEMA: SIMPLE_SCHEMA}, files=[SCHEMA], **{"production-url-env": ENV})
    ctx.env[ENV] = prod.url(ctx.production_db(prod))
    ctx.vars.update(bindir=str(bindir), major=str(prod.info("postgres").major))


def bindir_unreachable(ctx: Ctx) -> None:
    """A pinned bin directory root can use but the unprivileged server user cannot enter (a
    0700 parent), as a PostgreSQL built under /root would be."""
    if os.geteuid() != 0:
        pytest.skip("only root runs the embedded server as another user")
    plain_project(ctx)
    private = ctx.tmp / "private"
    private.mkdir(mode=0o700)
    ctx.vars["bindir"] = str(linked_bindir(private / "bin"))


def server_url_closed_port(ctx: Ctx) -> None:
    ctx.project({SCHEMA: SIMPLE_SCHEMA}, files=[SCHEMA])
    ctx.vars["port"] = str(_closed_port())


def plain_project(ctx: Ctx) -> None:
    ctx.project({SCHEMA: SIMPLE_SCHEMA}, files=[SCHEMA])


def edited_migration(ctx: Ctx) -> None:
    """Migration 001 applied to a stand-in database, then its file edited."""
    migrations({"001_first.sql": "CREATE TABLE first (id int);\n"})(ctx)
    done = subprocess.run([sys.executable, "-m", "pytest_schemasync.cli", "migrate",
                           ctx.vars["owner_url"]], cwd=ctx.root, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    path = ctx.root / "mig" / "001_first.sql"
    ctx.vars["applied_sum"] = _sha256(path)
    path.write_text("CREATE TABLE first (id int, note text);\n")
    ctx.vars["local_sum"] = _sha256(path)


def status_project(ctx: Ctx) -> None:
    ctx.project({SCHEMA: SIMPLE_SCHEMA, "mig/001_first.sql": "CREATE TABLE f (id int);\n"},
                files=[SCHEMA], migrations="mig")


# The cache directory. We are root, for whom chmod 0555 stops nothing, so read-only is made
# real with a read-only tmpfs mount (EROFS applies to root too). Where mount is not permitted,
# /proc/1 stands in: an existing directory in which root cannot create anything.


def cache_read_only(inside: bool) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        plain_project(ctx)
        target = ctx.own_cache
        if not ctx.mount_tmpfs(target, "ro,size=1m"):
            target = Path("/proc/1")
        ctx.cache = target / "cache" if inside else target

    return setup


def cache_parent_is_file(ctx: Ctx) -> None:
    """A regular file where the cache directory's parent should be (ENOTDIR even for root)."""
    plain_project(ctx)
    ctx.own_cache.parent.mkdir(parents=True, exist_ok=True)
    ctx.own_cache.write_text("not a directory\n")
    ctx.cache = ctx.own_cache / "cache"


def cache_of_another_user(ctx: Ctx) -> None:
    """A cache directory someone else made (e.g. planted in the shared /dev/shm)."""
    plain_project(ctx)
    ctx.own_cache.mkdir(parents=True)
    (ctx.own_cache / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    nobody = pwd.getpwnam("nobody")
    os.chown(ctx.own_cache, nobody.pw_uid, nobody.pw_gid)
    ctx.cache = ctx.own_cache


def cache_full(ctx: Ctx) -> None:
    """A 1 MB tmpfs: initdb needs tens of megabytes, so it meets ENOSPC for real."""
    plain_project(ctx)
    if not ctx.mount_tmpfs(ctx.own_cache, "size=1m,mode=0755"):
        pytest.skip("mount -t tmpfs is not permitted here; no honest full-disk simulation")
    ctx.cache = ctx.own_cache


# --- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Ctx], None]
    command: tuple[str, ...]  # "pytest" or "schemasync", then arguments; {placeholders}
    exit_code: int
    expect: tuple[str, ...]  # substrings of stdout+stderr; {placeholders}
    xfail: str | None = None


def pytest_run(*args: str) -> tuple[str, ...]:
    return ("pytest", *args)


def cli(*args: str) -> tuple[str, ...]:
    return ("schemasync", "--schemasync-cache-dir={cache}", *args)


CHECK = ("--schema-check", "--schemasync-connect-timeout=3")
CANNOT_REACH = f"Cannot reach production at postgresql://{READER}:****@127.0.0.1:"
FILE = "{root}/" + SCHEMA

CASES = [
    Case("sql-syntax-error", schema_file("CREATE TABLE a (id int);\nCREATE TABLE b (id int,,);\n"),
         pytest_run(), USAGE,
         (f"Installing schema set 'main' failed at {FILE}:2 (named at {{origin}})",
          'ERROR:  syntax error at or near ","', "The statement (lines 2-2):",
          "CREATE TABLE b (id int,,);", "Fix the file and run again")),
    Case("sql-error-inside-multiline-statement",
         schema_file("CREATE TABLE a (id int);\nCREATE TABLE b (\n    id int,\n"
                     "    owner nosuchtype,\n    name text\n);\n"),
         pytest_run(), USAGE,
         (f"failed at {FILE}:4 ", 'type "nosuchtype" does not exist', "The statement (lines 2-6)")),
    Case("schema-file-missing", schema_file(None), pytest_run(), USAGE,
         (f"Schema file {FILE} does not exist (named at {{origin}})", "fix the path")),
    Case("schema-file-empty", schema_file("\n  \n"), pytest_run(), USAGE,
         (f"Schema file {FILE} is empty (named at {{origin}})", "restore it, or remove it")),
    Case("schema-file-not-utf8", schema_file(b"CREATE TABLE t (id int);\n-- caf\xe9\n"),
         pytest_run(), USAGE,
         (f"{FILE}:2: not valid UTF-8 (byte 0xe9)", "Re-save the file as UTF-8")),
    Case("schema-file-is-a-directory", schema_directory, pytest_run(), USAGE,
         (f"{FILE} is a directory, not an SQL file (named at {{origin}})",
          "List the files in it one by one")),
    Case("default-set-unknown", default_set_unknown, pytest_run(), USAGE,
         ("The default schema set 'nosuch' is not configured (sets: main)",
          "Fix default-set / --schemasync-default-set")),
    Case("marker-set-unknown",
         marker_test('@pytest.mark.schemasync("nosuch")\ndef test_marked(db):\n    pass\n'),
         pytest_run(), TESTS_FAILED,
         ("Unknown schema set 'nosuch' (configured sets: main)",
          "[tool.schemasync.sets.nosuch]", "test_x.py::test_marked")),
    Case("duplicate-set-names-in-toml", duplicate_set, pytest_run(), USAGE,
         ("{root}/pyproject.toml", "Cannot declare ('tool', 'schemasync', 'sets', 'main') twice",
          "line 8")),
    Case("marker-unknown-argument",
         marker_test('@pytest.mark.schemasync("main", colour="red")\n'
                     "def test_marked(db):\n    pass\n"),
         pytest_run(), TESTS_FAILED,
         ("@pytest.mark.schemasync got unknown argument(s) ['colour']", "before='NNN'",
          "test_x.py::test_marked")),
    Case("migration-duplicate-version",
         migrations({"001_first.sql": "SELECT 1;\n", "001_second.sql": "SELECT 2;\n"}),
         pytest_run(), USAGE,
         ("Two migrations share version 001: 001_first.sql and 001_second.sql in {root}/mig",
          "Give one of them the next free number")),
    Case("migration-bad-name",
         migrations({"001_first.sql": "SELECT 1;\n", "add-thing.sql": "SELECT 2;\n"}),
         cli("migrate", "{owner_url}"), USAGE,
         ("{root}/mig/add-thing.sql: migration files must be named NNN_description.sql",
          "Rename it")),
    Case("production-closed-port", production("closed-port"), pytest_run(*CHECK), UNREACHABLE,
         (CANNOT_REACH, f"(from env {ENV})", "the server is unreachable",
          "check host and port")),
    Case("production-wrong-password", production("wrong-password"),
         cli("--schemasync-connect-timeout=3", "check"), UNREACHABLE,
         (CANNOT_REACH, "the server refused the credentials (wrong user or password)",
          "check the user and password")),
    Case("production-missing-database", production("missing-database"), pytest_run(*CHECK),
         UNREACHABLE,
         (CANNOT_REACH, "database 'nosuchdb' does not exist on that server",
          "check the database name")),
    Case("production-sslmode-require-server-without-ssl", production("server-without-ssl"),
         cli("--schemasync-connect-timeout=3", "check"), UNREACHABLE,
         (CANNOT_REACH, "the SSL negotiation failed", "server does not support SSL",
          "check sslmode")),
    Case("production-hostssl-only-client-sslmode-disable", production("hostssl-client-disable"),
         pytest_run(*CHECK), UNREACHABLE,
         (CANNOT_REACH, "no encryption", "SSL", "sslmode=require")),
    Case("pg-dump-older-than-server", old_pg_dump,
         cli("--schemasync-pg-bindir={bindir}", "refresh", "--set", "main"), USAGE,
         ("No pg_dump of version {major} or newer", "12.22",
          "apt-get install postgresql-client-{major}")),
    Case("pg-bindir-unreachable-by-server-user", bindir_unreachable,
         pytest_run("--schemasync-pg-bindir={bindir}"), USAGE,
         ("initdb", "--schemasync-pg-bindir")),
    Case("no-postgresql-binaries", plain_project,
         pytest_run("--schemasync-pg-bindir=/nonexistent"), USAGE,
         ("/nonexistent lacks initdb, pg_ctl, postgres", "--schemasync-pg-bindir")),
    Case("missing-extension",
         schema_file("CREATE TABLE t (id int);\nCREATE EXTENSION nosuchext;\n"),
         pytest_run(), USAGE,
         (f"failed at {FILE}:2 (named at {{origin}})", "CREATE EXTENSION nosuchext;",
          "The extension 'nosuchext' is not installed on this PostgreSQL",
          "Install the package that provides it")),
    Case("meta-shell-command", schema_file("CREATE TABLE t (id int);\n\\! echo hi > pwned\n"),
         pytest_run(), USAGE,
         (f"{FILE}:2: psql meta-command \\! is refused: it runs a shell command",
          "remove the line")),
    Case("meta-connect", schema_file("SELECT 1;\nSELECT 2;\n\\connect other\nSELECT 3;\n"),
         pytest_run(), USAGE,
         (f"{FILE}:3: psql meta-command \\connect is refused: it connects to another database",
          "remove the line")),
    Case("meta-shell-after-separator",
         schema_file("CREATE TABLE t (id int);\n\\set x 1 \\\\ \\! echo hi > pwned\n"),
         pytest_run(), USAGE,
         (f"{FILE}:2: psql meta-command \\! is refused: it runs a shell command",)),
    Case("server-url-password-masked", server_url_closed_port,
         pytest_run(f"--schemasync-server-url=postgresql://{OWNER}:{SECRET}@127.0.0.1:{{port}}"
                    f"/postgres"), USAGE,
         (f"Cannot connect to the test server postgresql://{OWNER}:****@127.0.0.1:{{port}}/",
          "Connection refused", "--schemasync-server-url")),
    Case("production-is-the-scratch-server", production("same-server"),
         pytest_run(*CHECK, "--schemasync-server-url={scratch_url}"), USAGE,
         ("points at the same PostgreSQL server that holds the scratch test databases",
          f"postgresql://{READER}:****@127.0.0.1:")),
    Case("cache-dir-on-read-only-filesystem", cache_read_only(inside=False), pytest_run(), USAGE,
         ("{cache}", "--schemasync-cache-dir")),
    Case("cache-dir-inside-read-only-directory", cache_read_only(inside=True), pytest_run(),
         USAGE, ("Cannot create the cache directory {cache}", "--schemasync-cache-dir")),
    Case("cache-dir-of-another-user", cache_of_another_user, pytest_run(), USAGE,
         ("The cache directory {cache} belongs to another user", "--schemasync-cache-dir")),
    Case("cache-dir-parent-is-a-file", cache_parent_is_file, pytest_run(), USAGE,
         ("{cache}", "--schemasync-cache-dir")),
    Case("cache-dir-on-full-tmpfs", cache_full, pytest_run(), USAGE,
         ("No space left on device", "--schemasync-cache-dir")),
    Case("clone-strategy-invalid", plain_project,
         pytest_run("--schemasync-clone-strategy=turbo"), USAGE,
         ("must be auto, file_copy or wal_log, not 'turbo'", "--schemasync-clone-strategy")),
    Case("connect-timeout-not-an-integer", plain_project,
         pytest_run("--schemasync-connect-timeout=5s"), USAGE,
         ("--schemasync-connect-timeout: connect_timeout must be a whole number, not '5s'",)),
    Case("migrate-edited-applied-migration", edited_migration, cli("migrate", "{owner_url}"),
         USAGE,
         ("Migration checksum mismatch for version 001 (001_first.sql)",
          "applied to database : {applied_sum}", "resolved locally    : {local_sum}",
          "Revert the edit and put the change in a new migration")),
    Case("rollback-without-backups", plain_project, cli("rollback"), USAGE,
         ("No backups in {root}/backups", "--schemasync-backup-dir")),
    Case("status-unparseable-url", status_project,
         cli("status", f"postgresql://{READER}:{SECRET}@[::1/appdb"), USAGE,
         (f"Cannot parse the server URL 'postgresql://{READER}:****@[::1/appdb'",
          "Expected e.g. postgresql://user:password@host:5432/postgres")),
    Case("status-url-port-not-a-number", status_project,
         cli("status", f"postgresql://{READER}:{SECRET}@127.0.0.1:notaport/appdb"), USAGE,
         (f"postgresql://{READER}:****@127.0.0.1:notaport/appdb", "'notaport'",
          "Expected e.g. postgresql://user:password@host:5432/postgres")),
]


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


# --- checks ----------------------------------------------------------------------------------


def project_files(root: Path) -> dict[str, bytes | None]:
    """Every file and directory under the project (directories as None), minus what the test
    runner itself writes."""
    found: dict[str, bytes | None] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if d not in RUNNER_DIRS and not d.startswith("runpytest-")]
        for name in dirs:
            found[str((here / name).relative_to(root)) + "/"] = None
        for name in files:
            path = here / name
            if here == root and name in RUNNER_FILES:
                continue
            found[str(path.relative_to(root))] = (path.read_bytes() if not path.is_symlink()
                                                  else os.readlink(path).encode())
    return found


def files_holding(needle: bytes, *roots: Path) -> list[Path]:
    hits = []
    for root in roots:
        if not root.is_dir() or root.is_relative_to("/proc"):
            continue
        for folder, _, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                try:
                    if not path.is_symlink() and needle in path.read_bytes():
                        hits.append(path)
                except OSError:
                    continue
    return hits


_USER_OBJECTS = """
SELECT c.oid::regclass::text, c.relkind::text,
       coalesce(string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                           ORDER BY a.attnum), '')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
GROUP BY c.oid ORDER BY 1
"""
_FUNCTIONS = """
SELECT p.oid::regprocedure::text, md5(p.prosrc) FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
"""


def standin_state(standin: StandinProduction) -> dict[str, Any]:
    """Databases, roles, and per database its objects, columns, functions and table rows."""
    with standin.superuser_connect() as conn:
        databases = conn.execute("SELECT datname, datallowconn FROM pg_database ORDER BY 1"
                                 ).fetchall()
        roles = conn.execute("SELECT rolname FROM pg_roles ORDER BY 1").fetchall()
    state: dict[str, Any] = {"databases": [d for d, _ in databases], "roles": roles}
    for name, allowed in databases:
        if not allowed:
            continue
        with standin.superuser_connect(name) as conn:
            objects = conn.execute(_USER_OBJECTS).fetchall()
            rows = {}
            for relation, kind, _ in objects:
                if kind == "r":
                    rows[relation] = conn.execute(sql.SQL(
                        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY "
                        "t::text), '')) FROM {} t").format(sql.SQL(relation))).fetchone()
            state[name] = {"objects": objects, "functions": conn.execute(_FUNCTIONS).fetchall(),
                           "rows": rows}
    return state


def run_case(ctx: Ctx, command: list[str]) -> tuple[int, str]:
    program, *args = command
    if program == "pytest":
        result = run_inner(ctx.pytester, ctx.cache, *args, timeout=CLI_TIMEOUT)
        return int(result.ret), output_of(result)
    assert program == "schemasync", program
    done = run_schemasync(ctx.root, *args, timeout=CLI_TIMEOUT)
    return done.returncode, done.output


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)]
                 if c.xfail else []) for c in CASES])
def test_bad_input(case: Case, pytester: pytest.Pytester, standins: Standins,
                   shared_cache: Path, cache_dir: Path, tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = Ctx(pytester, standins, shared_cache, cache_dir, tmp_path)
    try:
        case.setup(ctx)
        for name, value in ctx.env.items():
            monkeypatch.setenv(name, value)
        ctx.vars.update(root=str(ctx.root), cache=str(ctx.cache))
        files_before = project_files(ctx.root)
        servers_before = {kind: standin_state(s) for kind, s in ctx.used.items()}

        ret, out = run_case(ctx, [part.format(**ctx.vars) for part in case.command])

        assert "Traceback" not in out and "INTERNALERROR" not in out, out
        assert ret == case.exit_code, f"exit {ret}, expected {case.exit_code}:\n{out}"
        for fragment in (e.format(**ctx.vars) for e in case.expect):
            assert fragment in out, f"{fragment!r} not in:\n{out}"
        assert SECRET not in out, f"the password was printed:\n{out}"
        leaked = files_holding(SECRET.encode(), ctx.root, ctx.cache)
        assert not leaked, f"the password was written to {leaked}"
        assert project_files(ctx.root) == files_before, "the project's files changed"
        for kind, standin in ctx.used.items():
            before, after = servers_before[kind], standin_state(standin)
            changed = sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
            assert not changed, (f"the {kind} stand-in changed in {changed}: "
                                 f"{[(before.get(k), after.get(k)) for k in changed]}")
    finally:
        for cleanup in reversed(ctx.cleanups):
            cleanup()
