"""Migration history as a team's own migration system writes it (GameForge's
``000_migration_system.sql``: ``record_migration('<stem>', ..., 'sha256_checksum', ...)``,
files wrapped in ``BEGIN; ... COMMIT;``, rows by number without a checksum, a baseline row),
and ``schemasync diff`` between two databases.

Real PostgreSQL throughout: a stand-in production for the commands and inner pytest sessions
for template builds. The helpers are those of test_migrations.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_project, output_of, run_inner, run_pytest_in
from test_migrations import (
    EXAMPLE,
    PASSWORD,
    cli,
    history,
    next_xid,
    ok,
    refused,
    relation_exists,
    rows,
    scalar,
)

from pytest_schemasync.migrations import (
    HISTORY_TABLE_DDL,
    AppliedMigration,
    HistoryRules,
    Migration,
    compare_history,
    history_insert_sql,
)
from pytest_schemasync.standin import OWNER, READER, StandinProduction

SYSTEM = (EXAMPLE / "db" / "gameforge" / "migrations" / "000_migration_system.sql").read_text()
BASE_SQL = "CREATE TABLE public.players (id serial PRIMARY KEY, name text NOT NULL);\n"


def recorded(stem: str, body: str, checksum: str = "sha256_checksum") -> str:
    """A migration in the team's template: wrapped in a transaction, records itself."""
    return (f"BEGIN;\n\n{body}\nSELECT public.record_migration('{stem}', 'Change {stem[:3]}', "
            f"'{checksum}', 'migrations/{stem}.sql');\n\nCOMMIT;\n")


TEAM_FILES = {
    "000_migration_system.sql": SYSTEM,
    "001_initial_schema.sql": recorded(
        "001_initial_schema", "CREATE TABLE public.games (id serial PRIMARY KEY, title text);\n"),
    "002_oauth_and_game_features.sql": recorded(
        "002_oauth_and_game_features",
        "ALTER TABLE public.players ADD COLUMN oauth_subject text;\n"
        "ALTER TABLE public.games ADD COLUMN genre text;\n"),
    # An older file: records itself by number, no checksum, no transaction of its own.
    "003_add_user_notifications.sql": (
        "CREATE TABLE public.notifications (id serial PRIMARY KEY,\n"
        "    player_id integer REFERENCES public.players (id), body text NOT NULL);\n"
        "INSERT INTO public.schema_migrations (version, description, applied_at)\n"
        "VALUES ('003', 'Add user notifications', now()) ON CONFLICT (version) DO NOTHING;\n"),
}
TEAM_ROWS = ["000_migration_system", "001_initial_schema", "002_oauth_and_game_features", "003"]


@pytest.fixture(scope="module")
def prod() -> Iterator[StandinProduction]:
    with StandinProduction(password=PASSWORD) as server:
        with server.superuser_connect() as conn:
            conn.execute("ALTER SYSTEM SET autovacuum = off")  # next_xid moves only for us
            conn.execute("SELECT pg_reload_conf()")
        yield server


_names = itertools.count(1)


def team_project(pytester: pytest.Pytester, files: dict[str, str] | None = None,
                 **set_keys: str) -> Path:
    make_project(
        pytester,
        sets={"game": {"files": ["base.sql"], "migrations": "migrations", **set_keys}},
        files={"base.sql": BASE_SQL,
               **{f"migrations/{n}": t for n, t in (files or TEAM_FILES).items()}},
    )
    return pytester.path


def deployed_by_the_team(prod: StandinProduction, project: Path, base: str = "base.sql",
                         migrations: str = "migrations") -> str:
    """A database migrated the way the team's tooling does it: psql runs each file as it is
    (they record themselves), after a baseline row for the schema applied before."""
    name = f"team_{next(_names)}"
    files = sorted((project / migrations).glob("*.sql"))
    prod.create_database(name, [project / base, files[0]])
    prod.execute(name, "SELECT record_migration('000_baseline', 'Schema before the "
                       "migration system', 'baseline')")
    for path in files[1:]:
        with prod.superuser_connect(name) as conn:
            conn.execute(f"SET ROLE {OWNER}")
            conn.execute(path.read_text())  # type: ignore[arg-type]
    return name


