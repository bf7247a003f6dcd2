-- A small "carthorse-like" schema for the stress suite: trails and a routing graph as plain
-- tables (no PostGIS, to keep the build fast), in their own schema, plus functions.
SET client_min_messages = warning;

CREATE SCHEMA routing;

CREATE TABLE public.regions (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE
);

CREATE TABLE public.trails (
    id bigserial PRIMARY KEY,
    region_id integer NOT NULL REFERENCES public.regions (id),
    name text NOT NULL,
    length_km numeric(8, 3) NOT NULL CHECK (length_km > 0),
    elevation_gain integer NOT NULL DEFAULT 0 CHECK (elevation_gain >= 0)
);
CREATE INDEX trails_region_idx ON public.trails (region_id);

CREATE TABLE routing.nodes (
    id integer PRIMARY KEY,
    label text NOT NULL
);

CREATE TABLE routing.edges (
    id serial PRIMARY KEY,
    source integer NOT NULL REFERENCES routing.nodes (id),
    target integer NOT NULL REFERENCES routing.nodes (id),
    cost double precision NOT NULL CHECK (cost >= 0)
);

CREATE TABLE public.probe (
    tag text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO public.regions (code) VALUES ('boulder'), ('seattle');
INSERT INTO routing.nodes (id, label) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e');
INSERT INTO routing.edges (source, target, cost)
VALUES (1, 2, 1.0), (2, 3, 2.5), (3, 5, 1.5), (1, 4, 4.0), (4, 5, 0.5);
