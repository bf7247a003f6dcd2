"""Describe how to reach a server, and run a throwaway cluster of our own.

The embedded cluster is tuned for tests (no fsync, no autovacuum, unix socket only). When we
run as root the cluster runs as an unprivileged system user, because ``initdb`` and
``postgres`` refuse root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .binaries import PgBinaries
from .errors import ConfigError, ServerError
from .lazyimport import ensure_imported
from .masking import mask_dsn
from .osuser import OsUser, check_reachable

DEFAULT_SUPERUSER = "schemasync"

# Settings that make a cluster fast and disposable; durability is irrelevant for test data.
TEST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "1h",
    "listen_addresses": "''",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "jit": "off",
    # Shared memory segments as files in the data directory, not in /dev/shm: a killed
    # server's segments then go away with its (throwaway) data directory.
    "dynamic_shared_memory_type": "mmap",
}


# --- where a server is ---------------------------------------------------------------


class ServerKind(StrEnum):
    """What a server is to us; it decides what we may do there."""

    EMBEDDED = "embedded"  # our own cluster: the test server
    EXISTING = "existing"  # a server named by --schemasync-server-url: the test server
    PRODUCTION = "production"  # a set's production: only ever read
    TARGET = "target"  # a database named on the command line (status, migrate)
    SOURCE = "source"  # a database `schemasync dump` reads


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a server; plain data so it can travel to xdist workers."""

    kind: ServerKind
    host: str
    port: int
    user: str
    password: str | None = field(default=None, repr=False)  # never in a traceback
    admin_db: str = "postgres"
    params: dict[str, str] = field(default_factory=dict)
    major: int = 0
    version: str = ""

    def conninfo(self, dbname: str | None = None, **extra: Any) -> str:
        kwargs: dict[str, Any] = {
            "host": self.host, "port": self.port, "user": self.user,
            "dbname": dbname or self.admin_db, **self.params, **extra,
        }
        if self.password:
            kwargs["password"] = self.password
        ensure_imported("psycopg")  # psycopg may be loading on another thread
        from psycopg.conninfo import make_conninfo

        return make_conninfo(**kwargs)

    def url(self, dbname: str | None = None) -> str:
        """A libpq URL; for a unix socket the directory goes in ``?host=``."""
        db = quote(dbname or self.admin_db, safe="")
        user = quote(self.user, safe="")
        auth = f"{user}:{quote(self.password, safe='')}" if self.password else user
        query = dict(self.params)
        if self.host.startswith("/"):
            query = {"host": self.host, "port": str(self.port), **query}
            base = f"postgresql://{auth}@/{db}"
        else:
            base = f"postgresql://{auth}@{self.host}:{self.port}/{db}"
        if query:
            base += "?" + "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items())
        return base

    def libpq_env(self, dbname: str | None = None) -> dict[str, str]:
        """Environment for libpq programs (psql, pg_dump): the password never goes on argv."""
        params = {"host": self.host, "port": str(self.port), "user": self.user,
                  "dbname": dbname or self.admin_db, **self.params}
        if self.password:
            params["password"] = self.password
        return {LIBPQ_ENV[k]: str(v) for k, v in params.items() if k in LIBPQ_ENV}

    def client_env(self, dbname: str | None = None, options: str = "") -> dict[str, str]:
        """The environment for a libpq program (psql, pg_dump) run against this server: the
        caller's PG* variables replaced by ours, ``options`` added to PGOPTIONS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(self.libpq_env(dbname))
        if options:
            env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {options}".strip()
        return env

    def describe(self) -> str:
        where = self.host if self.host.startswith("/") else f"{self.host}:{self.port}"
        version = f" {self.version}" if self.version else ""
        return mask_dsn(f"{self.kind} PostgreSQL{version} at {where} as {self.user}")

    def as_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["kind"] = str(self.kind)  # plain types only: execnet carries it to workers
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerInfo:
        return cls(**{**data, "kind": ServerKind(data["kind"])})

    def with_version(self, version: str) -> ServerInfo:
        return replace(self, version=version, major=int(version.split(".")[0]))


# libpq's connection parameters and the environment variables it reads them from.
LIBPQ_ENV = {
    "host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD",
    "dbname": "PGDATABASE", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS", "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


def server_info_from_url(url: str, kind: ServerKind = ServerKind.EXISTING) -> ServerInfo:
    """Parse a libpq URL or key=value DSN naming one server."""
    example = "Expected e.g. postgresql://user:password@host:5432/postgres."
    authority = url.split("://", 1)[1].split("/", 1)[0] if "://" in url else ""
    if authority.count("@") > 1:
        # libpq would split at the first '@' and take the rest of the password for the host,
        # which then shows up, unmasked, in every message: refuse before echoing anything.
        raise ConfigError(
            "A server URL has an unencoded '@' in its user or password. Percent-encode it "
            f"(@ is %40). {example}"
        )
    ensure_imported("psycopg")  # psycopg may be loading on another thread
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception as exc:  # psycopg raises ProgrammingError with the raw text
        raise ConfigError(
            f"Cannot parse the server URL {mask_dsn(url)!r}: {mask_dsn(str(exc).strip())}. "
            f"{example}"
        ) from None
    host = str(parts.pop("host", "") or "localhost")
    raw_port = str(parts.pop("port", "") or "5432")
    if "," in host or "," in raw_port:
        raise ConfigError(
            f"The server URL {mask_dsn(url)!r} names several hosts; name exactly one. {example}"
        )
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise ConfigError(
            f"The server URL {mask_dsn(url)!r} has an invalid port {raw_port!r}. {example}"
        )
    user = str(parts.pop("user", "") or os.environ.get("PGUSER") or pwd.getpwuid(os.getuid())[0])
    password = parts.pop("password", None)
    admin_db = str(parts.pop("dbname", "") or "postgres")
    params = {k: str(v) for k, v in parts.items()}
    return ServerInfo(kind=kind, host=host, port=int(raw_port), user=user,
                      password=str(password) if password else None,
                      admin_db=admin_db, params=params)


# --- the embedded cluster --------------------------------------------------------------


def pid_in_file(data_dir: Path) -> int | None:
    """The pid on the first line of ``data_dir``'s postmaster.pid (alive or not)."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