def empty_database(prod: StandinProduction, project: Path) -> str:
    name = f"fresh_{next(_names)}"
    prod.create_database(name, [project / "base.sql"])
    return name


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def status_of(project: Path, prod: StandinProduction, db: str, code: int = 0) -> str:
    return ok(cli(project, "status", prod.url(db, READER)), code=code)


def migrate(project: Path, prod: StandinProduction, db: str,
            *args: str) -> str:
    return ok(cli(project, "migrate", prod.url(db, OWNER), *args))


# --- reading a history the team's system wrote -------------------------------------------------


def test_status_of_a_history_written_by_the_team_system(pytester: pytest.Pytester,
                                                        prod: StandinProduction) -> None:
    project = team_project(pytester)
    db = deployed_by_the_team(prod, project)
    assert [r[0] for r in rows(prod, db, "SELECT version FROM schema_migrations ORDER BY id")] \
        == ["000_migration_system", "000_baseline", *TEAM_ROWS[1:]]

    xid = next_xid(prod)
    out = status_of(project, prod, db)
    assert next_xid(prod) == xid  # read-only
    assert "4 applied, 0 pending, 0 unknown, 0 edited; 4 rows had no checksum" in out
    assert "; baseline 000_baseline" in out
    assert "  baseline  000_baseline  " in out
    assert "  applied   001  initial schema  (" in out
    assert "recorded as 001_initial_schema; no checksum recorded)" in out
    for state in ("UNKNOWN", "pending", "EDITED"):
        assert f"  {state} " not in out


def test_a_real_checksum_still_flags_an_edit(pytester: pytest.Pytester,
                                             prod: StandinProduction) -> None:
    project = team_project(pytester)
    db = deployed_by_the_team(prod, project)
    first, second = (project / "migrations" / n for n in ("001_initial_schema.sql",
                                                          "002_oauth_and_game_features.sql"))
    original = sha256(first)
    prod.execute(db, f"UPDATE schema_migrations SET checksum = '{original}' "
                     "WHERE version = '001_initial_schema'")
    assert "4 applied, 0 pending, 0 unknown, 0 edited; 3 rows" in status_of(project, prod, db)

    # Edited after it was applied: flagged where a real sha256 was recorded (001), not where
    # the row holds a placeholder (002: nothing to compare with).
    first.write_text(first.read_text() + "-- reviewed\n")
    second.write_text(second.read_text() + "-- reviewed\n")
    out = status_of(project, prod, db, code=10)
    assert (f"  EDITED    001  initial schema  checksum applied {original[:12]}… "
            f"local {sha256(first)[:12]}…") in out
    assert "  applied   002  oauth and game features  (" in out
    assert "3 applied, 0 pending, 0 unknown, 1 edited; 3 rows had no checksum" in out
    refused(cli(project, "migrate", prod.url(db, OWNER)),
            "Migration checksum mismatch for version 001 (001_initial_schema.sql)")


