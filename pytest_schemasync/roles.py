"""Roles around a template build: made before it, recorded after it, dropped when unused.

Roles are global to a cluster; templates are not. So that no role leaks:

* Before a build, the roles the set's files refer to (``roledefs``) and the set's ``roles``
  key are created if missing (``NOLOGIN``, no privileges, unless the key says otherwise).
* A role the plugin creates carries a comment on the role itself (a shared catalog, so it
  lives exactly as long as the role, on the embedded cluster and on an existing server):
  ``pytest-schemasync role; templates: sst_a,sst_b``, the templates that use it.
* A failed build drops the roles it created (the build database goes first). Builds that touch
  roles hold one cluster-wide advisory lock, so the roles that appeared during the build are
  this build's.
* A file's own ``CREATE ROLE`` runs as written the first time; when the role is there already
  (an earlier build made it) it becomes ``ALTER ROLE``/``GRANT`` for a role we created, and is
  skipped for a role we did not create, which is never changed.
* ``schemasync clean`` drops the roles we created that no remaining template lists.

``apply_role`` is the one place a connection takes on a role (fixtures, sync or async).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from .config import RoleSpec, SchemaSet
from .errors import ConfigError, SchemaFileError, SchemaInstallError
from .install import read_schema_file, refuse_cluster_statements
from .roledefs import RoleCreation, RoleUse, role_list, scan_roles
from .server import ServerInfo

if TYPE_CHECKING:
    from .catalog import Snapshot
    from .databases import Database, DatabaseManager, Template

MARK = "pytest-schemasync role; templates: "
ROLES_LOCK = (0x5353, 0x524F4C45)  # (our namespace, "ROLE")
# The production superuser pg_dump names as owner; see README "Roles" for why it is made a
# NOLOGIN superuser on the embedded cluster.
PRODUCTION_SUPERUSER = "postgres"
_LIST_CLAUSES = (("in", "role"), ("in", "group"), ("role",), ("admin",), ("user",))


def recorded_roles(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """Roles the plugin created on this server -> the templates recorded as using them."""
    rows = conn.execute(
        "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles "
        "WHERE starts_with(shobj_description(oid, 'pg_authid'), %s)", (MARK,)).fetchall()
    return {name: {t for t in comment.removeprefix(MARK).split(",") if t}
            for name, comment in rows}


def _record(conn: psycopg.Connection[Any], role: str, templates: set[str]) -> None:
    conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
        sql.Identifier(role), sql.Literal(MARK + ",".join(sorted(templates)))))


def _existing(conn: psycopg.Connection[Any]) -> set[str]:
    return {r[0] for r in conn.execute("SELECT rolname FROM pg_catalog.pg_roles")}


@contextlib.contextmanager
def roles_lock(conn: psycopg.Connection[Any]) -> Iterator[None]:
    conn.execute("SELECT pg_advisory_lock(%s, %s)", ROLES_LOCK)
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", ROLES_LOCK)


@dataclass
class _File:
    path: Path
    origin: str
    text: str
    use: RoleUse


@dataclass
class RoleBuild:
    """One template build's roles: ``check()`` before anything runs, ``create()`` first thing
    in the build, ``text(path)`` for each file, then ``record()`` or, on failure (after the
    build database is dropped), ``undo()``."""

    admin: psycopg.Connection[Any]
    server: ServerInfo
    schema_set: SchemaSet
    sources: list[tuple[Path, str]]  # (path, origin) of every file the build may run
    template: str
    database: str = ""  # the build database
    created: list[str] = field(default_factory=list)  # by us before the build, in order
    _files: dict[Path, _File] = field(default_factory=dict)
    _use: RoleUse = field(default_factory=RoleUse)
    _locked: bool = False
    _before: set[str] = field(default_factory=set)
    _ours: dict[str, set[str]] = field(default_factory=dict)

    def check(self) -> None:
        """Read every file and refuse what a build may not run; nothing touches the server."""
        hazards: dict[str, str] = {}  # functions a later file may call
        for path, origin in self.sources:
            text = read_schema_file(path, origin)
            refuse_cluster_statements(path, text, self.server.user, hazards)
            use = scan_roles(text)
            self._use.merge(use)
            self._files[path] = _File(path, origin, text, use)

    def create(self) -> None:
        """Create the roles the files need (under the roles lock, held until record/undo)."""
        if not (self._use.touches_roles or self.schema_set.roles):
            return
        self.admin.execute("SELECT pg_advisory_lock(%s, %s)", ROLES_LOCK)
        self._locked = True
        self._before = _existing(self.admin)
        self._ours = recorded_roles(self.admin)
        for file in self._files.values():
            self._check_drops(file)
        try:
            self._create_needed()
        except psycopg.Error as exc:
            raise SchemaInstallError(self._creation_failed(exc)) from None
        self._lend_database()

    def _lend_database(self) -> None:
        """Files that switch to a role (SET ROLE app_owner, or pg_dump's SET SESSION
        AUTHORIZATION) create objects as it, which needs CREATE on schema public: in
        production that role owns the database. So it owns the build database while the
        files run (public belongs to pg_database_owner); record() gives it back."""
        switched = [r.name for r in self._use.referenced.values()
                    if r.how in ("set role", "set session authorization")]
        if switched and self.database:
            with contextlib.suppress(psycopg.Error):  # then the file's own error says why
                self.admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(self.database), sql.Identifier(switched[0])))

    def record(self) -> None:
        """After a good build: the roles this template uses that we created list it."""
        if not self._locked:
            return
        try:
            if self.database:
                self.admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO CURRENT_USER").format(
                    sql.Identifier(self.database)))
            now = _existing(self.admin)
            ours = recorded_roles(self.admin)
            used = self.used()
            for role in sorted((now - self._before) | (used & now & set(ours))):
                _record(self.admin, role, ours.get(role, set()) | {self.template})
            self.created = sorted(set(self.created) | (now - self._before))
        finally:
            self._unlock()

    def used(self) -> set[str]:
        """The roles the set's files and roles key name (the build may change them)."""
        return _named(self._use, self.schema_set)

    def original(self, path: Path) -> str:
        return self._files[path].text

    # --- before the build ---------------------------------------------------------------

    def _check_drops(self, file: _File) -> None:
        for line, names in file.use.drops:
            foreign = [n for n in names if n not in self._use.created]
            if foreign or not names:
                raise SchemaFileError(
                    f"{file.path}:{line}: DROP ROLE {', '.join(foreign or names)} is refused: "
                    f"roles belong to the whole cluster (other builds, projects and databases "
                    f"use them). The plugin creates the roles your files need and drops the "
                    f"ones it made with `schemasync clean`; remove the line. (DROP ROLE of a "
                    f"role the set creates again itself is allowed and skipped.)")

    def _create_needed(self) -> None:
        for spec in self.schema_set.roles:
            for member_of in spec.member_of:
                self._create(member_of)
            self._create(spec.name, spec)
        for name in sorted(self._use.needed):
            self._create(name)

    def _create(self, name: str, spec: RoleSpec | None = None) -> None:
        ident = sql.Identifier(name)
        exists = name in self._before or name in self.created
        if not exists:
            attributes = "NOLOGIN" if spec is None else spec.attributes
            if ((name == PRODUCTION_SUPERUSER or name in self._use.superusers)
                    and spec is None and self.server.kind == "embedded"):
                attributes = "NOLOGIN SUPERUSER"
            self.admin.execute(sql.SQL("CREATE ROLE {} " + attributes).format(ident))
            self.created.append(name)
        elif spec is not None and name in self._ours:
            # Ours: make it what the configuration says now (it may have been edited).
            self.admin.execute(sql.SQL("ALTER ROLE {} " + spec.attributes).format(ident))
        if spec is not None and (not exists or name in self._ours):
            for member_of in spec.member_of:
                self.admin.execute(sql.SQL("GRANT {} TO {}").format(
                    sql.Identifier(member_of), ident))

    def _creation_failed(self, exc: psycopg.Error) -> str:
        missing = [n for n in [*(s.name for s in self.schema_set.roles), *sorted(
            self._use.needed)] if n not in self._before and n not in self.created]
        shown = ", ".join(f"{n} ({self._where(n)})" for n in dict.fromkeys(missing))
        advice = ""
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            advice = (f" The server user {self.server.user!r} may not create roles: give it "
                      f"CREATEROLE, or create these roles on the server yourself.")
        return (f"Creating the roles schema set {self.schema_set.name!r} needs failed: "
                f"{str(exc).strip()}.{advice}\n  Roles still missing: {shown}")

    def _where(self, name: str) -> str:
        for file in self._files.values():
            ref = file.use.referenced.get(name)
            if ref is not None:
                return f"{ref.how} at {file.path}:{ref.line}"
        return "named in the set's roles"

    # --- the files ----------------------------------------------------------------------

    def text(self, path: Path) -> str:
        """The file's text as the build runs it (same lines): ``CREATE ROLE`` of a role that
        exists already made idempotent, ``DROP ROLE`` of a role the set recreates skipped."""
        file = self._files[path]
        if not self._locked:
            return file.text
        text = file.text
        for creation in file.use.created.values():
            if creation.name in self._before:
                replacement = (self._align(creation) if creation.name in self._ours else "")
                text = _replace_statement(text, creation.start_line, creation.text, replacement)
        for line, _names in file.use.drops:
            text = _blank_drop(text, line)
        return text

    def _align(self, creation: RoleCreation) -> str:
        """ALTER ROLE/GRANT statements that make an existing role what CREATE ROLE says."""
        ident = sql.Identifier(creation.name).as_string(self.admin)
        toks = list(creation.options)
        attributes: list[str] = []
        grants: list[str] = []
        i = 1 if toks and toks[0].is_word("with") else 0
        while i < len(toks):
            clause = next((c for c in _LIST_CLAUSES
                           if all(i + k < len(toks) and toks[i + k].is_word(w)
                                  for k, w in enumerate(c))), None)
            if clause is not None:
                names, i = role_list(toks, i + len(clause))
                for name, _ in names:
                    other = sql.Identifier(name).as_string(self.admin)
                    if clause[0] == "in":
                        grants.append(f"GRANT {other} TO {ident};")
                    else:
                        grants.append(f"GRANT {ident} TO {other}"
                                      + (" WITH ADMIN OPTION;" if clause[0] == "admin" else ";"))
                continue
            if toks[i].is_word("sysid"):
                i += 2
                continue
            if toks[i].kind == "punct" and toks[i].value == ";":
                break
            attributes.append(creation.text[toks[i].start:toks[i].end])
            i += 1
        head = f"ALTER ROLE {ident} WITH {' '.join(attributes)};" if attributes else ""
        return " ".join([head, *grants]).strip()

    # --- after the build ----------------------------------------------------------------

    def undo(self) -> None:
        """Drop the roles this build created (its database is gone by now)."""
        try:
            made = set(self.created)
            if self._locked and self._before:  # else roles never changed: _before is unknown
                with contextlib.suppress(psycopg.Error):
                    made |= _existing(self.admin) - self._before
            for role in sorted(made):
                with contextlib.suppress(psycopg.Error):
                    self.admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(
                        sql.Identifier(role)))
            self.created = []
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self._locked:
            self._locked = False
            with contextlib.suppress(psycopg.Error):
                self.admin.execute("SELECT pg_advisory_unlock(%s, %s)", ROLES_LOCK)


