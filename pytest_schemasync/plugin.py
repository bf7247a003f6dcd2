"""The pytest layer: options, hooks and fixtures over the pytest-free core."""

from __future__ import annotations

import atexit
import contextlib
import gc
import itertools
import signal
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .config import OPTIONS, Settings, build_settings, load_pyproject
from .errors import DriftError, SchemaSyncError
from .masking import mask_dsn

# psycopg and the core are imported when first needed: a project that has the plugin
# installed but does not use it pays nothing for it at start-up.
if TYPE_CHECKING:
    import psycopg

    from .databases import Database, Template
    from .progress import BuildProgress
    from .scratch import Scratch

if TYPE_CHECKING:
    from .check import SetCheck

settings_key = pytest.StashKey[Settings]()
scratch_key = pytest.StashKey["Scratch"]()
session_args_key = pytest.StashKey[tuple[Settings, str, "dict[str, Any] | None"]]()
templates_key = pytest.StashKey[list["Template"]]()
lines_key = pytest.StashKey[list[str]]()
checks_key = pytest.StashKey[list["SetCheck"]]()


T = TypeVar("T")


class SchemaSyncWarning(pytest.PytestWarning):
    """Trouble while cleaning up: reported, never a test failure."""


# --- options -------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("schemasync", "schema-faithful PostgreSQL databases")
    for option in OPTIONS:
        ini_type = "bool" if option.kind == "bool" else "string"
        parser.addini(option.ini, option.help, type=ini_type, default=None)
        names = [option.flag, *option.aliases]
        if option.kind == "bool":
            group.addoption(*names, dest=f"schemasync_{option.name}", action="store_true",
                            default=None, help=option.help)
        else:
            group.addoption(*names, dest=f"schemasync_{option.name}", default=None,
                            metavar=option.name.upper(), help=option.help)
    parser.addini("schemasync_config", "TOML file holding [tool.schemasync] (default: the "
                  "rootdir's pyproject.toml).", type="string", default=None)


def _config_file(config: pytest.Config) -> tuple[Path, Path | None]:
    """(project root, file holding [tool.schemasync]).

    pytest picks its rootdir before plugin options are known, so ``--schemasync-cache-dir DIR``
    (two words) makes DIR look like a test path and can move the rootdir away from the
    project; the pyproject.toml nearest the invocation directory is therefore tried too.
    """
    root = Path(config.rootpath)
    explicit = config.getini("schemasync_config")
    if explicit:
        path = Path(explicit)
        return root, path if path.is_absolute() else root / path
    candidates: list[Path] = []
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        candidates.append(Path(config.inipath))
    invocation = Path(config.invocation_params.dir)
    candidates += [folder / "pyproject.toml" for folder in [invocation, *invocation.parents]]
    for candidate in candidates:
        data, _ = load_pyproject(candidate)
        if "schemasync" in data.get("tool", {}):
            return candidate.parent, candidate
    if candidates and candidates[0] == config.inipath:
        return candidates[0].parent, candidates[0]
    return root, None


def _rootdir_from_a_flag_value(config: pytest.Config) -> str | None:
    """The flag whose separate value pytest took for a test path when choosing its rootdir
    (it does so before plugin options are known), or None."""
    args = [str(a) for a in config.invocation_params.args]
    flags = {name for o in OPTIONS if o.kind != "bool" for name in (o.flag, *o.aliases)}
    root = Path(config.rootpath)
    for flag, value in itertools.pairwise(args):
        if flag in flags and not value.startswith("-"):
            path = Path(config.invocation_params.dir, value).resolve()
            if root.is_relative_to(path):
                return flag
    return None


def _build_settings(config: pytest.Config) -> Settings:
    cli = {o.name: config.getoption(f"schemasync_{o.name}") for o in OPTIONS}
    root, config_file = _config_file(config)

    def ini(name: str) -> Any:
        return config.getini(name)

    return build_settings(root, cli=cli, ini=ini, config_file=config_file)


