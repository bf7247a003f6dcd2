"""Database-level properties: encoding, locale and the settings stored on the database itself.

They are not inside the schema, yet they change what queries return: ``ORDER BY name`` sorts
by the database's collation, ``now()::date`` depends on its ``TimeZone``, an unqualified name
resolves through its ``search_path``. A set declares them (``[tool.schemasync.sets.NAME.database]``
in pyproject.toml, or the file a refresh writes next to the schema file); templates are
created with them, and every clone gets the settings again, because
``CREATE DATABASE ... TEMPLATE`` copies the locale but not ``ALTER DATABASE ... SET``.

The check reads the same properties from both sides (``read``, inside the snapshot's
read-only transaction) and reports them as objects of kind ``database``.

Role-level settings (``ALTER ROLE r [IN DATABASE d] SET ...``, ``pg_db_role_setting`` rows
with a role) are read for every role (a handful of rows): what a session of that role gets
in this database, a row ``IN DATABASE`` overriding the role-wide one. The check keeps those
of the roles the set uses (``roles.keep_set_role_settings``, which scans the files only when
a role with settings is not in the set's ``roles`` key) and names them
``setting NAME for role ROLE``. A set declares them in a ``role-settings`` table; test
databases get them per database (``ALTER ROLE r IN DATABASE <clone> SET``), so nothing global
changes on a shared server, and ``DROP DATABASE`` removes them with the clone.

Nothing here imports psycopg at module level: config.py parses the table when pytest loads.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    from .config import SchemaSet

# Config key -> (attribute, first PostgreSQL major that has it as a CREATE DATABASE option).
_KEYS: dict[str, tuple[str, int]] = {
    "encoding": ("encoding", 12),
    "locale-provider": ("locale_provider", 15),
    "icu-locale": ("icu_locale", 15),
    "icu-rules": ("icu_rules", 16),
    "builtin-locale": ("builtin_locale", 17),
    "lc-collate": ("lc_collate", 12),
    "lc-ctype": ("lc_ctype", 12),
}
PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}
# Settings whose value is a list that ALTER ... SET must get element by element: one quoted
# string would be one element (pg_dump keeps the same list, variable_is_guc_list_quote).
LIST_SETTINGS = {"search_path", "temp_tablespaces", "session_preload_libraries",
                 "shared_preload_libraries", "local_preload_libraries",
                 "unix_socket_directories"}
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$")
# Server-wide settings that change query results: shown as warnings when the two servers
# differ (a database-level setting of the same name overrides them, and is drift instead).
SERVER_SETTINGS = ("DateStyle", "IntervalStyle", "TimeZone", "standard_conforming_strings",
                   "default_transaction_isolation", "search_path")
FILE_SUFFIX = ".database.toml"
# Database settings can hold secrets (Supabase keeps its JWT secret in
# app.settings.jwt_secret): their values are never shown, compared or recorded, only whether
# they are set. A refresh records MASK, or the test value already in the file.
_SECRET_SETTING = re.compile(r"secret|passw|pwd|token|credential|private|api_?key", re.I)
MASK = "****"


def is_secret(name: str) -> bool:
    return _SECRET_SETTING.search(name) is not None


def _shown(name: str, value: str) -> str:
    return MASK if is_secret(name) else value


@dataclass(frozen=True)
class DatabaseProps:
    """What a database is created with; None = the server's default (template0's)."""

    encoding: str | None = None
    locale_provider: str | None = None  # libc | icu | builtin
    icu_locale: str | None = None
    icu_rules: str | None = None
    builtin_locale: str | None = None
    lc_collate: str | None = None
    lc_ctype: str | None = None
    settings: tuple[tuple[str, str], ...] = ()  # (name, value as ALTER DATABASE SET takes it)
    # (role, its settings in this database) sorted by role; settings as in ``settings``
    role_settings: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    source: str = "server default"  # where they were declared, for messages

    @property
    def empty(self) -> bool:
        return not self.settings and not self.role_settings and all(
            getattr(self, attr) is None for attr, _ in _KEYS.values())

    def hash_text(self) -> str:
        """What the template's content hash covers (not where it was declared)."""
        items = [f"{key}={getattr(self, attr)}" for key, (attr, _) in _KEYS.items()]
        items += [f"set {name}={value}" for name, value in self.settings]
        items += [f"role {role} set {name}={value}"  # none: the hash of #12's sets, unchanged
                  for role, settings in self.role_settings for name, value in settings]
        return "database:" + "\n".join(items)


