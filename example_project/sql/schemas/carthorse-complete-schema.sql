--
-- PostgreSQL database dump
--

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: postgis; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS postgis WITH SCHEMA public;


--
-- Name: EXTENSION postgis; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION postgis IS 'PostGIS geometry and geography spatial types and functions';


--
-- Name: pgrouting; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pgrouting WITH SCHEMA public;


--
-- Name: EXTENSION pgrouting; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pgrouting IS 'pgRouting Extension';


--
-- Name: auto_calculate_bbox(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.auto_calculate_bbox() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.geometry IS NOT NULL THEN
        NEW.bbox_min_lng := ST_XMin(NEW.geometry);
        NEW.bbox_max_lng := ST_XMax(NEW.geometry);
        NEW.bbox_min_lat := ST_YMin(NEW.geometry);
        NEW.bbox_max_lat := ST_YMax(NEW.geometry);
    END IF;
    RETURN NEW;
END;
$$;


--
-- Name: auto_calculate_length(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.auto_calculate_length() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.geometry IS NOT NULL AND (NEW.length_km IS NULL OR NEW.length_km <= 0) THEN
        NEW.length_km := ST_Length(NEW.geometry::geography) / 1000.0;
    END IF;
    RETURN NEW;
END;
$$;


--
-- Name: build_routing_edges(text, double precision); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.build_routing_edges(staging_schema text, tolerance double precision) RETURNS integer
    LANGUAGE plpgsql
    AS $_$
DECLARE
    edge_count integer;
BEGIN
    EXECUTE format('DELETE FROM %I.routing_edges', staging_schema);
    EXECUTE format($q$
        INSERT INTO %1$I.routing_edges (source, target, trail_id, trail_name, distance_km, cost, reverse_cost, geometry)
        SELECT s.id, e.id, t.app_uuid, t.name, t.length_km, t.length_km, t.length_km, ST_Force2D(t.geometry)
        FROM %1$I.trails t
        JOIN %1$I.routing_nodes s ON ST_DWithin(s.the_geom, ST_Force2D(ST_StartPoint(t.geometry)), %2$s)
        JOIN %1$I.routing_nodes e ON ST_DWithin(e.the_geom, ST_Force2D(ST_EndPoint(t.geometry)), %2$s)
    $q$, staging_schema, tolerance);
    GET DIAGNOSTICS edge_count = ROW_COUNT;
    RETURN edge_count;
END;
$_$;


--
-- Name: build_routing_nodes(text, double precision); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.build_routing_nodes(staging_schema text, tolerance double precision) RETURNS integer
    LANGUAGE plpgsql
    AS $_$
DECLARE
    node_count integer;
BEGIN
    EXECUTE format('DELETE FROM %I.routing_nodes', staging_schema);
    EXECUTE format($q$
        INSERT INTO %1$I.routing_nodes (node_uuid, lat, lng, elevation, node_type, the_geom)
        SELECT gen_random_uuid()::text, ST_Y(pt), ST_X(pt), ST_Z(pt), 'endpoint', ST_Force2D(pt)
        FROM (
            SELECT ST_StartPoint(geometry) AS pt FROM %1$I.trails
            UNION ALL
            SELECT ST_EndPoint(geometry) FROM %1$I.trails
        ) pts
    $q$, staging_schema);
    GET DIAGNOSTICS node_count = ROW_COUNT;
    RETURN node_count;
END;
$_$;


--
-- Name: generate_route_uuid(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.generate_route_uuid() RETURNS text
    LANGUAGE sql
    AS $$ SELECT 'route-' || md5(random()::text || clock_timestamp()::text) $$;


--
-- Name: prepare_routing_staging(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.prepare_routing_staging(staging_schema text) RETURNS void
    LANGUAGE plpgsql
    AS $_$
BEGIN
    IF staging_schema !~ '^staging_[a-z0-9_]+$' THEN
        RAISE EXCEPTION 'invalid staging schema name: %', staging_schema;
    END IF;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', staging_schema);
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I.trails (LIKE public.trails INCLUDING DEFAULTS)', staging_schema);
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I.routing_nodes (
        id serial PRIMARY KEY, node_uuid text UNIQUE, lat double precision, lng double precision,
        elevation double precision, node_type text, connected_trails text,
        the_geom geometry(Point, 4326))', staging_schema);
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I.routing_edges (
        id serial PRIMARY KEY, source integer NOT NULL, target integer NOT NULL, trail_id text,
        trail_name text, distance_km double precision, elevation_gain double precision,
        elevation_loss double precision, cost double precision, reverse_cost double precision,
        geometry geometry(LineString, 4326))', staging_schema);
END;
$_$;


--
-- Name: update_updated_at_column(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.update_updated_at_column() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at = NOW();
    RETURN NEW;
END;
$$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: elevation_points; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.elevation_points (
    id integer NOT NULL,
    lat double precision NOT NULL,
    lng double precision NOT NULL,
    elevation integer NOT NULL,
    source_file text,
    the_geom public.geometry(Point,4326),
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: elevation_points_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.elevation_points_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: elevation_points_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.elevation_points_id_seq OWNED BY public.elevation_points.id;


--
-- Name: regions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.regions (
    id integer NOT NULL,
    region_key text NOT NULL,
    display_name text NOT NULL,
    bbox public.geometry(Polygon,4326),
    initial_view_bbox jsonb,
    trail_count integer DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT regions_region_key_format CHECK ((region_key ~ '^[a-z][a-z0-9_]*$'::text))
);


--
-- Name: regions_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.regions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: regions_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.regions_id_seq OWNED BY public.regions.id;


--
-- Name: route_recommendations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.route_recommendations (
    id integer NOT NULL,
    route_uuid text NOT NULL,
    region text NOT NULL,
    input_length_km double precision,
    input_elevation_gain double precision,
    recommended_length_km double precision,
    recommended_elevation_gain double precision,
    route_shape text,
    trail_count integer,
    route_score double precision,
    route_path jsonb,
    route_edges jsonb,
    request_hash text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    CONSTRAINT route_recommendations_positive_length CHECK (((recommended_length_km IS NULL) OR (recommended_length_km > (0)::double precision))),
    CONSTRAINT route_recommendations_route_score_check CHECK (((route_score >= (0)::double precision) AND (route_score <= (100)::double precision))),
    CONSTRAINT route_recommendations_route_shape_check CHECK ((route_shape = ANY (ARRAY['loop'::text, 'out-and-back'::text, 'lollipop'::text, 'point-to-point'::text])))
);


--
-- Name: route_recommendations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.route_recommendations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: route_recommendations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.route_recommendations_id_seq OWNED BY public.route_recommendations.id;


--
-- Name: routing_edges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.routing_edges (
    id integer NOT NULL,
    source integer NOT NULL,
    target integer NOT NULL,
    trail_id text,
    trail_name text,
    distance_km double precision NOT NULL,
    elevation_gain double precision DEFAULT 0 NOT NULL,
    elevation_loss double precision DEFAULT 0 NOT NULL,
    cost double precision,
    reverse_cost double precision,
    is_bidirectional boolean DEFAULT true NOT NULL,
    geometry public.geometry(LineString,4326),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT routing_edges_distance_km_check CHECK ((distance_km > (0)::double precision)),
    CONSTRAINT routing_edges_no_self_loop CHECK ((source <> target))
);


--
-- Name: routing_edges_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.routing_edges_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: routing_edges_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.routing_edges_id_seq OWNED BY public.routing_edges.id;


--
-- Name: routing_nodes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.routing_nodes (
    id integer NOT NULL,
    node_uuid text NOT NULL,
    lat double precision NOT NULL,
    lng double precision NOT NULL,
    elevation double precision,
    node_type text DEFAULT 'intersection'::text NOT NULL,
    connected_trails text,
    the_geom public.geometry(Point,4326),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT routing_nodes_lat_check CHECK (((lat >= ('-90'::integer)::double precision) AND (lat <= (90)::double precision))),
    CONSTRAINT routing_nodes_lng_check CHECK (((lng >= ('-180'::integer)::double precision) AND (lng <= (180)::double precision))),
    CONSTRAINT routing_nodes_node_type_check CHECK ((node_type = ANY (ARRAY['intersection'::text, 'endpoint'::text, 'trailhead'::text])))
);


--
-- Name: routing_nodes_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.routing_nodes_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: routing_nodes_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.routing_nodes_id_seq OWNED BY public.routing_nodes.id;


--
-- Name: trail_hashes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trail_hashes (
    id integer NOT NULL,
    app_uuid text NOT NULL,
    geometry_hash text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: trail_hashes_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.trail_hashes_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: trail_hashes_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.trail_hashes_id_seq OWNED BY public.trail_hashes.id;


--
-- Name: trails; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.trails (
    id integer NOT NULL,
    app_uuid text NOT NULL,
    osm_id text,
    name text NOT NULL,
    region text NOT NULL,
    trail_type text,
    surface text,
    difficulty text,
    source_tags jsonb,
    length_km real,
    elevation_gain real DEFAULT 0 NOT NULL,
    elevation_loss real DEFAULT 0 NOT NULL,
    max_elevation real,
    min_elevation real,
    avg_elevation real,
    source text,
    bbox_min_lng double precision,
    bbox_max_lng double precision,
    bbox_min_lat double precision,
    bbox_max_lat double precision,
    geometry public.geometry(LineStringZ,4326) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT trails_difficulty_check CHECK (((difficulty IS NULL) OR (difficulty = ANY (ARRAY['easy'::text, 'moderate'::text, 'hard'::text, 'expert'::text])))),
    CONSTRAINT trails_elevation_gain_check CHECK ((elevation_gain >= (0)::double precision)),
    CONSTRAINT trails_elevation_loss_check CHECK ((elevation_loss >= (0)::double precision)),
    CONSTRAINT trails_elevation_order CHECK (((max_elevation IS NULL) OR (min_elevation IS NULL) OR (max_elevation >= min_elevation))),
    CONSTRAINT trails_length_km_check CHECK (((length_km IS NULL) OR (length_km > (0)::double precision))),
    CONSTRAINT trails_valid_geometry CHECK ((public.st_isvalid(geometry) AND (public.st_npoints(geometry) >= 2)))
);


--
-- Name: trails_by_region; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.trails_by_region AS
 SELECT r.region_key,
    r.display_name,
    count(t.id) AS trail_count,
    COALESCE(round((sum(t.length_km))::numeric, 2), (0)::numeric) AS total_length_km,
    COALESCE(round((avg(t.elevation_gain))::numeric, 1), (0)::numeric) AS avg_elevation_gain
   FROM (public.regions r
     LEFT JOIN public.trails t ON ((t.region = r.region_key)))
  GROUP BY r.region_key, r.display_name;


--
-- Name: trails_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.trails_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: trails_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.trails_id_seq OWNED BY public.trails.id;


--
-- Name: elevation_points id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.elevation_points ALTER COLUMN id SET DEFAULT nextval('public.elevation_points_id_seq'::regclass);


--
-- Name: regions id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.regions ALTER COLUMN id SET DEFAULT nextval('public.regions_id_seq'::regclass);


--
-- Name: route_recommendations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.route_recommendations ALTER COLUMN id SET DEFAULT nextval('public.route_recommendations_id_seq'::regclass);


--
-- Name: routing_edges id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_edges ALTER COLUMN id SET DEFAULT nextval('public.routing_edges_id_seq'::regclass);


--
-- Name: routing_nodes id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_nodes ALTER COLUMN id SET DEFAULT nextval('public.routing_nodes_id_seq'::regclass);


--
-- Name: trail_hashes id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trail_hashes ALTER COLUMN id SET DEFAULT nextval('public.trail_hashes_id_seq'::regclass);


--
-- Name: trails id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trails ALTER COLUMN id SET DEFAULT nextval('public.trails_id_seq'::regclass);


--
-- Name: elevation_points elevation_points_lat_lng_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.elevation_points
    ADD CONSTRAINT elevation_points_lat_lng_key UNIQUE (lat, lng);


--
-- Name: elevation_points elevation_points_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.elevation_points
    ADD CONSTRAINT elevation_points_pkey PRIMARY KEY (id);


--
-- Name: regions regions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.regions
    ADD CONSTRAINT regions_pkey PRIMARY KEY (id);


--
-- Name: regions regions_region_key_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.regions
    ADD CONSTRAINT regions_region_key_key UNIQUE (region_key);


--
-- Name: route_recommendations route_recommendations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.route_recommendations
    ADD CONSTRAINT route_recommendations_pkey PRIMARY KEY (id);


--
-- Name: route_recommendations route_recommendations_route_uuid_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.route_recommendations
    ADD CONSTRAINT route_recommendations_route_uuid_key UNIQUE (route_uuid);


--
-- Name: routing_edges routing_edges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_edges
    ADD CONSTRAINT routing_edges_pkey PRIMARY KEY (id);


--
-- Name: routing_nodes routing_nodes_node_uuid_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_nodes
    ADD CONSTRAINT routing_nodes_node_uuid_key UNIQUE (node_uuid);


--
-- Name: routing_nodes routing_nodes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_nodes
    ADD CONSTRAINT routing_nodes_pkey PRIMARY KEY (id);


--
-- Name: trail_hashes trail_hashes_app_uuid_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trail_hashes
    ADD CONSTRAINT trail_hashes_app_uuid_key UNIQUE (app_uuid);


--
-- Name: trail_hashes trail_hashes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trail_hashes
    ADD CONSTRAINT trail_hashes_pkey PRIMARY KEY (id);


--
-- Name: trails trails_app_uuid_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trails
    ADD CONSTRAINT trails_app_uuid_key UNIQUE (app_uuid);


--
-- Name: trails trails_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trails
    ADD CONSTRAINT trails_pkey PRIMARY KEY (id);


--
-- Name: idx_elevation_points_geom; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_elevation_points_geom ON public.elevation_points USING gist (the_geom);


--
-- Name: idx_regions_bbox; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_regions_bbox ON public.regions USING gist (bbox);


--
-- Name: idx_route_recommendations_region; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_route_recommendations_region ON public.route_recommendations USING btree (region, created_at DESC);


--
-- Name: idx_route_recommendations_request_hash; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_route_recommendations_request_hash ON public.route_recommendations USING btree (request_hash) WHERE (request_hash IS NOT NULL);


--
-- Name: idx_routing_edges_geometry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_routing_edges_geometry ON public.routing_edges USING gist (geometry);


--
-- Name: idx_routing_edges_source; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_routing_edges_source ON public.routing_edges USING btree (source);


--
-- Name: idx_routing_edges_target; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_routing_edges_target ON public.routing_edges USING btree (target);


--
-- Name: idx_routing_edges_trail_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_routing_edges_trail_id ON public.routing_edges USING btree (trail_id);


--
-- Name: idx_routing_nodes_geom; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_routing_nodes_geom ON public.routing_nodes USING gist (the_geom);


--
-- Name: idx_routing_nodes_type; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_routing_nodes_type ON public.routing_nodes USING btree (node_type);


--
-- Name: idx_trails_bbox; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_trails_bbox ON public.trails USING btree (bbox_min_lng, bbox_max_lng, bbox_min_lat, bbox_max_lat);


--
-- Name: idx_trails_geometry; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_trails_geometry ON public.trails USING gist (geometry);


--
-- Name: idx_trails_name_lower; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_trails_name_lower ON public.trails USING btree (lower(name));


--
-- Name: idx_trails_region; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idx_trails_region ON public.trails USING btree (region);


--
-- Name: trails trigger_auto_calculate_bbox; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trigger_auto_calculate_bbox BEFORE INSERT OR UPDATE OF geometry ON public.trails FOR EACH ROW EXECUTE FUNCTION public.auto_calculate_bbox();


--
-- Name: trails trigger_auto_calculate_length; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trigger_auto_calculate_length BEFORE INSERT OR UPDATE OF geometry ON public.trails FOR EACH ROW EXECUTE FUNCTION public.auto_calculate_length();


--
-- Name: trails trigger_update_trails_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trigger_update_trails_updated_at BEFORE UPDATE ON public.trails FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();


--
-- Name: routing_edges routing_edges_source_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_edges
    ADD CONSTRAINT routing_edges_source_fkey FOREIGN KEY (source) REFERENCES public.routing_nodes(id) ON DELETE CASCADE;


--
-- Name: routing_edges routing_edges_target_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_edges
    ADD CONSTRAINT routing_edges_target_fkey FOREIGN KEY (target) REFERENCES public.routing_nodes(id) ON DELETE CASCADE;


--
-- Name: routing_edges routing_edges_trail_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.routing_edges
    ADD CONSTRAINT routing_edges_trail_id_fkey FOREIGN KEY (trail_id) REFERENCES public.trails(app_uuid) ON DELETE SET NULL;


--
-- Name: trail_hashes trail_hashes_app_uuid_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.trail_hashes
    ADD CONSTRAINT trail_hashes_app_uuid_fkey FOREIGN KEY (app_uuid) REFERENCES public.trails(app_uuid) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--

