"""Migrations as other tools name and record them (``migration-style``): Flyway, golang-migrate,
dbmate, Rails-style timestamps and dotted versions. One small project per style; production's
history is written in each tool's own table, as that tool writes it; templates, ``status``
and ``migrate`` run against real servers.
"""

from __future__ import annotations

import itertools
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CliResult, make_project, run_inner, run_schemasync
from test_migrations import PASSWORD, cli, ok, refused, relation_exists, rows

from pytest_schemasync.errors import MigrationError
from pytest_schemasync.migrations import discover
from pytest_schemasync.standin import OWNER, READER, StandinProduction
from pytest_schemasync.styles import STYLE_TABLE, detect

BASE_SQL = "CREATE TABLE public.players (id serial PRIMARY KEY, name text NOT NULL);\n"


@pytest.fixture(scope="module")
def prod() -> Iterator[StandinProduction]:
    with StandinProduction(password=PASSWORD) as server:
        yield server


_names = itertools.count(1)


def project_with(pytester: pytest.Pytester, files: dict[str, str], style: str | None) -> Path:
    body = {"files": ["base.sql"], "migrations": "migrations"}
    if style is not None:
        body["migration-style"] = style
    make_project(pytester, sets={"app": body},
                 files={"base.sql": BASE_SQL, **{f"migrations/{n}": t for n, t in files.items()}})
    return pytester.path


def database(prod: StandinProduction, project: Path, history_sql: str = "") -> str:
    """A database at the state the tool left it: base, the given history statements (run
    as the owner, so the reader may read them)."""
    name = f"style_{next(_names)}"
    prod.create_database(name, [project / "base.sql"])
    if history_sql:
        with prod.superuser_connect(name) as conn:
            conn.execute(f"SET ROLE {OWNER}")
            conn.execute(history_sql)  # type: ignore[arg-type]
    return name


def status(project: Path, prod: StandinProduction, db: str, code: int = 0) -> str:
    return ok(cli(project, "status", prod.url(db, READER)), code=code)