# --- declaring: pyproject table or the file a refresh writes -----------------------------


def _text(value: Any, key: str, where: str) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, str | int | float):
        return str(value)
    raise ConfigError(f"{where}: {key} must be a string or a number, not {value!r}.")


def parse(table: Mapping[str, Any], where: str) -> DatabaseProps:
    """A ``database`` table (pyproject) or a whole properties file, validated."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: 'database' must be a table of database properties.")
    unknown = sorted(set(table) - set(_KEYS) - {"settings", "role-settings"})
    if unknown:
        raise ConfigError(f"{where}: unknown database propert{'ies' if len(unknown) > 1 else 'y'}"
                          f" {unknown}; known: {', '.join([*_KEYS, 'settings', 'role-settings'])}.")
    values: dict[str, Any] = {}
    for key, (attr, _) in _KEYS.items():
        if key in table:
            if not isinstance(table[key], str) or not table[key].strip():
                raise ConfigError(f"{where}: database {key} must be a non-empty string, "
                                  f"not {table[key]!r}.")
            values[attr] = table[key]
    provider = values.get("locale_provider")
    if provider is not None and provider not in PROVIDERS.values():
        raise ConfigError(f"{where}: database locale-provider must be libc, icu or builtin, "
                          f"not {provider!r}.")
    if "icu_locale" in values and provider != "icu":
        raise ConfigError(f"{where}: database icu-locale needs locale-provider = \"icu\".")
    if "builtin_locale" in values and provider != "builtin":
        raise ConfigError(f"{where}: database builtin-locale needs locale-provider = "
                          f"\"builtin\".")
    pairs = _settings(table.get("settings", {}), where, "database settings")
    roles = table.get("role-settings", {})
    if not isinstance(roles, Mapping):
        raise ConfigError(f"{where}: database role-settings must be a table of roles, e.g. "
                          f"[...database.role-settings.app_user] search_path = \"app, public\".")
    by_role = []
    for role, settings in sorted(roles.items()):
        if not role or "\0" in role:
            raise ConfigError(f"{where}: {role!r} in role-settings is not a role name.")
        by_role.append((role, _settings(settings, where, f"role-settings of role {role}")))
    return DatabaseProps(**values, settings=pairs, role_settings=tuple(by_role), source=where)


def _settings(settings: Any, where: str, what: str) -> tuple[tuple[str, str], ...]:
    """A table of setting name -> value, validated and sorted by name (case ignored)."""
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{where}: {what} must be a table, e.g. "
                          f"settings = {{ timezone = \"UTC\" }}.")
    seen: dict[str, str] = {}
    pairs = []
    for name, value in settings.items():
        if not _SETTING_NAME.match(name):
            raise ConfigError(f"{where}: {name!r} is not a PostgreSQL setting name.")
        if name.lower() in seen:
            raise ConfigError(f"{where}: setting {name!r} is given twice (also as "
                              f"{seen[name.lower()]!r}); setting names ignore case.")
        seen[name.lower()] = name
        pairs.append((name, _text(value, f"setting {name}", where)))
    pairs.sort(key=lambda p: p[0].lower())
    return tuple(pairs)


def file_of(schema_set: SchemaSet) -> Path | None:
    """Where a refresh records the set's properties: ``database-file``, else next to the
    main schema file (``db/schema.sql`` -> ``db/schema.database.toml``)."""
    if schema_set.database_file is not None:
        return schema_set.database_file
    main = schema_set.schema_file
    return main.with_name(main.stem + FILE_SUFFIX) if main is not None else None


def for_set(schema_set: SchemaSet) -> DatabaseProps:
    """The properties the set's databases are created with."""
    path = file_of(schema_set)
    recorded = path is not None and path.is_file()
    if schema_set.database is not None:
        if recorded:
            raise ConfigError(
                f"Schema set {schema_set.name!r} declares its database properties twice: in "
                f"{schema_set.database.source} and in {path}. Keep one: delete the file, or "
                f"the [tool.schemasync.sets.{schema_set.name}.database] table (a refresh "
                f"keeps the file up to date).")
        return schema_set.database
    if not recorded:
        return DatabaseProps()
    assert path is not None
    shown = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read the database properties of set "
                          f"{schema_set.name!r}: {exc}. Fix the file, or delete it and run "
                          f"`schemasync refresh` to write it again.") from None
    return parse(data, str(shown))


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_string(name)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'


