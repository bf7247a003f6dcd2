--
-- Production's roles, grants and row-level security for the gameforge API.
--
-- The API connects as app_user (PostgREST/Supabase style): each request sets
-- request.jwt.claims, and the policies let a user see public projects and their own,
-- and change only their own. pytest-schemasync creates app_user before this file runs
-- (it is named in the set's roles = [...] with login = true, so fresh_db can log in as it).
--

GRANT USAGE ON SCHEMA public TO app_user;
GRANT SELECT ON public.projects, public.studios, public.users TO app_user;
GRANT INSERT, UPDATE ON public.projects TO app_user;

CREATE FUNCTION public.request_user_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$
    SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
$$;

ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;

CREATE POLICY projects_visible ON public.projects FOR SELECT TO app_user
    USING (is_public OR owner_id = public.request_user_id());
CREATE POLICY projects_owner_inserts ON public.projects FOR INSERT TO app_user
    WITH CHECK (owner_id = public.request_user_id());
CREATE POLICY projects_owner_updates ON public.projects FOR UPDATE TO app_user
    USING (owner_id = public.request_user_id())
    WITH CHECK (owner_id = public.request_user_id());
