"""The cluster's global state around a template build: read before and after, changes reverted
and the build failed.

``install.refuse_cluster_statements`` refuses what a file says in words; dynamic SQL
(``EXECUTE 'ALTER ROLE ' || current_user || ...``, a function called later, an extension)
gets past any static scan, and the build runs as a superuser (extensions such as PostGIS need
one). So the build also compares a few shared catalogs before and after, on the admin
connection: databases, tablespaces, the roles that existed before it (attributes,
memberships, settings; always our own superuser) and the configuration files (ALTER SYSTEM).
Roles the set uses are the build's to change (as they are in plain SQL), and roles the build
created are roles.py's. What a superuser session did to the host (COPY ... PROGRAM, reading
files) leaves no trace here: that is refused statically or not at all (README).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from .dbprops import LIST_SETTINGS, split_list
from .errors import SchemaInstallError
from .names import BUILDING, CLONE, ROLLBACK, TEMPLATE
from .roles import MARK, ROLES_LOCK

_OURS = (f"{TEMPLATE}_", f"{BUILDING}_", f"{CLONE}_", f"{ROLLBACK}_")
_SESSION = (f"{BUILDING}_", f"{CLONE}_", f"{ROLLBACK}_")  # come and go during any build

# One round trip. Roles come from pg_authid where we may read it (the password too).
_STATE = """
SELECT
 (SELECT json_agg(json_build_array(oid::int8, datname, datdba::regrole::text, datistemplate,
         datallowconn, datconnlimit, datacl::text)) FROM pg_catalog.pg_database),
 (SELECT json_agg(json_build_array(oid::int8, spcname, spcowner::regrole::text, spcacl::text,
         spcoptions)) FROM pg_catalog.pg_tablespace),
 (SELECT json_agg(json_build_array(oid::int8, rolname, rolsuper, rolinherit, rolcreaterole,
         rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit,
         rolvaliduntil, {password}, shobj_description(oid, 'pg_authid')))
  FROM pg_catalog.{roles}),
 (SELECT json_agg(json_build_array(roleid::int8, member::int8, admin_option))
  FROM pg_catalog.pg_auth_members),
 (SELECT json_agg(json_build_array(setdatabase::int8, setrole::int8, setconfig))
  FROM pg_catalog.pg_db_role_setting)