def for_recording(props: DatabaseProps, previous: DatabaseProps | None = None
                  ) -> DatabaseProps:
    """``props`` without secret values: each becomes the value ``previous`` recorded (a test
    value someone put there) or MASK, so production's never reaches the repository."""
    kept = {n.lower(): v for n, v in previous.settings} if previous is not None else {}
    kept_by_role = {(r, n.lower()): v for r, s in previous.role_settings
                    for n, v in s} if previous is not None else {}
    return replace(props, settings=tuple(
        (n, kept.get(n.lower(), MASK) if is_secret(n) else v) for n, v in props.settings),
        role_settings=tuple((r, tuple((n, kept_by_role.get((r, n.lower()), MASK)
                                       if is_secret(n) else v) for n, v in s))
                            for r, s in props.role_settings))


def to_toml(props: DatabaseProps, table: str | None = None) -> str:
    """The file a refresh writes: fixed order, no timestamp (two refreshes, same bytes);
    with ``table``, the same as that pyproject table."""
    lines = [f"[{table}]"] if table else [
        "# Database properties of production, recorded by pytest-schemasync's refresh.",
        "# Test databases are created with them (encoding and locale) and get the settings.",
    ]
    lines += [f"{key} = {_toml_string(getattr(props, attr))}"
              for key, (attr, _) in _KEYS.items() if getattr(props, attr) is not None]
    if props.settings:
        lines += ["", f"[{table}.settings]" if table else "[settings]"]
        lines += [f"{_toml_key(name)} = {_toml_string(value)}" for name, value in props.settings]
    for role, settings in props.role_settings:
        head = f"role-settings.{_toml_key(role)}"
        lines += ["", f"[{table}.{head}]" if table else f"[{head}]"]
        lines += [f"{_toml_key(name)} = {_toml_string(value)}" for name, value in settings]
    return "\n".join(lines) + "\n"


def effective(declared: DatabaseProps, server_default: DatabaseProps) -> DatabaseProps:
    """What a database created with ``declared`` gets on a server whose template0 has
    ``server_default`` (the encoding is UTF8 unless declared: see create_database_sql)."""
    locale_from = declared if declared.locale_provider is not None else server_default
    return DatabaseProps(
        encoding=_encoding(declared.encoding or "UTF8"),
        locale_provider=locale_from.locale_provider, icu_locale=locale_from.icu_locale,
        icu_rules=locale_from.icu_rules, builtin_locale=locale_from.builtin_locale,
        lc_collate=declared.lc_collate or server_default.lc_collate,
        lc_ctype=declared.lc_ctype or server_default.lc_ctype,
        settings=declared.settings, role_settings=declared.role_settings,
        source=declared.source)


def _encoding(name: str) -> str:
    """'utf-8' and 'UTF8' are one encoding to PostgreSQL."""
    upper = name.upper()
    return "UTF8" if upper in ("UTF-8", "UNICODE") else upper


def same(a: DatabaseProps, b: DatabaseProps) -> bool:
    """Whether two databases' properties are what the check compares as equal."""
    def key(p: DatabaseProps) -> list[tuple[str, str]]:
        items = objects(replace(p, encoding=_encoding(p.encoding) if p.encoding else None))
        return sorted((i.lower(), d) for i, d in items)
    return key(a) == key(b)


def describe(props: DatabaseProps) -> str:
    """One line: ``UTF8, icu en-US, collate C, ctype C; TimeZone=America/Denver; ...``."""
    provider = props.locale_provider or "libc"
    locale = {"icu": props.icu_locale, "builtin": props.builtin_locale}.get(provider)
    parts = [props.encoding or "UTF8",  # what create_database_sql gives
             f"{provider} {locale}" if locale else provider]
    if props.icu_rules:
        parts.append(f"icu rules {props.icu_rules!r}")
    parts += [f"collate {props.lc_collate or 'default'}", f"ctype {props.lc_ctype or 'default'}"]
    text = ", ".join(parts)
    settings = "; ".join(f"{n}={_shown(n, v)}" for n, v in props.settings)
    text = f"{text}; {settings}" if settings else f"{text}; no database settings"
    for role, pairs in props.role_settings:
        text += f"; role {role}: " + ", ".join(f"{n}={_shown(n, v)}" for n, v in pairs)
    return text


