"""``schemasync``: the same core as the pytest plugin, for maintainers and CI scripts."""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import dbprops
from .binaries import find_binaries
from .config import OPTIONS, SchemaSet, Settings, build_settings, load_pyproject
from .errors import ConfigError, DriftError, ProductionError, SchemaSyncError
from .lazyimport import ensure_imported
from .masking import mask_dsn
from .scratch import Scratch
from .server import ServerKind, server_info_from_url

if TYPE_CHECKING:
    from .check import SetCheck
    from .databases import DatabaseManager
    from .production import ProductionTarget

# Flags that only make sense inside a pytest run.
_PYTEST_ONLY = {"check", "refresh", "check_json", "check_markdown"}


def find_project(start: Path) -> Path:
    """The nearest folder upwards holding a pyproject.toml (or ``start`` itself)."""
    for folder in [start, *start.parents]:
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def load_settings(args: argparse.Namespace) -> Settings:
    root = (args.project or find_project(Path.cwd())).resolve()
    data, _ = load_pyproject(root / "pyproject.toml")
    ini_section = data.get("tool", {}).get("pytest", {}).get("ini_options", {})
    cli = {o.name: getattr(args, o.name, None) for o in OPTIONS}
    return build_settings(root, cli=cli, ini=ini_section.get)


def _url_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("url", nargs="?", help=f"{what} (visible to `ps`: prefer --url-env)")
    parser.add_argument("--url-env", metavar="VAR",
                        help="read the URL from this environment variable instead")


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, help="also write the result as JSON")
    parser.add_argument("--markdown", type=Path, help="also write the result as Markdown")


def _url(args: argparse.Namespace) -> str:
    if args.url_env:
        value = os.environ.get(args.url_env)
        if not value:
            raise ConfigError(f"--url-env {args.url_env}: that environment variable is not set.")
        return value
    if not args.url:
        raise ConfigError("Name the database: a URL argument or --url-env VAR.")
    return str(args.url)


def _scratch(settings: Settings) -> Scratch:
    """The session of a command that may build templates: long builds show progress."""
    from .progress import stderr_progress

    scratch = Scratch(settings)
    scratch.progress = stderr_progress()
    return scratch


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from .readahead import ReadAhead

    # Production's catalog is read (and the check code imported) while the server starts;
    # an environment named with --env is read once the server is up.
    ahead = ReadAhead(settings, args.set) if args.env is None else None
    try:
        with _scratch(settings) as scratch:
            ensure_imported(f"{__package__}.check")  # the read-ahead thread imports it too
            from .check import check_sets, write_outputs

            if args.env is not None:
                checks = [_check_environment(scratch.manager, settings, args)]
            else:
                checks = check_sets(scratch.manager, settings, args.set, ahead=ahead)
            write_outputs(checks, args.json, args.markdown)
            for check in checks:
                print(check.status_line())
                if check.drift:
                    print(check.text())
            return DriftError.exit_code if any(c.drift for c in checks) else 0
    finally:
        if ahead is not None:
            ahead.close()


def _environment(settings: Settings, args: argparse.Namespace) -> ProductionTarget:
    """The database ``--env NAME`` names (``[tool.schemasync.environments.NAME]``)."""
    from .production import environment_target

    if args.env not in settings.environments:
        known = ", ".join(sorted(settings.environments)) or "none"
        raise ConfigError(f"--env {args.env}: no such environment (configured: {known}); "
                          f"add [tool.schemasync.environments.{args.env}] to pyproject.toml.")
    return environment_target(settings.environments[args.env])


def _check_environment(manager: DatabaseManager, settings: Settings,
                       args: argparse.Namespace) -> SetCheck:
    """``check --env NAME``: one set's bundled files against that environment's database."""
    from .check import check_set

    if args.set and len(args.set) > 1:
        raise ConfigError(f"--env {args.env} names one database: check one set against it "
                          f"(one --set, or none for the default set).")
    schema_set = settings.schema_set(args.set[0] if args.set else None)
    check = check_set(manager, settings, schema_set, target=_environment(settings, args))
    assert check is not None  # a target was given
    return check