def test_stem_number_and_suffix_rows_all_match(pytester: pytest.Pytester,
                                               prod: StandinProduction) -> None:
    project = team_project(pytester)
    db = empty_database(prod, project)
    prod.execute(db, HISTORY_TABLE_DDL + f"GRANT SELECT ON schema_migrations TO {READER};")
    # Rows as different tools and hands wrote them: stem, unpadded number, another suffix,
    # number; checksums a placeholder, NULL-ish and empty.
    for version, checksum in (("000_migration_system", "sha256_checksum"), ("1", ""),
                              ("002_oauth", "baseline"), ("003", "")):
        prod.execute(db, "INSERT INTO schema_migrations (version, description, checksum) "
                         f"VALUES ('{version}', 'x', '{checksum}')")
    out = status_of(project, prod, db)
    assert "4 applied, 0 pending, 0 unknown, 0 edited; 4 rows had no checksum" in out
    for line in ("applied   000  migration system", "applied   001  initial schema",
                 "applied   002  oauth and game features",
                 "applied   003  add user notifications"):
        assert f"  {line}  (" in out

    # A file nothing recorded is pending, and only pending; a row no file matches is unknown.
    prod.execute(db, "DELETE FROM schema_migrations WHERE version = '1'")
    prod.execute(db, "INSERT INTO schema_migrations (version, description, checksum) "
                     "VALUES ('007_gone', 'removed file', '')")
    out = status_of(project, prod, db, code=10)
    assert "  pending   001  initial schema  (older than the newest applied one)" in out
    assert "  UNKNOWN   007_gone  removed file  (applied, but no local file)" in out
    assert "3 applied, 1 pending, 1 unknown, 0 edited" in out


def test_matching_rules_without_a_server(tmp_path: Path) -> None:
    def migration(name: str) -> Migration:
        return Migration(name[:3], name[4:], tmp_path / f"{name}.sql", "a" * 64)

    def row(version: str, checksum: str = "") -> AppliedMigration:
        return AppliedMigration(version, "", checksum, "", "", None)

    local = [migration("000_baseline"), migration("001_users"), migration("002_games")]
    # A file named like a baseline is a migration; with no such file the row is a baseline.
    status = compare_history(local, [row("000_baseline"), row("001"), row("002_games")])
    assert not status.baseline and len(status.applied) == 3
    status = compare_history(local[1:], [row("000_baseline", "baseline"), row("001")])
    assert [b.version for b in status.baseline] == ["000_baseline"]
    assert [m.version for m in status.pending] == ["002"] and not status.unknown
    # A configured baseline may be called anything; then only that row is one.
    rules = HistoryRules(baseline="v0_schema")
    status = compare_history(local[1:], [row("v0_schema"), row("baseline")], rules)
    assert [b.version for b in status.baseline] == ["v0_schema"]
    assert [u.version for u in status.unknown] == ["baseline"]
    # Two rows for one file (recorded twice by an older tool) are one applied file; the row
    # with a real checksum decides whether it was edited.
    status = compare_history(local[1:2], [row("001"), row("001_users", "b" * 64)])
    assert [m.version for m, _ in status.edited] == ["001"] and not status.unknown
    status = compare_history(local[1:2], [row("001", "A" * 64)])  # hex case does not matter
    assert len(status.applied) == 1 and not status.unchecked


# --- migrate: self-recording files are recorded once, atomically ------------------------------


def test_migrate_self_recording_files_leaves_one_row_each(pytester: pytest.Pytester,
                                                          prod: StandinProduction) -> None:
    project = team_project(pytester)
    db = empty_database(prod, project)
    out = migrate(project, prod, db)
    assert [line.split()[1] for line in out.splitlines()] == ["000", "001", "002", "003"]
    got = rows(prod, db, "SELECT version, checksum, execution_time_ms, script_path, applied_by "
                         "FROM schema_migrations ORDER BY id")
    assert [r[0] for r in got] == TEAM_ROWS
    files = sorted((project / "migrations").glob("*.sql"))
    # The files' placeholders were completed with the real sums, in the same transaction.
    assert [r[1] for r in got] == [sha256(p) for p in files]
    assert all(r[2] is not None and r[2] >= 0 for r in got)
    assert [r[3] for r in got] == [f"migrations/{p.name}" for p in files]
    assert {r[4] for r in got} == {OWNER}
    assert "4 applied, 0 pending, 0 unknown, 0 edited\n" in status_of(project, prod, db)

    # A file that records nothing gets our row, under the stem like its neighbours; the
    # team's view and functions work with it.
    notes = project / "migrations" / "004_add_player_notes.sql"
    notes.write_text("CREATE TABLE public.player_notes (id serial PRIMARY KEY, body text);\n")
    migrate(project, prod, db)
    assert rows(prod, db, "SELECT version FROM schema_migrations ORDER BY id")[-1] == (
        "004_add_player_notes",)
    assert scalar(prod, db, "SELECT validate_migration_checksum('004_add_player_notes', "
                            f"'{sha256(notes)}')") is True
    assert rows(prod, db, "SELECT version, checksum_status, is_latest FROM migration_status "
                          "ORDER BY sequence_no DESC LIMIT 1") == [
        ("004_add_player_notes", "verified", True)]
    prod.execute(db, "SELECT record_migration('005_manual', 'by hand', 'sha256_checksum')")
    assert scalar(prod, db, "SELECT count(*) FROM migration_status") == 6


