"""The embedded server preloads the C libraries of the templates' extensions (from the session
after the build), and the libraries a user names, e.g. one an extension requires preloaded."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import header_lines, make_project, output_of, run_inner

SHOW_TEST = """
    import os
    from pathlib import Path

    def test_show(db):
        value = db.execute("SHOW shared_preload_libraries").fetchone()[0]
        Path(os.environ["PRELOAD_OUT"]).write_text(value)
"""

CITEXT_SCHEMA = "CREATE EXTENSION citext;\nCREATE TABLE people (email citext PRIMARY KEY);\n"


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
             schema: str = CITEXT_SCHEMA) -> Path:
    make_project(pytester, sets={"main": {"files": ["schema.sql"]}},
                 files={"schema.sql": schema})
    pytester.makepyfile(test_show=SHOW_TEST)
    out = pytester.path / "preload.txt"
    monkeypatch.setenv("PRELOAD_OUT", str(out))
    return out


def _preloaded(out: Path) -> set[str]:
    return {name for name in out.read_text().split(",") if name}


def _saved_list(cache_dir: Path) -> Path:
    (base,) = cache_dir.glob("pg*-*")
    return base / "preload-libraries"


def test_auto_preloads_the_templates_libraries_from_the_next_session(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _project(pytester, monkeypatch)
    first = run_inner(pytester, cache_dir)
    first.assert_outcomes(passed=1)
    assert _preloaded(out) == set()  # the server started before the template was built
    assert set(_saved_list(cache_dir).read_text().split()) == {"citext", "plpgsql"}

    second = run_inner(pytester, cache_dir)
    second.assert_outcomes(passed=1)
    assert _preloaded(out) == {"citext", "plpgsql"}
    assert any("preloads citext, plpgsql" in line for line in header_lines(second)), \
        header_lines(second)


def test_none_preloads_nothing(pytester: pytest.Pytester, cache_dir: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = _project(pytester, monkeypatch)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    assert _saved_list(cache_dir).exists()
    run_inner(pytester, cache_dir, "--schemasync-preload-libraries=none").assert_outcomes(passed=1)
    assert _preloaded(out) == set()


def test_a_library_an_extension_requires_preloaded(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_stat_statements refuses to work unless preloaded: naming it makes the first session
    (and the template build) work; without it the same test fails."""
    _project(pytester, monkeypatch, "CREATE EXTENSION pg_stat_statements;\n")
    pytester.makepyfile(test_show="""
        def test_statements(db):
            db.execute("SELECT 42").fetchone()
            assert db.execute("SELECT count(*) FROM pg_stat_statements").fetchone()[0] >= 0
    """)
    named = run_inner(pytester, cache_dir, "--schemasync-preload-libraries=auto,pg_stat_statements")
    named.assert_outcomes(passed=1)
    assert any("preloads pg_stat_statements" in line for line in header_lines(named))

    pytester.makepyfile(test_show="""
        def test_statements(db):
            db.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
    """)
    without = run_inner(pytester, cache_dir, "--schemasync-preload-libraries=none")
    without.assert_outcomes(failed=1)
    assert "must be loaded via shared_preload_libraries" in output_of(without)


def test_a_vanished_remembered_library_falls_back_with_a_warning(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _project(pytester, monkeypatch)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    saved = _saved_list(cache_dir)
    saved.write_text("citext\nno_such_library_xyz\n")  # as if its package had been removed

    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert _preloaded(out) == set()
    warning = [line for line in header_lines(result) if "warning" in line]
    assert warning and "no_such_library_xyz" in warning[0], header_lines(result)
    # The list is relearned from what the templates recorded when they were built.
    assert set(saved.read_text().split()) == {"citext", "plpgsql"}

    again = run_inner(pytester, cache_dir)
    again.assert_outcomes(passed=1)
    assert _preloaded(out) == {"citext", "plpgsql"}
    assert not [line for line in header_lines(again) if "warning" in line]


def test_the_list_is_relearned_from_the_templates(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost list (deleted, or from a cache older than this feature) comes back without a
    rebuild: each template records its libraries when it is built."""
    out = _project(pytester, monkeypatch)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    _saved_list(cache_dir).unlink()
    second = run_inner(pytester, cache_dir)
    second.assert_outcomes(passed=1)
    assert any("template from cache" in line for line in header_lines(second))
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    assert _preloaded(out) == {"citext", "plpgsql"}


def test_a_list_not_ours_alone_is_ignored(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The list makes the server load code: a file others may write, or a path in it, is not
    used."""
    out = _project(pytester, monkeypatch)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    saved = _saved_list(cache_dir)
    saved.write_text("citext\n")
    saved.chmod(0o666)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    assert _preloaded(out) == set()
    saved.chmod(0o644)
    saved.write_text("/dev/shm/evil\n")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    assert _preloaded(out) == set()


def test_a_mistyped_named_library_keeps_the_remembered_list(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(pytester, monkeypatch)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    saved = _saved_list(cache_dir)
    before = saved.read_text()
    result = run_inner(pytester, cache_dir, "--schemasync-preload-libraries=auto,pg_stat_statments")
    assert result.ret != 0
    assert "pg_stat_statments" in output_of(result)
    assert saved.read_text() == before


def test_a_named_library_that_does_not_exist_is_a_clear_error(
        pytester: pytest.Pytester, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(pytester, monkeypatch)
    result = run_inner(pytester, cache_dir, "--schemasync-preload-libraries=no_such_library_xyz")
    assert result.ret != 0
    out = output_of(result)
    assert "no_such_library_xyz" in out
    assert "--schemasync-preload-libraries" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("value", ["none,citext", "bad name!", "citext;DROP"])
def test_a_malformed_list_is_a_usage_error(pytester: pytest.Pytester, cache_dir: Path,
                                           monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    _project(pytester, monkeypatch)
    result = run_inner(pytester, cache_dir, f"--schemasync-preload-libraries={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = output_of(result)
    assert "preload-libraries" in out and "auto,pg_stat_statements" in out
    assert "Traceback" not in out