def _migrations_set(settings: Settings, name: str | None) -> SchemaSet:
    if name is None:
        with_migrations = [s for s in settings.sets.values() if s.migrations is not None]
        if len(with_migrations) == 1:
            return with_migrations[0]
        schema_set = settings.schema_set(None)
    else:
        schema_set = settings.schema_set(name)
    if schema_set.migrations is None:
        raise ConfigError(
            f"Schema set {schema_set.name!r} has no migrations folder; add 'migrations' to "
            f"[tool.schemasync.sets.{schema_set.name}] or pick another set with --set."
        )
    return schema_set


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from .migrations import HistoryRules, compare_history, discover, read_history
    from .production import ProductionTarget, connect_readonly

    schema_set = _migrations_set(settings, args.set)
    assert schema_set.migrations is not None
    rules = HistoryRules.of(schema_set)
    local = discover(schema_set.migrations, schema_set.origin(schema_set.migrations),
                     rules.style)
    if args.env is not None:
        if args.url or args.url_env:
            raise ConfigError("Name the database once: --env, a URL or --url-env.")
        target = _environment(settings, args)
    else:
        target = ProductionTarget(server_info_from_url(_url(args), kind=ServerKind.TARGET),
                                  "command line", "")
    with connect_readonly(target, settings.connect_timeout) as conn:
        history = read_history(conn, rules.style, denied=ProductionError)
    status = compare_history(local, history, rules)
    print(f"Migrations of set {schema_set.name!r} in {target.masked}:")
    if history is None:
        print(f"  (no {rules.style.table} table: nothing applied yet)")
    print(status.render())
    print(status.summary())
    return 0 if not (status.unknown or status.edited or status.failed) else DriftError.exit_code


def cmd_diff(args: argparse.Namespace, settings: Settings) -> int:
    from .envdiff import diff_environments
    from .production import named_target

    if args.left == args.right:
        raise ConfigError(f"diff {args.left} {args.right}: name two different databases.")
    schema_set = settings.schema_set(args.set)
    # A side given as a URL is named by its masked form: no password in any report.
    sides = [(mask_dsn(spec), named_target(spec, settings, Path.cwd()))
             for spec in (args.left, args.right)]
    result = diff_environments(settings, schema_set, sides)
    result.write_outputs(args.json, args.markdown)
    print(result.status_line())
    print(result.text())
    return DriftError.exit_code if result.drift else 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from .migrations import HistoryRules, apply_pending

    schema_set = _migrations_set(settings, args.set)
    assert schema_set.migrations is not None
    info = server_info_from_url(_url(args), kind=ServerKind.TARGET)
    psql = find_binaries(settings.pg_bindir, need_server=False).tool("psql")
    status, ran = apply_pending(info, psql, schema_set.migrations, settings.root,
                                set_name=schema_set.name, dry_run=args.dry_run,
                                allow_out_of_order=args.allow_out_of_order,
                                rules=HistoryRules.of(schema_set))
    where = mask_dsn(info.url())
    if args.dry_run:
        print(f"Dry run: {len(status.pending)} migration(s) would be applied to {where}:")
        for migration in status.pending:
            print(f"  {migration.shown}  {migration.description}  ({migration.path.name})")
        return 0
    if not ran:
        print(f"{where} is up to date ({len(status.applied)} migrations applied).")
    for migration in ran:
        print(f"applied {migration.shown}  {migration.description}")
    return 0


def cmd_refresh(args: argparse.Namespace, settings: Settings) -> int:
    with _scratch(settings) as scratch:
        from .refresh import refresh_sets  # after the start, as in cmd_check

        for result in refresh_sets(scratch.manager, settings, args.set, dry_run=args.dry_run):
            print("\n".join(result.report()))
        return 0


def cmd_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from .refresh import rollback

    backup, restored = rollback(settings, args.backup)
    print(f"restored from {backup}:")
    for path in restored:
        print(f"  {settings.shown(path)}")
    return 0


def cmd_backups(args: argparse.Namespace, settings: Settings) -> int:
    from .refresh import list_backups

    backups = list_backups(settings.backup_dir)
    if not backups:
        print(f"no backups in {settings.backup_dir}")
    for backup in backups:
        files = sorted(str(p.relative_to(backup / "previous"))
                       for p in (backup / "previous").rglob("*") if p.is_file())
        print(f"{backup.name}  {', '.join(files) or '(no previous files)'}")
    return 0