def test_history_version_setting_decides_what_we_write(pytester: pytest.Pytester,
                                                       prod: StandinProduction) -> None:
    files = {"000_migration_system.sql": SYSTEM,
             "001_plain.sql": "CREATE TABLE public.plain (id int);\n"}
    project = team_project(pytester, files, **{"history-version": "number"})
    db = empty_database(prod, project)
    migrate(project, prod, db)
    assert [r[0] for r in rows(prod, db, "SELECT version FROM schema_migrations ORDER BY id")] \
        == ["000_migration_system", "001"]

    project = team_project(pytester, files, **{"history-version": "stem"})
    db = empty_database(prod, project)
    prod.execute(db, HISTORY_TABLE_DDL)  # an empty history: "auto" would write numbers
    migrate(project, prod, db)
    assert [r[0] for r in rows(prod, db, "SELECT version FROM schema_migrations ORDER BY 1")] \
        == ["000_migration_system", "001_plain"]
    project = team_project(pytester, files, **{"history-version": "name"})
    refused(cli(project, "status", prod.url(db, READER)),
            "history-version of set 'game' must be \"auto\", \"stem\" or \"number\"")


WRAPPED_FAILING = recorded("001_initial_schema", "CREATE TABLE public.games (id int);\n"
                                                 "SELECT 1 / 0;\n")
WRAPPED_SILENT = "BEGIN;\nCREATE TABLE public.games (id int);\nCOMMIT;\n"
TWO_TRANSACTIONS = ("BEGIN;\nCREATE TABLE public.games (id int);\nCOMMIT;\n"
                    "BEGIN;\nCREATE TABLE public.more (id int);\nCOMMIT;\n")


def test_a_wrapped_file_runs_in_one_transaction_with_its_row(pytester: pytest.Pytester,
                                                             prod: StandinProduction) -> None:
    project = team_project(pytester, {"000_migration_system.sql": SYSTEM,
                                      "001_initial_schema.sql": WRAPPED_FAILING})
    path = project / "migrations" / "001_initial_schema.sql"
    db = empty_database(prod, project)
    refused(cli(project, "migrate", prod.url(db, OWNER)), "Migration 001 failed and was "
            "rolled back", f"{path}:4", "division by zero")
    assert not relation_exists(prod, db, "games")
    assert [r[0] for r in history(prod, db) or []] == ["000_migration_system"]

    # Its own BEGIN/COMMIT do not end our transaction: the table and the history row
    # were written by one and the same transaction.
    path.write_text(WRAPPED_SILENT)
    migrate(project, prod, db)
    assert scalar(prod, db, "SELECT (SELECT xmin FROM pg_class WHERE oid = 'public.games'"
                            "::regclass)::text = (SELECT xmin FROM schema_migrations WHERE "
                            "version = '001_initial_schema')::text") is True

    (project / "migrations" / "002_two.sql").write_text(TWO_TRANSACTIONS)
    refused(cli(project, "migrate", prod.url(db, OWNER)),
            f"{project / 'migrations' / '002_two.sql'}:3: COMMIT inside the migration",
            "Split it into two migration files")
    assert not relation_exists(prod, db, "more")


# --- templates ---------------------------------------------------------------------------------

