"""The carthorse routing schema: PostGIS + pgRouting.

The whole module runs against the ``carthorse`` schema set (complete-schema
dump, then docs/sql/fix_routing_functions.sql, then missing-functions.sql).
"""

from __future__ import annotations

import pytest
from psycopg import errors

# needs_carthorse (conftest.py): skipped, with the reason, on a major without PostGIS.
pytestmark = [pytest.mark.schemasync("carthorse"), pytest.mark.usefixtures("needs_carthorse")]

# A small trail network near Boulder, CO (lng, lat, elevation m).
#
#   D(-105.29,40.01) --Fern Canyon 1.0-- E(-105.28,40.01)
#        |                                     |
#   Bear Creek 1.5                      Shadow Canyon 2.0
#        |                                     |
#   B(-105.29,40.00) --Mesa Trail 1.0--- C(-105.28,40.00)
#        |
#   Mesa Trail 1.0        (plus Long Canyon A-C, 3.5 km, a long detour)
#        |
#   A(-105.30,40.00)  trailhead
NODES = {
    "A": (-105.30, 40.00, 1650.0, "trailhead"),
    "B": (-105.29, 40.00, 1700.0, "intersection"),
    "C": (-105.28, 40.00, 1720.0, "intersection"),
    "D": (-105.29, 40.01, 1800.0, "intersection"),
    "E": (-105.28, 40.01, 1900.0, "endpoint"),
}
EDGES = [
    # source, target, trail name, km
    ("A", "B", "Mesa Trail", 1.0),
    ("B", "C", "Mesa Trail", 1.0),
    ("A", "C", "Long Canyon", 3.5),
    ("B", "D", "Bear Creek", 1.5),
    ("D", "E", "Fern Canyon", 1.0),
    ("C", "E", "Shadow Canyon", 2.0),
]


@pytest.fixture
def network(db) -> dict[str, int]:
    """Insert NODES/EDGES; return {node letter: routing_nodes.id}."""
    ids = {}
    for name, (lng, lat, ele, node_type) in NODES.items():
        ids[name] = db.execute(
            """
            INSERT INTO routing_nodes (node_uuid, lng, lat, elevation, node_type, the_geom)
            VALUES (%s, %s, %s, %s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326))
            RETURNING id
            """,
            (f"node-{name}", lng, lat, ele, node_type, lng, lat),
        ).fetchone()[0]
    for source, target, trail, km in EDGES:
        db.execute(
            """
            INSERT INTO routing_edges
                (source, target, trail_name, distance_km, cost, reverse_cost, geometry)
            SELECT s.id, t.id, %s, %s, %s, %s, ST_MakeLine(s.the_geom, t.the_geom)
            FROM routing_nodes s, routing_nodes t
            WHERE s.id = %s AND t.id = %s
            """,
            (trail, km, km, km, ids[source], ids[target]),
        )
    return ids


@pytest.fixture
def trails(db) -> None:
    db.execute("INSERT INTO regions (region_key, display_name) VALUES ('boulder', 'Boulder')")
    db.execute(
        """
        INSERT INTO trails (app_uuid, name, region, difficulty, elevation_gain, geometry) VALUES
          ('t-mesa', 'Mesa Trail', 'boulder', 'moderate', 70,
           ST_GeomFromText('LINESTRING Z (-105.30 40.00 1650, -105.29 40.00 1700,
                                          -105.28 40.00 1720)', 4326)),
          ('t-fern', 'Fern Canyon', 'boulder', 'hard', 100,
           ST_GeomFromText('LINESTRING Z (-105.29 40.01 1800, -105.28 40.01 1900)', 4326)),
          ('t-far', 'Far Away Loop', 'boulder', 'easy', 0,
           ST_GeomFromText('LINESTRING Z (-105.50 40.20 2500, -105.49 40.20 2500)', 4326))
        """
    )


def test_extensions_installed(db):
    names = {r[0] for r in db.execute("SELECT extname FROM pg_extension").fetchall()}
    assert {"postgis", "pgrouting"} <= names
    assert db.execute("SELECT pgr_version()").fetchone()[0].startswith("3.")


def test_this_is_the_carthorse_database(db):
    assert db.execute("SELECT to_regclass('public.routing_edges')").fetchone()[0] is not None
    assert db.execute("SELECT to_regclass('public.users')").fetchone()[0] is None


