"""As root, the embedded server runs as an unprivileged OS user that owns its data dir."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path

import pytest
from conftest import make_project, output_of, run_inner

from pytest_schemasync.clusters import _socket_dir
from pytest_schemasync.errors import SchemaSyncError
from pytest_schemasync.osuser import server_os_user

RECORD_TEST = """
    import json
    import os
    import re
    from pathlib import Path

    def uid_of(pid):
        status = Path(f"/proc/{pid}/status").read_text()
        return int(re.search(r"^Uid:\\s+(\\d+)", status, re.M).group(1))

    def test_record(db):
        data_dir = Path(db.execute("SELECT current_setting('data_directory')").fetchone()[0])
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        backend = db.execute("SELECT pg_backend_pid()").fetchone()[0]
        st = data_dir.stat()
        with open(os.environ["RECORD"], "w") as f:
            json.dump({"postmaster_uid": uid_of(postmaster), "backend_uid": uid_of(backend),
                       "data_uid": st.st_uid, "data_mode": st.st_mode & 0o777,
                       "data_dir": str(data_dir)}, f)
"""


def _record(pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
            *args: str) -> dict[str, int | str]:
    make_project(pytester, sets={"default": {"files": ["s.sql"]}},
                 files={"s.sql": "CREATE TABLE t (x int);\n"})
    pytester.makepyfile(test_record=RECORD_TEST)
    record = pytester.path / "record.json"
    monkeypatch.setenv("RECORD", str(record))
    result = run_inner(pytester, cache_dir, *args)
    result.assert_outcomes(passed=1)
    return json.loads(record.read_text())


def test_server_runs_unprivileged(pytester: pytest.Pytester, cache_dir: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = _record(pytester, cache_dir, monkeypatch)
    if os.geteuid() == 0:
        expected = server_os_user(None)
        assert expected is not None
        assert expected.uid != 0
        # The default is the distribution's postgres account where there is one.
        if _has_user("postgres"):
            assert expected.name == "postgres"
    else:
        expected_uid = os.geteuid()
        assert server_os_user(None) is None
        assert data["postmaster_uid"] == expected_uid
        return
    assert data["postmaster_uid"] == expected.uid
    assert data["backend_uid"] == expected.uid
    assert data["data_uid"] == expected.uid
    assert data["data_mode"] == 0o700
    assert str(data["data_dir"]).startswith(str(cache_dir))


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.skipif(os.geteuid() != 0, reason="--schemasync-server-user only applies as root")
def test_named_server_user_is_used(pytester: pytest.Pytester, cache_dir: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    nobody = pwd.getpwnam("nobody")
    data = _record(pytester, cache_dir, monkeypatch, "--schemasync-server-user=nobody")
    assert data["postmaster_uid"] == nobody.pw_uid
    assert data["data_uid"] == nobody.pw_uid


@pytest.mark.skipif(os.geteuid() != 0, reason="--schemasync-server-user only applies as root")
def test_unknown_server_user_is_a_clear_error(pytester: pytest.Pytester,
                                              cache_dir: Path) -> None:
    name = "ss_nosuchuser"
    assert not _has_user(name)
    make_project(pytester, sets={"default": {"files": ["s.sql"]}},
                 files={"s.sql": "CREATE TABLE t (x int);\n"})
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    result = run_inner(pytester, cache_dir, f"--schemasync-server-user={name}")
    out = output_of(result)
    assert result.ret == SchemaSyncError.exit_code
    assert "Traceback" not in out
    assert f"'{name}'" in out
    assert "--schemasync-server-user" in out
    # An explicitly named user is never created behind the user's back.
    assert not _has_user(name)


@pytest.mark.skipif(os.geteuid() != 0, reason="--schemasync-server-user only applies as root")
def test_changing_the_server_user_of_a_cached_cluster(pytester: pytest.Pytester,
                                                      cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["s.sql"]}},
                 files={"s.sql": "CREATE TABLE t (x int);\n"})
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    owner = server_os_user(None)
    assert owner is not None
    result = run_inner(pytester, cache_dir, "--schemasync-server-user=nobody")
    out = output_of(result)
    assert result.ret == SchemaSyncError.exit_code
    assert "Traceback" not in out
    assert f"belongs to the OS user {owner.name!r}" in out
    assert "server user is now 'nobody'" in out
    # The cluster is untouched and still works for its own user.
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_cache_dir_the_server_user_cannot_enter(pytester: pytest.Pytester,
                                                cache_dir: Path) -> None:
    # Like pytest's own tmp dirs (/tmp/pytest-of-root is 0700).
    locked = cache_dir.parent / "locked"
    locked.mkdir(mode=0o700)
    make_project(pytester, sets={"default": {"files": ["s.sql"]}},
                 files={"s.sql": "CREATE TABLE t (x int);\n"})
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    result = run_inner(pytester, locked / "cache")
    out = output_of(result)
    assert result.ret == SchemaSyncError.exit_code
    assert "Traceback" not in out
    assert f"cannot enter {locked} (mode 0o700)" in out
    assert "--schemasync-cache-dir" in out
    assert not list(locked.glob("cache/pg*/data"))


def test_long_cache_dir_puts_the_socket_elsewhere(pytester: pytest.Pytester,
                                                  cache_dir: Path) -> None:
    # A unix socket path is limited to 107 bytes; a deep cache dir must still work.
    deep = cache_dir.parent / ("d" * 60) / ("e" * 60) / "cache"
    deep.parent.mkdir(parents=True)
    deep.parent.chmod(0o755)
    deep.parent.parent.chmod(0o755)
    make_project(pytester, sets={"default": {"files": ["s.sql"]}},
                 files={"s.sql": "CREATE TABLE t (x int);\n"})
    pytester.makepyfile(test_x="""
        def test_x(db):
            sock = db.execute("SHOW unix_socket_directories").fetchone()[0]
            assert len(sock) < 100
            db.execute("SELECT count(*) FROM t")
    """)
    result = run_inner(pytester, deep)
    result.assert_outcomes(passed=1)
    assert str(deep) in output_of(result)
    [base] = deep.glob("pg*")
    socket_dir = _socket_dir(base / "run")
    assert socket_dir != base / "run"
    assert socket_dir.is_dir()
    shutil.rmtree(socket_dir)