# --- creating databases with them -------------------------------------------------------


def _check_major(props: DatabaseProps, major: int) -> None:
    for key, (attr, since) in _KEYS.items():
        value = getattr(props, attr)
        if value is None or major >= since or (key == "locale-provider" and value == "libc"):
            continue
        raise ConfigError(
            f"{props.source}: database {key} = {value!r} needs PostgreSQL {since} or newer; "
            f"the test server runs PostgreSQL {major}. Use a newer server "
            f"(--schemasync-pg-bindir / --schemasync-server-url) or drop the property.")


def create_database_sql(name: str, props: DatabaseProps, major: int) -> sql.Composed:
    """``CREATE DATABASE name TEMPLATE template0`` with the declared encoding and locale."""
    from psycopg import sql

    _check_major(props, major)
    query = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {}").format(
        sql.Identifier(name), sql.Literal(props.encoding or "UTF8"))
    options = [("LOCALE_PROVIDER", props.locale_provider if major >= 15 else None),
               ("ICU_LOCALE", props.icu_locale), ("ICU_RULES", props.icu_rules),
               ("BUILTIN_LOCALE", props.builtin_locale),
               ("LC_COLLATE", props.lc_collate), ("LC_CTYPE", props.lc_ctype)]
    for option, value in options:
        if value is not None:
            literal = sql.SQL(value) if option == "LOCALE_PROVIDER" else sql.Literal(value)
            query = query + sql.SQL(" {} ").format(sql.SQL(option)) + literal
    return query


def split_list(value: str) -> list[str]:
    """``"$user", public`` -> ['$user', 'public'] (the server's list syntax)."""
    items, current, quoted, i = [], "", False, 0
    while i < len(value):
        ch = value[i]
        if quoted:
            if ch == '"' and value[i + 1:i + 2] == '"':
                current += '"'
                i += 1
            elif ch == '"':
                quoted = False
            else:
                current += ch
        elif ch == '"':
            quoted = True
        elif ch == ",":
            items.append(current.strip())
            current = ""
        else:
            current += ch
        i += 1
    items.append(current.strip())
    return [item for item in items if item]


def settings_sql(dbname: str, settings: tuple[tuple[str, str], ...],
                 role: str | None = None) -> sql.Composed | None:
    """``ALTER DATABASE dbname SET ...`` for every setting, one round trip (None: nothing);
    with ``role``, ``ALTER ROLE role IN DATABASE dbname SET ...``."""
    if not settings:
        return None
    from psycopg import sql

    target = (sql.SQL("ALTER DATABASE {}").format(sql.Identifier(dbname)) if role is None else
              sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role),
                                                             sql.Identifier(dbname)))
    statements = []
    for name, value in settings:
        values = split_list(value) if name.lower() in LIST_SETTINGS else [value]
        statements.append(sql.SQL("{} SET {} TO {}").format(
            target, sql.Identifier(name),
            sql.SQL(", ").join(sql.Literal(v) for v in values) if values else sql.Literal("")))
    return sql.SQL("; ").join(statements)


def _locale_advice(props: DatabaseProps) -> str:
    locale = props.lc_collate or props.lc_ctype or "?"
    language = re.split(r"[.@]", locale)[0].replace("_", "-")
    return (
        f"This machine has no libc locale {locale!r} (see `locale -a`); PostgreSQL never "
        f"falls back to C for it, and neither do we. Either use ICU, which Debian's "
        f"PostgreSQL has: locale-provider = \"icu\" and icu-locale = \"{language}\" (that "
        f"language's sort order, from ICU; keep lc-collate/lc-ctype at \"C\" or a locale "
        f"this machine has), or "
        f"generate the locale on the machine that runs the test server (Debian/Ubuntu: "
        f"uncomment it in /etc/locale.gen and run locale-gen, or apt-get install locales-all)."
    )