def _line_offset(text: str, line: int) -> int:
    pos = 0
    for _ in range(line - 1):
        pos = text.index("\n", pos) + 1
    return pos


def _replace_statement(text: str, start_line: int, statement: str, replacement: str) -> str:
    """Replace one statement by ``replacement`` on its first line, keeping the line count."""
    at = text.find(statement, _line_offset(text, start_line))
    if at < 0:
        return text
    newlines = statement.count("\n")
    return text[:at] + replacement + "\n" * newlines + text[at + len(statement):]


def _blank_drop(text: str, line: int) -> str:
    from .sqltext import split_statements

    for statement in split_statements(text):
        if statement.start_line == line and statement.kind == "sql":
            return _replace_statement(text, line, statement.text, "")
    return text


# --- cleaning up ---------------------------------------------------------------------


def drop_unused_roles(conn: psycopg.Connection[Any]) -> tuple[list[str], list[str]]:
    """Drop the roles we created that no existing template lists; prune the lists of those
    still in use. Returns (dropped, kept with a reason)."""
    dropped: list[str] = []
    problems: list[str] = []
    with roles_lock(conn):
        databases = {r[0] for r in conn.execute("SELECT datname FROM pg_catalog.pg_database")}
        building = {f"sst_{d[4:].rsplit('_', 1)[0]}" for d in databases if d.startswith("ssb_")}
        for role, templates in sorted(recorded_roles(conn).items()):
            alive = templates & (databases | building)  # a build renames ssb_ to sst_ last
            if alive:
                if alive != templates:
                    _record(conn, role, alive)
                continue
            try:
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
                dropped.append(role)
            except psycopg.Error as exc:
                problems.append(f"{role}: {str(exc).strip().splitlines()[0]}")
    return dropped, problems