def java_crc32(text: str) -> int:
    """Flyway's checksum, written out independently: CRC32 over the lines' bytes."""
    value = zlib.crc32("".join(text.split("\n")).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


# --- Flyway ----------------------------------------------------------------------------------

FLYWAY = {
    "V1__create_scores.sql": "CREATE TABLE public.scores (player_id integer, points integer);\n",
    "V1_1__add_level.sql": "ALTER TABLE public.players ADD COLUMN level integer DEFAULT 1;\n",
    "V2__add_badges.sql": "CREATE TABLE public.badges (id serial PRIMARY KEY, label text);\n",
    "R__leaderboard.sql": ("CREATE OR REPLACE VIEW public.leaderboard AS SELECT p.name, "
                           "sum(s.points) AS total FROM public.players p JOIN public.scores s "
                           "ON s.player_id = p.id GROUP BY p.name;\n"),
    "U1_1__drop_level.sql": "ALTER TABLE public.players DROP COLUMN level;\n",  # undo: ignored
}
FLYWAY_TABLE = STYLE_TABLE["flyway"].ddl


def flyway_rows(rows_: list[tuple[str | None, str, str, bool]]) -> str:
    values = ", ".join(
        f"({rank}, {repr(v) if v else 'NULL'}, '{d}', 'SQL', '{script}', "
        f"{java_crc32(FLYWAY[script])}, 'flyway', 0, {str(ok_).lower()})"
        for rank, (v, d, script, ok_) in enumerate(rows_, 1))
    return (FLYWAY_TABLE + "INSERT INTO public.flyway_schema_history (installed_rank, version, "
            "description, type, script, checksum, installed_by, execution_time, success) "
            f"VALUES {values};")


FLYWAY_DONE = [("1", "create scores", "V1__create_scores.sql", True),
               ("1.1", "add level", "V1_1__add_level.sql", True),
               ("2", "add badges", "V2__add_badges.sql", True),
               (None, "leaderboard", "R__leaderboard.sql", True)]


def test_flyway_project(pytester: pytest.Pytester, prod: StandinProduction,
                        cache_dir: Path) -> None:
    project = project_with(pytester, FLYWAY, None)  # detected from the names
    db = database(prod, project, "".join(FLYWAY[s] for _, _, s, _ in FLYWAY_DONE)
                  + flyway_rows(FLYWAY_DONE))
    out = status(project, prod, db)
    assert "4 applied, 0 pending, 0 unknown, 0 edited\n" in out
    assert "  applied   1.1  add level  (" in out

    # Edited after it ran: Flyway's own checksum tells.
    level = project / "migrations" / "V1_1__add_level.sql"
    level.write_text(FLYWAY["V1_1__add_level.sql"] + "-- tweak\n")
    out = status(project, prod, db, code=10)
    recorded = f"crc32:{java_crc32(FLYWAY[level.name])}"
    assert f"  EDITED    1.1  add level  checksum applied {recorded[:12]}…" in out
    level.write_text(FLYWAY["V1_1__add_level.sql"])

    # A changed repeatable runs again, after the versioned ones; a failed row is reported.
    view = project / "migrations" / "R__leaderboard.sql"
    view.write_text(FLYWAY["R__leaderboard.sql"].replace("sum(s.points)", "sum(s.points) * 2"))
    assert "  pending   R  leaderboard" in status(project, prod, db, code=0)
    out = ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert "applied R  leaderboard" in out
    got = rows(prod, db, "SELECT installed_rank, version, script, success FROM "
                         "flyway_schema_history ORDER BY installed_rank")
    assert got[-1] == (5, None, "R__leaderboard.sql", True)
    assert "* 2" in rows(prod, db, "SELECT pg_get_viewdef('leaderboard')")[0][0]

    (project / "migrations" / "V3__add_titles.sql").write_text(
        "ALTER TABLE public.players ADD COLUMN title text;\n")
    prod.execute(db, "INSERT INTO flyway_schema_history VALUES (6, '3', 'add titles', 'SQL', "
                     "'V3__add_titles.sql', 1, 'flyway', now(), 5, false)")
    out = status(project, prod, db, code=10)
    assert "  FAILED    3  add titles  (the tool recorded it as failed" in out
    refused(cli(project, "migrate", prod.url(db, OWNER)), "recorded as failed (dirty)")
    assert rows(prod, db, "SELECT count(*) FROM information_schema.columns WHERE "
                          "column_name = 'title'") == [(0,)]

    # A template: the files in order, the repeatable last, recorded in Flyway's table; one
    # before a version leaves later ones (and the repeatables) out.
    (project / "migrations" / "V3__add_titles.sql").unlink()
    pytester.makepyfile(test_t="""
        import pytest

        def test_all(db):
            got = db.execute("SELECT version, script, success FROM flyway_schema_history "
                             "ORDER BY installed_rank").fetchall()
            assert got == [("1", "V1__create_scores.sql", True), ("1.1", "V1_1__add_level.sql",
                           True), ("2", "V2__add_badges.sql", True),
                           (None, "R__leaderboard.sql", True)]
            db.execute("SELECT l.name, l.total, p.level FROM leaderboard l, players p")

        @pytest.mark.schemasync("app", before="1.1")
        def test_before(db):
            got = db.execute("SELECT version FROM flyway_schema_history").fetchall()
            assert got == [("1",)]
            assert db.execute("SELECT to_regclass('leaderboard')").fetchone()[0] is None
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=2)


def test_flyway_versions_equal_as_flyway_compares_them(
        pytester: pytest.Pytester, prod: StandinProduction, cache_dir: Path) -> None:
    """Flyway ignores trailing zero parts (1 = 1.0 = 1.0.0), reads 1_1 as 1.1 and compares
    parts as numbers (01 = 1, 1.10 after 1.9): a history recorded as 1.0 and 1.1.0 is the
    files V1__ and V1_1__, and their order follows those rules too."""
    files = {
        "V1__create_scores.sql": FLYWAY["V1__create_scores.sql"],
        "V1_1__add_level.sql": FLYWAY["V1_1__add_level.sql"],
        "V1_9__add_rank.sql": "ALTER TABLE public.players ADD COLUMN rank integer;\n",
        # 1.10 after 1.9, and it needs the column 1.9 adds.
        "V1_10__rank_index.sql": "CREATE INDEX players_rank ON public.players (rank);\n",
    }
    project = project_with(pytester, files, "flyway")
    folder = project / "migrations"
    assert [m.version for m in discover(folder, style=STYLE_TABLE["flyway"])] == [
        "1", "1.1", "1.9", "1.10"]
    # A history written by Flyway when the files were named V1_0__ and V1_1_0__ (renames
    # Flyway accepts: the same versions), plus 1.9 as "01.9".
    recorded = [("1.0", "V1_0__create_scores.sql", "V1__create_scores.sql"),
                ("1.1.0", "V1_1_0__add_level.sql", "V1_1__add_level.sql"),
                ("01.9", "V01_9__add_rank.sql", "V1_9__add_rank.sql")]
    values = ", ".join(
        f"({rank}, '{version}', 'x', 'SQL', '{script}', {java_crc32(files[name])}, 'flyway', "
        f"0, true)" for rank, (version, script, name) in enumerate(recorded, 1))
    db = database(prod, project, "".join(files[n] for _, _, n in recorded) + FLYWAY_TABLE
                  + "INSERT INTO public.flyway_schema_history (installed_rank, version, "
                    "description, type, script, checksum, installed_by, execution_time, "
                    f"success) VALUES {values};")
    out = status(project, prod, db)
    assert "3 applied, 1 pending, 0 unknown, 0 edited\n" in out, out
    assert "  applied   1  create scores  (" in out and "recorded as 1.0" in out
    assert "  pending   1.10  rank index\n" in out  # not older than 1.9: 10 > 9
    ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert rows(prod, db, "SELECT version FROM flyway_schema_history ORDER BY "
                          "installed_rank") == [("1.0",), ("1.1.0",), ("01.9",), ("1.10",)]
    assert "4 applied, 0 pending, 0 unknown, 0 edited\n" in status(project, prod, db)

    # A file between 1 and 1.1 is older than the newest applied one; 1.0.1 is not 1.
    (folder / "V1_0_1__late.sql").write_text("SELECT 1;\n")
    out = status(project, prod, db)
    assert "  pending   1.0.1  late  (older than the newest applied one)" in out, out
    (folder / "V1_0_1__late.sql").unlink()

    # before= takes Flyway's versions too: 1.1.0 is 1.1, so only 1 is in the template.
    pytester.makepyfile(test_t="""
        import pytest

        @pytest.mark.schemasync("app", before="1.1.0")
        def test_before(db):
            got = db.execute("SELECT version FROM flyway_schema_history").fetchall()
            assert got == [("1",)]
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)

    # Two files of one version, as Flyway sees them, are refused like any duplicate.
    (folder / "V1_0__again.sql").write_text("SELECT 1;\n")
    refused(cli(project, "status", prod.url(db, READER)), "Two migrations share version",
            "V1_0__again.sql")


def test_flyway_baseline_covers_the_files_below_it(
        pytester: pytest.Pytester, prod: StandinProduction, cache_dir: Path) -> None:
    """``flyway baseline -baselineVersion=1.1`` on a database that already had V1 and V1.1's
    objects: Flyway never runs files at or below a BASELINE row ("below baseline"). They are
    applied, not pending; a refresh keeps the row, so a template does not run them again."""
    files = {k: FLYWAY[k] for k in ("V1__create_scores.sql", "V1_1__add_level.sql",
                                    "V2__add_badges.sql")}
    make_project(pytester, sets={"app": {"files": ["base.sql"], "migrations": "migrations",
                                         "production-url-env": "APP_URL"}},
                 files={"base.sql": BASE_SQL, **{f"migrations/{n}": t for n, t in files.items()}})
    project = pytester.path
    db = database(prod, project, files["V1__create_scores.sql"] + files["V1_1__add_level.sql"]
                  + FLYWAY_TABLE + "INSERT INTO public.flyway_schema_history (installed_rank, "
                  "version, description, type, script, checksum, installed_by, execution_time, "
                  "success) VALUES (1, '1.1', '<< Flyway Baseline >>', 'BASELINE', "
                  "'<< Flyway Baseline >>', NULL, 'flyway', 0, true);")
    out = status(project, prod, db)
    assert "2 applied, 1 pending, 0 unknown, 0 edited" in out, out
    assert "  applied   1  create scores  (" in out and "below the baseline" in out
    assert "  pending   2  add badges\n" in out  # not "older than the newest applied one"
    ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert rows(prod, db, "SELECT version, type FROM flyway_schema_history ORDER BY "
                          "installed_rank") == [("1.1", "BASELINE"), ("2", "SQL")]

    env = dict(os.environ, APP_URL=prod.url(db), SCHEMASYNC_CACHE_DIR=str(cache_dir))
    ok(run_schemasync(project, "refresh", env=env, timeout=180, secrets=[PASSWORD]))
    assert "'BASELINE'" in (project / "base.sql").read_text()
    out = ok(run_schemasync(project, "check", env=env, timeout=180, secrets=[PASSWORD]))
    assert "no drift, migrations in sync (3 applied)" in out, out
    pytester.makepyfile(test_t="""
        def test_t(db):
            got = db.execute("SELECT version, type FROM flyway_schema_history "
                             "ORDER BY installed_rank").fetchall()
            assert got == [("1.1", "BASELINE"), ("2", "SQL")]
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


def test_flyway_runs_concurrent_index_files_outside_a_transaction(
        pytester: pytest.Pytester, prod: StandinProduction, cache_dir: Path) -> None:
    """Flyway runs a file with CREATE INDEX CONCURRENTLY (or VACUUM, ALTER SYSTEM, ...)
    without a transaction on PostgreSQL; builds and migrate do the same."""
    files = {"V1__create_scores.sql": FLYWAY["V1__create_scores.sql"],
             "V2__index.sql": "-- no lock on a busy table\nCREATE  INDEX\n  CONCURRENTLY "
                              "scores_player ON public.scores (player_id);\n"}
    project = project_with(pytester, files, None)
    db = database(prod, project)
    ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert rows(prod, db, "SELECT version, success FROM flyway_schema_history ORDER BY "
                          "installed_rank") == [("1", True), ("2", True)]
    assert rows(prod, db, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                          "'scores_player'::regclass") == [(True,)]
    path = project / "migrations" / "V3__broken.sql"
    path.write_text("CREATE INDEX CONCURRENTLY scores_points ON public.scores (player_id);\n"
                    "DROP INDEX CONCURRENTLY public.nowhere;\n")
    refused(cli(project, "migrate", prod.url(db, OWNER)), f"{path}:2",
            "failed outside a transaction (it has a statement PostgreSQL refuses in one")
    assert relation_exists(prod, db, "scores_points")
    path.unlink()
    pytester.makepyfile(test_t="""
        def test_t(db):
            assert db.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                              "'scores_player'::regclass").fetchone()[0] is True
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


# --- golang-migrate --------------------------------------------------------------------------

GOLANG = {
    "000001_create_scores.up.sql": "CREATE TABLE public.scores (player_id integer);\n",
    "000001_create_scores.down.sql": "DROP TABLE public.scores;\n",
    "000002_add_level.up.sql": "ALTER TABLE public.players ADD COLUMN level integer;\n",
    "000002_add_level.down.sql": "ALTER TABLE public.players DROP COLUMN level;\n",
}
GOLANG_TABLE = STYLE_TABLE["golang-migrate"].ddl


def test_golang_migrate_project(pytester: pytest.Pytester, prod: StandinProduction,
                                cache_dir: Path) -> None:
    project = project_with(pytester, GOLANG, None)
    db = database(prod, project, GOLANG_TABLE + GOLANG["000001_create_scores.up.sql"]
                  + "INSERT INTO public.schema_migrations VALUES (1, false);")
    out = status(project, prod, db)
    assert "1 applied, 1 pending, 0 unknown, 0 edited\n" in out
    assert "  pending   000002  add level" in out

    out = ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert rows(prod, db, "SELECT version, dirty FROM schema_migrations") == [(2, False)]
    assert "2 applied, 0 pending" in status(project, prod, db)

    # A dirty version: golang-migrate stopped half-way through it.
    prod.execute(db, "UPDATE schema_migrations SET dirty = true")
    out = status(project, prod, db, code=10)
    assert "  FAILED    000002  add level  (the tool recorded it as failed or dirty" in out
    assert "1 applied, 0 pending, 0 unknown, 0 edited, 1 failed" in out
    refused(cli(project, "migrate", prod.url(db, OWNER)), "000002", "recorded as failed")

    pytester.makepyfile(test_t="""
        def test_t(db):
            assert db.execute("SELECT version, dirty FROM schema_migrations").fetchall() == \\
                [(2, False)]
            db.execute("SELECT player_id FROM scores")  # the .down.sql files did not run
            db.execute("SELECT level FROM players")
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


# --- dbmate and Rails-style timestamps -------------------------------------------------------

DBMATE = {
    "20240101000000_create_scores.sql": (
        "-- migrate:up\nCREATE TABLE public.scores (player_id integer);\n\n"
        "-- migrate:down\nDROP TABLE public.scores;\n"),
    "20240202000000_add_level.sql": (
        "-- migrate:up\nALTER TABLE public.players ADD COLUMN level integer;\n"
        "ALTER TABLE public.players ADD COLUMN nope integer REFERENCES public.nowhere;\n"
        "-- migrate:down\nALTER TABLE public.players DROP COLUMN level;\n"),
}


def test_dbmate_project(pytester: pytest.Pytester, prod: StandinProduction,
                        cache_dir: Path) -> None:
    project = project_with(pytester, DBMATE, None)
    table = STYLE_TABLE["dbmate"].ddl
    db = database(prod, project, table + "CREATE TABLE public.scores (player_id integer);"
                  "INSERT INTO public.schema_migrations VALUES ('20240101000000');")
    assert "1 applied, 1 pending" in status(project, prod, db)
    path = project / "migrations" / "20240202000000_add_level.sql"
    # Only the up section runs; an error in it points at its line in the file.
    refused(cli(project, "migrate", prod.url(db, OWNER)), f"{path}:3", "nowhere")
    path.write_text(DBMATE[path.name].replace(
        "ALTER TABLE public.players ADD COLUMN nope integer REFERENCES public.nowhere;\n", ""))
    ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert rows(prod, db, "SELECT version FROM schema_migrations ORDER BY 1") == [
        ("20240101000000",), ("20240202000000",)]
    assert relation_exists(prod, db, "scores")  # the down sections did not run

    pytester.makepyfile(test_t="""
        def test_t(db):
            assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 2
            db.execute("SELECT level FROM players, scores")
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


DBMATE_NO_TX = {
    "20240101000000_create_scores.sql": DBMATE["20240101000000_create_scores.sql"],
    # dbmate runs this up section outside a transaction: CREATE INDEX CONCURRENTLY refuses
    # to run in one, and a value ALTER TYPE adds cannot be used in the transaction adding it.
    "20240303000000_concurrent_index.sql": (
        "-- migrate:up transaction:false\n"
        "CREATE INDEX CONCURRENTLY players_name_idx ON public.players (name);\n"
        "ALTER TYPE public.mood ADD VALUE 'glad';\n"
        "UPDATE public.players SET mood = 'glad';\n"
        "-- migrate:down\nDROP INDEX players_name_idx;\n"),
}


def test_dbmate_transaction_false(pytester: pytest.Pytester, prod: StandinProduction,
                                  cache_dir: Path) -> None:
    project = project_with(pytester, DBMATE_NO_TX, "dbmate")
    (project / "base.sql").write_text(
        BASE_SQL + "CREATE TYPE public.mood AS ENUM ('sad');\n"
        "ALTER TABLE public.players ADD COLUMN mood public.mood;\n"
        "INSERT INTO public.players (name, mood) VALUES ('ada', 'sad');\n")
    db = database(prod, project)
    ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert rows(prod, db, "SELECT version FROM schema_migrations ORDER BY 1") == [
        ("20240101000000",), ("20240303000000",)]
    assert rows(prod, db, "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                          "'players_name_idx'::regclass") == [(True,)]
    assert rows(prod, db, "SELECT mood::text FROM players") == [("glad",)]
    assert "2 applied, 0 pending" in status(project, prod, db)

    # A failure half-way: what ran before stays (no transaction), no history row, and the
    # message says so.
    path = project / "migrations" / "20240404000000_half.sql"
    path.write_text("-- migrate:up transaction:false\n"
                    "CREATE INDEX CONCURRENTLY players_mood_idx ON public.players (mood);\n"
                    "CREATE INDEX CONCURRENTLY broken_idx ON public.nowhere (x);\n"
                    "-- migrate:down\n")
    err = refused(cli(project, "migrate", prod.url(db, OWNER)), f"{path}:3", "nowhere",
                  "failed outside a transaction (-- migrate:up transaction:false)",
                  "before the failing one stay applied")
    assert "rolled back" not in err
    assert relation_exists(prod, db, "players_mood_idx")
    assert ("20240404000000",) not in rows(prod, db, "SELECT version FROM schema_migrations")
    path.unlink()

    # The template build honours it too.
    pytester.makepyfile(test_t="""
        def test_t(db):
            assert db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == 2
            assert db.execute("SELECT mood::text FROM players").fetchall() == [("glad",)]
            assert db.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = "
                              "'players_name_idx'::regclass").fetchone()[0] is True
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


def test_rails_timestamp_history(pytester: pytest.Pytester, prod: StandinProduction) -> None:
    files = {"20240101123456_create_scores.sql": "CREATE TABLE public.scores (x int);\n",
             "20240301000000_add_level.sql": "ALTER TABLE public.players ADD level int;\n"}
    project = project_with(pytester, files, "timestamp")
    db = database(prod, project, "CREATE TABLE public.schema_migrations (version character "
                  "varying NOT NULL PRIMARY KEY); INSERT INTO public.schema_migrations VALUES "
                  "('20240101123456'), ('20231231000000');")
    out = status(project, prod, db, code=10)
    assert "  UNKNOWN   20231231000000" in out
    assert "1 applied, 1 pending, 1 unknown, 0 edited\n" in out
    # Numbered (the default) reads that table as a foreign one, and says what to do.
    project = project_with(pytester, files, "numbered")
    refused(cli(project, "status", prod.url(db, READER)), "set migration-style",
            "\"timestamp\" for Rails or dbmate")


# --- dotted versions -------------------------------------------------------------------------

DOTTED = {
    "00.00.00_01_initial.sql": "CREATE TABLE public.jobs (id serial PRIMARY KEY);\n",
    "1.9.0_01_add_state.sql": "ALTER TABLE public.jobs ADD COLUMN state text;\n",
    # After 1.9.0 by its numbers (before it as text); needs the column 1.9.0 adds.
    "1.10.0_50_post_add_retry_failed_job_procedure.sql": (
        "CREATE PROCEDURE public.retry_failed_jobs() LANGUAGE sql AS $$ UPDATE public.jobs "
        "SET state = 'queued' WHERE state = 'failed' $$;\n"),
}


def test_dotted_versions(pytester: pytest.Pytester, prod: StandinProduction,
                         cache_dir: Path) -> None:
    project = project_with(pytester, DOTTED, None)
    assert [m.version for m in discover(project / "migrations", style=detect(
        project / "migrations"))] == ["00.00.00_01", "1.9.0_01", "1.10.0_50"]
    db = database(prod, project)
    ok(cli(project, "migrate", prod.url(db, OWNER)))
    assert [r[0] for r in rows(prod, db, "SELECT version FROM schema_migrations ORDER BY "
                                         "applied_at")] == ["00.00.00_01", "1.9.0_01",
                                                            "1.10.0_50"]
    assert "3 applied, 0 pending, 0 unknown, 0 edited\n" in status(project, prod, db)

    pytester.makepyfile(test_t="""
        import pytest

        @pytest.mark.schemasync("app", before="1.10.0_50")
        def test_before(db):
            got = db.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
            assert got == [("00.00.00_01",), ("1.9.0_01",)]
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


# --- refresh of a set in each style ---------------------------------------------------------

DBMATE_OK = {"20240101000000_create_scores.sql": DBMATE["20240101000000_create_scores.sql"],
             "20240202000000_add_level.sql": ("-- migrate:up\nALTER TABLE public.players ADD "
                                              "COLUMN level integer;\n-- migrate:down\n")}
REFRESH_CASES = {  # style: (files, a later file, rows its history holds after that file)
    "flyway": ({k: v for k, v in FLYWAY.items() if not k.startswith("U")},
               ("V3__add_title.sql", ""), 5),
    "golang-migrate": (GOLANG, ("000003_add_title.up.sql", ""), 1),
    "dbmate": (DBMATE_OK, ("20240505000000_add_title.sql", "-- migrate:up\n"), 3),
    "timestamp": ({"20240101123456_create_scores.sql": "CREATE TABLE public.scores (x int);\n",
                   "20240301000000_add_level.sql": "ALTER TABLE public.players ADD level int;\n"},
                  ("20240505000000_add_title.sql", ""), 3),
    "dotted": (DOTTED, ("2.0.0_01_add_title.sql", ""), 4),
}


@pytest.mark.parametrize("style", list(REFRESH_CASES))
def test_refresh_keeps_the_tools_history(pytester: pytest.Pytester, prod: StandinProduction,
                                         cache_dir: Path, style: str) -> None:
    """Production migrated in the tool's way, then a hotfix: the refreshed base carries the
    tool's history rows, so it rebuilds production (no drift, no pending, no unknown), and
    a later local file is the only one a template runs."""
    files, (later, head), count = REFRESH_CASES[style]
    make_project(pytester, sets={"app": {"files": ["base.sql"], "migrations": "migrations",
                                         "migration-style": style,
                                         "production-url-env": "APP_URL"}},
                 files={"base.sql": BASE_SQL, **{f"migrations/{n}": t for n, t in files.items()}})
    project = pytester.path
    db = database(prod, project)
    ok(cli(project, "migrate", prod.url(db, OWNER)))
    prod.execute(db, "CREATE INDEX players_name_idx ON public.players (name)")
    env = dict(os.environ, APP_URL=prod.url(db), SCHEMASYNC_CACHE_DIR=str(cache_dir))

    def run(*args: str) -> CliResult:
        return run_schemasync(project, *args, env=env, timeout=180, secrets=[PASSWORD])

    ok(run("refresh", "--set", "app"))
    base = (project / "base.sql").read_text()
    table = STYLE_TABLE[style].table
    assert "players_name_idx" in base and f"INSERT INTO public.{table}" in base
    out = ok(run("check"))
    assert "no drift, migrations in sync" in out, out
    assert " 0 pending, 0 unknown, 0 edited" in status(project, prod, db)

    (project / "migrations" / later).write_text(
        head + "ALTER TABLE public.players ADD COLUMN title text;\n")
    assert "  pending   " in status(project, prod, db)
    pytester.makepyfile(test_t=f"""
        def test_t(db):
            assert db.execute("SELECT count(*) FROM {table}").fetchone()[0] == {count}
            db.execute("SELECT title FROM players")
            assert db.execute("SELECT to_regclass('players_name_idx')").fetchone()[0]
    """)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    out = ok(run("check"), code=10)
    assert " 1 pending, 0 unknown, 0 edited" in out, out


# --- detection and names ---------------------------------------------------------------------


@pytest.mark.parametrize(("files", "style"), [
    ({"001_a.sql": "SELECT 1;"}, "numbered"),
    ({"20240101000000_a.sql": "SELECT 1;"}, "numbered"),  # a timestamp stays numbered
    ({"V1__a.sql": "SELECT 1;", "R__b.sql": "SELECT 1;"}, "flyway"),
    ({"1_a.up.sql": "SELECT 1;", "1_a.down.sql": "SELECT 1;"}, "golang-migrate"),
    ({"20240101000000_a.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\n"}, "dbmate"),
    ({"03.04.00_01_a.sql": "SELECT 1;"}, "dotted"),
])
def test_style_is_detected(tmp_path: Path, files: dict[str, str], style: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert detect(tmp_path).name == style


def test_a_name_the_style_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "V1__a.sql").write_text("SELECT 1;\n")
    (tmp_path / "001_b.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=re.escape(
            "001_b.sql: migration files must be named V<version>__description.sql")):
        discover(tmp_path, style=STYLE_TABLE["flyway"])
    (tmp_path / "V1_1__c.sql").write_text("SELECT 1;\n")
    (tmp_path / "V1.1__d.sql").write_text("SELECT 1;\n")
    (tmp_path / "001_b.sql").unlink()
    with pytest.raises(MigrationError, match=re.escape("Two migrations share version 1.1")):
        discover(tmp_path, style=STYLE_TABLE["flyway"])
