"""The scratch side of one run, without pytest: find or start the test server, then hand
out databases.

The owner (pytest's controller, or the only process) starts or attaches to the server and
cleans up; xdist workers attach to the owner's server with the ``ServerInfo`` it passed on.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .binaries import PgBinaries, find_binaries
from .clusters import ClusterLease, acquire_cluster, default_cache_root, ensure_cache_dir
from .config import Settings
from .errors import ConfigError, ExtensionMissingError, PostgresNotFoundError, ServerError
from .lazyimport import ensure_imported
from .masking import mask_dsn
from .osuser import reachable_binaries, server_os_user
from .server import ServerInfo, server_info_from_url

if TYPE_CHECKING:
    import psycopg

    from .databases import Database, DatabaseManager, Template
    from .progress import BuildProgress


def _server_version(info: ServerInfo) -> str:
    ensure_imported("psycopg")  # psycopg may be loading on another thread (readahead)
    import psycopg

    try:
        with psycopg.connect(info.conninfo(connect_timeout=10), autocommit=True) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
    except psycopg.OperationalError as exc:
        raise ServerError(mask_dsn(
            f"Cannot connect to the test server {info.url()}: {str(exc).strip()}. Check that it "
            f"is running and that the URL, user and password are right "
            f"(--schemasync-server-url / SCHEMASYNC_SERVER_URL)."
        )) from None


def _check_major(server: ServerInfo, wanted: int | None) -> None:
    if wanted is not None and server.major != wanted:
        raise ConfigError(mask_dsn(
            f"The test server {server.url()} runs PostgreSQL {server.version}, but PostgreSQL "
            f"{wanted} was asked for (--schemasync-pg-version / SCHEMASYNC_PG_VERSION / "
            f"pg-version). Point --schemasync-server-url at a PostgreSQL {wanted} server, or "
            f"leave it out to start an embedded PostgreSQL {wanted}."
        ))


def _import_client() -> None:
    with contextlib.suppress(Exception):  # an import error shows where it is used
        ensure_imported(f"{__package__}.databases")


class Scratch:
    """The test server of one run and the databases on it (named so as not to be confused
    with ``pytest.Session``)."""

    def __init__(self, settings: Settings, *, worker: str = "m",
                 attach: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.worker = worker
        self.owner = attach is None
        self.token: str = attach["token"] if attach else secrets.token_hex(4)
        self.cache_root: Path = settings.cache_dir or default_cache_root()
        self.lease: ClusterLease | None = None
        self._attach = attach
        self.server: ServerInfo | None = None
        self._manager: DatabaseManager | None = None
        self._databases_closed = False
        self.psql: Path | None = None
        # Sets that could not be built because the chosen major lacks an extension they
        # create: name -> why (passed on to xdist workers).
        self.unavailable: dict[str, str] = dict(attach.get("unavailable", {})) if attach else {}
        self.progress: BuildProgress | None = None  # shows long template builds

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> ServerInfo:
        if self.server is not None:
            return self.server
        settings = self.settings
        binaries: PgBinaries | None = None
        if self._attach is not None:
            self.server = ServerInfo.from_dict(self._attach["server"])
        elif settings.server_url:
            info = server_info_from_url(settings.server_url)
            self.server = info.with_version(_server_version(info))
            _check_major(self.server, settings.pg_version)
        else:
            # Starting the server takes ~50 ms of waiting on subprocesses, importing psycopg
            # ~65 ms of Python: do both at once.
            importer = threading.Thread(target=_import_client, name="schemasync-import",
                                        daemon=True)
            importer.start()
            try:
                binaries = find_binaries(settings.pg_bindir, major=settings.pg_version)
                os_user = server_os_user(settings.server_user)
                ensure_cache_dir(self.cache_root)
                binaries = reachable_binaries(binaries, os_user, self.cache_root)
                self.lease = acquire_cluster(self.cache_root, binaries, os_user,
                                             settings.preload)
            finally:
                importer.join()
            self.server = self.lease.cluster.info()
        exclusive = bool(self.lease and self.lease.cached) or bool(
            self._attach and self._attach.get("exclusive"))
        psql = self._psql(binaries)
        self.psql = psql
        with contextlib.suppress(OSError, ConfigError):  # only for the event log here
            ensure_cache_dir(self.cache_root)
        ensure_imported(f"{__package__}.databases")  # may be loading on another thread
        from .databases import DatabaseManager

        self._manager = DatabaseManager(
            self.server, settings, token=self.token, worker=self.worker, psql=psql,
            exclusive=exclusive, events=self.cache_root / "events.log",
            snapshots=self.cache_root / "snapshots",
        )
        self._manager.templates.progress = self.progress
        if self.owner:
            self._manager.claim_session()
            self._manager.sweep_dead_sessions()
        return self.server

    def _psql(self, server_binaries: PgBinaries | None) -> Path:
        """psql of the embedded server's bin directory (or the controller's, for a worker),
        else the first one found."""
        if self._attach is not None and self._attach.get("psql"):
            return Path(self._attach["psql"])
        if server_binaries is not None:
            with contextlib.suppress(PostgresNotFoundError):
                return server_binaries.tool("psql")
        return find_binaries(self.settings.pg_bindir, need_server=False,
                             major=self.settings.pg_version).tool("psql")

    @property
    def manager(self) -> DatabaseManager:
        if self._manager is None:
            self.start()
        assert self._manager is not None
        self._databases_closed = False  # used again (e.g. a late fixture teardown)
        return self._manager

    def admin_connect(self, database: Database | str | None = None,
                      **kwargs: Any) -> psycopg.Connection[Any]:
        """A superuser connection to ``database`` (a ``Database`` from ``fresh_database`` or
        the factory, or a name), e.g. to set up rows the test's role may not write."""
        import psycopg

        server = self.start()
        name = database if isinstance(database, str) or database is None else database.name
        return psycopg.connect(server.conninfo(name), **kwargs)

    def as_admin(self, conn: psycopg.Connection[Any]) -> contextlib.AbstractContextManager[Any]:
        """``with schemasync.as_admin(db):`` the superuser on the ``db`` connection (same
        rolled-back transaction), then the test's role again."""
        from .roles import as_admin

        return as_admin(conn)

    def worker_payload(self) -> dict[str, Any]:
        """What an xdist worker needs to attach to our server."""
        server = self.start()
        return {"server": server.as_dict(), "token": self.token, "psql": str(self.psql),
                "exclusive": bool(self.lease and self.lease.cached),
                "unavailable": self.unavailable}

    def prepare(self, *, rebuild: bool = False) -> list[Template]:
        """Build (or find cached) the template of every configured set.

        With a major chosen on purpose (pg-version), a set needing an extension that major's
        binaries lack does not stop the session: it is listed in ``unavailable`` and its
        tests fail (or the project skips them) while the other sets' tests run."""
        templates = []
        for name in self.settings.sets:
            try:
                templates.append(self.manager.template(name, rebuild=rebuild))
            except ExtensionMissingError as exc:
                if self.settings.pg_version is None:
                    raise
                self.unavailable[name] = str(exc)
        return templates

    def _remember_libraries(self) -> None:
        if self.lease is not None and self.lease.preloaded.file is not None and self._manager:
            with contextlib.suppress(Exception):  # only a speed-up
                self.lease.remember_libraries(self._manager.templates.libraries())

    def close_databases(self) -> list[str]:
        """Drop this process's databases (the owner also those of crashed workers) and
        disconnect; keep the server. Returns problems met in the background."""
        if self._manager is None or self._databases_closed:
            return []
        self._databases_closed = True
        self._remember_libraries()  # used from the next start: nothing to do before
        return self._manager.close(sweep_session=self.owner)

    def begin_close(self) -> None:
        """After the last use of the server (its databases closed): its shutdown starts now
        and overlaps whatever the caller still does; ``close`` waits for it."""
        if self.lease is not None and self._databases_closed:
            with contextlib.suppress(Exception):
                self.lease.begin_release()

    def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.close_databases()
        finally:
            self._manager = None
            if self.lease is not None:
                lease, self.lease = self.lease, None
                lease.release()

    def __enter__(self) -> Scratch:
        try:
            self.start()
        except BaseException:
            self.close()  # a half-started session still holds its lock or server
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        if self.server is None:
            return "not started"
        where = self.server.describe()
        if self.lease is not None:
            cache = "cached cluster" if self.lease.cached else "private cluster (cache busy)"
            where += f" ({cache} in {self.cache_root})"
            if self.lease.preloaded.libraries:
                where += f"; preloads {', '.join(self.lease.preloaded.libraries)}"
        return where