# --- lifecycle -----------------------------------------------------------------------


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "schemasync(set=None, *, before=None, role=None): the schema set, migration point "
        "and database role the database fixtures of this test use.",
    )
    try:
        settings = _build_settings(config)
    except SchemaSyncError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[settings_key] = settings
    config.stash[lines_key] = []
    flag = None if _is_worker(config) else _rootdir_from_a_flag_value(config)
    if flag is not None:
        config.issue_config_time_warning(SchemaSyncWarning(
            f"pytest chose its rootdir ({config.rootpath}) from the value given after {flag} "
            f"as a separate word, so it may not read your pytest settings; write "
            f"{flag}=VALUE instead."), stacklevel=2)
    if not _is_worker(config):
        from .swap import recover

        recover(settings.root)  # finish a refresh or rollback that was killed mid-swap
    attach = config.workerinput.get("schemasync") if _is_worker(config) else None  # type: ignore[attr-defined]
    worker = config.workerinput.get("workerid", "m") if _is_worker(config) else "m"  # type: ignore[attr-defined]
    config.stash[session_args_key] = (settings, worker, attach)
    # At exit Python's last garbage collections walk every object still alive (psycopg's
    # and ours included: 0.05-0.1 s of a warm start); skipped once the process is exiting.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    from . import asyncfixtures, sqlalchemy_fixtures  # adb, afresh_db; db_sqlalchemy

    config.pluginmanager.register(asyncfixtures, "schemasync-async")
    config.pluginmanager.register(sqlalchemy_fixtures, "schemasync-sqlalchemy")
    if config.pluginmanager.hasplugin("xdist") and not _is_worker(config):
        config.pluginmanager.register(XdistHooks(config), "schemasync-xdist")
    if not _is_worker(config):
        # Without this, SIGTERM kills pytest before it can stop the server.
        with contextlib.suppress(ValueError):
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _scratch(config: pytest.Config) -> Scratch:
    """This process's session, created on first use."""
    scratch = config.stash.get(scratch_key, None)
    if scratch is None:
        from .scratch import Scratch

        settings, worker, attach = config.stash[session_args_key]
        scratch = config.stash[scratch_key] = Scratch(settings, worker=worker, attach=attach)
    return scratch


def _needs_eager_start(config: pytest.Config, settings: Settings) -> bool:
    if _is_worker(config) or config.option.collectonly:
        return False
    configured = any(s.files or s.migrations for s in settings.sets.values())
    return configured or settings.check or settings.refresh


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    settings = config.stash[settings_key]
    if not _needs_eager_start(config, settings):
        return
    scratch = _scratch(config)
    scratch.progress = _terminal_progress(config)
    try:
        scratch.start()
        if settings.refresh:
            _refresh(config, scratch, settings)
            if settings.dry_run:
                pytest.exit("schemasync: dry run; nothing was written and no tests were run",
                            returncode=0)
        if settings.check and scratch.server is not None and scratch.server.kind == "existing":
            from .check import refuse_scratch_as_production

            refuse_scratch_as_production(scratch.manager, settings)  # before building anything
        config.stash[templates_key] = scratch.prepare(rebuild=settings.rebuild)
        for name, why in scratch.unavailable.items():
            lines = why.splitlines()
            reason = next((ln for ln in lines if "is not installed on this" in ln), lines[0])
            config.stash[lines_key].append(
                f"schemasync: set {name!r} is not available on PostgreSQL {scratch.server.version}"
                f" (its tests fail unless skipped): {reason.strip()}")
        if settings.check:
            from .check import check_sets, write_outputs

            checks = check_sets(scratch.manager, settings)
            config.stash[checks_key] = checks
            config.stash[lines_key].extend(f"schemasync: {c.status_line()}" for c in checks)
            write_outputs(checks, settings.check_json, settings.check_markdown)
    except SchemaSyncError as exc:
        pytest.exit(f"schemasync: {exc}", returncode=exc.exit_code)
    except Exception as exc:
        import psycopg  # only now: it loads while the server starts

        if not isinstance(exc, psycopg.Error):
            raise
        pytest.exit(f"schemasync: unexpected database error at session start: "
                    f"{mask_dsn(str(exc).strip())}", returncode=SchemaSyncError.exit_code)


