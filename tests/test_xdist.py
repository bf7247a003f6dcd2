"""Under pytest-xdist the workers share the controller's server and its templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import (
    SIMPLE_SCHEMA,
    built_templates,
    cluster_connection,
    database_names,
    make_project,
    run_inner,
    session_databases,
)


def test_workers_share_one_server_and_templates(pytester: pytest.Pytester,
                                                cache_dir: Path) -> None:
    make_project(
        pytester,
        sets={"one": {"files": ["one.sql"]}, "two": {"files": ["two.sql"]}},
        tool={"default-set": "one"},
        files={"one.sql": SIMPLE_SCHEMA, "two.sql": "CREATE TABLE two_only (x int);\n"},
    )
    records = pytester.path / "records"
    records.mkdir()
    pytester.makepyfile(test_parallel=f"""
        import json
        import os
        import time

        import pytest

        RECORDS = {str(records)!r}

        def record(conn, kind, request):
            row = conn.execute(
                "SELECT current_setting('data_directory'), "
                "current_setting('unix_socket_directories'), "
                "pg_postmaster_start_time()::text, current_database()").fetchone()
            data = {{
                "worker": os.environ.get("PYTEST_XDIST_WORKER", "none"),
                "data_directory": row[0], "socket": row[1], "started": row[2],
                "database": row[3], "kind": kind,
            }}
            name = request.node.name.replace("[", "-").replace("]", "")
            with open(os.path.join(RECORDS, name + ".json"), "w") as f:
                json.dump(data, f)

        @pytest.mark.parametrize("n", range(4))
        def test_one(db, n, request):
            time.sleep(0.1)
            db.execute("INSERT INTO items (name) VALUES (%s)", (f"n{{n}}",))
            assert db.execute("SELECT count(*) FROM items").fetchone()[0] == 2
            record(db, "db-one", request)

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.schemasync("two")
        def test_two(db, n, request):
            time.sleep(0.1)
            db.execute("INSERT INTO two_only VALUES (%s)", (n,))
            assert db.execute("SELECT count(*) FROM two_only").fetchone()[0] == 1
            record(db, "db-two", request)

        @pytest.mark.parametrize("n", range(2))
        def test_fresh(fresh_db, n, request):
            fresh_db.execute("INSERT INTO items (name) VALUES ('fresh')")
            fresh_db.commit()
            record(fresh_db, "fresh", request)
    """)
    result = run_inner(pytester, cache_dir, "-n", "2")
    result.assert_outcomes(passed=10)

    built = built_templates(cache_dir)
    assert len(built) == 2, built
    assert {line.split("set=")[1].split()[0] for line in built} == {"one", "two"}

    data = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]
    assert len(data) == 10
    assert {d["worker"] for d in data} == {"gw0", "gw1"}
    assert len({d["data_directory"] for d in data}) == 1
    assert str(cache_dir) in data[0]["data_directory"]
    assert len({d["socket"] for d in data}) == 1
    assert len({d["started"] for d in data}) == 1
    # Each worker has its own rollback database per set, named after the worker.
    for d in data:
        if d["kind"].startswith("db-"):
            assert d["database"].startswith("sss_")
            assert f"_{d['worker']}_" in d["database"]
    assert len({d["database"] for d in data if d["kind"] == "fresh"}) == 2

    with cluster_connection(cache_dir) as admin:
        assert session_databases(database_names(admin)) == set()

    # A second parallel run reuses both templates.
    result = run_inner(pytester, cache_dir, "-n", "2")
    result.assert_outcomes(passed=10)
    assert len(built_templates(cache_dir)) == 2
