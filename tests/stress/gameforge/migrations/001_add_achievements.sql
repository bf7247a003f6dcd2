-- 001_add_achievements.sql
CREATE TABLE public.achievements (
    id serial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    points integer NOT NULL CHECK (points > 0)
);

CREATE TABLE public.player_achievements (
    player_id bigint NOT NULL REFERENCES public.players (id) ON DELETE CASCADE,
    achievement_id integer NOT NULL REFERENCES public.achievements (id),
    earned_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (player_id, achievement_id)
);

INSERT INTO public.achievements (code, points) VALUES ('first-blood', 10), ('collector', 25);
