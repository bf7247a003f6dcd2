-- Routing helpers, kept in a file of their own as carthorse does.
CREATE FUNCTION routing.find_route(start_node integer, end_node integer)
RETURNS TABLE (step integer, node integer, total_cost double precision)
LANGUAGE sql STABLE
AS $$
    WITH RECURSIVE walk (node, path, cost) AS (
        SELECT start_node, ARRAY[start_node], 0::double precision
        UNION ALL
        SELECT e.target, w.path || e.target, w.cost + e.cost
        FROM walk w
        JOIN routing.edges e ON e.source = w.node
        WHERE NOT e.target = ANY (w.path)
    ), best AS (
        SELECT path, cost FROM walk WHERE node = end_node ORDER BY cost LIMIT 1
    )
    SELECT ord::integer, n, b.cost
    FROM best b, unnest(b.path) WITH ORDINALITY AS u (n, ord)
$$;

CREATE FUNCTION public.total_trail_km(region text) RETURNS numeric
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(sum(t.length_km), 0)
    FROM public.trails t JOIN public.regions r ON r.id = t.region_id
    WHERE r.code = region
$$;
