"""--schemasync-server-url: databases are made on a server someone else runs, and only ours
are dropped afterwards."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import (
    SIMPLE_SCHEMA,
    built_templates,
    database_names,
    header_lines,
    make_project,
    output_of,
    popen_inner,
    run_inner,
    session_databases,
    shm_base,
)

from pytest_schemasync.binaries import find_binaries
from pytest_schemasync.clusters import acquire_cluster
from pytest_schemasync.errors import SchemaSyncError
from pytest_schemasync.osuser import server_os_user
from pytest_schemasync.server import ServerInfo


@pytest.fixture
def existing_server() -> Iterator[ServerInfo]:
    """A server the inner sessions do not own: started with the core in its own directory,
    holding a database and a table the plugin must never touch."""
    root = Path(tempfile.mkdtemp(prefix="schemasync-existing-", dir=shm_base()))
    root.chmod(0o755)
    lease = acquire_cluster(root / "cache", find_binaries(), server_os_user())
    try:
        info = lease.cluster.info()
        with psycopg.connect(info.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE keep_me")
            conn.execute("CREATE TABLE public.admin_owned (x int)")
        with psycopg.connect(info.conninfo("keep_me"), autocommit=True) as conn:
            conn.execute("CREATE TABLE precious (x int)")
            conn.execute("INSERT INTO precious VALUES (42)")
        yield info
    finally:
        lease.release()
        shutil.rmtree(root, ignore_errors=True)


def _databases(info: ServerInfo) -> set[str]:
    with psycopg.connect(info.conninfo(), autocommit=True) as conn:
        return database_names(conn)


def test_tests_run_on_the_existing_server(pytester: pytest.Pytester, cache_dir: Path,
                                          existing_server: ServerInfo) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_existing="""
        import psycopg

        def test_db(db):
            assert db.execute("SELECT name FROM items").fetchall() == [("seed",)]
            db.execute("INSERT INTO items (name) VALUES ('x')")

        def test_db_again(db):
            assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 1

        def test_fresh(fresh_db, fresh_db_url):
            fresh_db.execute("INSERT INTO items (name) VALUES ('y')")
            fresh_db.commit()
            with psycopg.connect(fresh_db_url) as other:
                assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 2

        def test_factory(schemasync_db_factory):
            with schemasync_db_factory().connect() as conn:
                assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 1
    """)
    before = _databases(existing_server)
    url = existing_server.url()
    result = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
    result.assert_outcomes(passed=4)
    assert "existing PostgreSQL" in header_lines(result)[0]

    after = _databases(existing_server)
    assert session_databases(after) == set(), after
    assert "keep_me" in after
    # Only the template was added (it is the cache, kept for the next session).
    added = after - before
    assert len(added) == 1 and next(iter(added)).startswith("sst_"), added
    with psycopg.connect(existing_server.conninfo("keep_me")) as conn:
        assert conn.execute("SELECT x FROM precious").fetchall() == [(42,)]
    with psycopg.connect(existing_server.conninfo()) as conn:
        assert conn.execute("SELECT to_regclass('public.admin_owned')").fetchone()[0] is not None
    # No embedded cluster was started for this session.
    assert not list(cache_dir.glob("pg*/data"))

    # A second session reuses the template on that server.
    result = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
    result.assert_outcomes(passed=4)
    assert any("template from cache" in line for line in header_lines(result))
    assert _databases(existing_server) == after


def test_server_url_from_the_environment(pytester: pytest.Pytester, cache_dir: Path,
                                         existing_server: ServerInfo,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(pytester)
    pytester.makepyfile(test_env="""
        def test_db(db):
            assert db.execute("SELECT current_setting('unix_socket_directories')"
                              ).fetchone()[0] == EXPECTED
    """.replace("EXPECTED", repr(existing_server.host)))
    monkeypatch.setenv("SCHEMASYNC_SERVER_URL", existing_server.url())
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert session_databases(_databases(existing_server)) == set()


def test_unreachable_server_url_is_a_clear_error(pytester: pytest.Pytester,
                                                 cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    missing = cache_dir.parent / "no-server-here"
    url = f"postgresql://someone:s3cretpw@/postgres?host={missing}&port=5432"
    result = run_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
    out = output_of(result)
    assert result.ret == SchemaSyncError.exit_code
    assert "Traceback" not in out
    assert "Cannot connect to the test server" in out
    assert "s3cretpw" not in out


def test_concurrent_sessions_build_the_template_once(pytester: pytest.Pytester,
                                                     cache_dir: Path,
                                                     existing_server: ServerInfo) -> None:
    """Two sessions starting together on one server: one builds, the other waits for it."""
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA + "SELECT pg_sleep(1.5);\n"})
    pytester.makepyfile(test_items="""
        def test_items(db, fresh_db):
            assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 1
            assert fresh_db.execute("SELECT count(*) FROM items").fetchone()[0] == 1
    """)
    url = existing_server.url()
    procs = [popen_inner(pytester, cache_dir, f"--schemasync-server-url={url}")
             for _ in range(2)]
    outs = []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=120)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out
        assert "1 passed" in out
    assert len(built_templates(cache_dir)) == 1
    assert sum("template from cache" in out for out in outs) == 1
    after = _databases(existing_server)
    assert session_databases(after) == set(), after
    assert len([n for n in after if n.startswith("sst_")]) == 1


def test_clean_drops_only_this_projects_templates_there(pytester: pytest.Pytester,
                                                        cache_dir: Path,
                                                        existing_server: ServerInfo) -> None:
    """Templates are the cache on a shared server; `schemasync clean` drops this project's,
    and nothing else (not the admin's database, not another project's template)."""
    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    url = existing_server.url()
    run_inner(pytester, cache_dir, f"--schemasync-server-url={url}").assert_outcomes(passed=1)
    with psycopg.connect(existing_server.conninfo(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE sst_aaaaaa_other_0123456789")  # another project's
    ours = {n for n in _databases(existing_server) if n.startswith("sst_")} - {
        "sst_aaaaaa_other_0123456789"}
    assert len(ours) == 1

    done = subprocess.run(
        [sys.executable, "-m", "pytest_schemasync.cli", f"--schemasync-server-url={url}", "clean"],
        cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "dropped 1 template(s)" in done.stdout and ours.pop() in done.stdout
    left = _databases(existing_server)
    assert "sst_aaaaaa_other_0123456789" in left and "keep_me" in left
    assert not {n for n in left if n.startswith("sst_") and n != "sst_aaaaaa_other_0123456789"}
    with psycopg.connect(existing_server.conninfo("keep_me")) as conn:
        assert conn.execute("SELECT x FROM precious").fetchone() == (42,)

    refused = subprocess.run(
        [sys.executable, "-m", "pytest_schemasync.cli", f"--schemasync-server-url={url}", "clean",
         "--all"], cwd=pytester.path, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "clean --all" in refused.stderr


def _role_project(root: Path, schema: str, roles: str = "") -> None:
    root.mkdir(exist_ok=True)
    (root / "schema.sql").write_text(schema)
    (root / "pyproject.toml").write_text(
        f'[tool.schemasync.sets.main]\nfiles = ["schema.sql"]\n{roles}')
    (root / "test_it.py").write_text("def test_it(db):\n    pass\n")


def _session(root: Path, server: ServerInfo, cache: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         f"--schemasync-cache-dir={cache}", f"--schemasync-server-url={server.url()}"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_builds_of_two_projects_on_one_server_take_turns(tmp_path: Path,
                                                         existing_server: ServerInfo) -> None:
    """Each build compares the cluster's global state before and after (clusterguard). A
    second project's build that changes a role of its own meanwhile must not be taken for
    the first build's doing (and reverted): builds on one server take turns."""
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    _role_project(slow, "CREATE TABLE a (id int);\nSELECT pg_sleep(4);\n")
    grant = "CREATE TABLE b (id int);\nGRANT SELECT ON b TO turn_role;\n"
    _role_project(fast, grant, 'roles = [{ name = "turn_role" }]\n')
    first = _session(fast, existing_server, tmp_path / "cache-fast")
    assert first.wait(timeout=180) == 0, first.communicate()[0]
    # Now the fast project's next build changes its role (LOGIN), while the slow one builds.
    _role_project(fast, grant, 'roles = [{ name = "turn_role", login = true }]\n')
    slow_run = _session(slow, existing_server, tmp_path / "cache-slow")
    try:
        with psycopg.connect(existing_server.conninfo(), autocommit=True) as conn:
            for _ in range(600):
                if any(n.startswith("ssb_") for n in database_names(conn)):
                    break  # the slow build is under way
                assert slow_run.poll() is None, slow_run.communicate()[0]
                time.sleep(0.05)
        fast_run = _session(fast, existing_server, tmp_path / "cache-fast")
        fast_out = fast_run.communicate(timeout=180)[0]
        slow_out = slow_run.communicate(timeout=180)[0]
    finally:
        for proc in (slow_run,):
            if proc.poll() is None:
                proc.kill()
    assert slow_run.returncode == 0, slow_out
    assert fast_run.returncode == 0, fast_out
    with psycopg.connect(existing_server.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'turn_role'")
        assert row.fetchone() == (True,)
