-- missing-functions.sql
--
-- Routing helpers the API calls that never made it into the complete-schema
-- dump. Loaded after carthorse-complete-schema.sql and
-- docs/sql/fix_routing_functions.sql; tracked as the set's functions-file.
--
-- SQL-language bodies are checked when created, so their names are
-- schema-qualified (the dump leaves search_path empty).

--
-- find_route: shortest path between two routing nodes (pgr_dijkstra).
-- Edges are walkable both ways unless is_bidirectional is false.
--
CREATE OR REPLACE FUNCTION public.find_route(start_node integer, end_node integer)
RETURNS TABLE(seq integer, node_id bigint, edge_id bigint, trail_name text,
              cost_km double precision, agg_cost_km double precision)
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    IF start_node IS NULL OR end_node IS NULL THEN
        RAISE EXCEPTION 'find_route: start_node and end_node are required';
    END IF;

    RETURN QUERY
    SELECT d.seq, d.node, d.edge, e.trail_name, d.cost, d.agg_cost
    FROM public.pgr_dijkstra(
        'SELECT id, source, target, cost,
                CASE WHEN is_bidirectional THEN COALESCE(reverse_cost, cost) ELSE -1 END AS reverse_cost
           FROM public.routing_edges
          WHERE cost IS NOT NULL',
        start_node::bigint, end_node::bigint, directed := true) AS d
    LEFT JOIN public.routing_edges e ON e.id = d.edge
    ORDER BY d.seq;
END;
$$;

--
-- nearest_node: closest routing node to a point (KNN on the GiST index).
-- Overloaded: (lng, lat[, max_distance_m]) and (geometry).
--
CREATE OR REPLACE FUNCTION public.nearest_node(lng double precision, lat double precision,
                                               max_distance_m double precision DEFAULT NULL)
RETURNS integer
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    probe public.geometry := ST_SetSRID(ST_MakePoint(lng, lat), 4326);
    found_id integer;
    found_geom public.geometry;
BEGIN
    SELECT n.id, n.the_geom INTO found_id, found_geom
    FROM public.routing_nodes n
    WHERE n.the_geom IS NOT NULL
    ORDER BY n.the_geom <-> probe
    LIMIT 1;

    IF found_id IS NOT NULL AND max_distance_m IS NOT NULL
       AND NOT ST_DWithin(found_geom::geography, probe::geography, max_distance_m) THEN
        RETURN NULL;
    END IF;
    RETURN found_id;
END;
$$;

CREATE OR REPLACE FUNCTION public.nearest_node(pt public.geometry)
RETURNS integer
    LANGUAGE sql STABLE
    AS $$
    SELECT public.nearest_node(public.st_x(public.st_transform(pt, 4326)),
                               public.st_y(public.st_transform(pt, 4326)))
$$;

--
-- calculate_trail_stats: headline numbers for the admin dashboard.
--
CREATE OR REPLACE FUNCTION public.calculate_trail_stats()
RETURNS TABLE(total_trails bigint, total_length_km double precision, avg_length_km double precision,
              total_elevation_gain double precision, avg_elevation_gain double precision,
              region_count bigint)
    LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT count(*),
           COALESCE(sum(t.length_km), 0)::double precision,
           COALESCE(avg(t.length_km), 0)::double precision,
           COALESCE(sum(t.elevation_gain), 0)::double precision,
           COALESCE(avg(t.elevation_gain), 0)::double precision,
           count(DISTINCT t.region)
      FROM public.trails t;
END;

--
-- recommend_routes: node pairs whose shortest path is close to target_km
-- (within +/- tolerance, a fraction: 0.2 = 20 %). Best matches first.
--
CREATE OR REPLACE FUNCTION public.recommend_routes(target_km double precision,
                                                   tolerance double precision DEFAULT 0.2,
                                                   max_results integer DEFAULT 10)
RETURNS TABLE(start_node bigint, end_node bigint, distance_km double precision, deviation_pct double precision)
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    node_ids bigint[];
BEGIN
    IF target_km IS NULL OR target_km <= 0 THEN
        RAISE EXCEPTION 'recommend_routes: target_km must be positive, got %', target_km;
    END IF;

    SELECT array_agg(DISTINCT v) INTO node_ids
    FROM (SELECT source AS v FROM public.routing_edges
          UNION SELECT target FROM public.routing_edges) ends;

    IF node_ids IS NULL THEN
        RETURN;
    END IF;

    RETURN QUERY
    SELECT c.start_vid, c.end_vid, c.agg_cost,
           round((100.0 * abs(c.agg_cost - target_km) / target_km)::numeric, 2)::double precision
    FROM public.pgr_dijkstraCost(
        'SELECT id, source, target, cost,
                CASE WHEN is_bidirectional THEN COALESCE(reverse_cost, cost) ELSE -1 END AS reverse_cost
           FROM public.routing_edges
          WHERE cost IS NOT NULL',
        node_ids, node_ids, directed := true) AS c
    WHERE c.start_vid < c.end_vid
      AND c.agg_cost BETWEEN target_km * (1 - tolerance) AND target_km * (1 + tolerance)
    ORDER BY abs(c.agg_cost - target_km), c.start_vid, c.end_vid
    LIMIT max_results;