FILES_0_1 = {
    "000_create_tags.sql": "CREATE TABLE public.tags (id serial PRIMARY KEY, label text);\n",
    "001_add_email.sql": "ALTER TABLE public.players ADD COLUMN email text;\n",
}
COUNT_TEST = """
def test_rows(db):
    rows = db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == {expected!r}
    db.execute("SELECT email FROM players")
"""


def dumped_base(project: Path, recorded_rows: list[tuple[str, str]]) -> None:
    """base.sql as a refresh writes it: production's schema (000 and 001 applied) followed by
    production's history rows."""
    rows_ = [AppliedMigration(v, "", c, "2026-01-01 00:00:00+00", "deploy", None)
             for v, c in recorded_rows]
    (project / "base.sql").write_text(
        BASE_SQL + FILES_0_1["000_create_tags.sql"] + FILES_0_1["001_add_email.sql"]
        + HISTORY_TABLE_DDL + history_insert_sql(rows_))


def test_template_refuses_a_base_recording_an_edited_migration(pytester: pytest.Pytester,
                                                               cache_dir: Path) -> None:
    project = team_project(pytester, FILES_0_1)
    email = project / "migrations" / "001_add_email.sql"
    recorded_sum = sha256(email)
    dumped_base(project, [("000", sha256(project / "migrations" / "000_create_tags.sql")),
                          ("001", recorded_sum)])
    pytester.makepyfile(test_x=COUNT_TEST.format(expected=["000", "001"]))
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)  # recorded ones not run again

    email.write_text(FILES_0_1["001_add_email.sql"] + "-- edited since\n")
    result = run_inner(pytester, cache_dir)
    out = output_of(result)
    assert result.ret == 4, out
    assert "Migration checksum mismatch for version 001 (001_add_email.sql) in the base files " \
           "of set 'game'" in out
    assert f"applied to database : {recorded_sum}" in out
    assert f"resolved locally    : {sha256(email)}" in out
    assert "Traceback" not in out and "test_x" not in out


def test_template_with_placeholder_and_baseline_rows(pytester: pytest.Pytester,
                                                     cache_dir: Path) -> None:
    project = team_project(pytester, FILES_0_1)
    dumped_base(project, [("000_baseline", "baseline"), ("000_create_tags", "sha256_checksum"),
                          ("001", "")])
    (project / "migrations" / "001_add_email.sql").write_text(
        FILES_0_1["001_add_email.sql"] + "-- edited, but no checksum was recorded\n")
    (project / "migrations" / "002_add_bio.sql").write_text(
        "ALTER TABLE public.players ADD COLUMN bio text;\n")
    pytester.makepyfile(test_x=COUNT_TEST.format(
        expected=["000_baseline", "000_create_tags", "001", "002"]))
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


# --- schemasync diff ---------------------------------------------------------------------------


def environments_project(pytester: pytest.Pytester, prod: StandinProduction, dev: str,
                         live: str, sslmode: str = "disable") -> Path:
    project = team_project(pytester)
    (project / ".env.database").write_text(
        f"DB_HOST=127.0.0.1\nDB_PORT={prod.info(dev).port}\nDB_NAME={dev}\nDB_USER={READER}\n"
        f"DB_PASSWORD={PASSWORD}\nDB_SSL_MODE={sslmode}\n")
    with (project / "pyproject.toml").open("a") as f:
        f.write('\n[tool.schemasync.environments.dev]\ndotenv = ".env.database"\n'
                '\n[tool.schemasync.environments.prod]\nurl-env = "GAME_PROD_URL"\n')
    return project


def table_row(out: str, migration: str) -> list[str]:
    """The side-by-side history line of ``migration``, split into its columns."""
    line = next(ln for ln in out.splitlines() if ln.startswith(f"  {migration} "))
    return re.split(r"\s{2,}", line.strip())


