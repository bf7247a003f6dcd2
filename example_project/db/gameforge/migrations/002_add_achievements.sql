-- 002_add_achievements.sql
--
-- Per-project achievements that players unlock. Unlocking awards the
-- achievement's points as XP on the player's profile.
--
-- (An older file: it records itself by number, without a checksum, and
-- leaves the transaction to whoever runs it.)

CREATE TYPE public.achievement_rarity AS ENUM (
    'common',
    'uncommon',
    'rare',
    'epic',
    'legendary'
);

CREATE TABLE public.achievements (
    id uuid DEFAULT public.uuid_generate_v4() NOT NULL PRIMARY KEY,
    project_id uuid NOT NULL REFERENCES public.projects(id) ON DELETE CASCADE,
    code text NOT NULL,
    name text NOT NULL,
    description text,
    rarity public.achievement_rarity DEFAULT 'common'::public.achievement_rarity NOT NULL,
    points integer DEFAULT 10 NOT NULL,
    is_hidden boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT achievements_project_id_code_key UNIQUE (project_id, code),
    CONSTRAINT achievements_code_format CHECK (code ~ '^[A-Z][A-Z0-9_]*$'),
    CONSTRAINT achievements_points_check CHECK (points BETWEEN 0 AND 1000)
);

CREATE TABLE public.player_achievements (
    user_id uuid NOT NULL REFERENCES public.player_profiles(user_id) ON DELETE CASCADE,
    achievement_id uuid NOT NULL REFERENCES public.achievements(id) ON DELETE CASCADE,
    unlocked_at timestamp with time zone DEFAULT now() NOT NULL,
    PRIMARY KEY (user_id, achievement_id)
);

CREATE INDEX idx_player_achievements_achievement_id
    ON public.player_achievements USING btree (achievement_id);

CREATE FUNCTION public.award_achievement_xp() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE public.player_profiles pp
       SET xp = pp.xp + a.points
      FROM public.achievements a
     WHERE a.id = NEW.achievement_id
       AND pp.user_id = NEW.user_id;
    RETURN NEW;
END;
$$;

CREATE TRIGGER award_achievement_xp
    AFTER INSERT ON public.player_achievements
    FOR EACH ROW EXECUTE FUNCTION public.award_achievement_xp();

CREATE VIEW public.player_achievement_scores AS
SELECT pp.user_id,
       pp.gamer_tag,
       count(pa.achievement_id) AS unlocked_count,
       COALESCE(sum(a.points), 0)::integer AS total_points,
       max(pa.unlocked_at) AS last_unlocked_at
FROM public.player_profiles pp
LEFT JOIN public.player_achievements pa ON pa.user_id = pp.user_id
LEFT JOIN public.achievements a ON a.id = pa.achievement_id
GROUP BY pp.user_id, pp.gamer_tag;

INSERT INTO public.schema_migrations (version, description, applied_at)
VALUES ('002', 'Add achievements', now())
ON CONFLICT (version) DO NOTHING;