END;
$$;

--
-- trails_within_radius: trails passing within radius_m metres of a point.
--
CREATE OR REPLACE FUNCTION public.trails_within_radius(lng double precision, lat double precision,
                                                       radius_m double precision)
RETURNS TABLE(app_uuid text, name text, distance_m double precision)
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    probe public.geography := ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography;
BEGIN
    RETURN QUERY
    SELECT t.app_uuid, t.name, ST_Distance(t.geometry::geography, probe)
    FROM public.trails t
    WHERE ST_DWithin(t.geometry::geography, probe, radius_m)
    ORDER BY 3, t.name;
END;
$$;

--
-- validate_routing_graph: sanity checks run after every graph rebuild.
-- Pinned search_path: it is called from the export job with a locked-down role.
--
CREATE OR REPLACE FUNCTION public.validate_routing_graph()
RETURNS TABLE(check_name text, problem_count bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = public
    AS $$
BEGIN
    RETURN QUERY
    SELECT 'orphan_nodes'::text, count(*)
      FROM routing_nodes n
     WHERE NOT EXISTS (SELECT 1 FROM routing_edges e WHERE e.source = n.id OR e.target = n.id);

    RETURN QUERY
    SELECT 'edges_without_geometry'::text, count(*)
      FROM routing_edges e WHERE e.geometry IS NULL;

    RETURN QUERY
    SELECT 'edges_without_cost'::text, count(*)
      FROM routing_edges e WHERE e.cost IS NULL OR e.cost < 0;

    RETURN QUERY
    SELECT 'duplicate_edges'::text, count(*)
      FROM (SELECT least(e.source, e.target), greatest(e.source, e.target), e.trail_id
              FROM routing_edges e
             GROUP BY 1, 2, 3
            HAVING count(*) > 1) d;

    RETURN QUERY
    SELECT 'edges_detached_from_nodes'::text, count(*)
      FROM routing_edges e
      JOIN routing_nodes s ON s.id = e.source
      JOIN routing_nodes t ON t.id = e.target
     WHERE e.geometry IS NOT NULL
       AND NOT (ST_DWithin(ST_StartPoint(e.geometry)::geography, s.the_geom::geography, 10)
                AND ST_DWithin(ST_EndPoint(e.geometry)::geography, t.the_geom::geography, 10))
       AND NOT (ST_DWithin(ST_StartPoint(e.geometry)::geography, t.the_geom::geography, 10)
                AND ST_DWithin(ST_EndPoint(e.geometry)::geography, s.the_geom::geography, 10));
END;
$$;

--
-- route_geojson: one GeoJSON LineString/MultiLineString for a list of edges
-- (what find_route returns), for the map view.
--
CREATE OR REPLACE FUNCTION public.route_geojson(edge_ids bigint[])
RETURNS text
    LANGUAGE sql STABLE
    SET search_path = public
    AS $$
    SELECT ST_AsGeoJSON(ST_LineMerge(ST_Collect(e.geometry ORDER BY array_position(edge_ids, e.id::bigint))), 6)
      FROM routing_edges e
     WHERE e.id = ANY (edge_ids)
$$;

--
-- trail_elevation_profile: distance along the trail vs elevation, per vertex.
--
CREATE OR REPLACE FUNCTION public.trail_elevation_profile(trail_uuid text)
RETURNS TABLE(point_index integer, distance_km double precision, elevation double precision)
    LANGUAGE plpgsql STABLE
    AS $$
BEGIN
    RETURN QUERY
    WITH pts AS (
        SELECT (dp.path)[1] AS idx, dp.geom
          FROM public.trails t
         CROSS JOIN LATERAL ST_DumpPoints(t.geometry) AS dp
         WHERE t.app_uuid = trail_uuid
    ),
    steps AS (
        SELECT p.idx, p.geom,
               COALESCE(ST_Distance(lag(p.geom) OVER (ORDER BY p.idx)::geography, p.geom::geography), 0) AS step_m
          FROM pts p
    )
    SELECT s.idx, sum(s.step_m) OVER (ORDER BY s.idx) / 1000.0, ST_Z(s.geom)
      FROM steps s
     ORDER BY s.idx;
END;
$$;

--
-- cleanup_expired_recommendations: nightly job; returns rows removed.
--
CREATE OR REPLACE FUNCTION public.cleanup_expired_recommendations()
RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    removed integer;
BEGIN
    DELETE FROM public.route_recommendations WHERE expires_at IS NOT NULL AND expires_at < now();
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;