def test_trail_geometry_type_is_enforced(db):
    with pytest.raises(errors.InvalidParameterValue), db.transaction():
        db.execute(
            """
            INSERT INTO trails (app_uuid, name, region, geometry)
            VALUES ('t-bad', 'Flat', 'boulder', ST_GeomFromText('LINESTRING (0 0, 1 1)', 4326))
            """
        )


def test_trail_triggers_fill_length_and_bbox(db, trails):
    length_km, min_lng, max_lng, min_lat, max_lat = db.execute(
        """
        SELECT length_km, bbox_min_lng, bbox_max_lng, bbox_min_lat, bbox_max_lat
        FROM trails WHERE app_uuid = 't-mesa'
        """
    ).fetchone()
    # 2 x 0.01 deg of longitude at 40 N is ~1.71 km
    assert length_km == pytest.approx(1.71, rel=5e-3)
    assert (min_lng, max_lng, min_lat, max_lat) == pytest.approx((-105.30, -105.28, 40.00, 40.00))


def test_spatial_query_with_geography(db, trails):
    # a point ~55 m north of the Mesa Trail
    rows = db.execute(
        """
        SELECT name, ST_Length(geometry::geography) AS meters
        FROM trails
        WHERE ST_DWithin(geometry::geography,
                         ST_SetSRID(ST_MakePoint(-105.285, 40.0005), 4326)::geography,
                         100)
        ORDER BY name
        """
    ).fetchall()
    assert [r[0] for r in rows] == ["Mesa Trail"]
    assert rows[0][1] == pytest.approx(1710, rel=5e-3)


def test_trails_within_radius(db, trails):
    rows = db.execute(
        "SELECT app_uuid, distance_m FROM trails_within_radius(-105.285, 40.0005, 200)"
    ).fetchall()
    assert [r[0] for r in rows] == ["t-mesa"]
    assert rows[0][1] == pytest.approx(55.5, abs=0.5)

    wide = db.execute(
        "SELECT app_uuid FROM trails_within_radius(-105.285, 40.005, 1000)"
    ).fetchall()
    assert {r[0] for r in wide} == {"t-mesa", "t-fern"}


def test_find_route_returns_shortest_path(db, network):
    rows = db.execute(
        "SELECT node_id, edge_id, trail_name, agg_cost_km FROM find_route(%s, %s)",
        (network["A"], network["E"]),
    ).fetchall()

    path = [r[0] for r in rows]
    assert path == [network[n] for n in "ABDE"]
    assert [r[2] for r in rows[:-1]] == ["Mesa Trail", "Bear Creek", "Fern Canyon"]
    assert rows[-1][1] == -1  # pgr_dijkstra marks the end of the path with edge -1
    assert rows[-1][3] == pytest.approx(3.5)


def test_find_route_is_symmetric_for_two_way_trails(db, network):
    forward = db.execute(
        "SELECT max(agg_cost_km) FROM find_route(%s, %s)", (network["A"], network["E"])
    ).fetchone()[0]
    backward = db.execute(
        "SELECT max(agg_cost_km) FROM find_route(%s, %s)", (network["E"], network["A"])
    ).fetchone()[0]
    assert forward == backward == pytest.approx(3.5)


def test_find_route_respects_one_way_trails(db, network):
    db.execute("UPDATE routing_edges SET is_bidirectional = false WHERE trail_name = 'Bear Creek'")

    rows = db.execute(
        "SELECT node_id, agg_cost_km FROM find_route(%s, %s)", (network["E"], network["A"])
    ).fetchall()
    assert [r[0] for r in rows] == [network[n] for n in "ECBA"]
    assert rows[-1][1] == pytest.approx(4.0)


def test_find_route_with_no_path_is_empty(db, network):
    island = db.execute(
        """
        INSERT INTO routing_nodes (node_uuid, lng, lat, node_type, the_geom)
        VALUES ('island', -105.0, 40.5, 'endpoint', ST_SetSRID(ST_MakePoint(-105.0, 40.5), 4326))
        RETURNING id
        """
    ).fetchone()[0]
    assert db.execute("SELECT * FROM find_route(%s, %s)", (network["A"], island)).fetchall() == []


def test_nearest_node(db, network):
    assert db.execute("SELECT nearest_node(-105.2899, 40.0101)").fetchone()[0] == network["D"]
    # overload taking a geometry
    assert (
        db.execute(
            "SELECT nearest_node(ST_SetSRID(ST_MakePoint(-105.301, 39.999), 4326))"
        ).fetchone()[0]
        == network["A"]
    )
    # nothing within 500 m of Kansas
    assert db.execute("SELECT nearest_node(-100.0, 40.0, 500)").fetchone()[0] is None


