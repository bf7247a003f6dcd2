"""``pytest --refresh-schema`` and ``schemasync refresh`` / ``backups`` / ``rollback`` / ``dump``.

Everything runs against real PostgreSQL: one stand-in production per module (a separate
cluster on 127.0.0.1 with scram passwords and a read-only role, see ``standin.py``) and, per
test, the embedded scratch server in its own cache directory. The CLI runs as a subprocess
with the project as its working directory; pytest sessions run through ``pytester``.

The project looks like the example's: a ``trails`` set made like carthorse (a main schema
file, a middle fix-up file with CREATE OR REPLACE, and a functions-file) and a ``game`` set
made like gameforge (one file, no functions-file).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from conftest import (
    CliResult,
    make_project,
    output_of,
    run_inner,
    run_schemasync,
    scratch_cache_dir,
    suite_binaries,
    suite_major,
)

from pytest_schemasync.binaries import find_pg_dump
from pytest_schemasync.refresh import _pg_dump_supports, dump_schema
from pytest_schemasync.sqltext import split_statements
from pytest_schemasync.standin import StandinProduction
from pytest_schemasync.swap import JOURNAL, NEW_SUFFIX, recover, replace_files

# A distinctive password with characters that URLs and conninfo strings must quote.
PASSWORD = "Zq7 Tundra/Lamp@91%x"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), "Tundra/Lamp", "Tundra%2FLamp",
           "Lamp@91", "Lamp%4091")

SCHEMA = "sql/schemas/trails-complete-schema.sql"
FIX = "docs/sql/fix_routing_functions.sql"
FUNCS = "sql/schemas/missing-functions.sql"
GAME = "db/game/schema.sql"
TRAILS_FILES = (SCHEMA, FIX, FUNCS)
ALL_FILES = (*TRAILS_FILES, GAME)

# --- the project's files -------------------------------------------------------------

TRAILS_SCHEMA = """\
-- trails-complete-schema.sql: the main schema, as first exported by hand.
SET client_min_messages = warning;

CREATE SCHEMA reporting;

CREATE TABLE reporting.daily_usage (
    day date PRIMARY KEY,
    hikes integer DEFAULT 0 NOT NULL
);

CREATE FUNCTION public.default_region() RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'front-range'::text $$;

CREATE TABLE public.trails (
    id serial PRIMARY KEY,
    name text NOT NULL,
    region text DEFAULT public.default_region() NOT NULL,
    length_km double precision,
    updated_at timestamp with time zone
);

