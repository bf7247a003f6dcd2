"""Template databases: what goes into one (the build plan and its content hash), building it
under a name of its own and renaming it into place, and finding it again in the cache.

Like Rails' ``maintain_test_schema``, a template is keyed by a hash of what built it (file
contents, migrations, server major), so a changed file is a new template and an unchanged
one costs nothing. Nobody connects to a template (it is created with ALLOW_CONNECTIONS
false): an open connection makes ``CREATE DATABASE ... TEMPLATE`` wait and fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
from psycopg import sql

from . import dbprops
from .admin import ServerAdmin
from .clusterguard import ClusterChangeError, ClusterGuard
from .config import SchemaSet, Settings
from .errors import ConfigError
from .install import InstallTarget, Progress, read_schema_file, run_sql
from .migrations import (
    HistoryRules,
    Migration,
    discover,
    read_history,
    run_migration,
    select_before,
    unrecorded,
)
from .names import BUILD_LOCK, BUILDING, TEMPLATE, lock_key
from .progress import BuildProgress
from .roles import RoleBuild
from .server import ServerKind

CACHE_FORMAT = "1"  # bump when the template layout changes, so old templates are not reused
_PROJECT_COMMENT = "pytest-schemasync template of project "
_LIBRARIES_LINE = "extension libraries: "  # second line of the comment, for preloading


def content_hash(schema_set: SchemaSet, files: list[Path], server_major: int,
                 extra: tuple[str, ...] = ()) -> str:
    """Hash of everything that shapes a template: paths, bytes, order, server major."""
    digest = hashlib.sha256()
    digest.update(f"schemasync:{CACHE_FORMAT}:pg{server_major}:{schema_set.name}\n".encode())
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Template:
    name: str
    set_name: str
    before: str | None
    from_cache: bool
    seconds: float
    database: str = ""  # the databases' properties, one line (dbprops.describe)


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
            style = HistoryRules.of(schema_set).style
            migrations = discover(schema_set.migrations, schema_set.origin(schema_set.migrations),
                                  style)
            migrations = select_before(migrations, before, style)
        elif before is not None:
            raise ConfigError(
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
        props = dbprops.for_set(self.schema_set)
        extra = () if props.empty else (props.hash_text(),)  # unchanged names without any
        roles = tuple(f"role={r}" for r in self.schema_set.roles)  # a changed role rebuilds
        return content_hash(self.schema_set, paths, major,
                            extra=(f"before={self.before}", *extra, *roles))

    def sources(self) -> list[tuple[Path, str]]:
        """(path, origin) of every file a build of this plan may run."""
        folder = f"migrations folder {self.schema_set.migrations}"
        return ([(p, self.schema_set.origin(p)) for p in self.files]
                + [(m.path, folder) for m in self.migrations])


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:4]


class TemplateStore:
    """Builds templates, or finds them already built, for one process."""

    def __init__(self, admin: ServerAdmin, settings: Settings, psql: Path, *,
                 exclusive: bool) -> None:
        self.admin = admin
        self.settings = settings
        self.psql = psql
        self.exclusive = exclusive  # we own the whole cluster, so stale templates are ours
        self._known: dict[tuple[str, str | None], Template] = {}
        # template -> database settings every clone of it gets (TEMPLATE does not copy them)
        self.clone_settings: dict[str, tuple[tuple[str, str], ...]] = {}
        # template -> (set, its properties) for the role-level settings every clone gets
        self.clone_roles: dict[str, tuple[str, dbprops.DatabaseProps]] = {}
        self.roles_created: dict[str, list[str]] = {}  # set -> roles its build created
        # Called with (set, template name) right after a build, still under the build lock:
        # the bundled catalog snapshot is taken and stored with the template there.
        self.on_built: Callable[[SchemaSet, str], None] | None = None
        self.progress: BuildProgress | None = None  # set where a terminal shows it

    @property
    def _project_prefix(self) -> str:
        return f"{TEMPLATE}_{self.settings.project_key}_"

    def name(self, set_name: str, digest: str, before: str | None = None) -> str:
        """At most 54 bytes (PostgreSQL cuts names at 63, which would cut off the digest),
        and a different prefix for every set and migration point (stale templates are
        found by prefix)."""
        slug = set_name if len(set_name) <= 24 else f"{set_name[:19]}~{_short(set_name)}"
        if before is not None:
            slug += f".b{before}" if len(before) <= 6 else f".b{_short(before)}"
        return f"{self._project_prefix}{slug}_{digest[:10]}"

    def get(self, set_name: str | None = None, before: str | None = None,
            *, rebuild: bool = False) -> Template:
        """The template of a configured set (remembered for the rest of the process)."""
        schema_set = self.settings.schema_set(set_name)
        key = (schema_set.name, before)
        if key not in self._known or rebuild:
            self._known[key] = self.ensure(schema_set, before, rebuild=rebuild)
        return self._known[key]

    def ensure(self, schema_set: SchemaSet, before: str | None = None, *,
               rebuild: bool = False, remember: bool = True) -> Template:
        """Find or build the template of ``schema_set`` as its files are now. Without
        ``remember`` (a refresh reading old or staged files) other templates of the set are
        left alone, and the process keeps using the set's template it had."""
        plan = BuildPlan.for_set(schema_set, before)
        name = self.name(schema_set.name, plan.digest(self.admin.server.major), before)
        started = time.perf_counter()
        # Before the build: the clone on_built reads the new template through needs them.
        props = dbprops.for_set(schema_set)
        self.clone_settings[name] = props.settings
        if props.role_settings:
            self.clone_roles[name] = (schema_set.name, props)
        with self.admin.advisory(lock_key(name)):
            row = self.admin.conn.execute(
                "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
            cached = bool(row and row[0]) and not rebuild
            if not cached:
                self._build(plan, name)
                if self.on_built is not None and before is None:
                    self.on_built(schema_set, name)
            if remember and self.exclusive:  # e.g. one built by a refresh's proof
                self._drop_stale(name)
        read = dbprops.read(self.admin.conn, self.admin.server.major, name)
        # Role-level settings go on each clone, not on the template: the declared ones.
        database = dbprops.describe(replace(read, role_settings=props.role_settings))
        return Template(name, schema_set.name, before, cached, time.perf_counter() - started,
                        database)

    def _build(self, plan: BuildPlan, name: str) -> None:
        build = f"{BUILDING}_{name[4:]}_{os.getpid()}"  # <= 54 + 8 bytes
        admin = self.admin
        roles = RoleBuild(admin.conn, admin.server, plan.schema_set, plan.sources(), name,
                          database=build)
        roles.check()  # refusals, before anything runs
        admin.drop(build)
        dbprops.create_database(admin.conn, build, dbprops.for_set(plan.schema_set),
                                admin.server.major, plan.schema_set.name)
        target = InstallTarget(admin.server, build, self.psql)
        schema_set = plan.schema_set
        progress = self.progress
        if progress is not None:
            progress.start(schema_set.name)

        def report(path: Path, index: int, count: int, what: str = "file") -> Progress | None:
            shown = str(self.settings.shown(path))
            return progress.file(shown, index, count, what) if progress is not None else None

        guard = ClusterGuard(admin.conn, admin.server.user, build,
                             owned=admin.server.kind == ServerKind.EMBEDDED)
        subject = self._subject(plan)
        # Builds on one server take turns: each compares the cluster's global state before
        # and after itself (clusterguard), so another build's changes meanwhile would look
        # like its own. Taken inside the template's own lock (ensure), never around one.
        with admin.advisory(BUILD_LOCK):
            try:
                guard.snapshot(roles.used())  # roles.create() makes roles the build may own
                roles.create()
                for index, path in enumerate(plan.files, 1):
                    run_sql(target, path, roles.text(path), shown=roles.original(path),
                            set_name=schema_set.name, origin=schema_set.origin(path),
                            progress=report(path, index, len(plan.files)))
                pending, known = self._unrecorded(plan, build)
                for index, migration in enumerate(pending, 1):
                    run_migration(target, migration, applied_by="pytest-schemasync",
                                  script_path=str(self.settings.shown(migration.path)),
                                  rules=HistoryRules.of(schema_set), known=known,
                                  set_name=schema_set.name,
                                  origin=f"migrations folder {schema_set.migrations}",
                                  text=roles.text(migration.path),
                                  shown=roles.original(migration.path),
                                  progress=report(migration.path, index, len(pending), "migration"))
                guard.check(subject)  # dynamic SQL changed the cluster: reverted, and fails
                libraries = self._libraries_of(build)
                roles.record()
            except BaseException as exc:
                with contextlib.suppress(psycopg.Error):
                    admin.drop(build)
                roles.undo()  # after the database: its objects hold on to the roles
                changed = guard.revert_after_failure(subject)
                if changed is not None and isinstance(exc, Exception):  # say both
                    raise ClusterChangeError(
                        f"{changed}\n  The build also failed:\n{exc}") from None
                raise
            finally:
                if progress is not None:
                    progress.finish()
        self.roles_created[schema_set.name] = roles.created
        admin.drop(name)
        admin.conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}")
                           .format(sql.Identifier(build), sql.Identifier(name)))
        admin.conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true")
            .format(sql.Identifier(name)))
        admin.conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(
                _PROJECT_COMMENT + str(self.settings.root)
                + (f"\n{_LIBRARIES_LINE}{','.join(sorted(libraries))}" if libraries else ""))))
        admin.event(f"built template {name} set={schema_set.name} before={plan.before}")

    def _subject(self, plan: BuildPlan) -> str:
        files = ", ".join(str(self.settings.shown(p)) for p in plan.files)
        if plan.migrations:
            files += f" and the migrations in {self.settings.shown(plan.schema_set.migrations)}"
        return f"Building schema set {plan.schema_set.name!r} (files {files})"

    def _unrecorded(self, plan: BuildPlan, build: str) -> tuple[list[Migration], list[str]]:
        """The plan's migrations the base files do not already record, and the versions
        they do record.

        A refreshed dump of production carries production's ``schema_migrations`` rows (as
        Rails' structure.sql does): those migrations are in the dump already and must not run
        again; a recorded one whose file changed since is an edited migration.
        """
        if not plan.migrations:
            return [], []
        rules = HistoryRules.of(plan.schema_set)
        with psycopg.connect(self.admin.server.conninfo(build), autocommit=True) as conn:
            history = read_history(conn, rules.style) or []
        pending = unrecorded(list(plan.migrations), history, rules,
                             plan.before, f"the base files of set {plan.schema_set.name!r}")
        return pending, [a.version for a in history]

    # --- extension libraries, for preloading -------------------------------------------

    def _libraries_of(self, dbname: str) -> set[str]:
        """The C libraries of the extensions installed in ``dbname`` ($libdir/ ones); only
        the embedded server can preload them."""
        if self.admin.server.kind != ServerKind.EMBEDDED:
            return set()
        try:
            with psycopg.connect(self.admin.server.conninfo(dbname), autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT DISTINCT substr(p.probin, 9) FROM pg_proc p JOIN pg_depend d ON "
                    "d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e' "
                    "WHERE starts_with(p.probin, '$libdir/')").fetchall()
        except psycopg.Error:
            return set()  # only a speed-up
        return {row[0] for row in rows}

    def libraries(self) -> set[str]:
        """The extension libraries this project's templates recorded when they were built."""
        libraries: set[str] = set()
        for (comment,) in self.admin.conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE starts_with(datname, %s)", (self._project_prefix,)):
            for line in (comment or "").split("\n")[1:]:
                if line.startswith(_LIBRARIES_LINE):
                    libraries.update(n for n in line.removeprefix(_LIBRARIES_LINE).split(",") if n)
        return libraries

    # --- removing templates --------------------------------------------------------------

    def _drop_stale(self, current: str) -> None:
        prefix = current[: current.rfind("_") + 1]
        for other in self.admin.names("starts_with(datname, %s) AND datname <> %s",
                                      prefix, current):
            if re.fullmatch(r"[0-9a-f]{10}", other[len(prefix):]):  # same set and point
                self.admin.drop(other)

    def drop_leftovers(self) -> list[str]:
        """In a cluster we own: half-built templates (a killed build) and the templates of
        projects whose folder is gone (a deleted clone), which only cost RAM."""
        dropped = self.admin.names(f"datname LIKE '{BUILDING}\\_%'")
        for name, comment in self.admin.conn.execute(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                f"WHERE datname LIKE '{TEMPLATE}\\_%'").fetchall():
            project = (comment or "").split("\n", 1)[0].removeprefix(_PROJECT_COMMENT)
            if comment and comment.startswith(_PROJECT_COMMENT) and not Path(project).exists():
                dropped.append(name)
        for name in dropped:
            self.admin.drop(name)
        return dropped

    def drop_project(self) -> list[str]:
        """Drop this project's templates (the next session builds them again)."""
        dropped = self.admin.names("starts_with(datname, %s)", self._project_prefix)
        for name in dropped:
            with self.admin.advisory(lock_key(name)):  # not while a session builds it
                self.admin.drop(name)
        self._known.clear()
        return dropped