class _Wakeup:
    """Wait for something that may have changed instead of sleeping in small steps: a file
    written in ``folder`` (inotify) or a watched process gone (pidfd); a plain short sleep
    only where Linux offers neither."""

    _EVENTS = 0x2 | 0x8 | 0x80 | 0x100 | 0x200  # MODIFY CLOSE_WRITE MOVED_TO CREATE DELETE

    def __init__(self, folder: Path | None = None) -> None:
        self._fds: list[int] = []
        self._inotify = -1
        if folder is not None:
            with contextlib.suppress(Exception):  # no inotify: the short sleep instead
                import ctypes  # already loaded with psycopg

                libc = ctypes.CDLL(None, use_errno=True)
                fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
                if fd >= 0 and libc.inotify_add_watch(fd, os.fsencode(folder), self._EVENTS) < 0:
                    os.close(fd)
                    fd = -1
                if fd >= 0:
                    self._inotify = fd
                    self._fds.append(fd)

    def watch_exit(self, pid: int) -> bool:
        """Also wake up when ``pid`` exits; False where pidfds are not available."""
        try:
            self._fds.append(os.pidfd_open(pid))
        except (AttributeError, OSError):
            return False
        return True

    def wait(self, timeout: float, fallback: float = 0.003) -> None:
        if not self._fds:
            time.sleep(min(timeout, fallback))
            return
        ready, _, _ = select.select(self._fds, [], [], max(timeout, 0))
        if self._inotify in ready:
            with contextlib.suppress(OSError):
                while os.read(self._inotify, 4096):
                    pass

    def close(self) -> None:
        for fd in self._fds:
            if fd == self._inotify:
                # Closing an inotify descriptor waits out a kernel grace period (~10 ms):
                # not on the session's start path.
                threading.Thread(target=_close_quietly, args=(fd,), daemon=True,
                                 name="schemasync-inotify-close").start()
            else:
                _close_quietly(fd)
        self._fds.clear()

    def __enter__(self) -> _Wakeup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmbeddedCluster:
    """A PostgreSQL data directory we own: initdb, start, stop, detect an orphaned postmaster."""

    def __init__(
        self,
        binaries: PgBinaries,
        data_dir: Path,
        socket_dir: Path,
        *,
        os_user: OsUser | None,
        port: int = 5432,
        superuser: str = DEFAULT_SUPERUSER,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.binaries = binaries
        self.data_dir = data_dir
        self.socket_dir = socket_dir
        self.os_user = os_user
        self.port = port
        self.superuser = superuser
        self.settings = settings or {}
        self.log_file = data_dir.parent / "server.log"

    # Commands run as the server user when we are root; cwd "/" so it can always stat it.
    def _run(self, args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.os_user is not None:
            kwargs.update(user=self.os_user.uid, group=self.os_user.gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8" if Path("/usr/lib/locale/C.utf8").exists() else "C"
        check_reachable(Path(args[0]).parent, self.os_user,
                        what=f", so it cannot run {Path(args[0]).name}",
                        remedy="Pin a PostgreSQL bin directory it can reach with "
                               "--schemasync-pg-bindir")
        try:
            return subprocess.run(
                args, capture_output=True, text=True, timeout=timeout, cwd="/", env=env, **kwargs
            )
        except OSError as exc:
            who = f" as {self.os_user.name!r}" if self.os_user else ""
            raise ServerError(
                f"Could not run {args[0]}{who}: {exc.strerror}. Make the PostgreSQL bin directory "
                f"readable and executable for that user, or pin another one with "
                f"--schemasync-pg-bindir."
            ) from None

    def _own(self, path: Path, mode: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        if self.os_user is not None:
            os.chown(path, self.os_user.uid, self.os_user.gid)

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def initialize(self) -> None:
        """initdb into a side directory, then rename: a crash never leaves half a cluster.
        The side directory is this process's own: the initdb of a session killed a moment
        ago may still be writing into its one."""
        check_reachable(self.data_dir.parent, self.os_user)
        partial = self.data_dir.with_name(f"{self.data_dir.name}.initdb-{os.getpid()}")
        self._remove_partials()
        self._own(self.data_dir.parent, 0o755)
        self._own(partial, 0o700)
        result = self._run([
            str(self.binaries.tool("initdb")), "-D", str(partial), "-U", self.superuser,
            "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C",
        ])
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            output = result.stderr.strip() or result.stdout.strip()
            hint = ""
            if "No space left on device" in output:
                hint = ("\nThe filesystem of the cache directory is full (a tmpfs such as "
                        "/dev/shm is limited by RAM). Free space there, choose a directory on "
                        "disk with --schemasync-cache-dir, or use an existing server with "
                        "--schemasync-server-url.")
            raise ServerError(f"initdb failed for {partial}:\n{output}{hint}")
        with open(partial / "postgresql.conf", "a") as conf:
            conf.write("\ninclude_if_exists = 'schemasync.conf'\n")
        partial.rename(self.data_dir)
        self._remove_partials()  # a killed session's initdb has finished by now

    def _remove_partials(self) -> None:
        for stale in self.data_dir.parent.glob(f"{self.data_dir.name}.initdb*"):
            shutil.rmtree(stale, ignore_errors=True)

    def _write_settings(self) -> None:
        settings = {**TEST_SETTINGS, "port": str(self.port),
                    "unix_socket_directories": f"'{self.socket_dir}'", **self.settings}
        text = "".join(f"{key} = {value}\n" for key, value in settings.items())
        conf = self.data_dir / "schemasync.conf"
        conf.write_text(text)
        if self.os_user is not None:
            os.chown(conf, self.os_user.uid, self.os_user.gid)

    def running_pid(self) -> int | None:
        """The postmaster's pid if one is alive for this data directory."""
        pid = pid_in_file(self.data_dir)
        return pid if pid is not None and process_alive(pid) else None

    def start(self) -> None:
        if self.os_user is not None and self.data_dir.is_dir():
            owner = self.data_dir.stat().st_uid
            if owner != self.os_user.uid:
                try:
                    owner_name = pwd.getpwuid(owner).pw_name
                except KeyError:
                    owner_name = f"uid {owner}"
                raise ServerError(
                    f"The cached cluster in {self.data_dir} belongs to the OS user "
                    f"{owner_name!r}, but the server user is now {self.os_user.name!r}. Use "
                    f"--schemasync-server-user={owner_name}, another --schemasync-cache-dir, "
                    f"or delete {self.data_dir.parent} (it is only a cache)."
                )
        self._own(self.socket_dir, 0o755)
        check_reachable(self.socket_dir, self.os_user)
        self._write_settings()
        stale = pid_in_file(self.data_dir)  # a killed server's pid file stays until overwritten
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        # pg_ctl -w polls every 100 ms; we poll postmaster.pid ourselves, every few ms.
        result = self._run([
            str(self.binaries.tool("pg_ctl")), "-D", str(self.data_dir), "-l", str(self.log_file),
            "-W", "start",
        ])
        ready = result.returncode == 0 and self._wait_ready(60, stale=stale, log_start=log_start)
        if not ready:
            log_tail = ""
            if self.log_file.exists():
                log_tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-15:])
            raise ServerError(
                f"The embedded PostgreSQL {self.binaries.version} did not start "
                f"(data directory {self.data_dir}).\n{result.stderr.strip()}\n{log_tail}".rstrip()
            )

    def _logged_fatal(self, since: int) -> bool:
        try:
            with open(self.log_file, "rb") as log:
                log.seek(since)
                return b"FATAL:" in log.read()
        except OSError:
            return False

    def _wait_ready(self, timeout: float, stale: int | None = None, log_start: int = 0) -> bool:
        """True once the postmaster says "ready" in postmaster.pid (line 8); False as soon as
        it has died (e.g. a library it was told to preload is missing: it exits before it
        writes its status line)."""
        deadline = time.monotonic() + timeout
        pid: int | None = None
        # Woken by each write to postmaster.pid (and by the postmaster's exit), not by a
        # timer: the last check of the log for a FATAL before the pid file exists is the
        # only one that needs the 50 ms fallback.
        with _Wakeup(self.data_dir) as wakeup:
            while time.monotonic() < deadline:
                try:
                    lines = (self.data_dir / "postmaster.pid").read_text().split("\n")
                except OSError:
                    lines = []
                if len(lines) > 7 and lines[7].strip() == "ready":
                    return True
                with contextlib.suppress(ValueError):
                    if lines and int(lines[0]) != stale and pid is None:
                        pid = int(lines[0])
                        wakeup.watch_exit(pid)
                if pid is not None and not process_alive(pid):
                    return False  # it started and died: the log says why
                if pid is None and not lines and self._logged_fatal(log_start):
                    return False  # it died before we saw its pid file
                wakeup.wait(min(0.05, deadline - time.monotonic()))
        return False

    def stop(self, mode: str = "fast") -> None:
        pid = self.running_pid()
        if pid is None:
            return
        # SIGINT is a fast shutdown (SIGQUIT immediate); waiting on the pid beats pg_ctl -w.
        signum = signal.SIGQUIT if mode == "immediate" else signal.SIGINT
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        deadline = time.monotonic() + 60
        with _Wakeup() as wakeup:
            watched = wakeup.watch_exit(pid)  # woken when it exits, not by a timer
            while time.monotonic() < deadline:
                # Gone means exited: its pid file goes a moment before it does, and its
                # zombie may linger until the init process reaps it (that one does not count).
                if not process_alive(pid):
                    return
                wakeup.wait(min(1.0 if watched else 0.003, deadline - time.monotonic()))
        result = self._run([str(self.binaries.tool("pg_ctl")), "-D", str(self.data_dir),
                            "-m", "immediate", "-w", "-t", "60", "stop"])
        if result.returncode != 0 and self.running_pid() is not None:
            raise ServerError(f"Could not stop the server in {self.data_dir}: {result.stderr}")

    def info(self) -> ServerInfo:
        return ServerInfo(kind=ServerKind.EMBEDDED, host=str(self.socket_dir), port=self.port,
                          user=self.superuser, admin_db="postgres",
                          major=self.binaries.major, version=self.binaries.version)