def create_database(conn: psycopg.Connection[Any], name: str, props: DatabaseProps,
                    major: int, set_name: str) -> None:
    """Create ``name`` with ``props`` (encoding, locale and settings); clear errors."""
    import psycopg

    try:
        conn.execute(create_database_sql(name, props, major))
    except psycopg.Error as exc:
        advice = (_locale_advice(props) if "locale" in str(exc)
                  and (props.lc_collate or props.lc_ctype) else
                  "Fix the database properties, or remove them to use the server's default.")
        raise ConfigError(f"Cannot create the test databases of set {set_name!r} with the "
                          f"database properties from {props.source} ({describe(props)}): "
                          f"{str(exc).strip()}. {advice}") from None
    statement = settings_sql(name, props.settings)
    if statement is None:
        return
    try:
        conn.execute(statement)
    except psycopg.Error as exc:
        from psycopg import sql

        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        raise ConfigError(f"{props.source}: a database setting of set {set_name!r} is refused "
                          f"by PostgreSQL: {str(exc).strip()}. Fix or remove it.") from None


def apply_settings(conn: psycopg.Connection[Any], dbname: str,
                   settings: tuple[tuple[str, str], ...]) -> None:
    """Give a clone its template's database settings (``TEMPLATE`` does not copy them)."""
    statement = settings_sql(dbname, settings)
    if statement is not None:
        conn.execute(statement)


def apply_role_settings(conn: psycopg.Connection[Any], dbname: str, props: DatabaseProps,
                        set_name: str) -> None:
    """Give a database the set's role-level settings, for this database only (``ALTER ROLE
    r IN DATABASE dbname SET``): nothing global changes, and they go with the database."""
    import psycopg

    for role, settings in props.role_settings:
        statement = settings_sql(dbname, settings, role)
        if statement is None:
            continue
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            advice = ("Name the role in the set's roles = [...] or use a role the schema files "
                      "refer to, so the build creates it" if isinstance(
                          exc, psycopg.errors.UndefinedObject) else "Fix or remove the setting")
            raise ConfigError(f"{props.source}: the role-settings of role {role!r} of set "
                              f"{set_name!r} cannot be applied to a test database: "
                              f"{str(exc).strip()}. {advice}.") from None


# --- reading them (read-only; part of the catalog snapshot) -----------------------------

_SETTINGS = """
SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
WHERE d.datname = {dbname} AND s.setrole = 0
"""


def _database_query(major: int, dbname: str) -> str:
    provider = "d.datlocprovider" if major >= 15 else "'c'"
    locale = ("d.datlocale" if major >= 17 else "d.daticulocale" if major >= 15 else "NULL")
    rules = "d.daticurules" if major >= 16 else "NULL"
    return (f"SELECT pg_catalog.pg_encoding_to_char(d.encoding) AS encoding, "
            f"d.datcollate::pg_catalog.text AS lc_collate, d.datctype::pg_catalog.text AS "
            f"lc_ctype, {provider}::pg_catalog.text AS provider, {locale} AS locale, "
            f"{rules} AS rules FROM pg_catalog.pg_database d WHERE d.datname = {dbname}")


_ROLE_SETTINGS = """
SELECT r.rolname, s.setconfig FROM pg_catalog.pg_db_role_setting s
JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
WHERE {roles} AND (s.setdatabase = 0 OR s.setdatabase =
      (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = {dbname}))
ORDER BY r.rolname, s.setdatabase <> 0
"""


def read_role_settings(conn: psycopg.Connection[Any], roles: tuple[str, ...] | None = None,
                       dbname: str | None = None
                       ) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """What a session of each role (None: every role) gets in ``dbname`` (default: the
    connection's database): its role-wide rows, overridden by its rows for that database.
    (``roles.role_statement`` applies the same rule in SQL, inside a test's transaction.)"""
    name = "pg_catalog.current_database()" if dbname is None else "%(dbname)s"
    which = "TRUE" if roles is None else "r.rolname = ANY(%(roles)s::pg_catalog.text[])"
    params = {**({"roles": list(roles)} if roles is not None else {}),
              **({"dbname": dbname} if dbname is not None else {})}
    by_role: dict[str, dict[str, tuple[str, str]]] = {}
    for role, config in conn.execute(_ROLE_SETTINGS.format(dbname=name, roles=which),
                                     params or None):
        for item in config or ():
            key, _, value = item.partition("=")
            by_role.setdefault(role, {})[key.lower()] = (key, value)
    return tuple((role, tuple(sorted(found.values(), key=lambda p: p[0].lower())))
                 for role, found in sorted(by_role.items()))