# --- tests running as a role -------------------------------------------------------------


# SET ROLE does not apply the role's settings (only a login does): the role's settings in
# this database (ALTER ROLE r [IN DATABASE d] SET, the database's row winning) are set LOCAL
# first, as the superuser (a superuser-only setting could not be set after SET ROLE).
# The same rule as dbprops.read_role_settings, in SQL: it rides in the test's round trip.
_ROLE_SETTINGS_LOCAL = """SELECT pg_catalog.set_config(x.name, x.value, true) FROM (
SELECT DISTINCT ON (pg_catalog.lower(pg_catalog.split_part(c, '=', 1)))
       pg_catalog.split_part(c, '=', 1) AS name,
       pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1) AS value
FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c
WHERE s.setrole = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = {role})
  AND s.setdatabase IN (0, (SELECT d.oid FROM pg_catalog.pg_database d
                            WHERE d.datname = pg_catalog.current_database()))
ORDER BY pg_catalog.lower(pg_catalog.split_part(c, '=', 1)), s.setdatabase DESC) x"""


def role_statement(role: str | None) -> sql.Composed:
    """The role's settings in this database set LOCAL, then ``SET ROLE x`` (``RESET ROLE``
    for None): a transaction then behaves as a session of that role would. Sync and async
    fixtures run the same text."""
    if role is None:
        return sql.Composed([sql.SQL("RESET ROLE")])
    return sql.Composed([sql.SQL(_ROLE_SETTINGS_LOCAL).format(role=sql.Literal(role)),
                         sql.SQL("; SET ROLE "), sql.Identifier(role)])