def cmd_dump(args: argparse.Namespace, settings: Settings) -> int:
    from .production import ProductionTarget, connect_readonly
    from .refresh import dump_schema, normalize_dump
    from .swap import recover, replace_files

    target = ProductionTarget(server_info_from_url(_url(args), kind=ServerKind.SOURCE),
                              "command line", "")
    with connect_readonly(target, settings.connect_timeout) as conn:
        major = conn.info.server_version // 10000
        database = dbprops.describe(dbprops.read(conn, major))  # SELECTs, read-only
    text, _ = dump_schema(target.info, major, exclude_schemas=tuple(args.exclude_schema or ()),
                          pinned_bindir=settings.pg_bindir,
                          lock_timeout=settings.dump_lock_timeout, timeout=settings.dump_timeout)
    text = normalize_dump(text)
    # pg_dump --schema-only leaves out what the database itself is created with; on stderr,
    # so the dump stays the bytes a refresh would write.
    print(mask_dsn(f"database properties: {database}"), file=sys.stderr)
    if args.output is None:
        sys.stdout.write(text)
    else:
        output = args.output.resolve()
        recover(output.parent)  # a dump killed mid-swap journals next to its output
        replace_files(output.parent, {output: text})
        print(f"wrote {output} ({len(text.splitlines())} lines) from {target.masked}")
    return 0


def cmd_clean(args: argparse.Namespace, settings: Settings) -> int:
    from .clusters import cache_in_use, default_cache_root, is_cache_dir, remove_cache

    root = settings.cache_dir or default_cache_root()
    if args.all:
        if settings.server_url:
            raise ConfigError("clean --all deletes the embedded server's cache folder; with "
                              "--schemasync-server-url use `schemasync clean` (this project's "
                              "templates) instead.")
        print(f"deleted {root}" if remove_cache(root) else f"nothing to delete: no {root}")
        return 0
    if not settings.server_url:
        if not is_cache_dir(root):
            print(f"nothing to clean: no cache in {root}")
            return 0
        busy = cache_in_use(root)
        if busy is not None:  # checked first: starting a throwaway cluster would be pointless
            raise ConfigError(f"A running pytest session uses {busy}; run `schemasync clean` "
                              f"again when it has finished.")
    with Scratch(settings) as session:
        if session.lease is not None and not session.lease.cached:
            raise ConfigError(f"A running pytest session uses the cache in {root}; run "
                              f"`schemasync clean` again when it has finished.")
        dropped = session.manager.templates.drop_project()
        print(f"dropped {len(dropped)} template(s) of {settings.root} on "
              f"{session.describe()}" + "".join(f"\n  {name}" for name in dropped))
        pruned = session.manager.prune_snapshots()
        if pruned:
            print(f"deleted {len(pruned)} stored catalog snapshot(s) of templates that are gone")
        from .roles import drop_unused_roles

        roles, kept = drop_unused_roles(session.manager.admin)
        if roles:
            print(f"dropped {len(roles)} role(s) pytest-schemasync had created that no "
                  f"template uses any more: {', '.join(roles)}")
        for problem in kept:
            print(f"kept role {problem}")
    return 0


def _global_arguments(parser: Any, default: object) -> None:
    parser.add_argument("--project", type=Path, default=default,
                        help="project folder with pyproject.toml (default: nearest upwards)")
    for option in OPTIONS:
        if option.name in _PYTEST_ONLY or option.name == "dry_run":
            continue
        if option.kind == "bool":
            parser.add_argument(option.flag, dest=option.name, action="store_true",
                                default=default, help=option.help)
        else:
            parser.add_argument(option.flag, dest=option.name, default=default,
                                help=option.help)