def read(conn: psycopg.Connection[Any], major: int, dbname: str | None = None,
         role_settings: bool = False) -> DatabaseProps:
    """The properties of ``dbname`` (default: the connection's database), with every role's
    role-level settings there if asked; SELECTs only, and only shared catalogs, so the admin
    connection can read a template's."""
    name = "pg_catalog.current_database()" if dbname is None else "%(dbname)s"
    params = {"dbname": dbname}
    row = conn.execute(_database_query(major, name), params if dbname else None).fetchone()
    if row is None:
        return DatabaseProps(source=f"database {dbname}")
    encoding, collate, ctype, provider, locale, rules = row
    provider = PROVIDERS.get(provider, provider)
    settings: list[tuple[str, str]] = []
    for (config,) in conn.execute(_SETTINGS.format(dbname=name), params if dbname else None):
        for item in config or ():
            key, _, value = item.partition("=")
            settings.append((key, value))
    settings.sort(key=lambda p: p[0].lower())
    by_role = read_role_settings(conn, None, dbname) if role_settings else ()
    return DatabaseProps(
        encoding=encoding, locale_provider=provider,
        icu_locale=locale if provider == "icu" else None,
        icu_rules=(rules or None) if provider == "icu" else None,
        builtin_locale=locale if provider == "builtin" else None,
        lc_collate=collate, lc_ctype=ctype, settings=tuple(settings), role_settings=by_role,
        source=f"database {dbname}" if dbname else "the database")


def read_server_settings(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, str]]:
    """name -> (value, source) of the result-changing settings a new session starts with.
    Call before any SET of the transaction (pg_settings shows the session's values)."""
    rows = conn.execute(
        "SELECT name, setting, source FROM pg_catalog.pg_settings "
        "WHERE name = ANY(%s::pg_catalog.text[])", (list(SERVER_SETTINGS),)).fetchall()
    return {name: (value, source) for name, value, source in rows}


def objects(props: DatabaseProps, *, with_roles: bool = True) -> list[tuple[str, str]]:
    """(identity, definition) of each property, for the ``database`` kind of a snapshot
    (``with_roles``: and of each role-level setting)."""
    found = [(key, f"{key.upper().replace('-', '_')} {getattr(props, attr)}")
             for key, (attr, _) in _KEYS.items() if getattr(props, attr) is not None]
    found += [(f"setting {name}", _set_text(name, value)) for name, value in props.settings]
    return found + role_setting_objects(props) if with_roles else found


def role_setting_objects(props: DatabaseProps) -> list[tuple[str, str]]:
    """(identity, definition) of each role-level setting: what a session of the role gets."""
    return [(f"setting {name} for role {role}", f"ALTER ROLE {role} " + _set_text(name, value))
            for role, settings in props.role_settings for name, value in settings]


def _set_text(name: str, value: str) -> str:
    return (f"SET {name} TO {value}" if not is_secret(name) else
            f"SET {name} TO {MASK} (a secret: only whether it is set is compared)")


def server_warnings(bundled: Mapping[str, tuple[str, str]],
                    production: Mapping[str, tuple[str, str]],
                    database_level: set[str]) -> list[str]:
    """Result-changing server settings that differ (those set on a database are drift)."""
    warnings = []
    for name in SERVER_SETTINGS:
        if name not in bundled or name not in production or name.lower() in database_level:
            continue
        (ours, our_source), (theirs, their_source) = bundled[name], production[name]
        if ours != theirs:
            warnings.append(
                f"Server setting {name} differs: production {theirs!r} ({their_source}), test "
                f"server {ours!r} ({our_source}). Not drift of this database, but queries that "
                f"depend on it can return other results in tests than in production: set it "
                f"the same on the test server (postgresql.conf or ALTER SYSTEM).")
    return warnings
