-- 000_migration_system.sql
--
-- The migration system our deploy tooling uses (schema-sync.ps1 runs every file
-- with psql, in order). Each migration file is written to the same template:
--
--     BEGIN;
--     ... the change, names schema-qualified (schema.sql leaves search_path empty) ...
--     SELECT public.record_migration('NNN_description', 'What it does',
--                                    'sha256_checksum', 'migrations/NNN_description.sql');
--     COMMIT;
--
-- so a migration's version is its file's stem. The checksum argument is a
-- placeholder until the tooling fills in real sha256 sums; pytest-schemasync
-- completes it (and the timing) when it applies a file, and treats placeholders
-- as "not recorded" rather than "edited".

BEGIN;

CREATE TABLE IF NOT EXISTS public.schema_migrations (
    id serial PRIMARY KEY,
    version varchar(255) NOT NULL UNIQUE,
    description text,
    checksum varchar(64),
    applied_at timestamp with time zone DEFAULT now(),
    applied_by varchar(255) DEFAULT CURRENT_USER,
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
       CASE WHEN m.checksum ~ '^[0-9a-f]{64}$' THEN 'verified' ELSE 'unverified' END
           AS checksum_status,
       row_number() OVER (ORDER BY m.version) AS sequence_no,
       (m.version = max(m.version) OVER ()) AS is_latest
FROM public.schema_migrations m
ORDER BY m.version;

CREATE OR REPLACE FUNCTION public.record_migration(
    p_version varchar,
    p_description text,
    p_checksum varchar DEFAULT NULL,
    p_script_path text DEFAULT NULL,
    p_execution_time_ms integer DEFAULT NULL
) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO public.schema_migrations
        (version, description, checksum, script_path, execution_time_ms)
    VALUES (p_version, p_description, p_checksum, p_script_path, p_execution_time_ms)
    ON CONFLICT (version) DO UPDATE
        SET description = EXCLUDED.description,
            checksum = EXCLUDED.checksum,
            script_path = EXCLUDED.script_path,
            execution_time_ms = EXCLUDED.execution_time_ms,
            applied_at = now(),
            applied_by = CURRENT_USER;
END;
$$;

CREATE OR REPLACE FUNCTION public.validate_migration_checksum(p_version varchar, p_checksum varchar)
RETURNS boolean
    LANGUAGE plpgsql STABLE
    AS $$
DECLARE
    stored varchar;
BEGIN
    SELECT m.checksum INTO stored FROM public.schema_migrations m WHERE m.version = p_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'migration % has not been applied', p_version;
    END IF;
    RETURN stored IS NOT DISTINCT FROM p_checksum;
END;
$$;

SELECT public.record_migration('000_migration_system', 'Migration tracking system',
                               'sha256_checksum', 'migrations/000_migration_system.sql');

COMMIT;