"""
_FILES = ("SELECT json_agg(json_build_array(sourcefile, name, setting, error) "
          "ORDER BY sourcefile, seqno) FROM pg_catalog.pg_file_settings")
_AUTO_CONF = "postgresql.auto.conf"
_ATTRIBUTES = ("SUPERUSER", "INHERIT", "CREATEROLE", "CREATEDB", "LOGIN", "REPLICATION",
               "BYPASSRLS")

_DATABASE = ("name", "owner", "is_template", "allow_connections", "connection_limit",
             "privileges")
_ROLE = ("name", *_ATTRIBUTES, "connection_limit", "valid_until", "password")


@dataclass
class State:
    databases: dict[int, list[Any]]
    tablespaces: dict[int, list[Any]]
    roles: dict[int, list[Any]]
    members: set[tuple[int, int, bool]]
    settings: dict[tuple[int, int], list[str]]
    files: list[list[Any]] | None  # None: pg_file_settings is not readable for us


def read_state(conn: psycopg.Connection[Any], authid: bool) -> State:
    query = _STATE.format(password="rolpassword" if authid else "NULL",
                          roles="pg_authid" if authid else "pg_roles")
    row = conn.execute(query).fetchone()
    assert row is not None
    databases, tablespaces, roles, members, settings = (r or [] for r in row)
    files: list[list[Any]] | None
    try:
        found = conn.execute(_FILES).fetchone()
        files = (found[0] if found else None) or []
    except psycopg.errors.InsufficientPrivilege:
        files = None
    return State({d[0]: d[1:] for d in databases}, {t[0]: t[1:] for t in tablespaces},
                 {r[0]: r[1:] for r in roles}, {(m[0], m[1], m[2]) for m in members},
                 {(s[0], s[1]): s[2] for s in settings}, files)


def _may_read_authid(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles "
                       "WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


@dataclass
class Change:
    what: str  # e.g. "settings of role schemasync (the plugin's own superuser): ..."
    undo: list[sql.Composable] = field(default_factory=list)  # empty: cannot be reverted
    reverted: bool = False


class ClusterChangeError(SchemaInstallError):
    """A build changed the cluster's global state (through dynamic SQL: nothing refused it
    before the build)."""


@dataclass
class ClusterGuard:
    """``snapshot()`` before a build's files run, ``check()`` after them (raises), or
    ``revert_after_failure()`` when the build failed."""

    conn: psycopg.Connection[Any]
    superuser: str  # the role the plugin builds with
    build: str  # the build database (the build may do anything to it)
    owned: bool = True  # the embedded cluster (not a server others use)
    used: set[str] = field(default_factory=set)  # roles the set's files or roles key use
    before: State | None = None
    _authid: bool = False

    def snapshot(self, used: set[str]) -> None:
        self.used = set(used) - {self.superuser}
        self._authid = _may_read_authid(self.conn)
        # Under the roles lock: no other build is between creating a role and recording
        # (or dropping) it, so every role seen now is settled.
        self.conn.execute("SELECT pg_advisory_lock(%s, %s)", ROLES_LOCK)
        try:
            self.before = read_state(self.conn, self._authid)
        except psycopg.errors.InsufficientPrivilege:
            self.before = None  # nothing to compare with: no audit on this server
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", ROLES_LOCK)

    def changes(self) -> list[Change]:
        if self.before is None:
            return []
        after = read_state(self.conn, self._authid)
        audit = _Audit(self.before, after, self.superuser, self.build, self.used, self.owned)
        return audit.run()

    def check(self, subject: str) -> None:
        """Fail the build (after reverting) when it changed the cluster."""
        found = self.changes()
        self.before = None
        if found:
            self._revert(found)
            raise ClusterChangeError(describe(found, subject, self.superuser))

    def revert_after_failure(self, subject: str) -> ClusterChangeError | None:
        """A failed build may have changed the cluster before it failed: revert that too."""
        try:
            found = self.changes()
        except psycopg.Error:
            return None
        self.before = None
        if not found:
            return None
        self._revert(found)
        return ClusterChangeError(describe(found, subject, self.superuser))

    def _revert(self, found: list[Change]) -> None:
        reload = False
        for change in found:
            if not change.undo:
                continue
            try:
                for statement in change.undo:
                    self.conn.execute(statement)
                change.reverted = True
            except psycopg.Error as exc:
                change.what += f" (reverting failed: {str(exc).strip().splitlines()[0]})"
            reload = reload or any("ALTER SYSTEM" in s.as_string(self.conn)
                                   for s in change.undo)
        if reload:
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("SELECT pg_catalog.pg_reload_conf()")


def describe(found: list[Change], subject: str, superuser: str) -> str:
    lines = [f"{subject} changed the cluster, which every project and session using this "
             f"server shares:"]
    for change in found:
        state = "reverted" if change.reverted else "NOT reverted, fix it by hand"
        lines.append(f"  - {change.what} [{state}]")
    lines.append(
        "  No statement says so in words (those are refused before the build with file:line), "
        "so it was dynamic SQL: EXECUTE of a built string, a function the files call, or an "
        "extension. The build as a whole did it; find that statement in the files above and "
        f"remove it. Builds run as {superuser!r}; see README \"What a build may not do\".")
    return "\n".join(lines)


@dataclass
class _Audit:
    before: State
    after: State
    superuser: str
    build: str
    used: set[str]
    owned: bool  # the embedded cluster: nobody but our sessions uses it
    found: list[Change] = field(default_factory=list)

    def run(self) -> list[Change]:
        self._databases()
        self._tablespaces()
        self._roles()
        self._settings()
        self._files()
        return self.found

    # --- databases -------------------------------------------------------------------

    def _databases(self) -> None:
        before, after = self.before.databases, self.after.databases
        for oid, row in after.items():
            if oid not in before and not row[0].startswith(_OURS):
                # On a server others use it may be theirs, made meanwhile: never dropped there.
                drop = [sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(row[0]))] if self.owned else []
                self.found.append(Change(f"database {row[0]} was created", drop))
        for oid, old in before.items():
            name = old[0]
            if name == self.build or name.startswith(_SESSION):
                continue
            new = after.get(oid)
            if new is None:
                if not name.startswith(_OURS):  # templates are dropped by clean, stale builds
                    self.found.append(Change(f"database {name} was dropped"))
                continue
            if name.startswith(_OURS) and new[2] is False and old[2] is True:
                continue  # a template on its way out (admin.drop clears IS_TEMPLATE first)
            if new != old:
                self.found.append(Change(f"database {name}: {_diff(_DATABASE, old, new)}",
                                         _database_undo(old, new)))

    def _tablespaces(self) -> None:
        before, after = self.before.tablespaces, self.after.tablespaces
        for oid, row in after.items():
            if oid not in before:
                self.found.append(Change(f"tablespace {row[0]} was created", [sql.SQL(
                    "DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(row[0]))]))
        for oid, old in before.items():
            new = after.get(oid)
            if new is None:
                self.found.append(Change(f"tablespace {old[0]} was dropped"))
            elif new != old:
                undo: list[sql.Composable] = []
                if new[0] != old[0]:
                    undo.append(sql.SQL("ALTER TABLESPACE {} RENAME TO {}").format(
                        sql.Identifier(new[0]), sql.Identifier(old[0])))
                if new[1] != old[1]:
                    undo.append(sql.SQL("ALTER TABLESPACE {} OWNER TO {}").format(
                        sql.Identifier(old[0]), sql.SQL(old[1])))
                if new[2] != old[2] or new[3] != old[3]:
                    undo = []  # privileges and options: by hand
                self.found.append(Change(
                    f"tablespace {old[0]}: "
                    f"{_diff(('name', 'owner', 'privileges', 'options'), old, new)}", undo))

    # --- roles -----------------------------------------------------------------------

    def _audited(self) -> dict[int, list[Any]]:
        """Roles that existed before the build and are not the set's to change: the set may
        change the roles it names that the plugin created (as roles.py does), never our own
        superuser nor a role the plugin did not create."""
        return {oid: row for oid, row in self.before.roles.items()
                if row[0] == self.superuser or row[0] not in self.used
                or not (row[-1] or "").startswith(MARK)}

    def _label(self, name: str) -> str:
        own = " (the plugin's own superuser)" if name == self.superuser else ""
        return f"role {name}{own}"

    def _roles(self) -> None:
        audited = self._audited()
        after_names = {row[0] for row in self.after.databases.values()}
        for oid, old in audited.items():
            name = old[0]
            new = self.after.roles.get(oid)
            if new is None:
                comment = old[-1] or ""
                templates = {t for t in comment.removeprefix(MARK).split(",") if t}
                if comment.startswith(MARK) and not templates & after_names:
                    continue  # schemasync clean may drop it now: no template uses it
                self.found.append(Change(f"{self._label(name)} was dropped",
                                         self._recreate(oid, old)))
                continue
            if new[:-1] != old[:-1]:
                self.found.append(Change(
                    f"attributes of {self._label(name)}: {_diff(_ROLE, old[:-1], new[:-1])}",
                    _role_undo(old, new)))
        self._memberships(audited)

    def _memberships(self, audited: dict[int, list[Any]]) -> None:
        names = {oid: row[0] for oid, row in {**self.before.roles, **self.after.roles}.items()}
        touched = self.before.members ^ self.after.members
        for roleid, member, admin in sorted(touched):
            # Joining a role the files name (CREATE ROLE x IN ROLE app_reader) is theirs.
            if member not in audited and (roleid not in audited
                                          or names.get(roleid) in self.used):
                continue
            if roleid not in self.after.roles or member not in self.after.roles:
                continue  # a dropped role's memberships: restored with it
            role, who = names.get(roleid, str(roleid)), names.get(member, str(member))
            subject = self._label(who) if member in audited else self._label(role)
            grant = sql.SQL("GRANT {} TO {}" + (" WITH ADMIN OPTION" if admin else "")).format(
                sql.Identifier(role), sql.Identifier(who))
            revoke = sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role),
                                                         sql.Identifier(who))
            added = (roleid, member, admin) in self.after.members
            self.found.append(Change(
                f"memberships of {subject}: {who} {'made' if added else 'no longer'} a member "
                f"of {role}", [revoke] if added else [grant]))

    def _recreate(self, oid: int, old: list[Any]) -> list[sql.Composable]:
        name = old[0]
        undo: list[sql.Composable] = [sql.SQL("CREATE ROLE {} WITH {}").format(
            sql.Identifier(name), _attributes(old))]
        names = {o: r[0] for o, r in self.before.roles.items()}
        for roleid, member, admin in sorted(self.before.members):
            if member == oid and roleid in self.after.roles:
                undo.append(sql.SQL("GRANT {} TO {}" + (" WITH ADMIN OPTION" if admin else ""))
                            .format(sql.Identifier(names[roleid]), sql.Identifier(name)))
            elif roleid == oid and member in self.after.roles:
                undo.append(sql.SQL("GRANT {} TO {}" + (" WITH ADMIN OPTION" if admin else ""))
                            .format(sql.Identifier(name), sql.Identifier(names[member])))
        for (database, role), config in self.before.settings.items():
            if role == oid and (database == 0 or database in self.after.databases):
                target = self._setting_target(database, name)
                undo += [_set(target, entry) for entry in config]
        if old[-1]:
            undo.append(sql.SQL("COMMENT ON ROLE {} IS {}").format(
                sql.Identifier(name), sql.Literal(old[-1])))
        return undo

    # --- settings (ALTER ROLE/DATABASE ... SET) -------------------------------------

    def _setting_target(self, database: int, role: str | None) -> sql.Composable:
        db = self.after.databases.get(database) or self.before.databases.get(database)
        if role is None:
            return sql.SQL("ALTER DATABASE {}").format(sql.Identifier(db[0] if db else "?"))
        target = sql.SQL("ALTER ROLE {}").format(sql.Identifier(role))
        if database:
            target = sql.SQL("{} IN DATABASE {}").format(target, sql.Identifier(
                db[0] if db else "?"))
        return target

    def _settings(self) -> None:
        audited = self._audited()
        before, after = self.before.settings, self.after.settings
        for key in sorted(set(before) | set(after)):
            database, role = key
            if role and role not in audited:
                continue
            if role and role not in self.after.roles:
                continue  # a dropped role: restored with it
            db = self.before.databases.get(database)
            if database and (db is None or db[0] == self.build or db[0].startswith(_SESSION)
                             or database not in self.after.databases):
                continue
            old, new = before.get(key, []), after.get(key, [])
            if old == new:
                continue
            role_name = self.after.roles[role][0] if role else None
            target = self._setting_target(database, role_name)
            where = (self._label(role_name) if role_name else f"database {db[0] if db else '?'}")
            if role_name and database:
                where += f" in database {db[0] if db else '?'}"
            undo = [sql.SQL("{} RESET ALL").format(target), *(_set(target, e) for e in old)]
            self.found.append(Change(
                f"settings of {where}: {', '.join(new) or 'none'} (was {', '.join(old) or 'none'})",
                undo))

    # --- configuration files (ALTER SYSTEM) -----------------------------------------

    def _files(self) -> None:
        old, new = self.before.files, self.after.files
        if old is None or new is None or old == new:
            return
        auto_old = {r[1]: r[2] for r in old if str(r[0]).endswith(_AUTO_CONF) and r[1]}
        auto_new = {r[1]: r[2] for r in new if str(r[0]).endswith(_AUTO_CONF) and r[1]}
        other_old = [r for r in old if not str(r[0]).endswith(_AUTO_CONF)]
        other_new = [r for r in new if not str(r[0]).endswith(_AUTO_CONF)]
        if auto_old != auto_new:
            undo: list[sql.Composable] = []
            for name in sorted(set(auto_old) | set(auto_new)):
                if auto_old.get(name) == auto_new.get(name):
                    continue
                if name in auto_old:
                    undo.append(sql.SQL("ALTER SYSTEM SET {} = {}").format(
                        sql.Identifier(name), sql.Literal(auto_old[name])))
                else:
                    undo.append(sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name)))
            shown = ", ".join(f"{n}={auto_new.get(n, '(reset)')}" for n in sorted(
                set(auto_old) | set(auto_new)) if auto_old.get(n) != auto_new.get(n))
            self.found.append(Change(f"server configuration ({_AUTO_CONF}, ALTER SYSTEM): "
                                     f"{shown}", undo))
        if other_old != other_new:
            files = sorted({str(r[0]) for r in other_old} ^ {str(r[0]) for r in other_new}
                           or {str(r[0]) for r in other_new})
            self.found.append(Change(f"server configuration files changed: "
                                     f"{', '.join(files[:3])}"))


def _diff(labels: tuple[str, ...], old: list[Any], new: list[Any]) -> str:
    parts = [f"{label} changed" if label == "password" else  # never shown, even hashed
             f"{label} {json.dumps(a)} -> {json.dumps(b)}"
             for label, a, b in zip(labels, old, new, strict=False) if a != b]
    return "; ".join(parts)


def _database_undo(old: list[Any], new: list[Any]) -> list[sql.Composable]:
    if old[5] != new[5]:
        return []  # privileges: by hand
    current, name = sql.Identifier(new[0]), sql.Identifier(old[0])
    undo: list[sql.Composable] = []
    if new[0] != old[0]:
        undo.append(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(current, name))
    if new[1] != old[1]:
        undo.append(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, sql.SQL(old[1])))
    undo.append(sql.SQL(
        "ALTER DATABASE {} WITH IS_TEMPLATE {} ALLOW_CONNECTIONS {} CONNECTION LIMIT {}").format(
        name, sql.SQL(str(bool(old[2])).lower()), sql.SQL(str(bool(old[3])).lower()),
        sql.Literal(int(old[4]))))
    return undo


def _attributes(row: list[Any]) -> sql.Composable:
    words = [("" if on else "NO") + word for word, on in zip(_ATTRIBUTES, row[1:8], strict=True)]
    parts: list[sql.Composable] = [sql.SQL(" ".join(words)), sql.SQL(" CONNECTION LIMIT "),
                                   sql.Literal(int(row[8])), sql.SQL(" VALID UNTIL "),
                                   sql.Literal(row[9] or "infinity")]
    if row[10] is not None:
        parts += [sql.SQL(" PASSWORD "), sql.Literal(row[10])]
    return sql.Composed(parts)


def _role_undo(old: list[Any], new: list[Any]) -> list[sql.Composable]:
    undo: list[sql.Composable] = []
    if new[0] != old[0]:
        undo.append(sql.SQL("ALTER ROLE {} RENAME TO {}").format(
            sql.Identifier(new[0]), sql.Identifier(old[0])))
    attributes = _attributes(old)
    if old[10] is None and new[10] is not None:
        attributes = sql.Composed([attributes, sql.SQL(" PASSWORD NULL")])
    undo.append(sql.SQL("ALTER ROLE {} WITH {}").format(sql.Identifier(old[0]), attributes))
    return undo


def _set(target: sql.Composable, entry: str) -> sql.Composable:
    """``target SET name = value`` from a pg_db_role_setting entry ``name=value``."""
    name, _, value = entry.partition("=")
    if name in LIST_SETTINGS:
        items = [sql.Identifier(item) for item in split_list(value)]
        shown: sql.Composable = sql.SQL(", ").join(items) if items else sql.Literal("")
    else:
        shown = sql.Literal(value)
    return sql.SQL("{} SET {} = {}").format(target, sql.Identifier(name), shown)