def test_recommend_routes(db, network):
    rows = db.execute(
        "SELECT start_node, end_node, distance_km, deviation_pct FROM recommend_routes(2.5, 0.1)"
    ).fetchall()
    pairs = {(r[0], r[1]) for r in rows}
    expected = {
        tuple(sorted((network[a], network[b]))) for a, b in [("A", "D"), ("B", "E"), ("C", "D")]
    }
    assert pairs == expected
    assert all(r[2] == pytest.approx(2.5) and r[3] == 0 for r in rows)


def test_route_geojson(db, network):
    geojson = db.execute(
        """
        SELECT route_geojson(array_agg(edge_id ORDER BY seq))
        FROM find_route(%s, %s) WHERE edge_id > 0
        """,
        (network["A"], network["E"]),
    ).fetchone()[0]
    assert '"type":"LineString"' in geojson
    assert "[-105.3,40]" in geojson and "[-105.28,40.01]" in geojson


def test_validate_routing_graph_is_clean(db, network):
    problems = dict(
        db.execute("SELECT check_name, problem_count FROM validate_routing_graph()").fetchall()
    )
    assert problems and all(count == 0 for count in problems.values()), problems

    db.execute(
        "INSERT INTO routing_nodes (node_uuid, lng, lat, the_geom) "
        "VALUES ('lonely', -105.1, 40.1, NULL)"
    )
    problems = dict(
        db.execute("SELECT check_name, problem_count FROM validate_routing_graph()").fetchall()
    )
    assert problems["orphan_nodes"] == 1


def test_calculate_trail_stats(db, trails):
    total, total_km, _avg_km, gain, _avg_gain, regions = db.execute(
        "SELECT * FROM calculate_trail_stats()"
    ).fetchone()
    assert total == 3
    assert gain == pytest.approx(170)
    assert regions == 1
    assert total_km == pytest.approx(1.71 + 0.85 + 0.85, rel=1e-2)
    assert total_km == pytest.approx(db.execute("SELECT sum(length_km) FROM trails").fetchone()[0])


def test_trail_elevation_profile(db, trails):
    rows = db.execute("SELECT * FROM trail_elevation_profile('t-mesa')").fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[2] for r in rows] == [1650, 1700, 1720]
    assert rows[1][1] == pytest.approx(0.854, rel=5e-3)
    assert rows[-1][1] == pytest.approx(1.71, rel=5e-3)


def test_deleting_node_cascades_to_edges(db, network):
    db.execute("DELETE FROM routing_nodes WHERE id = %s", (network["B"],))
    names = {r[0] for r in db.execute("SELECT trail_name FROM routing_edges").fetchall()}
    assert names == {"Long Canyon", "Fern Canyon", "Shadow Canyon"}


def test_build_routing_graph_in_staging_schema(db, trails):
    """The fixed builders from docs/sql/fix_routing_functions.sql merge shared endpoints."""
    db.execute("SELECT prepare_routing_staging('staging_pytest')")
    db.execute(
        """
        INSERT INTO staging_pytest.trails
            SELECT * FROM trails WHERE app_uuid IN ('t-mesa', 't-fern');
        INSERT INTO staging_pytest.trails (id, app_uuid, name, region, geometry)
        VALUES (1001, 't-shadow', 'Shadow Canyon', 'boulder',
                ST_GeomFromText('LINESTRING Z (-105.28 40.00 1720, -105.28 40.01 1900)', 4326));
        """
    )

    nodes, edges = db.execute(
        "SELECT build_routing_nodes('staging_pytest', 5.0), "
        "       build_routing_edges('staging_pytest', 5.0)"
    ).fetchone()
    # Mesa A->C, Fern D->E, Shadow C->E share C and E: 4 nodes, 3 edges
    assert (nodes, edges) == (4, 3)
    types = dict(
        db.execute(
            "SELECT connected_trails, node_type FROM staging_pytest.routing_nodes"
        ).fetchall()
    )
    assert types == {
        "t-mesa": "endpoint",
        "t-fern": "endpoint",
        "t-mesa,t-shadow": "intersection",
        "t-fern,t-shadow": "intersection",
    }


def test_staging_schema_name_is_validated(db):
    with pytest.raises(errors.RaiseException, match="invalid staging schema"), db.transaction():
        db.execute("SELECT prepare_routing_staging('public')")