def _terminal_progress(config: pytest.Config) -> BuildProgress | None:
    """Long builds show progress through the terminal reporter: not with -q, not when the
    output is no terminal (CI logs get the header's "built in" alone)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or config.getoption("verbose") < 0 or not bool(getattr(tr, "isatty", False)):
        return None
    from .progress import BuildProgress

    def clear() -> None:
        tr.rewrite("", erase=True)
        tr.write("\r", flush=True)

    return BuildProgress(lambda line: tr.rewrite(line, erase=True, flush=True), clear)


def _refresh(config: pytest.Config, scratch: Scratch, settings: Settings) -> None:
    from .refresh import refresh_sets

    tr = config.pluginmanager.get_plugin("terminalreporter")
    for result in refresh_sets(scratch.manager, settings, dry_run=settings.dry_run):
        config.stash[lines_key].append(f"schemasync: {result.summary_line()}")
        if tr is not None:
            lines = result.report()
            tr.write_line(f"schemasync: {lines[0]}")
            for line in lines[1:]:
                tr.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """On drift, show the report and stop before any test is collected or run."""
    drifting = [c for c in session.config.stash.get(checks_key, []) if c.drift]
    if not drifting:
        return
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    for check in drifting:
        if tr is not None:
            tr.write_sep("=", f"schema drift: set {check.schema_set.name!r}", red=True, bold=True)
            tr.write_line(check.text())
    names = ", ".join(repr(c.schema_set.name) for c in drifting)
    pytest.exit(f"schemasync: the bundled schema of {names} differs from production; no tests "
                f"were run", returncode=DriftError.exit_code)


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _is_worker(config) or session_args_key not in config.stash:
        return []
    scratch = config.stash.get(scratch_key, None)
    if scratch is None or scratch.server is None:
        return ["schemasync: embedded server starts on first use of a database fixture"]
    lines = [f"schemasync: {scratch.describe()}"]
    if scratch.lease is not None and scratch.lease.found_orphan:
        lines.append("schemasync: stopped a server left running by a killed session")
    if scratch.lease is not None and scratch.lease.preloaded.problem:
        lines.append(f"schemasync: warning: {scratch.lease.preloaded.problem}")
    for template in config.stash.get(templates_key, []):
        how = ("from cache" if template.from_cache
               else f"built in {template.seconds:.2f}s")
        lines.append(f"schemasync: set {template.set_name!r}: template {how}"
                     + (f" (databases: {mask_dsn(template.database)})"
                        if template.database else ""))
    if scratch._manager is not None:
        from .roles import header_lines

        lines.extend(header_lines(scratch._manager, config.stash.get(templates_key, [])))
    lines.extend(config.stash.get(lines_key, []))
    return lines


@pytest.hookimpl(trylast=True)  # after pytest has torn down session-scoped fixtures
def pytest_sessionfinish(session: pytest.Session) -> None:
    scratch = session.config.stash.get(scratch_key, None)
    if scratch is None or scratch._manager is None:
        return
    try:
        for problem in scratch.close_databases():
            warnings.warn(SchemaSyncWarning(problem), stacklevel=1)
    except Exception as exc:
        warnings.warn(SchemaSyncWarning(f"cleanup of test databases failed: {exc}"), stacklevel=1)
    # The server's shutdown overlaps pytest's summary and its end-of-run garbage collection;
    # pytest_unconfigure (last) waits for it.
    scratch.begin_close()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(scratch_key, None)
    try:
        if scratch is not None:
            scratch.close()
    except Exception as exc:  # teardown trouble is reported, not a failure
        tr = config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line(f"schemasync: warning: cleanup failed: {exc}", yellow=True)
    finally:
        with contextlib.suppress(ValueError):  # SIGTERM as it was, for in-process runs
            if signal.getsignal(signal.SIGTERM) is _raise_keyboard_interrupt:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


class XdistHooks:
    """Registered only when pytest-xdist is loaded: workers share the controller's server."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        scratch = _scratch(self.config)
        try:
            node.workerinput["schemasync"] = scratch.worker_payload()
        except SchemaSyncError as exc:
            pytest.exit(f"schemasync: {exc}", returncode=exc.exit_code)


# --- fixtures ------------------------------------------------------------------------


def _marker_choice(request: pytest.FixtureRequest) -> tuple[str | None, str | None]:
    marker = request.node.get_closest_marker("schemasync")
    if marker is None:
        return None, None
    kwargs = dict(marker.kwargs)
    set_name = kwargs.pop("set", None)
    before = kwargs.pop("before", None)
    kwargs.pop("role", None)  # see _marker_role
    if marker.args:
        if len(marker.args) > 1 or set_name is not None:
            pytest.fail("@pytest.mark.schemasync takes one set name: schemasync('name', "
                        "before='003')", pytrace=False)
        set_name = marker.args[0]
    if kwargs:
        pytest.fail(f"@pytest.mark.schemasync got unknown argument(s) {sorted(kwargs)}; it takes "
                    f"a set name, before='NNN' and role='name'.", pytrace=False)
    return set_name, (str(before) if before is not None else None)


def _marker_role(request: pytest.FixtureRequest) -> str | None:
    """The role of the closest schemasync marker (test, class, module) that names one:
    ``role=None`` there runs as the superuser again."""
    for marker in request.node.iter_markers("schemasync"):
        if "role" in marker.kwargs:
            role = marker.kwargs["role"]
            if role is not None and not (isinstance(role, str) and role):
                pytest.fail(f"@pytest.mark.schemasync(role=...) takes a role name, not "
                            f"{role!r}.", pytrace=False)
            return role  # type: ignore[no-any-return]
    return None


