-- 001_add_player_profiles.sql
--
-- Player-facing profile for accounts with role 'player' (gamer tag, XP,
-- preferred platform). Existing players get a profile with their username
-- as gamer tag.

BEGIN;

CREATE TABLE public.player_profiles (
    user_id uuid NOT NULL PRIMARY KEY
        REFERENCES public.users(id) ON DELETE CASCADE,
    gamer_tag public.citext NOT NULL,
    bio text,
    country_code character(2),
    preferred_platform public.platform,
    xp bigint DEFAULT 0 NOT NULL,
    level integer GENERATED ALWAYS AS ((1 + (floor(sqrt((xp)::numeric / 100.0)))::integer)) STORED,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT player_profiles_gamer_tag_key UNIQUE (gamer_tag),
    CONSTRAINT player_profiles_gamer_tag_length CHECK (char_length(gamer_tag::text) BETWEEN 3 AND 32),
    CONSTRAINT player_profiles_country_code_check CHECK (country_code ~ '^[A-Z]{2}$'),
    CONSTRAINT player_profiles_xp_check CHECK (xp >= 0)
);

CREATE INDEX idx_player_profiles_platform
    ON public.player_profiles USING btree (preferred_platform)
    WHERE preferred_platform IS NOT NULL;

CREATE TRIGGER update_player_profiles_updated_at
    BEFORE UPDATE ON public.player_profiles
    FOR EACH ROW EXECUTE FUNCTION public.update_updated_at_column();

INSERT INTO public.player_profiles (user_id, gamer_tag)
SELECT u.id, u.username
FROM public.users u
WHERE u.role = 'player'::public.user_role
ON CONFLICT DO NOTHING;

SELECT public.record_migration('001_add_player_profiles', 'Add player profiles', 'sha256_checksum',
                               'migrations/001_add_player_profiles.sql');

COMMIT;