class _Commands:
    """``add_subparsers()`` whose every command also takes the global options."""

    def __init__(self, action: Any, common: argparse.ArgumentParser) -> None:
        self.action = action
        self.common = common

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return self.action.add_parser(name, parents=[self.common], **kwargs)  # type: ignore[no-any-return]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schemasync",
        description="Schema-faithful PostgreSQL test databases: check bundled schema files "
                    "against production, refresh them, manage migrations.",
    )
    _global_arguments(parser, default=None)
    # Users type global options after the command too (`schemasync check --schemasync-...`):
    # every command accepts them; SUPPRESS keeps a value given before the command.
    common = argparse.ArgumentParser(add_help=False)
    _global_arguments(common.add_argument_group("global options (also accepted before the "
                                                "command)"), default=argparse.SUPPRESS)
    commands = _Commands(parser.add_subparsers(dest="command", required=True,
                                               metavar="COMMAND"), common)

    check = commands.add_parser("check", help="compare the bundled schema with production "
                                              "(exit 10 on drift, 11 when production "
                                              "cannot be reached)")
    check.add_argument("--set", action="append", help="only this schema set (repeatable)")
    check.add_argument("--env", help="check against this database of "
                                     "[tool.schemasync.environments] instead of the set's "
                                     "production (one set)")
    _output_arguments(check)
    check.set_defaults(handler=cmd_check)

    status = commands.add_parser("status", help="applied, pending, unknown and edited "
                                                "migrations of a database (read-only)")
    _url_arguments(status, "libpq URL of the database")
    status.add_argument("--set", help="schema set whose migrations folder to use")
    status.add_argument("--env", help="a database named in [tool.schemasync.environments]")
    status.set_defaults(handler=cmd_status)

    diff = commands.add_parser(
        "diff", help="compare two databases like the schema check (read-only; exit 10 when "
                     "they differ): each an environment name, a URL, env:VAR or a dotenv file")
    diff.add_argument("left", help="e.g. dev, .env.database, env:DEV_DB_URL")
    diff.add_argument("right", help="e.g. prod, .env.production, env:PROD_DB_URL")
    diff.add_argument("--set", help="schema set for excluded schemas and the migrations folder "
                                    "(default: the default set)")
    _output_arguments(diff)
    diff.set_defaults(handler=cmd_diff)

    migrate = commands.add_parser("migrate", help="apply pending migrations to the database "
                                                  "you name, each in its own transaction")
    _url_arguments(migrate, "libpq URL of the database to migrate")
    migrate.add_argument("--set", help="schema set whose migrations folder to use")
    migrate.add_argument("--dry-run", action="store_true", help="list what would run")
    migrate.add_argument("--allow-out-of-order", action="store_true",
                         help="apply pending migrations older than the newest applied one")
    migrate.set_defaults(handler=cmd_migrate)

    refresh = commands.add_parser("refresh", help="re-export the schema files from production, "
                                                  "prove they install, then replace them")
    refresh.add_argument("--set", action="append", help="only this schema set (repeatable)")
    refresh.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")
    refresh.set_defaults(handler=cmd_refresh)

    rollback = commands.add_parser("rollback", help="restore the files from a refresh backup")
    rollback.add_argument("backup", nargs="?", type=Path, default=None,
                          help="backup folder (default: the newest)")
    rollback.set_defaults(handler=cmd_rollback)

    backups = commands.add_parser("backups", help="list refresh backups")
    backups.set_defaults(handler=cmd_backups)

    dump = commands.add_parser("dump", help="write a clean, deterministic schema file of any "
                                            "database (read-only)")
    _url_arguments(dump, "libpq URL of the database to dump")
    dump.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    dump.add_argument("--exclude-schema", action="append", help="schema pattern to leave out")
    dump.set_defaults(handler=cmd_dump)

    clean = commands.add_parser("clean", help="drop this project's template databases (the next "
                                              "session rebuilds them)")
    clean.add_argument("--all", action="store_true",
                       help="delete the embedded server's whole cache folder instead (every "
                            "project's templates)")
    clean.set_defaults(handler=cmd_clean)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # At exit Python's last garbage collections walk every object still alive (a check
    # holds two catalog snapshots: 0.1-0.25 s at 2,000 tables); nothing there is garbage.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        settings = load_settings(args)
        from .swap import recover

        recover(settings.root)  # finish a refresh or rollback that was killed mid-swap
        return handler(args, settings)
    except SchemaSyncError as exc:
        print(f"schemasync: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("schemasync: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
