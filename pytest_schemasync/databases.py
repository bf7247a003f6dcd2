"""Template databases, per-test clones and the rollback database, on any server.

Names carry a prefix and the session's token so we only ever touch our own databases:
``sst_`` templates (kept, keyed by content hash), ``ssb_`` templates being built, ``sss_``
per-process rollback databases and ``ssc_`` per-test clones (both dropped at the end).
Nobody connects to a template (it is created with ALLOW_CONNECTIONS false): an open
connection makes ``CREATE DATABASE ... TEMPLATE`` wait and fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from .cache import content_hash
from .config import SchemaSet, Settings
from .errors import MigrationError, ServerError
from .install import InstallTarget, read_schema_file, run_sql
from .migrations import (
    Migration,
    discover,
    edited_message,
    read_history,
    recording_sql,
    select_before,
)
from .pool import ClonePool
from .roles import RoleBuild
from .secrets import mask_dsn
from .server import ServerInfo

LOCK_NAMESPACE = 0x5353  # "SS": first key of our advisory locks
_PROJECT_COMMENT = "pytest-schemasync template of project "
_LIBRARIES_LINE = "extension libraries: "  # second line of the comment, for preloading
_OURS = re.compile(r"^ss[sc]_(?P<token>[0-9a-f]{8})_")


@dataclass(frozen=True)
class Database:
    """A database we created; ``url`` is a libpq URL any client can use."""

    name: str
    url: str
    conninfo: str
    role: str | None = None  # the role its url and connect() act as (None: the superuser)

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, **kwargs)


@dataclass(frozen=True)
class Template:
    name: str
    set_name: str
    before: str | None
    from_cache: bool
    seconds: float


@dataclass(frozen=True)
class BuildPlan:
    schema_set: SchemaSet
    files: tuple[Path, ...]
    migrations: tuple[Migration, ...]
    before: str | None

    @classmethod
    def for_set(cls, schema_set: SchemaSet, before: str | None = None) -> BuildPlan:
        migrations: list[Migration] = []
        if schema_set.migrations is not None:
            migrations = discover(schema_set.migrations, schema_set.origin(schema_set.migrations))
            migrations = select_before(migrations, before)
        elif before is not None:
            raise ServerError(
                f"Schema set {schema_set.name!r} has no migrations folder, so before={before!r} "
                f"means nothing. Add 'migrations' to the set or drop the marker argument."
            )
        return cls(schema_set, schema_set.files, tuple(migrations), before)

    def digest(self, major: int) -> str:
        # Clear errors for missing/odd files before hashing them. Refused meta-commands are
        # found by the build: a cached template's bytes were scanned when it was built.
        for path in self.files:
            read_schema_file(path, self.schema_set.origin(path), scan=False)
        paths = list(self.files) + [m.path for m in self.migrations]
        roles = tuple(f"role={r}" for r in self.schema_set.roles)  # a changed role rebuilds
        return content_hash(self.schema_set, paths, major,
                            extra=(f"before={self.before}", *roles))

    def sources(self) -> list[tuple[Path, str]]:
        """(path, origin) of every file a build of this plan may run."""
        folder = f"migrations folder {self.schema_set.migrations}"
        return ([(p, self.schema_set.origin(p)) for p in self.files]
                + [(m.path, folder) for m in self.migrations])


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:4]


def _lock_key(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _token_key(token: str) -> int:
    return int(token, 16) & 0x7FFFFFFF


class DatabaseManager:
    """Everything one process does on the server: templates, clones, rollback databases."""

    def __init__(self, server: ServerInfo, settings: Settings, *, token: str, worker: str,
                 psql: Path, exclusive: bool, events: Path | None = None) -> None:
        self.server = server
        self.settings = settings
        self.token = token
        self.worker = re.sub(r"[^a-z0-9]", "", worker.lower())[:8] or "m"
        self.psql = psql
        self.exclusive = exclusive  # we own the whole cluster, so stale objects are ours to drop
        self.events = events
        self._admin: psycopg.Connection[Any] | None = None
        self._counter = itertools.count(1)
        self._templates: dict[tuple[str, str | None], Template] = {}
        self._rollback: dict[tuple[str, str | None], tuple[Database, psycopg.Connection[Any]]] = {}
        self._created: list[str] = []
        self._lock = threading.Lock()
        self._pool: ClonePool | None = None
        self.roles_created: dict[str, list[str]] = {}  # set -> roles its build created

    # --- plumbing -----------------------------------------------------------------

    @property
    def admin(self) -> psycopg.Connection[Any]:
        if self._admin is None or self._admin.closed:
            try:
                self._admin = psycopg.connect(self.server.conninfo(connect_timeout=10),
                                              autocommit=True)
            except psycopg.OperationalError as exc:
                raise ServerError(mask_dsn(
                    f"Cannot connect to the {self.server.describe()}: {exc}".strip()
                )) from None
        return self._admin

    def _event(self, text: str) -> None:
        if self.events is not None:
            with contextlib.suppress(OSError), open(self.events, "a") as log:
                log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid={os.getpid()} {text}\n")

    def database(self, name: str) -> Database:
        return Database(name=name, url=self.server.url(name), conninfo=self.server.conninfo(name))

    @contextlib.contextmanager
    def _advisory(self, key: int) -> Iterator[None]:
        self.admin.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key))
        try:
            yield
        finally:
            self.admin.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, key))

    def _drop(self, name: str, conn: psycopg.Connection[Any] | None = None) -> None:
        conn = conn or self.admin
        ident = sql.Identifier(name)
        row = conn.execute(
            "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if row is None:
            return
        if row[0]:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
        # A connection the test just closed has a backend that exits a moment later; DROP
        # would then sleep 100 ms before looking again. Waiting ourselves takes ~1 ms.
        for _ in range(200):
            busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                (name,)).fetchone()
            if not busy or not busy[0]:
                break
            time.sleep(0.001)
        if self.server.major >= 13:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        else:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))

    # --- session ownership and cleanup ---------------------------------------------

    def claim_session(self) -> None:
        """Hold a lock for our token, so other sessions can tell we are alive."""
        self.admin.execute("SELECT pg_advisory_lock(%s, %s)",
                           (LOCK_NAMESPACE, _token_key(self.token)))

    def sweep_dead_sessions(self) -> list[str]:
        """Drop clones and rollback databases of sessions that no longer hold their lock."""
        names = [r[0] for r in self.admin.execute(
            "SELECT datname FROM pg_database WHERE datname ~ '^ss[sc]_[0-9a-f]{8}_'").fetchall()]
        dropped: list[str] = []
        alive: dict[str, bool] = {}
        for name in names:
            match = _OURS.match(name)
            if match is None or match["token"] == self.token:
                continue
            token = match["token"]
            if token not in alive:
                got = self.admin.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                         (LOCK_NAMESPACE, _token_key(token))).fetchone()
                alive[token] = not (got and got[0])
                if not alive[token]:
                    self.admin.execute("SELECT pg_advisory_unlock(%s, %s)",
                                       (LOCK_NAMESPACE, _token_key(token)))
            if not alive[token]:
                self._drop(name)
                dropped.append(name)
        if self.exclusive:  # half-built templates can only be ours in a cluster we own
            for (name,) in self.admin.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'ssb\\_%'").fetchall():
                self._drop(name)
                dropped.append(name)
            dropped += self._drop_orphaned_templates()
        return dropped

    def _drop_orphaned_templates(self) -> list[str]:
        """Templates of projects whose folder is gone (a deleted clone) only cost RAM."""
        dropped = []
        for name, comment in self.admin.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname LIKE 'sst\\_%'").fetchall():
            project = (comment or "").split("\n", 1)[0].removeprefix(_PROJECT_COMMENT)
            if comment and comment.startswith(_PROJECT_COMMENT) and not Path(project).exists():
                self._drop(name)
                dropped.append(name)
        return dropped

    def drop_project_templates(self) -> list[str]:
        """Drop this project's templates (the next session builds them again)."""
        dropped = []
        for (name,) in self.admin.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1",
                (f"sst_{self.settings.project_key}_",)).fetchall():
            with self._advisory(_lock_key(name)):  # not while a session builds it
                self._drop(name)
            dropped.append(name)
        self._templates.clear()
        return dropped

    # --- templates -----------------------------------------------------------------

    def template_name(self, set_name: str, digest: str, before: str | None = None) -> str:
        """At most 54 bytes (PostgreSQL cuts names at 63, which would cut off the digest),
        and a different prefix for every set and migration point (stale templates are
        found by prefix)."""
        slug = set_name if len(set_name) <= 24 else f"{set_name[:19]}~{_short(set_name)}"
        if before is not None:
            slug += f".b{before}" if len(before) <= 6 else f".b{_short(before)}"
        return f"sst_{self.settings.project_key}_{slug}_{digest[:10]}"

    def template(self, set_name: str | None = None, before: str | None = None,
                 *, rebuild: bool = False) -> Template:
        schema_set = self.settings.schema_set(set_name)
        key = (schema_set.name, before)
        if key in self._templates and not rebuild:
            return self._templates[key]
        plan = BuildPlan.for_set(schema_set, before)
        name = self.template_name(schema_set.name, plan.digest(self.server.major), before)
        started = time.perf_counter()
        with self._advisory(_lock_key(name)):
            row = self.admin.execute(
                "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
            cached = bool(row and row[0]) and not rebuild
            if not cached:
                self._build(plan, name)
            elif self.exclusive:  # e.g. built by a refresh's proof, which could not clean up
                self._drop_stale_templates(name)
        template = Template(name, schema_set.name, before, cached, time.perf_counter() - started)
        self._templates[key] = template
        return template

    def _build(self, plan: BuildPlan, name: str) -> None:
        build = f"ssb_{name[4:]}_{os.getpid()}"  # <= 54 + 8 bytes
        roles = RoleBuild(self.admin, self.server, plan.schema_set, plan.sources(), name,
                          database=build)
        roles.check()  # refusals, before anything runs
        self._drop(build)
        self.admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'")
                           .format(sql.Identifier(build)))
        target = InstallTarget(self.server, build, self.psql)
        schema_set = plan.schema_set
        try:
            roles.create()
            for path in plan.files:
                origin = schema_set.origin(path)
                run_sql(target, path, roles.text(path), shown=roles.original(path),
                        set_name=schema_set.name, origin=origin)
            for migration in self._unrecorded(plan, build):
                origin = f"migrations folder {schema_set.migrations}"
                script = self.settings.shown(migration.path)
                prelude, epilogue = recording_sql(migration, str(script), "pytest-schemasync")
                run_sql(target, migration.path, roles.text(migration.path),
                        shown=roles.original(migration.path), set_name=schema_set.name,
                        origin=origin, single_transaction=True, prelude=prelude,
                        epilogue=epilogue)
            libraries = self._libraries_of(build)
            roles.record()
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                self._drop(build)
            roles.undo()  # after the database: its objects hold on to the roles
            raise
        self.roles_created[schema_set.name] = roles.created
        self._drop(name)
        self.admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}")
                           .format(sql.Identifier(build), sql.Identifier(name)))
        self.admin.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true")
            .format(sql.Identifier(name)))
        self.admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(
                _PROJECT_COMMENT + str(self.settings.root)
                + (f"\n{_LIBRARIES_LINE}{','.join(sorted(libraries))}" if libraries else ""))))
        self._event(f"built template {name} set={schema_set.name} before={plan.before}")
        if self.exclusive:
            self._drop_stale_templates(name)

    def _libraries_of(self, dbname: str) -> set[str]:
        """The C libraries of the extensions installed in ``dbname`` ($libdir/ ones); only
        the embedded server can preload them."""
        if self.server.kind != "embedded":
            return set()
        try:
            with psycopg.connect(self.server.conninfo(dbname), autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT DISTINCT substr(p.probin, 9) FROM pg_proc p JOIN pg_depend d ON "
                    "d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e' "
                    "WHERE starts_with(p.probin, '$libdir/')").fetchall()
        except psycopg.Error:
            return set()  # only a speed-up
        return {row[0] for row in rows}

    def template_libraries(self) -> set[str]:
        """The extension libraries this project's templates recorded when they were built."""
        libraries: set[str] = set()
        for (comment,) in self.admin.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE starts_with(datname, %s)", (f"sst_{self.settings.project_key}_",)):
            for line in (comment or "").split("\n")[1:]:
                if line.startswith(_LIBRARIES_LINE):
                    libraries.update(n for n in line.removeprefix(_LIBRARIES_LINE).split(",") if n)
        return libraries

    def _unrecorded(self, plan: BuildPlan, build: str) -> list[Migration]:
        """The plan's migrations the base files do not already record.

        A refreshed dump of production carries production's ``schema_migrations`` rows (as
        Rails' structure.sql does): those migrations are in the dump already and must not run
        again; a recorded one whose file changed since is an edited migration.
        """
        if not plan.migrations:
            return []
        with psycopg.connect(self.server.conninfo(build), autocommit=True) as conn:
            history = read_history(conn) or []
        recorded = {a.number: a for a in history}
        if plan.before is not None and any(n >= int(plan.before) for n in recorded):
            newest = max(recorded)
            raise MigrationError(
                f"before={plan.before!r} asks for a database without migration {plan.before}, "
                f"but the base files of set {plan.schema_set.name!r} already contain "
                f"migrations up to {recorded[newest].version} (their schema_migrations rows). "
                f"Only later migrations can be left out."
            )
        pending = []
        for migration in plan.migrations:
            applied = recorded.get(migration.number)
            if applied is None:
                pending.append(migration)
            elif applied.checksum != migration.checksum:
                raise MigrationError(edited_message(
                    migration, applied, f"the base files of set {plan.schema_set.name!r}"))
        return pending

    def _drop_stale_templates(self, current: str) -> None:
        prefix = current[: current.rfind("_") + 1]
        for (other,) in self.admin.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) AND datname <> %s",
                (prefix, current)).fetchall():
            if re.fullmatch(r"[0-9a-f]{10}", other[len(prefix):]):  # same set and point
                self._drop(other)

    # --- clones ----------------------------------------------------------------------

    def _new_name(self, kind: str) -> str:
        return f"{kind}_{self.token}_{self.worker}_{next(self._counter)}"

    def _create_clone(self, conn: psycopg.Connection[Any], template: str,
                      kind: str = "ssc") -> str:
        name = self._new_name(kind)
        strategy = self.settings.clone_strategy
        if strategy == "auto":
            strategy = "file_copy" if self.server.kind == "embedded" else ""
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template))
        if strategy and self.server.major >= 15:
            query = query + sql.SQL(" STRATEGY {}").format(sql.SQL(strategy.upper()))
        conn.execute(query)
        with self._lock:
            self._created.append(name)
        return name

    @property
    def pool(self) -> ClonePool | None:
        if self._pool is None and self.settings.pool_size > 0:
            self._pool = ClonePool(
                lambda: psycopg.connect(self.server.conninfo(connect_timeout=10),
                                        autocommit=True),
                self._create_clone, lambda conn, name: self._drop(name, conn),
                self.settings.pool_size)
        return self._pool

    def clone(self, set_name: str | None = None, before: str | None = None,
              *, kind: str = "ssc", pooled: bool = True) -> Database:
        """A new database from the set's template (from the pool when one is ready; a one-off
        clone, ``pooled=False``, does not make the pool fill up behind it)."""
        template = self.template(set_name, before)
        pool = self.pool if kind == "ssc" and pooled else None
        name = pool.take(template.name) if pool is not None else None
        if name is None:
            name = self._create_clone(self.admin, template.name, kind)
        return self.database(name)

    def drop(self, database: Database) -> None:
        with self._lock:
            if database.name in self._created:
                self._created.remove(database.name)
        if self._pool is not None and database.name.startswith("ssc_"):
            self._pool.discard(database.name)
        else:
            self._drop(database.name)

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
        database = self.clone(set_name, before, kind="sss")
        conn = database.connect()
        self._rollback[key] = (database, conn)
        return conn

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
        for (name,) in self.admin.execute(
                "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                "OR starts_with(datname, %s)", (f"ssc_{self.token}_", f"sss_{self.token}_")
        ).fetchall():
            self._drop(name)

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
                self._drop(name)
        self._created.clear()
        # After our own connections are closed: a DROP would otherwise wait for them.
        if sweep_session:
            try:
                self.drop_session_databases()
            except psycopg.Error as exc:
                problems.append(f"could not drop this session's databases: {exc}")
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        return problems