CREATE FUNCTION public.km_to_miles(km double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT km * 0.621371 $$;

-- SQL-standard bodies are checked when created: trail_slug needs slug_part to exist.
CREATE FUNCTION public.slug_part(t text) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
        SELECT lower(regexp_replace(t, '[^a-zA-Z0-9]+', '-', 'g'));
    END;

CREATE FUNCTION public.trail_slug(name text, region text) RETURNS text
    LANGUAGE sql IMMUTABLE
    BEGIN ATOMIC
        SELECT public.slug_part(region) || '/' || public.slug_part(name);
    END;

CREATE VIEW public.trail_miles AS
    SELECT id, name, public.km_to_miles(length_km) AS miles,
           public.trail_slug(name, region) AS slug
    FROM public.trails;

CREATE FUNCTION public.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER trails_touch BEFORE UPDATE ON public.trails
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

-- The first version of the graph builder; docs/sql/fix_routing_functions.sql replaces it.
CREATE FUNCTION public.build_routing(tolerance double precision) RETURNS integer
    LANGUAGE plpgsql
    AS $$ BEGIN RETURN 0; END; $$;
"""

TRAILS_FIX = """\
-- fix_routing_functions.sql: fixes for the main schema, applied after it.
CREATE OR REPLACE FUNCTION public.build_routing(tolerance double precision) RETURNS integer
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF tolerance < 0 THEN
        RAISE EXCEPTION 'tolerance must be >= 0 metres; got %', tolerance;
    END IF;
    RETURN 1;
END;
$$;
"""

# tricky_text: semicolons in strings and comments, a $q$ quote nested in the $$ body, and
# lines that start with "CREATE FUNCTION" inside it. A splitter that is not psql's would
# cut it apart, or take public.ghost for a function of its own.
TRAILS_FUNCS = """\
-- missing-functions.sql: helpers the API calls, loaded last (the set's functions-file).
CREATE OR REPLACE FUNCTION public.find_route(start_id integer, end_id integer)
RETURNS integer
    LANGUAGE sql STABLE
    AS $$ SELECT count(*)::integer FROM public.trails WHERE id BETWEEN start_id AND end_id $$;

COMMENT ON FUNCTION public.find_route(integer, integer) IS 'Hops between two trails; see docs';

CREATE OR REPLACE FUNCTION public.tricky_text(p text) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    q text := $q$
CREATE FUNCTION public.ghost() RETURNS integer AS 'SELECT 1';
$q$;
BEGIN
    -- semicolons; in a comment; CREATE FUNCTION public.comment_ghost() too;
    RETURN p || '; CREATE FUNCTION public.not_real() RETURNS int;' || q;
END;
$$;

CREATE OR REPLACE PROCEDURE public.archive_trails(before_id integer)
    LANGUAGE sql
    AS $$ DELETE FROM public.trails WHERE id < before_id; $$;
"""

GAME_SCHEMA = """\
-- gameforge-like schema: one file, no functions-file.
CREATE TYPE public.platform AS ENUM ('pc', 'console', 'mobile');

CREATE TABLE public.players (
    id bigserial PRIMARY KEY,
    tag text NOT NULL UNIQUE,
    platform public.platform DEFAULT 'pc' NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE FUNCTION public.normalize_tag() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN NEW.tag := lower(NEW.tag); RETURN NEW; END; $$;

CREATE TRIGGER players_normalize BEFORE INSERT OR UPDATE ON public.players
    FOR EACH ROW EXECUTE FUNCTION public.normalize_tag();

CREATE FUNCTION public.player_count() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM public.players $$;
"""

# Ephemeral schemas the import jobs leave in production; exclude-schemas keeps them out.
STAGING = """
CREATE SCHEMA staging_20260101_120000;
CREATE TABLE staging_20260101_120000.trails (id integer, name text, geometry_wkt text);
CREATE FUNCTION staging_20260101_120000.staging_helper() RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE SCHEMA staging_20260102_083000;
CREATE TABLE staging_20260102_083000.routing_nodes (id integer, lat double precision);
GRANT USAGE ON SCHEMA staging_20260101_120000, staging_20260102_083000 TO app_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA staging_20260101_120000 TO app_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA staging_20260102_083000 TO app_reader;
"""

# The production hotfix a refresh must pick up: a column, a function and an index added, a
# column dropped, a function changed.
HOTFIX = """
ALTER TABLE public.trails ADD COLUMN difficulty text;
CREATE FUNCTION public.trail_count() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT count(*) FROM public.trails $$;
CREATE INDEX trails_name_idx ON public.trails (name);
ALTER TABLE reporting.daily_usage DROP COLUMN hikes;
CREATE OR REPLACE FUNCTION public.km_to_miles(km double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT km / 1.609344 $$;
"""

HOTFIX_2 = """
ALTER TABLE public.trails ADD COLUMN surface text;
"""

# Functions that production must keep in the main file (a default, a view and a trigger use
# them, and slug_part is called by the checked body of trail_slug, which the view uses) and
# the ones a refresh moves to the functions file.
STAY_IN_SCHEMA = ("default_region", "km_to_miles", "slug_part", "touch_updated_at", "trail_slug")
MOVED = ("archive_trails", "build_routing", "find_route", "tricky_text")

_numbers = itertools.count(1)


# --- helpers -------------------------------------------------------------------------


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"the production password appears in {where}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


Run = CliResult


def run_cli(cwd: Path, env: dict[str, str], *args: str, timeout: float = 180) -> Run:
    """``schemasync ARGS`` in ``cwd``; its output never holds the password."""
    return run_schemasync(cwd, *args, env=env, timeout=timeout, secrets=SECRETS)


@dataclass
class Project:
    path: Path
    env: dict[str, str]
    prod: StandinProduction
    trails_db: str
    game_db: str
    cache_dir: Path

    def cli(self, *args: str, timeout: float = 180) -> Run:
        return run_cli(self.path, self.env, *args, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "pytest_schemasync.cli", *args],
                                cwd=self.path, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def read(self, rel: str) -> bytes:
        return (self.path / rel).read_bytes()

    def text(self, rel: str) -> str:
        return self.read(rel).decode("utf-8")

    def state(self, files: tuple[str, ...] = ALL_FILES) -> dict[str, str]:
        """The set's files as hashes (compared as a whole: old or new, never a mix)."""
        return {rel: sha(self.read(rel)) for rel in files}

    def write_state(self, contents: dict[str, bytes]) -> None:
        for rel, data in contents.items():
            (self.path / rel).write_bytes(data)

    def backups(self) -> list[Path]:
        base = self.path / "backups"
        return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def strays(self) -> list[Path]:
        """Files a swap writes aside, and its journal: none may survive a finished command."""
        return [*self.path.rglob(f"*{NEW_SUFFIX}"), *self.path.glob(f"{JOURNAL}*")]

    def listing(self) -> list[str]:
        """Every path in the project but what pytester keeps of its inner runs."""
        def pytesters(top: str) -> bool:
            return top.startswith("runpytest-") or top in ("stdout", "stderr")

        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*")
                      if not pytesters(p.relative_to(self.path).parts[0]))

    def assert_no_secret_in_files(self) -> None:
        for path in [*self.path.rglob("*"), self.cache_dir / "events.log"]:
            if path.is_file():
                assert_no_secret(path.read_bytes().decode("utf-8", "replace"), str(path))

    def production(self, db: str | None = None) -> psycopg.Connection[Any]:
        return self.prod.superuser_connect(db or self.trails_db)


@pytest.fixture(scope="module")
def prod() -> Iterator[StandinProduction]:
    with StandinProduction(password=PASSWORD) as server:
        yield server


@pytest.fixture(scope="module")
def shared_cache_dir() -> Iterator[Path]:
    """Like conftest's ``cache_dir``, but one per module (per xdist worker): the tests' projects
    differ, so they never share a template, and one initdb is enough for all of them."""
    with scratch_cache_dir() as path:
        yield path


ProjectFactory = Callable[..., Project]


@pytest.fixture
def make_trails_project(pytester: pytest.Pytester, shared_cache_dir: Path,
                        prod: StandinProduction,
                        monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectFactory]:
    """``factory(fix=TRAILS_FIX)``: the project, and its production installed from the very
    same files (so the bundled files describe production until a test changes it)."""
    made: list[Project] = []

    def factory(*, fix: str = TRAILS_FIX) -> Project:
        n = next(_numbers)
        trails_db, game_db = f"trails_{os.getpid()}_{n}", f"game_{os.getpid()}_{n}"
        make_project(
            pytester,
            tool={"default-set": "trails"},
            sets={
                "trails": {"files": list(TRAILS_FILES), "functions-file": FUNCS,
                           "exclude-schemas": ["staging_*"],
                           "production-url-env": "TRAILS_URL"},
                "game": {"files": [GAME], "production-url-env": "GAME_URL"},
            },
            files={SCHEMA: TRAILS_SCHEMA, FIX: fix, FUNCS: TRAILS_FUNCS, GAME: GAME_SCHEMA},
        )
        prod.create_database(trails_db, [pytester.path / rel for rel in TRAILS_FILES])
        prod.execute(trails_db, STAGING)
        prod.create_database(game_db, [pytester.path / GAME])
        # Both for the CLI subprocesses (env) and for pytester's inner sessions (os.environ).
        monkeypatch.setenv("TRAILS_URL", prod.url(trails_db))
        monkeypatch.setenv("GAME_URL", prod.url(game_db))
        env = dict(os.environ, SCHEMASYNC_CACHE_DIR=str(shared_cache_dir))
        project = Project(pytester.path, env, prod, trails_db, game_db, shared_cache_dir)
        made.append(project)
        return project

    yield factory
    for project in made:  # whatever the test did, no file it left holds the password
        project.assert_no_secret_in_files()


@pytest.fixture
def project(make_trails_project: ProjectFactory) -> Project:
    return make_trails_project()


def functions_in(text: str) -> set[str]:
    """Names of the functions and procedures a file creates, by real statement boundaries."""
    names = set()
    for statement in split_statements(text):
        match = re.match(r"CREATE (?:OR REPLACE )?(?:FUNCTION|PROCEDURE) public\.(\w+)\(",
                         statement.text)
        if match:
            names.add(match[1])
    return names


def summary_of(backup: Path) -> str:
    return (backup / "sync-summary.md").read_text(encoding="utf-8")


BACKUP_NAME = re.compile(r"^schema-sync-(\d{8}_\d{6})(-\d+)?$")


# --- 1. a refresh after production changed ------------------------------------------


def test_refresh_updates_exactly_the_schema_and_functions_files(project: Project) -> None:
    project.prod.execute(project.trails_db, HOTFIX)
    before = {rel: project.read(rel) for rel in ALL_FILES}

    started = time.time()
    result = project.cli("refresh", "--set", "trails")
    finished = time.time()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"refresh 'trails': updated {SCHEMA}, {FUNCS}" in result.stdout

    after = {rel: project.read(rel) for rel in ALL_FILES}
    assert after[SCHEMA] != before[SCHEMA]
    assert after[FUNCS] != before[FUNCS]
    assert after[FIX] == before[FIX], "the middle fix-up file of the set was rewritten"
    assert after[GAME] == before[GAME], "a file of another set was rewritten"
    assert "difficulty text" in project.text(SCHEMA)
    assert "CREATE INDEX trails_name_idx ON public.trails USING btree (name);" in project.text(
        SCHEMA)
    assert "trail_count" in functions_in(project.text(FUNCS))
    assert project.strays() == []

    # The new files reproduce production.
    check = project.cli("check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "schema check 'trails': no drift" in check.stdout
    assert "schema check 'game': no drift" in check.stdout

    # The backup: a folder named by the time, the dump, the previous and the new files.
    (backup,) = project.backups()
    match = BACKUP_NAME.match(backup.name)
    assert match, backup.name
    stamp = time.mktime(time.strptime(match[1], "%Y%m%d_%H%M%S"))
    assert int(started) - 1 <= stamp <= finished + 1
    assert (backup / "previous" / SCHEMA).read_bytes() == before[SCHEMA]
    assert (backup / "previous" / FUNCS).read_bytes() == before[FUNCS]
    assert not (backup / "previous" / FIX).exists()
    assert (backup / "new" / SCHEMA).read_bytes() == after[SCHEMA]
    assert (backup / "new" / FUNCS).read_bytes() == after[FUNCS]
    dumped = (backup / "production-schema.sql").read_text()
    assert "difficulty text" in dumped and "CREATE FUNCTION public.trail_count()" in dumped
    assert (backup / "production-functions.sql").read_bytes() == after[FUNCS]

    # sync-summary.md: when, from where (masked), versions, counts per kind, what changed.
    summary = summary_of(backup)
    with project.production() as conn:
        server_version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
    pg_dump_version = subprocess.run([suite_binaries().tool("pg_dump"), "--version"],
                                     capture_output=True,
                                     text=True).stdout.split()[2]
    when = re.search(r"^- When: (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", summary, re.M)
    assert when, summary
    assert abs(time.mktime(time.strptime(when[1], "%Y-%m-%d %H:%M:%S")) - started) < 120
    port = project.prod.info(project.trails_db).port
    assert (f"- From: postgresql://app_reader:****@127.0.0.1:{port}/{project.trails_db}"
            in summary), summary
    assert "env TRAILS_URL" in summary
    assert f"- Server: PostgreSQL {server_version}; pg_dump {pg_dump_version}" in summary
    assert f"- Files replaced: {SCHEMA}, {FUNCS}" in summary
    assert f"- Functions moved to the functions file: {len(MOVED) + 1}" in summary
    counts = dict(re.findall(r"^\| (\w[\w ]*) \| (\d+) \|$", summary, re.M))
    assert counts["table"] == "2", counts  # public.trails, reporting.daily_usage
    assert counts["view"] == "1", counts
    assert counts["trigger"] == "1", counts
    # The five of STAY_IN_SCHEMA, the four of MOVED and trail_count; not staging_helper.
    assert int(counts["function"]) + int(counts.get("procedure", "0")) == 10, counts
    assert "missing column `public.trails.difficulty`" in summary
    assert re.search(r"missing function `public\.trail_count\(\)`", summary), summary
    assert re.search(r"missing index `[^`]*trails_name_idx`", summary), summary
    assert "extra column `reporting.daily_usage.hikes`" in summary  # dropped in production
    assert re.search(r"changed function `public\.km_to_miles\(", summary), summary
    assert "+ SELECT km / 1.609344" in summary and "- SELECT km * 0.621371" in summary
    assert "staging_" not in summary


def test_refresh_of_a_set_without_functions_file(project: Project) -> None:
    """Every set with a production is refreshed; a one-file set keeps its functions in it."""
    project.prod.execute(project.game_db, "ALTER TABLE public.players ADD COLUMN level int;")
    before = project.state()
    result = project.cli("refresh")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"refresh 'game': updated {GAME}" in result.stdout
    after = project.state()
    assert after[GAME] != before[GAME] and after[FIX] == before[FIX]
    game = project.text(GAME)
    assert "level integer" in game
    assert {"normalize_tag", "player_count"} <= functions_in(game)
    assert sorted(p.name for p in (project.path / "db" / "game").iterdir()) == ["schema.sql"]
    backups = project.backups()
    assert len(backups) == 2  # one per set
    game_backup = next(b for b in backups if (b / "previous" / GAME).exists())
    assert (game_backup / "production-functions.sql").read_text() == ""
    assert "set `game`" in summary_of(game_backup)
    assert project.cli("check").returncode == 0


# --- 2. an unchanged production changes nothing -------------------------------------


def test_second_refresh_of_unchanged_production_changes_nothing(project: Project) -> None:
    project.prod.execute(project.trails_db, HOTFIX)
    first = project.cli("refresh")
    assert first.returncode == 0, first.stdout + first.stderr
    state, backups = project.state(), project.backups()
    mtimes = {rel: (project.path / rel).stat().st_mtime_ns for rel in ALL_FILES}

    second = project.cli("refresh")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "refresh 'trails': no change to the schema files" in second.stdout
    assert "refresh 'game': no change to the schema files" in second.stdout
    assert project.state() == state
    assert {rel: (project.path / rel).stat().st_mtime_ns for rel in ALL_FILES} == mtimes
    assert project.backups() == backups
    assert project.strays() == []


# --- 3. restrict keys and version headers -------------------------------------------


def test_restrict_lines_and_version_headers_never_reach_the_files(project: Project) -> None:
    with project.production() as conn:
        major = conn.info.server_version // 10000
    raw, version = dump_schema(project.prod.info(project.trails_db), major,
                               exclude_schemas=("staging_*",))
    if suite_major() is not None and not _pg_dump_supports(find_pg_dump(major)[0],
                                                           "--restrict-key"):
        pytest.skip(f"pg_dump {version} predates \\restrict (15.14, 16.10, 17.6, 18)")
    # This machine's pg_dump writes them: the test would prove nothing otherwise.
    assert re.search(r"^\\restrict ", raw, re.M), raw[:400]
    assert re.search(r"^\\unrestrict ", raw, re.M)
    assert re.search(r"^-- Dumped from database version \d+", raw, re.M)
    assert re.search(r"^-- Dumped by pg_dump version \d+", raw, re.M)

    project.prod.execute(project.trails_db, HOTFIX)
    assert project.cli("refresh", "--set", "trails").returncode == 0
    dumped = project.path / "dumped.sql"
    done = project.cli("dump", project.prod.url(project.trails_db), "-o", str(dumped))
    assert done.returncode == 0, done.stderr
    written = [project.path / rel for rel in TRAILS_FILES] + [dumped]
    written += [p for p in (project.path / "backups").rglob("*.sql")
                if "previous" not in p.parts]
    for path in written:
        text = path.read_text()
        assert not re.search(r"^\\(un)?restrict\b", text, re.M), path
        assert "restrict" not in text.lower(), path
        assert "Dumped from" not in text and "Dumped by" not in text, path
        assert not re.search(r"\d+\.\d+ \(Debian", text), path


# --- 4. excluded schemas ------------------------------------------------------------


def test_excluded_schemas_stay_out_of_the_files(project: Project) -> None:
    project.prod.execute(project.trails_db, """
        CREATE SCHEMA staging_20261123_101500;
        CREATE TABLE staging_20261123_101500.trails (id integer);
        GRANT USAGE ON SCHEMA staging_20261123_101500 TO app_reader;
        GRANT SELECT ON staging_20261123_101500.trails TO app_reader;
    """)
    with project.production() as conn:
        staging = [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'staging%' ORDER BY 1")]
    assert len(staging) == 3
    result = project.cli("refresh", "--set", "trails")
    assert result.returncode == 0, result.stdout + result.stderr
    (backup,) = project.backups()
    for path in [project.path / SCHEMA, project.path / FUNCS, *backup.glob("*.sql")]:
        text = path.read_text()
        assert "staging" not in text, path
        assert "staging_helper" not in text, path
    # Not over-broad: another schema of production is in the file.
    schema = project.text(SCHEMA)
    assert "CREATE SCHEMA reporting;" in schema
    assert "CREATE TABLE reporting.daily_usage" in schema
    assert project.cli("check", "--set", "trails").returncode == 0


# --- 5. functions go to the functions file, by real statement boundaries -------------


def test_functions_split_at_real_statement_boundaries(project: Project) -> None:
    project.prod.execute(project.trails_db, HOTFIX)
    result = project.cli("refresh", "--set", "trails")
    assert result.returncode == 0, result.stdout + result.stderr
    schema, funcs = project.text(SCHEMA), project.text(FUNCS)

    in_schema, in_funcs = functions_in(schema), functions_in(funcs)
    assert in_schema == set(STAY_IN_SCHEMA), in_schema
    assert in_funcs == {*MOVED, "trail_count"}, in_funcs
    assert "ghost" not in in_funcs | in_schema
    # The tricky body arrives whole: its nested quote and lines in one statement.
    (tricky,) = [s.text for s in split_statements(funcs) if "tricky_text" in s.text[:60]]
    assert tricky.startswith("CREATE OR REPLACE FUNCTION public.tricky_text(p text)")
    assert "$q$\nCREATE FUNCTION public.ghost() RETURNS integer AS 'SELECT 1';\n$q$;" in tricky
    assert re.search(r"\nEND;\n\$\w*\$;$", tricky), tricky  # pg_dump picks its own tag ($_$)
    # A function's comment travels with it.
    assert "COMMENT ON FUNCTION public.find_route(start_id integer, end_id integer) IS" in funcs
    assert "COMMENT ON FUNCTION" not in schema
    # The main file installs on its own (what it refers to is in it) ...
    alone = f"{project.trails_db}_alone"
    project.prod.create_database(alone, [project.path / SCHEMA])
    # ... and the set's three files, run by psql, give production's functions, not a ghost.
    rebuilt = f"{project.trails_db}_rebuilt"
    project.prod.create_database(rebuilt, [project.path / rel for rel in TRAILS_FILES])
    query = ("SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
             "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' "
             "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid "
             "AND d.deptype = 'e') ORDER BY 1")
    with project.production() as conn:
        expected = conn.execute(query).fetchall()
        tricky_out = conn.execute("SELECT public.tricky_text('x')").fetchone()
    with project.production(rebuilt) as conn:
        assert conn.execute(query).fetchall() == expected
        assert conn.execute("SELECT public.tricky_text('x')").fetchone() == tricky_out
    with project.production(alone) as conn:
        names = {r[0] for r in conn.execute(query)}
    assert names == set(STAY_IN_SCHEMA)
    assert tricky_out is not None and "CREATE FUNCTION public.ghost()" in str(tricky_out[0])


def test_first_refresh_creates_a_missing_functions_file(project: Project) -> None:
    """A functions-file named in the configuration but not written yet: the refresh creates
    it (the old files cannot be built, so everything in production counts as new)."""
    (project.path / FUNCS).unlink()
    result = project.cli("refresh", "--set", "trails")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"refresh 'trails': updated {SCHEMA}, {FUNCS}" in result.stdout
    assert functions_in(project.text(FUNCS)) == set(MOVED)
    (backup,) = project.backups()
    assert (backup / "previous" / SCHEMA).read_text() == TRAILS_SCHEMA
    assert not (backup / "previous" / FUNCS).exists()
    assert "missing table `public.trails`" in summary_of(backup)
    assert project.cli("check", "--set", "trails").returncode == 0


# --- 6. a dump that does not install -----------------------------------------------

# A real way for a refreshed dump not to install: the set's middle fix-up file is not
# idempotent. It creates audit_stamp() with plain CREATE FUNCTION (and a trigger using it),
# which installs fine after the hand-kept main file. Production then has the function and
# the trigger, so pg_dump puts both in the new main file (a trigger refers to the function,
# so it stays there) and the unchanged fix-up file, run after it, fails with "already
# exists". The refresh must notice in its proof and leave the old files alone.
CONFLICTING_FIX = TRAILS_FIX + """
CREATE FUNCTION public.audit_stamp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END; $$;

CREATE TRIGGER trails_audit BEFORE INSERT ON public.trails
    FOR EACH ROW EXECUTE FUNCTION public.audit_stamp();
"""


def test_dump_that_does_not_install_leaves_the_old_files(
        make_trails_project: ProjectFactory, pytester: pytest.Pytester) -> None:
    project = make_trails_project(fix=CONFLICTING_FIX)
    project.prod.execute(project.trails_db, HOTFIX)
    before = project.state()

    result = project.cli("refresh", "--set", "trails")
    assert result.returncode == 4, result.stdout + result.stderr
    error = result.stderr
    assert "schemasync: error: The refreshed files for set 'trails' do not install; nothing " \
           "was replaced." in error
    assert "already exists" in error and "audit_stamp" in error
    assert FIX in error  # the file that failed
    assert "Traceback" not in error
    assert project.state() == before
    assert project.strays() == []
    (backup,) = project.backups()
    assert str(backup) in error
    assert "difficulty text" in (backup / "production-schema.sql").read_text()
    assert (backup / "new" / SCHEMA).is_file() and (backup / "previous" / SCHEMA).is_file()
    assert not (backup / "sync-summary.md").exists()

    # The same through pytest: the session stops before any test, files untouched.
    pytester.makepyfile(test_never="def test_never():\n    raise AssertionError\n")
    inner = run_inner(pytester, project.cache_dir, "--refresh-schema")
    assert inner.ret == 4, output_of(inner)
    assert "do not install; nothing was replaced" in output_of(inner)
    assert "test_never" not in output_of(inner)
    assert_no_secret(output_of(inner), "the inner pytest output")
    assert project.state() == before


# --- 7. killed at any moment: old files or new files, never a mix -----------------------


def _settle(project: Project) -> None:
    """What the next command does first: the journal recovery."""
    result = project.cli("backups")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_refresh_killed_at_varied_moments(project: Project) -> None:
    project.prod.execute(project.trails_db, HOTFIX)
    old = {rel: project.read(rel) for rel in ALL_FILES}
    old_state = project.state()
    # Warm up (cluster, both templates), then time one whole refresh.
    assert project.cli("refresh", "--set", "trails").returncode == 0
    new_state = project.state()
    assert new_state != old_state
    project.write_state(old)
    started = time.perf_counter()
    assert project.cli("refresh", "--set", "trails").returncode == 0
    runtime = time.perf_counter() - started
    assert project.state() == new_state  # deterministic

    outcomes = []
    for i in range(10):
        project.write_state(old)
        delay = runtime * (0.05 + 0.1 * i)
        proc = project.popen("refresh", "--set", "trails")
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)
        assert_no_secret(out, "a killed refresh")
        _settle(project)
        state = project.state()
        assert state in (old_state, new_state), f"mixed files after a kill at {delay:.2f}s"
        assert project.strays() == []
        outcomes.append("old" if state == old_state else "new")
    assert outcomes[0] == "old", outcomes
    # Whatever happened, the tool still works: a refresh completes and reproduces production.
    project.write_state(old)
    assert project.cli("refresh", "--set", "trails").returncode == 0
    assert project.state() == new_state
    assert project.cli("check", "--set", "trails").returncode == 0


# Runs a schemasync command with os.replace dying (os._exit, no cleanup at all) at its N-th
# call that renames something into the project: the journal and the swap's renames.
CRASH_AT_REPLACE = r"""
import os, sys
root = os.path.realpath(sys.argv[1]) + os.sep
crash_at = int(sys.argv[2])
real_replace = os.replace
calls = 0

def replace(src, dst, **kwargs):
    global calls
    if os.path.realpath(os.fspath(dst)).startswith(root):
        calls += 1
        if calls == crash_at:
            os._exit(70)
    return real_replace(src, dst, **kwargs)

os.replace = replace
from pytest_schemasync.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _crash_at_each_step(project: Project, command: tuple[str, ...], old: dict[str, bytes],
                        new_state: dict[str, str]) -> list[str]:
    """Run ``command`` crashing at rename 1, 2, ... until it completes; after each crash and
    the next command's recovery the files must be all old or all new."""
    old_state = {rel: sha(data) for rel, data in old.items()}
    outcomes: list[str] = []
    for crash_at in itertools.count(1):
        project.write_state(old)
        run = subprocess.run([sys.executable, "-c", CRASH_AT_REPLACE, str(project.path),
                              str(crash_at), *command], cwd=project.path, env=project.env,
                             capture_output=True, text=True, timeout=180)
        assert_no_secret(run.stdout + run.stderr, "a crashed command")
        if run.returncode == 0:
            assert project.state() == new_state
            break
        assert run.returncode == 70, run.stdout + run.stderr
        mixed_on_disk = project.state() not in (old_state, new_state)
        _settle(project)
        state = project.state()
        assert state in (old_state, new_state), f"mixed files after a crash at {crash_at}"
        assert project.strays() == []
        outcomes.append(("mixed->" if mixed_on_disk else "") + (
            "old" if state == old_state else "new"))
        assert crash_at < 20, "the command never completed"
    return outcomes


@pytest.mark.slow
def test_killed_at_each_step_of_the_swap(project: Project) -> None:
    project.prod.execute(project.trails_db, HOTFIX)
    old = {rel: project.read(rel) for rel in ALL_FILES}
    assert project.cli("refresh", "--set", "trails").returncode == 0
    new = {rel: project.read(rel) for rel in ALL_FILES}
    new_state = project.state()

    outcomes = _crash_at_each_step(project, ("refresh", "--set", "trails"), old, new_state)
    # Before the journal is ready: the old files; after it: the new ones, even when the
    # crash left the renames half done.
    assert outcomes[0] == "old", outcomes
    assert outcomes[-1] == "mixed->new", outcomes
    assert outcomes == sorted(outcomes, key=lambda o: o.endswith("new")), outcomes

    # A rollback swaps through the same journal.
    outcomes = _crash_at_each_step(project, ("rollback",), new,
                                   {rel: sha(data) for rel, data in old.items()})
    assert outcomes[-1] == "mixed->new", outcomes


class _Crash(BaseException):
    pass


@pytest.mark.parametrize("crash_at", [1, 2, 3, 4, 5])
def test_replace_files_interrupted_then_recovered(tmp_path: Path, crash_at: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The journaled swap on its own: interrupted at each rename, ``recover`` gives all old or
    all new files and leaves nothing behind."""
    files = {tmp_path / "a.sql": "old a\n", tmp_path / "sub" / "b.sql": "old b\n",
             tmp_path / "c.sql": "old c\n"}
    for path, text in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    new = {path: text.replace("old", "new") for path, text in files.items()}
    real_replace = os.replace
    calls = itertools.count(1)

    def dying_replace(src: object, dst: object) -> None:
        if next(calls) == crash_at:
            raise _Crash
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", dying_replace)
    try:
        replace_files(tmp_path, new)
        crashed = False
    except _Crash:
        crashed = True
    monkeypatch.setattr(os, "replace", real_replace)
    assert crashed or crash_at > 3, "the swap renamed three files and its journal"
    recover(tmp_path)
    state = {path: path.read_text() for path in files}
    assert state in (files, new)
    if crash_at == 1:
        assert state == files  # the journal did not exist yet
    if crash_at >= 3:
        assert state == new  # the journal was ready: the swap is finished
    leftovers = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert leftovers == ["a.sql", "b.sql", "c.sql"], leftovers


# --- 8. rollback and backups ----------------------------------------------------------


def test_rollback_restores_previous_files(project: Project) -> None:
    empty = project.cli("rollback")
    assert empty.returncode == 4
    assert "schemasync: error: No backups in" in empty.stderr
    assert "to roll back to" in empty.stderr
    assert "no backups in" in project.cli("backups").stdout

    original = project.state()
    project.prod.execute(project.trails_db, HOTFIX)
    assert project.cli("refresh", "--set", "trails").returncode == 0
    first = project.state()
    project.prod.execute(project.trails_db, HOTFIX_2)
    assert project.cli("refresh", "--set", "trails").returncode == 0
    second = project.state()
    assert len({tuple(original.values()), tuple(first.values()), tuple(second.values())}) == 3
    older, newer = project.backups()

    listing = project.cli("backups")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines == [f"{older.name}  {FUNCS}, {SCHEMA}", f"{newer.name}  {FUNCS}, {SCHEMA}"]
    # The second refresh changed only the main file (no function changed).
    assert f"- Files replaced: {SCHEMA}\n" in summary_of(newer)

    # The newest backup: the files as they were before the second refresh.
    back = project.cli("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"restored from {newer}" in back.stdout
    assert project.state() == first
    assert project.strays() == []
    # A named one: the files as they were before the first refresh, byte for byte.
    back = project.cli("rollback", older.name)
    assert back.returncode == 0, back.stdout + back.stderr
    assert project.state() == original
    assert {rel: project.read(rel) for rel in TRAILS_FILES} == {
        SCHEMA: TRAILS_SCHEMA.encode(), FIX: TRAILS_FIX.encode(), FUNCS: TRAILS_FUNCS.encode()}
    assert project.cli("check", "--set", "trails").returncode == 10  # production moved on

    unknown = project.cli("rollback", "schema-sync-19990101_000000")
    assert unknown.returncode == 4
    assert "schema-sync-19990101_000000" in unknown.stderr
    assert older.name in unknown.stderr and newer.name in unknown.stderr
    assert "Traceback" not in unknown.stderr
    assert project.state() == original


def test_backups_in_order_beyond_nine_in_one_second(project: Project) -> None:
    """new_backup_dir names a backup schema-sync-STAMP, then -2, -3, ... within one second;
    "newest" is by that number, not by the text (where -10 sorts before -2)."""
    base = project.path / "backups"

    def backup(name: str, n: int) -> None:
        (base / name / "previous" / SCHEMA).parent.mkdir(parents=True)
        (base / name / "previous" / SCHEMA).write_text(f"-- backup {n}\n")

    names = ["schema-sync-20260101_000000"] + [
        f"schema-sync-20260101_000000-{n}" for n in range(2, 12)]
    for n, name in enumerate(names, 1):
        backup(name, n)
    listing = project.cli("backups")
    assert [line.split()[0] for line in listing.stdout.splitlines()] == names
    back = project.cli("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"restored from {base / names[-1]}" in back.stdout
    assert project.text(SCHEMA) == "-- backup 11\n"

    backup("schema-sync-20260101_000001", 12)
    listing = project.cli("backups")
    assert listing.stdout.splitlines()[-1].split()[0] == "schema-sync-20260101_000001"
    assert project.cli("rollback").returncode == 0
    assert project.text(SCHEMA) == "-- backup 12\n"


# --- 9. dry run -----------------------------------------------------------------------


def test_dry_run_shows_the_diff_and_writes_nothing(project: Project,
                                                   pytester: pytest.Pytester) -> None:
    project.prod.execute(project.trails_db, HOTFIX)
    before = project.state()
    listing = project.listing()

    result = project.cli("refresh", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"refresh 'trails': would change {SCHEMA}, {FUNCS}" in result.stdout
    assert "missing column public.trails.difficulty" in result.stdout
    assert "+difficulty text" in result.stdout
    assert "trail_count" in result.stdout
    assert project.state() == before
    assert project.listing() == listing

    pytester.makepyfile(test_never="def test_never():\n    raise AssertionError\n")
    listing = project.listing()
    inner = run_inner(pytester, project.cache_dir, "--refresh-schema", "--schemasync-dry-run")
    text = output_of(inner)
    assert inner.ret == 0, text
    assert f"schemasync: refresh 'trails': would change {SCHEMA}, {FUNCS}" in text
    assert "+difficulty text" in text
    assert "dry run; nothing was written and no tests were run" in text
    assert "test_never" not in text
    assert_no_secret(text, "the inner pytest output")
    assert project.state() == before
    assert project.listing() == listing
    assert not (project.path / "backups").exists()


# --- 10. pytest --refresh-schema, then the session on the new files ------------------

INNER_TESTS = """
import pytest


def test_new_column_exists(db):
    columns = [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'trails'")]
    assert "difficulty" in columns


def test_functions_from_both_files(db):
    assert db.execute("SELECT slug FROM public.trail_miles").fetchall() == []
    db.execute("INSERT INTO public.trails (name) VALUES ('Mesa'), ('Bear Peak')")
    assert db.execute("SELECT public.trail_count()").fetchone()[0] == 2
    assert db.execute("SELECT public.find_route(0, 1000)").fetchone()[0] == 2
    assert db.execute("SELECT public.build_routing(1)").fetchone()[0] == 1
    assert "ghost" in db.execute("SELECT public.tricky_text('x')").fetchone()[0]
    assert db.execute("SELECT region FROM public.trails LIMIT 1").fetchone()[0] == "front-range"
    assert db.execute("SELECT slug FROM public.trail_miles WHERE name = 'Bear Peak'"
                      ).fetchone()[0] == "front-range/bear-peak"


@pytest.mark.schemasync("game")
def test_game(db):
    db.execute("INSERT INTO public.players (tag) VALUES ('NeO')")
    assert db.execute("SELECT tag FROM public.players").fetchone()[0] == "neo"
"""


def test_pytest_refresh_then_runs_the_session_on_the_new_files(
        project: Project, pytester: pytest.Pytester) -> None:
    project.prod.execute(project.trails_db, HOTFIX)
    pytester.makepyfile(test_inner=INNER_TESTS)
    before = project.state()

    result = run_inner(pytester, project.cache_dir, "--refresh-schema")
    text = output_of(result)
    result.assert_outcomes(passed=3)
    assert f"schemasync: refresh 'trails': updated {SCHEMA}, {FUNCS}" in text
    assert f"schemasync: refresh 'game': updated {GAME}" in text
    after = project.state()
    assert after[SCHEMA] != before[SCHEMA] and after[FIX] == before[FIX]
    assert_no_secret(text, "the inner pytest output")
    assert len(project.backups()) == 2

    # Again: nothing to change, the same tests pass on the cached templates.
    again = run_inner(pytester, project.cache_dir, "--refresh-schema")
    again.assert_outcomes(passed=3)
    assert "schemasync: refresh 'trails': no change to the schema files" in output_of(again)
    assert "schemasync: set 'trails': template from cache" in output_of(again)
    assert project.state() == after
    assert len(project.backups()) == 2


# --- 11. passwords ----------------------------------------------------------------------


def test_password_never_shown_on_error_paths(project: Project) -> None:
    """The error paths, where URLs and server messages are printed. (Every other command of
    this module is checked by ``Project.cli``, inner sessions by ``assert_no_secret`` and
    every file written by the project fixture's teardown.)"""
    def run(*args: str, url: str) -> Run:
        return run_cli(project.path, dict(project.env, TRAILS_URL=url), *args)

    info = project.prod.info(project.trails_db)
    closed = info.url().replace(f":{info.port}/", ":1/")
    for url in (closed, project.prod.url("no_such_db")):
        failed = run("refresh", "--set", "trails", url=url)
        assert failed.returncode == 11, failed.stdout + failed.stderr
        assert "app_reader:****@127.0.0.1" in failed.stderr
        dump = run("dump", url, url=url)
        assert dump.returncode == 11, dump.stdout + dump.stderr
        assert "app_reader:****@127.0.0.1" in dump.stderr

    # A wrong password is not shown either.
    wrong = "Wr0ng Pass/Word@77"
    bad = project.prod.url(project.trails_db).replace(quote(PASSWORD, safe=""),
                                                      quote(wrong, safe=""))
    assert bad != project.prod.url(project.trails_db)
    failed = run("refresh", "--set", "trails", url=bad)
    assert failed.returncode == 11, failed.stdout + failed.stderr
    assert "password" in failed.stderr
    for secret in (wrong, quote(wrong, safe=""), "Pass/Word"):
        assert secret not in failed.stdout + failed.stderr

    # pg_dump itself fails (the read-only role may not read a new schema): its message names
    # production, masked.
    project.prod.execute(project.trails_db, "CREATE SCHEMA ops; CREATE TABLE ops.keys (k text);")
    before = project.state()
    failed = run("refresh", "--set", "trails", url=project.prod.url(project.trails_db))
    assert failed.returncode == 4, failed.stdout + failed.stderr
    assert re.search(r"pg_dump \d+\.\d+ failed against postgresql://app_reader:\*\*\*\*@",
                     failed.stderr), failed.stderr
    assert "permission denied" in failed.stderr
    assert project.state() == before
    assert project.backups() == []


# --- 12. schemasync dump ---------------------------------------------------------------


def test_dump_writes_a_deterministic_clean_file_that_installs(project: Project) -> None:
    url = project.prod.url(project.game_db)
    target = (project.path / GAME).resolve()
    first = project.cli("dump", url, "-o", GAME)
    assert first.returncode == 0, first.stdout + first.stderr
    assert re.search(rf"wrote {re.escape(str(target))} \(\d+ lines\) from "
                     rf"postgresql://app_reader:\*\*\*\*@127\.0\.0\.1", first.stdout)
    once = project.read(GAME)
    second = project.cli("dump", url, "-o", GAME)
    assert second.returncode == 0
    assert project.read(GAME) == once
    to_stdout = project.cli("dump", url)
    assert to_stdout.returncode == 0
    assert to_stdout.stdout.encode() == once
    assert project.strays() == []
    text = once.decode()
    assert "CREATE TABLE public.players" in text and "restrict" not in text
    assert "Dumped from" not in text

    # It installs, and reproduces production: the check passes on it, and a refresh of the
    # one-file set (the same normalized dump) finds nothing to change.
    check = project.cli("check", "--set", "game")
    assert check.returncode == 0, check.stdout + check.stderr
    refresh = project.cli("refresh", "--set", "game")
    assert refresh.returncode == 0
    assert "refresh 'game': no change to the schema files" in refresh.stdout
    assert project.read(GAME) == once
    assert project.backups() == []

    # --exclude-schema, on the set with staging schemas.
    trails = project.cli("dump", project.prod.url(project.trails_db), "--exclude-schema",
                         "staging_*")
    assert trails.returncode == 0
    assert "staging" not in trails.stdout and "CREATE TABLE public.trails" in trails.stdout
    unfiltered = project.cli("dump", project.prod.url(project.trails_db))
    assert "CREATE TABLE staging_20260101_120000.trails" in unfiltered.stdout


MIGRATED_BASE = "CREATE TABLE public.players (id bigint PRIMARY KEY, name text NOT NULL);\n"
MIGRATIONS = {
    "000_history.sql": "CREATE TABLE IF NOT EXISTS public.schema_migrations (version text "
                       "PRIMARY KEY, description text NOT NULL, checksum text NOT NULL, "
                       "applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL "
                       "DEFAULT current_user, execution_time_ms integer, script_path text);\n",
    "001_scores.sql": "CREATE TABLE public.scores (player_id bigint REFERENCES public.players, "
                      "points integer NOT NULL);\n",
    "002_nickname.sql": "ALTER TABLE public.players ADD COLUMN nickname text;\n",
}


def test_refresh_of_a_set_with_migrations(pytester: pytest.Pytester, prod: StandinProduction,
                                          shared_cache_dir: Path) -> None:
    """Production = base + migrations. The refreshed base carries production's
    schema_migrations rows (as Rails' structure.sql does), so a build does not run those
    migrations again; a later local migration still runs; before= an older one is refused."""
    from pytest_schemasync.migrations import apply_pending
    from pytest_schemasync.standin import OWNER

    root = pytester.path
    (root / "db/migrations").mkdir(parents=True)
    (root / "db/base.sql").write_text(MIGRATED_BASE)
    for name, text in MIGRATIONS.items():
        (root / "db/migrations" / name).write_text(text)
    (root / "pyproject.toml").write_text(
        '[tool.schemasync.sets.app]\nfiles = ["db/base.sql"]\nmigrations = "db/migrations"\n'
        'production-url-env = "APP_URL"\n')
    db = f"migrated_{os.getpid()}_{secrets.token_hex(3)}"
    prod.create_database(db, [root / "db/base.sql"])
    psql = suite_binaries().tool("psql")
    apply_pending(prod.info(db, OWNER), psql, root / "db/migrations", root, set_name="app")
    prod.execute(db, "CREATE INDEX players_name_idx ON public.players (name)")
    env = dict(os.environ, APP_URL=prod.url(db),
               SCHEMASYNC_CACHE_DIR=str(shared_cache_dir))

    first = run_cli(root, env, "refresh", "--set", "app")
    assert first.returncode == 0, first.stdout + first.stderr
    base = (root / "db/base.sql").read_text()
    assert "players_name_idx" in base and "INSERT INTO public.schema_migrations" in base
    assert base.count("'00") == 3  # one history row per applied migration
    assert run_cli(root, env, "check").returncode == 0

    # A new local migration: pending in production, and the template runs it (only it).
    (root / "db/migrations/003_level.sql").write_text(
        "ALTER TABLE public.players ADD COLUMN level integer NOT NULL DEFAULT 1;\n")
    pytester.makepyfile(test_app="""
        import pytest

        def test_history_and_new_migration(db):
            rows = db.execute("SELECT version, applied_by FROM schema_migrations "
                              "ORDER BY version").fetchall()
            assert [r[0] for r in rows] == ["000", "001", "002", "003"]
            assert rows[-1][1] == "pytest-schemasync" and rows[0][1] != "pytest-schemasync"
            db.execute("SELECT level, nickname FROM players")

        @pytest.mark.schemasync("app", before="002")
        def test_before_a_dumped_migration_is_refused(db):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           f"--schemasync-cache-dir={shared_cache_dir}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*already contain migrations up to 002*"])
