-- fix_routing_functions.sql
--
-- Fixes for the routing-graph builders shipped in
-- sql/schemas/carthorse-complete-schema.sql. Apply after the complete schema.
--
--   * build_routing_nodes: endpoints of trails that meet within `tolerance`
--     metres are merged into ONE node (the old version created one node per
--     trail endpoint, so the graph was never connected), nodes touched by
--     more than one trail are typed 'intersection', and connected_trails is
--     filled in.
--   * build_routing_edges: each trail is attached to its nearest node at
--     each end (the old version joined every node within tolerance and
--     produced duplicate edges), self-loops are skipped, and the distance is
--     measured on the spheroid instead of trusting trails.length_km.
--
-- Both work on the tables of a staging schema (see prepare_routing_staging)
-- and keep their original signatures, so CREATE OR REPLACE is enough.

CREATE OR REPLACE FUNCTION public.build_routing_nodes(staging_schema text, tolerance double precision)
RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    -- tolerance is given in metres; clustering runs in EPSG:4326 degrees.
    tolerance_deg double precision := tolerance / 111320.0;
    node_count integer;
BEGIN
    IF staging_schema !~ '^staging_[a-z0-9_]+$' THEN
        RAISE EXCEPTION 'invalid staging schema name: %', staging_schema;
    END IF;
    IF tolerance IS NULL OR tolerance < 0 THEN
        RAISE EXCEPTION 'tolerance must be >= 0 metres, got %', tolerance;
    END IF;

    EXECUTE format('TRUNCATE %1$I.routing_edges, %1$I.routing_nodes RESTART IDENTITY', staging_schema);

    EXECUTE format($q$
        WITH endpoints AS (
            SELECT t.app_uuid, ST_StartPoint(t.geometry) AS pt FROM %1$I.trails t
            UNION ALL
            SELECT t.app_uuid, ST_EndPoint(t.geometry) FROM %1$I.trails t
        ),
        clustered AS (
            SELECT e.app_uuid,
                   e.pt,
                   ST_ClusterDBSCAN(ST_Force2D(e.pt), eps := %2$L::double precision, minpoints := 1)
                       OVER () AS cluster_id
            FROM endpoints e
        ),
        nodes AS (
            SELECT c.cluster_id,
                   ST_SetSRID(ST_Centroid(ST_Collect(ST_Force2D(c.pt))), 4326) AS center,
                   avg(ST_Z(c.pt)) AS elevation,
                   count(DISTINCT c.app_uuid) AS trail_count,
                   string_agg(DISTINCT c.app_uuid, ',' ORDER BY c.app_uuid) AS trails
            FROM clustered c
            GROUP BY c.cluster_id
        )
        INSERT INTO %1$I.routing_nodes (node_uuid, lat, lng, elevation, node_type, connected_trails, the_geom)
        SELECT gen_random_uuid()::text,
               ST_Y(n.center),
               ST_X(n.center),
               n.elevation,
               CASE WHEN n.trail_count > 1 THEN 'intersection' ELSE 'endpoint' END,
               n.trails,
               n.center
        FROM nodes n
        ORDER BY ST_X(n.center), ST_Y(n.center)
    $q$, staging_schema, tolerance_deg);

    GET DIAGNOSTICS node_count = ROW_COUNT;
    RETURN node_count;
END;
$$;

COMMENT ON FUNCTION public.build_routing_nodes(text, double precision)
    IS 'Rebuild <staging_schema>.routing_nodes from trail endpoints; endpoints within tolerance metres are merged';


CREATE OR REPLACE FUNCTION public.build_routing_edges(staging_schema text, tolerance double precision)
RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    edge_count integer;
BEGIN
    IF staging_schema !~ '^staging_[a-z0-9_]+$' THEN
        RAISE EXCEPTION 'invalid staging schema name: %', staging_schema;
    END IF;

    EXECUTE format('TRUNCATE %I.routing_edges RESTART IDENTITY', staging_schema);

    EXECUTE format($q$
        INSERT INTO %1$I.routing_edges
            (source, target, trail_id, trail_name, distance_km, elevation_gain, elevation_loss,
             cost, reverse_cost, geometry)
        SELECT s.id,
               e.id,
               t.app_uuid,
               t.name,
               ST_Length(t.geometry::geography) / 1000.0 AS distance_km,
               t.elevation_gain,
               t.elevation_loss,
               ST_Length(t.geometry::geography) / 1000.0,
               ST_Length(t.geometry::geography) / 1000.0,
               ST_Force2D(t.geometry)
        FROM %1$I.trails t
        CROSS JOIN LATERAL (
            SELECT n.id, n.the_geom FROM %1$I.routing_nodes n
            ORDER BY n.the_geom <-> ST_Force2D(ST_StartPoint(t.geometry))
            LIMIT 1
        ) s
        CROSS JOIN LATERAL (
            SELECT n.id, n.the_geom FROM %1$I.routing_nodes n
            ORDER BY n.the_geom <-> ST_Force2D(ST_EndPoint(t.geometry))
            LIMIT 1
        ) e
        WHERE s.id <> e.id
          AND ST_DWithin(s.the_geom::geography, ST_StartPoint(t.geometry)::geography, %2$L::double precision)
          AND ST_DWithin(e.the_geom::geography, ST_EndPoint(t.geometry)::geography, %2$L::double precision)
        ORDER BY t.id
    $q$, staging_schema, tolerance);

    GET DIAGNOSTICS edge_count = ROW_COUNT;
    RETURN edge_count;
END;
$$;

COMMENT ON FUNCTION public.build_routing_edges(text, double precision)
    IS 'Rebuild <staging_schema>.routing_edges: one edge per trail between its nearest end nodes (within tolerance metres)';
