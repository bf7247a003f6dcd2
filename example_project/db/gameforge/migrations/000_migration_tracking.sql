-- 000_migration_tracking.sql
--
-- Migration bookkeeping. Our deploy tooling (and pytest-schemasync in the
-- test suite) records every applied migration in public.schema_migrations.
-- The table is created IF NOT EXISTS so that this file is a no-op on
-- databases where the tooling already created it; the status view is what
-- the admin dashboard and `make db-status` read.
--
-- Migrations run inside a transaction: no BEGIN/COMMIT, no CONCURRENTLY.
-- Always schema-qualify names (schema.sql leaves search_path empty).

CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version text NOT NULL PRIMARY KEY,
    description text,
    checksum text,
    applied_at timestamp with time zone DEFAULT now(),
    applied_by text DEFAULT CURRENT_USER,
    execution_time_ms integer,
    script_path text
);

COMMENT ON TABLE public.schema_migrations IS 'One row per applied file in db/gameforge/migrations';

CREATE OR REPLACE VIEW public.migration_status AS
SELECT m.version,
       m.description,
       m.applied_at,
       m.applied_by,
       m.execution_time_ms,
       m.script_path,
       m.checksum,
       row_number() OVER (ORDER BY m.version) AS sequence_no,
       (m.version = max(m.version) OVER ()) AS is_latest
FROM public.schema_migrations m
ORDER BY m.version;
