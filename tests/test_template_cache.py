"""The template cache: built once, reused while the files are unchanged, rebuilt when not."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    SIMPLE_SCHEMA,
    built_templates,
    cluster_connection,
    database_names,
    header_lines,
    make_project,
    output_of,
    run_inner,
)

from pytest_schemasync.errors import SchemaSyncError

TEST_ITEMS = """
    def test_items(db):
        assert db.execute("SELECT name FROM items ORDER BY id").fetchall() == [("seed",)]
"""


def _template_lines(result: pytest.RunResult, set_name: str) -> list[str]:
    return [line for line in header_lines(result) if f"set {set_name!r}: template" in line]


def test_built_then_cached_then_rebuilt(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(pytester, sets={"default": {"files": ["schema.sql"]},
                                 "other": {"files": ["other.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA,
                        "other.sql": "CREATE TABLE other (x int);\n"})
    pytester.makepyfile(test_items=TEST_ITEMS)

    # 1. First run: both templates are built.
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert len(_template_lines(result, "default")) == 1
    assert "template built in" in _template_lines(result, "default")[0]
    assert "template built in" in _template_lines(result, "other")[0]
    assert len(built_templates(cache_dir)) == 2
    assert (cache_dir / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172")

    # 2. Unchanged files: both come from the cache and nothing is built.
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template from cache" in _template_lines(result, "default")[0]
    assert "template from cache" in _template_lines(result, "other")[0]
    assert "cached cluster" in header_lines(result)[0]
    assert len(built_templates(cache_dir)) == 2

    # 3. Editing one file rebuilds that set only, and the tests see the new schema.
    (pytester.path / "schema.sql").write_text(
        SIMPLE_SCHEMA + "INSERT INTO items (name) VALUES ('second');\n")
    pytester.makepyfile(test_items="""
        def test_items(db):
            assert [r[0] for r in db.execute("SELECT name FROM items ORDER BY id")] == \\
                ["seed", "second"]
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template built in" in _template_lines(result, "default")[0]
    assert "template from cache" in _template_lines(result, "other")[0]
    built = built_templates(cache_dir)
    assert len(built) == 3
    assert "set=default" in built[-1]

    # The superseded template of that set was dropped; one template per set remains.
    with cluster_connection(cache_dir) as admin:
        templates = sorted(n for n in database_names(admin) if n.startswith("sst_"))
    assert len(templates) == 2, templates
    assert any("_default_" in n for n in templates)
    assert any("_other_" in n for n in templates)

    # 4. --schemasync-rebuild builds every set again, though nothing changed.
    result = run_inner(pytester, cache_dir, "--schemasync-rebuild")
    result.assert_outcomes(passed=1)
    assert "template built in" in _template_lines(result, "default")[0]
    assert "template built in" in _template_lines(result, "other")[0]
    assert len(built_templates(cache_dir)) == 5

    # 5. ... and the run after that uses the cache again.
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template from cache" in _template_lines(result, "default")[0]
    assert len(built_templates(cache_dir)) == 5


def test_renaming_the_file_list_order_rebuilds(pytester: pytest.Pytester,
                                               cache_dir: Path) -> None:
    files = {"a.sql": "CREATE TABLE a (id int);\n",
             "b.sql": "CREATE VIEW v AS SELECT 1 AS one;\n"}
    make_project(pytester, sets={"default": {"files": ["a.sql", "b.sql"]}}, files=files)
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    make_project(pytester, sets={"default": {"files": ["b.sql", "a.sql"]}})
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template built in" in _template_lines(result, "default")[0]
    assert len(built_templates(cache_dir)) == 2


def test_failed_build_leaves_no_half_built_template(pytester: pytest.Pytester,
                                                    cache_dir: Path) -> None:
    good = "CREATE TABLE first (id int);\n"
    make_project(pytester, sets={"default": {"files": ["one.sql", "two.sql"]}},
                 files={"one.sql": good, "two.sql": "CREATE TABLE second (id nosuchtype);\n"})
    pytester.makepyfile(test_x="""
        def test_x(db):
            assert db.execute("SELECT to_regclass('second')").fetchone()[0] == "second"
    """)
    result = run_inner(pytester, cache_dir)
    assert result.ret != 0
    assert 'type "nosuchtype" does not exist' in output_of(result)
    assert "collected" not in output_of(result)  # stopped before any test ran
    assert built_templates(cache_dir) == []
    with cluster_connection(cache_dir) as admin:
        ours = {n for n in database_names(admin) if n.startswith(("sst_", "ssb_"))}
    assert ours == set(), "a failed build left a template behind"

    (pytester.path / "two.sql").write_text("CREATE TABLE second (id int);\n")
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=1)
    assert "template built in" in _template_lines(result, "default")[0]
    assert len(built_templates(cache_dir)) == 1


def test_failed_build_then_rerun_with_the_same_error(pytester: pytest.Pytester,
                                                     cache_dir: Path) -> None:
    """A broken file is not cached as 'known broken': each run reports the error again."""
    make_project(pytester, sets={"default": {"files": ["bad.sql"]}},
                 files={"bad.sql": "SELECT 1/0;\n"})
    pytester.makepyfile(test_x="def test_x(db):\n    pass\n")
    for _ in range(2):
        result = run_inner(pytester, cache_dir)
        assert result.ret == SchemaSyncError.exit_code
        assert "division by zero" in output_of(result)


def test_templates_of_deleted_projects_are_dropped(pytester: pytest.Pytester,
                                                   cache_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A clone of the project that was deleted (a temp checkout, a CI workspace) leaves a
    template in the shared cluster; the next session drops it instead of keeping it in RAM."""
    import shutil

    make_project(pytester, sets={"default": {"files": ["schema.sql"]}},
                 files={"schema.sql": SIMPLE_SCHEMA})
    pytester.makepyfile(test_items=TEST_ITEMS)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)

    elsewhere = pytester.path / "checkout"
    elsewhere.mkdir()
    for name in ("pyproject.toml", "schema.sql", "test_items.py"):
        shutil.copy(pytester.path / name, elsewhere / name)
    monkeypatch.chdir(elsewhere)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    with cluster_connection(cache_dir) as conn:
        templates = {n for n in database_names(conn) if n.startswith("sst_")}
    assert len(templates) == 2, templates  # one per project folder

    shutil.rmtree(elsewhere)
    monkeypatch.chdir(pytester.path)
    run_inner(pytester, cache_dir).assert_outcomes(passed=1)
    with cluster_connection(cache_dir) as conn:
        remaining = {n for n in database_names(conn) if n.startswith("sst_")}
    assert len(remaining) == 1 and remaining < templates, (templates, remaining)
