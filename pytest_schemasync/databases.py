"""Per-test clones and rollback databases, and cleaning up after this session and dead ones.

Clones (``ssc_``) and rollback databases (``sss_``) carry the session's token, so we only
ever touch our own; a live session holds an advisory lock on its token, so another session
can tell a dead one's databases from a running one's.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from . import dbprops
from .admin import Database, ServerAdmin
from .config import SchemaSet, Settings
from .names import CLONE, ROLLBACK, token_key
from .pool import ClonePool
from .server import ServerInfo, ServerKind
from .templates import Template, TemplateStore

if TYPE_CHECKING:
    from .catalog import CatalogOptions, Snapshot

__all__ = ["Database", "DatabaseManager", "Template"]

_OURS = re.compile(rf"^(?:{ROLLBACK}|{CLONE})_(?P<token>[0-9a-f]{{8}})_")


class DatabaseManager:
    """The databases one process hands out: clones of the templates, and a rollback database
    per set; dropped again at the end."""

    def __init__(self, server: ServerInfo, settings: Settings, *, token: str, worker: str,
                 psql: Path, exclusive: bool, events: Path | None = None,
                 snapshots: Path | None = None) -> None:
        self.server = server
        self.settings = settings
        self.token = token
        self.worker = re.sub(r"[^a-z0-9]", "", worker.lower())[:8] or "m"
        self.exclusive = exclusive  # we own the whole cluster, so stale objects are ours to drop
        self.server_admin = ServerAdmin(server, events)
        self.templates = TemplateStore(self.server_admin, settings, psql, exclusive=exclusive)
        self.snapshot_dir = snapshots  # stored bundled snapshots (None: never stored)
        if snapshots is not None:
            self.templates.on_built = self._store_snapshot
        self._counter = itertools.count(1)
        self._rollback: dict[tuple[str, str | None], tuple[Database, psycopg.Connection[Any]]] = {}
        self._created: list[str] = []
        self._lock = threading.Lock()
        self._pool: ClonePool | None = None

    @property
    def admin(self) -> psycopg.Connection[Any]:
        return self.server_admin.conn

    def template(self, set_name: str | None = None, before: str | None = None,
                 *, rebuild: bool = False) -> Template:
        return self.templates.get(set_name, before, rebuild=rebuild)

    # --- session ownership and cleanup ---------------------------------------------

    def claim_session(self) -> None:
        """Hold a lock for our token, so other sessions can tell we are alive."""
        self.server_admin.lock(token_key(self.token))

    def sweep_dead_sessions(self) -> list[str]:
        """Drop clones and rollback databases of sessions that no longer hold their lock (and,
        in a cluster we own, half-built and orphaned templates)."""
        names = self.server_admin.names(f"datname ~ '^({ROLLBACK}|{CLONE})_[0-9a-f]{{8}}_'")
        dropped: list[str] = []
        alive: dict[str, bool] = {}
        for name in names:
            match = _OURS.match(name)
            if match is None or match["token"] == self.token:
                continue
            token = match["token"]
            if token not in alive:
                alive[token] = not self.server_admin.try_lock(token_key(token))
                if not alive[token]:
                    self.server_admin.unlock(token_key(token))
            if not alive[token]:
                self.server_admin.drop(name)
                dropped.append(name)
        if self.exclusive:  # half-built templates can only be ours in a cluster we own
            dropped += self.templates.drop_leftovers()
        return dropped

    # --- clones ----------------------------------------------------------------------

    def _new_name(self, kind: str) -> str:
        return f"{kind}_{self.token}_{self.worker}_{next(self._counter)}"

    def _create_clone(self, conn: psycopg.Connection[Any], template: str,
                      kind: str = CLONE) -> str:
        name = self._new_name(kind)
        strategy = self.settings.clone_strategy
        if strategy == "auto":
            strategy = "file_copy" if self.server.kind == ServerKind.EMBEDDED else ""
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template))
        if strategy and self.server.major >= 15:
            query = query + sql.SQL(" STRATEGY {}").format(sql.SQL(strategy.upper()))
        conn.execute(query)
        with self._lock:
            self._created.append(name)
        dbprops.apply_settings(conn, name, self.templates.clone_settings.get(template, ()))
        if template in self.templates.clone_roles:
            set_name, props = self.templates.clone_roles[template]
            try:
                dbprops.apply_role_settings(conn, name, props, set_name)
            except Exception:
                with self._lock:
                    self._created.remove(name)
                with contextlib.suppress(psycopg.Error):
                    self.server_admin.drop(name, conn)
                raise
        return name

    @property
    def pool(self) -> ClonePool | None:
        if self._pool is None and self.settings.pool_size > 0:
            self._pool = ClonePool(
                self.server_admin.connect, self._create_clone,
                lambda conn, name: self.server_admin.drop(name, conn), self.settings.pool_size)
        return self._pool

    def clone(self, set_name: str | None = None, before: str | None = None,
              *, kind: str = CLONE, pooled: bool = True) -> Database:
        """A new database from the set's template (from the pool when one is ready; a one-off
        clone, ``pooled=False``, does not make the pool fill up behind it)."""
        template = self.template(set_name, before)
        pool = self.pool if kind == CLONE and pooled else None
        name = pool.take(template.name) if pool is not None else None
        if name is None:
            name = self._create_clone(self.admin, template.name, kind)
        return self.server_admin.database(name)

    def template_of(self, schema_set: SchemaSet, *, remember: bool = True) -> Template:
        """The set's template. Without ``remember`` the files are built as they are now
        without becoming the set's template for the rest of the session (a refresh reads its
        old and staged files this way)."""
        return (self.template(schema_set.name) if remember
                else self.templates.ensure(schema_set, remember=False))

    @contextlib.contextmanager
    def one_off(self, schema_set: SchemaSet, *, remember: bool = True) -> Iterator[Database]:
        """A throwaway clone of the set's template (see ``template_of``), dropped afterwards:
        nobody may connect to a template itself."""
        with self._copy_of(self.template_of(schema_set, remember=remember).name) as database:
            yield database

    @contextlib.contextmanager
    def _copy_of(self, template: str) -> Iterator[Database]:
        database = self.server_admin.database(self._create_clone(self.admin, template))
        try:
            yield database
        finally:
            self.drop(database)

    # --- the bundled catalog snapshot, stored with its template ------------------------

    def template_snapshot(self, template: str, options: CatalogOptions) -> Snapshot:
        """The catalog snapshot of ``template``: the stored one when it can be trusted, else
        read through a throwaway clone (nobody may connect to a template) and stored."""
        from .snapshots import SnapshotStore

        store = (SnapshotStore(self.snapshot_dir, self.server_admin)
                 if self.snapshot_dir is not None else None)
        stored = store.load(template, options) if store is not None else None
        if stored is not None:
            return stored
        taken = self._read_template(template, options)
        if store is not None:
            with contextlib.suppress(OSError):  # only a speed-up
                store.save(template, options, taken)
        return taken

    def prune_snapshots(self) -> list[str]:
        """Delete stored snapshots of templates this server no longer has."""
        from .snapshots import SnapshotStore

        if self.snapshot_dir is None or not self.snapshot_dir.is_dir():
            return []
        return SnapshotStore(self.snapshot_dir, self.server_admin).prune()

    def _read_template(self, template: str, options: CatalogOptions) -> Snapshot:
        from .catalog import snapshot

        with self._copy_of(template) as database, database.connect(autocommit=True) as conn:
            return snapshot(conn, options)

    def _store_snapshot(self, schema_set: SchemaSet, template: str) -> None:
        """Right after a build: read the new template once and store its snapshot."""
        from .errors import CatalogError
        from .snapshots import SnapshotStore, catalog_options

        assert self.snapshot_dir is not None
        options = catalog_options(schema_set)
        with contextlib.suppress(psycopg.Error, OSError, CatalogError):  # the check reads again
            SnapshotStore(self.snapshot_dir, self.server_admin).save(
                template, options, self._read_template(template, options))

    def drop(self, database: Database) -> None:
        with self._lock:
            if database.name in self._created:
                self._created.remove(database.name)
        if self._pool is not None and database.name.startswith(f"{CLONE}_"):
            self._pool.discard(database.name)
        else:
            self.server_admin.drop(database.name)

    # --- the rollback database -----------------------------------------------------

    def rollback_connection(self, set_name: str | None = None,
                            before: str | None = None) -> psycopg.Connection[Any]:
        """A long-lived connection to this process's copy of the set; tests run in a
        transaction on it that is always rolled back."""
        key = (self.settings.schema_set(set_name).name, before)
        entry = self._rollback.get(key)
        if entry is not None:
            database, conn = entry
            if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
                return conn
            self._discard_rollback(key)
        database = self.clone(set_name, before, kind=ROLLBACK)
        conn = database.connect()
        self._rollback[key] = (database, conn)
        return conn

    def rollback_database(self, set_name: str | None = None,
                          before: str | None = None) -> Database:
        """This process's copy of the set that ``rollback_connection`` serves, for a client
        of its own (``adb`` opens an async connection to it per test). Never discards: the
        sync connection may be in a test's transaction right now."""
        key = (self.settings.schema_set(set_name).name, before)
        if key not in self._rollback:
            self.rollback_connection(set_name, before)
        return self._rollback[key][0]

    def discard_rollback_database(self, database: Database) -> None:
        """Forget a rollback database a client of its own spoiled (e.g. ``adb`` committed)."""
        for key, (candidate, _) in list(self._rollback.items()):
            if candidate.name == database.name:
                self._discard_rollback(key)

    def _discard_rollback(self, key: tuple[str, str | None]) -> None:
        database, conn = self._rollback.pop(key)
        with contextlib.suppress(psycopg.Error):
            conn.close()
        self.drop(database)

    def discard_rollback_for(self, conn: psycopg.Connection[Any]) -> None:
        """Forget a rollback database a test has spoiled (committed or broke its connection)."""
        for key, (_, candidate) in list(self._rollback.items()):
            if candidate is conn:
                self._discard_rollback(key)

    def drop_session_databases(self) -> None:
        """Drop every clone and rollback database of this session's token, including those
        of xdist workers that crashed before they could clean up."""
        for name in self.server_admin.names(
                "starts_with(datname, %s) OR starts_with(datname, %s)",
                f"{CLONE}_{self.token}_", f"{ROLLBACK}_{self.token}_"):
            self.server_admin.drop(name)

    def close(self, *, sweep_session: bool = False) -> list[str]:
        """Drop what this process created (with ``sweep_session``, also what crashed workers
        of this session left); keep templates (they are the cache). Returns problems met in
        the background, for the caller to report."""
        problems: list[str] = []
        if self._pool is not None:
            self._pool.close()  # finishes queued drops; unused clones are in _created
            problems = [f"background clone pool: {e}" for e in self._pool.errors]
            self._pool = None
        for key in list(self._rollback):
            with contextlib.suppress(psycopg.Error):
                self._discard_rollback(key)
        for name in list(self._created):
            with contextlib.suppress(psycopg.Error):
                self.server_admin.drop(name)
        self._created.clear()
        # After our own connections are closed: a DROP would otherwise wait for them.
        if sweep_session:
            try:
                self.drop_session_databases()
            except psycopg.Error as exc:
                problems.append(f"could not drop this session's databases: {exc}")
        self.server_admin.close()
        return problems
