-- 003_add_asset_search.sql
--
-- Fuzzy asset search in the editor's asset browser:
--   * new asset type 'material' (split out of 'shader'),
--   * assets.search_name: normalised file name ("Hero_Sword-Diffuse.png" ->
--     "hero sword diffuse"), backfilled for existing rows and kept up to date
--     by a trigger,
--   * assets.is_searchable, backfilled to false for soft-deleted assets,
--   * a trigram index and public.search_assets(project, query).
--
-- Note: the new enum value cannot be used in this same transaction.

BEGIN;

ALTER TYPE public.asset_type ADD VALUE IF NOT EXISTS 'material' AFTER 'shader';

CREATE FUNCTION public.normalize_asset_name(raw text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT btrim(regexp_replace(
               lower(regexp_replace(raw, '\.[A-Za-z0-9]+$', '')),
               '[^a-z0-9]+', ' ', 'g'))
$$;

ALTER TABLE public.assets
    ADD COLUMN search_name text,
    ADD COLUMN is_searchable boolean DEFAULT true NOT NULL;

-- Backfill existing rows.
UPDATE public.assets
   SET search_name = public.normalize_asset_name(name),
       is_searchable = NOT is_deleted;

ALTER TABLE public.assets ALTER COLUMN search_name SET NOT NULL;

CREATE FUNCTION public.set_asset_search_name() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.search_name := public.normalize_asset_name(NEW.name);
    IF NEW.is_deleted THEN
        NEW.is_searchable := false;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER set_asset_search_name
    BEFORE INSERT OR UPDATE OF name, is_deleted ON public.assets
    FOR EACH ROW EXECUTE FUNCTION public.set_asset_search_name();

CREATE INDEX idx_assets_search_name_trgm
    ON public.assets USING gin (search_name public.gin_trgm_ops)
    WHERE is_searchable;

CREATE FUNCTION public.search_assets(p_project_id uuid, q text, max_results integer DEFAULT 50)
RETURNS TABLE(id uuid, name text, asset_type public.asset_type, path text, score real)
    LANGUAGE sql STABLE
    AS $$
    SELECT a.id, a.name, a.asset_type, a.path,
           public.similarity(a.search_name, public.normalize_asset_name(q)) AS score
    FROM public.assets a
    WHERE a.project_id = p_project_id
      AND a.is_searchable
      AND (a.search_name OPERATOR(public.%) public.normalize_asset_name(q)
           OR a.search_name LIKE '%' || public.normalize_asset_name(q) || '%')
    ORDER BY score DESC, a.name
    LIMIT max_results;
$$;

SELECT public.record_migration('003_add_asset_search', 'Add asset search', 'sha256_checksum',
                               'migrations/003_add_asset_search.sql');

COMMIT;