def _or_fail(action: Callable[[], T]) -> T:
    """Run ``action``; our errors fail the test with their message alone."""
    try:
        return action()
    except SchemaSyncError as exc:
        message = f"schemasync: {exc}"
    pytest.fail(message, pytrace=False)  # outside the except block: no chained traceback


@pytest.fixture(scope="session")
def schemasync(request: pytest.FixtureRequest) -> Scratch:
    """The session's server and databases (``.manager``, ``.server``)."""
    scratch = _scratch(request.config)
    _or_fail(scratch.start)
    return scratch


@pytest.fixture
def db(schemasync: Scratch, request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a database with the schema set installed; the test's changes are
    rolled back afterwards. Use ``with db.transaction():`` for savepoints."""
    import psycopg

    from . import txguard

    set_name, before = _marker_choice(request)
    manager = schemasync.manager
    conn = _or_fail(lambda: manager.rollback_connection(set_name, before))
    row_factory = conn.row_factory
    tx = conn.transaction(force_rollback=True)
    tx.__enter__()
    for statement in txguard.opening_statements():
        conn.execute(statement)  # type: ignore[arg-type]
    try:
        role = _marker_role(request)
        if role is not None:  # inside the guard: rolling back to it resets the role
            from .roles import apply_role

            _or_fail(lambda: apply_role(conn, role, set_name=set_name or
                                        schemasync.settings.default_set))
        yield conn
    finally:
        restored = False
        if txguard.may_be_ours(conn):
            try:
                conn.execute(txguard.RESTORE)  # type: ignore[arg-type]
                restored = True
            except psycopg.Error:
                restored = False
        ending = txguard.judge(conn, restored)
        with contextlib.suppress(psycopg.Error, psycopg.ProgrammingError):
            tx.__exit__(None, None, None)
        if not ending.spoiled:
            conn.row_factory = row_factory
        _after_test_transaction(request, ending, "db", "fresh_db",
                                lambda: manager.discard_rollback_for(conn))


def _after_test_transaction(request: pytest.FixtureRequest, ending: Any, fixture: str,
                            instead: str, discard: Callable[[], None]) -> None:
    """A test that committed or broke the connection leaves a database that is no longer
    the pristine schema: it is replaced before the next test uses it (``db`` and ``adb``)."""
    if not ending.spoiled:
        return
    discard()
    if ending.committed:
        from .txguard import commit_warning

        warnings.warn(SchemaSyncWarning(commit_warning(request.node.nodeid, fixture, instead)),
                      stacklevel=1)



DbFactory = Callable[..., "Database"]


@pytest.fixture
def schemasync_db_factory(schemasync: Scratch,
                          request: pytest.FixtureRequest) -> Iterator[DbFactory]:
    """``factory(set_name=None, *, before=None, role=None) -> Database``: whole databases
    cloned from the template, dropped after the test; with ``role`` (default: the marker's)
    its ``url``/``connect()`` act as that role."""
    import psycopg

    manager = schemasync.manager
    default_set, default_before = _marker_choice(request)
    default_role = _marker_role(request)
    made: list[Database] = []

    def factory(set_name: str | None = None, *, before: str | None = None,
                role: str | None = default_role) -> Database:
        database = _or_fail(lambda: manager.clone(
            set_name or default_set, before if before is not None else default_before))
        made.append(database)
        if role is not None:
            from .roles import database_as

            return _or_fail(lambda: database_as(manager, database, role,
                                                set_name or default_set or
                                                schemasync.settings.default_set))
        return database

    yield factory
    for database in made:
        try:
            manager.drop(database)
        except psycopg.Error as exc:
            warnings.warn(SchemaSyncWarning(f"could not drop {database.name}: {exc}"),
                          stacklevel=1)


@pytest.fixture
def fresh_database(schemasync_db_factory: DbFactory) -> Database:
    """A whole database cloned from the template for this test (``.name``, ``.url``)."""
    return schemasync_db_factory()


@pytest.fixture
def fresh_db_url(fresh_database: Database) -> str:
    """libpq URL of this test's ``fresh_db`` database, for code that connects on its own."""
    return fresh_database.url


@pytest.fixture
def fresh_db(fresh_database: Database) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a database cloned for this test alone: commit, DDL, several
    connections are all fine; the database is dropped afterwards."""
    conn = fresh_database.connect()
    try:
        yield conn
    finally:
        conn.close()