def test_diff_two_environments(pytester: pytest.Pytester, prod: StandinProduction,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = team_project(pytester)
    dev, live = deployed_by_the_team(prod, source), deployed_by_the_team(prod, source)
    project = environments_project(pytester, prod, dev, live)
    monkeypatch.setenv("GAME_PROD_URL", prod.url(live, READER))

    xid = next_xid(prod)
    out = ok(cli(project, "diff", "dev", "prod", "--json", "d.json", "--markdown", "d.md"))
    assert next_xid(prod) == xid  # both sides read-only
    assert "schema diff dev -> prod (set 'game'): no drift" in out
    assert "No schema drift: dev matches prod" in out
    assert table_row(out, "001_initial_schema") == [
        "001_initial_schema", "applied (no checksum)", "applied (no checksum)"]
    assert table_row(out, "000_baseline") == ["000_baseline", "baseline", "baseline"]
    assert "  dev: 4 applied, 0 pending, 0 unknown, 0 edited; 4 rows had no checksum" in out
    assert json.loads((project / "d.json").read_text())["drift"] is False

    # A hotfix in production only, and a migration applied in production only.
    prod.execute(live, "ALTER TABLE public.players ADD COLUMN nickname text")
    (project / "migrations" / "004_add_bio.sql").write_text(
        "ALTER TABLE public.players ADD COLUMN bio text;\n")
    ok(cli(project, "migrate", prod.url(live, OWNER)))
    xid = next_xid(prod)
    out = ok(cli(project, "diff", "dev", "prod", "--json", "d.json", "--markdown", "d.md"),
             code=10)
    assert "DRIFT (2 object differences, migration histories differ)" in out
    assert "missing column public.players.nickname" in out
    assert "missing column public.players.bio" in out
    assert "--- dev" in out and "+++ prod" in out
    assert table_row(out, "004_add_bio") == ["004_add_bio", "pending", "applied"]
    data = json.loads((project / "d.json").read_text())
    assert data["drift"] is True and data["sides"] == ["dev", "prod"]
    assert data["migrations"]["prod"]["applied"][-1] == "004"
    assert data["migrations"]["dev"]["pending"] == ["004"]
    assert "missing column `public.players.nickname`" in (project / "d.md").read_text()
    assert next_xid(prod) == xid

    # The sides may be given as env:VAR, a URL or a dotenv file too; status --env works.
    monkeypatch.setenv("DEV_URL", prod.url(dev, READER))
    out = ok(cli(project, "diff", "env:DEV_URL", prod.url(live, READER)), code=10)
    assert "Schema drift: 2 differences between env:DEV_URL and" in out
    ok(cli(project, "diff", ".env.database", "dev"))
    out = ok(cli(project, "status", "--env", "prod"))
    assert "5 applied, 0 pending, 0 unknown, 0 edited; 4 rows had no checksum" in out
    refused(cli(project, "status", "--env", "staging"), "--env staging: no such environment "
            "(configured: dev, prod)")
    refused(cli(project, "diff", "dev", "nowhere"), "'nowhere' is not an environment "
            "(configured: dev, prod), a postgresql:// URL, env:VARIABLE or an existing dotenv")
    monkeypatch.delenv("GAME_PROD_URL")
    refused(cli(project, "diff", "dev", "prod"), "reads its URL from $GAME_PROD_URL, which is "
            "not set")
    assert next_xid(prod) == xid


def test_diff_honours_db_ssl_mode(pytester: pytest.Pytester, prod: StandinProduction) -> None:
    source = team_project(pytester)
    dev = deployed_by_the_team(prod, source)
    project = environments_project(pytester, prod, dev, dev, sslmode="require")
    # Each side is named as the user named it, never "production".
    err = refused(cli(project, "diff", "dev", ".env.database"), "Cannot reach dev at "
                  f"postgresql://{READER}:****@127.0.0.1:", "(from environment dev (file "
                  ".env.database))", "SSL", code=11)
    assert "production" not in err.lower()
    err = refused(cli(project, "diff", ".env.database", "dev"), "Cannot reach .env.database "
                  f"at postgresql://{READER}:****@", code=11)
    assert "production" not in err.lower()
    url = prod.url(dev, READER, sslmode="require")
    err = refused(cli(project, "diff", url, "dev"), f"Cannot reach postgresql://{READER}:****@",
                  "(from command line)", code=11)
    assert "production" not in err.lower()
    (project / ".env.broken").write_text("DB_HOST=127.0.0.1\nDB_USER=x\n")
    err = refused(cli(project, "diff", ".env.broken", "dev"), "missing DB_NAME (needed to "
                  "reach .env.broken)")
    assert "production" not in err.lower()


def test_check_against_a_named_environment(pytester: pytest.Pytester, prod: StandinProduction,
                                           cache_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``check --env NAME``: the bundled files against that environment's database instead
    of the set's production, reported under the environment's name."""
    source = team_project(pytester)
    dev = deployed_by_the_team(prod, source)
    project = environments_project(pytester, prod, dev, dev)
    monkeypatch.setenv("SCHEMASYNC_CACHE_DIR", str(cache_dir))
    out = ok(cli(project, "check", "--env", "dev"))
    assert "schema check 'game': no drift, migrations in sync (4 applied) against dev " \
           "PostgreSQL" in out, out
    prod.execute(dev, "ALTER TABLE public.players ADD COLUMN nickname text")
    xid = next_xid(prod)
    out = ok(cli(project, "check", "--env", "dev", "--set", "game"), code=10)
    assert "missing column public.players.nickname" in out
    assert "+++ dev" in out and re.search(r"^ +dev +PostgreSQL .*from environment dev", out,
                                          re.MULTILINE), out
    assert "refresh the files" not in out and "schemasync diff dev" in out
    assert "Migration history (local files vs dev schema_migrations): in sync" in out
    assert next_xid(prod) == xid  # read-only
    refused(cli(project, "check", "--env", "staging"), "--env staging: no such environment "
            "(configured: dev, prod)")
    refused(cli(project, "check", "--env", "dev", "--set", "game", "--set", "game"),
            "--env dev names one database")


# --- the example project's gameforge set, end to end --------------------------------------------


def test_example_gameforge_against_a_team_deployed_production(
        tmp_path: Path, prod: StandinProduction, cache_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "backups"))
    schema, folder = "db/gameforge/schema.sql", "db/gameforge/migrations"
    live = deployed_by_the_team(prod, project, schema, folder)
    monkeypatch.setenv("GAMEFORGE_PRODUCTION_URL", prod.url(live, READER))

    out = ok(cli(project, "status", "--env", "prod"))
    assert ("4 applied, 0 pending, 0 unknown, 0 edited; 4 rows had no checksum (placeholder or "
            "empty: those files cannot be checked for edits); baseline 000_baseline") in out

    # A new database migrated by schemasync: one row per file, completed with real sums.
    fresh = f"fresh_{next(_names)}"
    prod.create_database(fresh, [project / schema])
    ok(cli(project, "migrate", prod.url(fresh, OWNER)))
    assert rows(prod, fresh, "SELECT version, checksum_status FROM migration_status") == [
        ("000_migration_system", "verified"), ("001_add_player_profiles", "verified"),
        ("002", "verified"), ("003_add_asset_search", "verified")]
    monkeypatch.setenv("FRESH_URL", prod.url(fresh, READER))
    assert "no drift" in ok(cli(project, "diff", "env:FRESH_URL", "prod"))

    # The schema check and the tests (those at before="003" too) against that production.
    out = run_pytest_in(project, cache_dir, "--schema-check", "tests/test_migrations.py")
    assert "schema check 'gameforge': no drift, migrations in sync (4 applied)" in out
    assert "PASSED tests/test_migrations.py::test_003_backfills_existing_assets" in out
    assert "PASSED tests/test_migrations.py::test_team_functions_work_with_the_rows" in out