def unknown_role(role: str | None, set_name: str) -> ConfigError:
    return ConfigError(
        f"role={role!r}: no such role in the test database of set {set_name!r}. Name it "
        f"in the set's roles = [...] (e.g. {{ name = \"{role}\", login = true }}) or use a "
        f"role the schema files refer to.")


def apply_role(conn: psycopg.Connection[Any], role: str | None, *, set_name: str) -> None:
    """Make ``conn`` act as ``role`` (grants and row-level security apply from now on)."""
    try:
        conn.execute(role_statement(role))
    except psycopg.errors.InvalidParameterValue:
        raise unknown_role(role, set_name) from None


def can_login(conn: psycopg.Connection[Any], role: str) -> bool | None:
    row = conn.execute("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s",
                       (role,)).fetchone()
    return None if row is None else bool(row[0])


@contextlib.contextmanager
def as_admin(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """``with as_admin(db):`` the superuser again on the same connection and transaction
    (to set up rows the test's role may not write), then back to the test's role."""
    row = conn.execute("SELECT current_user").fetchone()
    conn.execute("RESET ROLE")
    try:
        yield conn
    finally:
        if row is not None:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(row[0])))


def _option(value: str) -> str:
    """A value in libpq's ``options`` (spaces and backslashes escaped)."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


def server_as(server: ServerInfo, role: str, login: bool,
              settings: tuple[tuple[str, str], ...] = ()) -> ServerInfo:
    """How to connect as ``role``: as that user on the embedded server when it may log in
    (local connections are trusted there, and the server applies the role's settings);
    otherwise as the superuser with ``role`` and the role's ``settings`` set at connection
    start (``options=-c role=...``), which needs neither LOGIN nor a password."""
    from dataclasses import replace

    if login and server.kind == "embedded":
        return replace(server, user=role, password=None)
    options = " ".join([server.params.get("options", ""), f"-c role={_option(role)}",
                        *(f"-c {name}={_option(value)}" for name, value in settings)]).strip()
    return replace(server, params={**server.params, "options": options})


def database_as(manager: DatabaseManager, database: Database, role: str,
                set_name: str) -> Database:
    """``database`` reached as ``role`` (see ``server_as``)."""
    from .databases import Database

    login = can_login(manager.admin, role)
    if login is None:
        raise ConfigError(
            f"role={role!r}: no such role on the server for set {set_name!r}. Name it in the "
            f"set's roles = [...] (e.g. {{ name = \"{role}\", login = true }}) or use a role "
            f"the schema files refer to.")
    from .dbprops import read_role_settings

    found = dict(read_role_settings(manager.admin, (role,), database.name))
    server = server_as(manager.server, role, login, found.get(role, ()))
    return Database(database.name, server.url(database.name), server.conninfo(database.name),
                    role=role)


def header_lines(manager: DatabaseManager, templates: list[Template]) -> list[str]:
    """Session header: the roles builds created, and on an existing server the roles of
    pytest-schemasync that this session's templates use."""
    lines = [f"schemasync: set {name!r}: created roles {', '.join(made)}"
             for name, made in manager.templates.roles_created.items() if made]
    if manager.server.kind == "existing" and templates:
        try:
            recorded = recorded_roles(manager.admin)
        except psycopg.Error:
            return lines
        for template in templates:
            used = sorted(r for r, names in recorded.items() if template.name in names)
            if used:
                lines.append(
                    f"schemasync: set {template.set_name!r}: uses roles created on this server "
                    f"by pytest-schemasync: {', '.join(used)} (`schemasync clean` drops them "
                    f"once no template uses them)")
    return lines


# --- the check -------------------------------------------------------------------------

_ROLE_ROWS = """
SELECT pg_catalog.quote_ident(r.rolname), r.rolcanlogin, r.rolsuper, r.rolinherit,
       r.rolcreaterole, r.rolcreatedb, r.rolbypassrls,
       ARRAY(SELECT pg_catalog.quote_ident(g.rolname) FROM pg_catalog.pg_auth_members m
             JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1) AS member_of
FROM pg_catalog.pg_roles r WHERE r.rolname = ANY(%s::pg_catalog.text[])
"""


def set_roles(schema_set: SchemaSet, texts: Mapping[Path, str] | None = None) -> set[str]:
    """The roles a set uses: named by its files or its roles key (the production superuser,
    made a NOLOGIN superuser on purpose, left out). ``texts``: files' new contents (a
    refresh's), read instead of the files; a file not there yet names none."""
    use = RoleUse()
    for path in schema_set.files:
        if texts is not None and path in texts:
            scan_roles(texts[path], use)
        elif path.is_file():
            scan_roles(read_schema_file(path, schema_set.origin(path), scan=False), use)
    return _named(use, schema_set) - {PRODUCTION_SUPERUSER}


def _declared(schema_set: SchemaSet) -> set[str]:
    """The roles a set's ``roles`` key names, and the roles they are members of."""
    return {s.name for s in schema_set.roles} | {m for s in schema_set.roles
                                                 for m in s.member_of}


def _named(use: RoleUse, schema_set: SchemaSet) -> set[str]:
    """The roles files (as scanned into ``use``) and the set's ``roles`` key name."""
    return (set(use.referenced) | set(use.created) | use.created_in_blocks
            | _declared(schema_set))


def keep_set_role_settings(snap: Snapshot, schema_set: SchemaSet,
                           texts: Mapping[Path, str] | None = None) -> Snapshot:
    """Keep the role-level settings of the roles ``schema_set`` uses (``texts``: its files'
    new contents, a refresh's) in ``snap`` and add them as ``database`` objects. Filtered by
    name, so both sides of a comparison keep the same roles; the files are scanned only when
    a role with settings is not in the set's ``roles`` key (most sets: no role has any)."""
    from dataclasses import replace

    from .catalog import CatalogObject
    from .dbprops import role_setting_objects

    found = {role for role, _ in snap.database.role_settings}
    declared = _declared(schema_set)
    used = found & declared if found <= declared else found & set_roles(schema_set, texts)
    used.discard(PRODUCTION_SUPERUSER)
    kept = replace(snap.database, role_settings=tuple(
        (role, settings) for role, settings in snap.database.role_settings if role in used))
    snap.database = kept
    for identity, definition in role_setting_objects(kept):
        snap.objects[("database", identity)] = CatalogObject("database", identity, definition)
    return snap


def role_objects(conn: psycopg.Connection[Any], names: set[str]) -> dict[tuple[str, str], Any]:
    """Catalog objects (kind "role") for the attributes and memberships of ``names``; only
    SELECTs, so production may be read with it."""
    from .catalog import CatalogObject

    objects: dict[tuple[str, str], Any] = {}
    for row in conn.execute(_ROLE_ROWS, (sorted(names),)).fetchall():
        name, login, superuser, inherit, createrole, createdb, bypassrls, member_of = row
        words = [("LOGIN" if login else "NOLOGIN"), ("SUPERUSER" if superuser else
                                                      "NOSUPERUSER"),
                 ("INHERIT" if inherit else "NOINHERIT"),
                 ("CREATEROLE" if createrole else "NOCREATEROLE"),
                 ("CREATEDB" if createdb else "NOCREATEDB"),
                 ("BYPASSRLS" if bypassrls else "NOBYPASSRLS")]
        definition = f"ROLE {name} {' '.join(words)}\nmember of: {', '.join(member_of) or '-'}"
        objects[("role", name)] = CatalogObject("role", name, definition)
    return objects
