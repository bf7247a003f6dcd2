-- A small "gameforge-like" schema for the stress suite: an extension, a few tables with
-- keys, checks and a trigger, seed rows and a view. Kept small so a build is quick.
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;

CREATE TABLE public.players (
    id bigserial PRIMARY KEY,
    email public.citext NOT NULL UNIQUE,
    username text NOT NULL CHECK (length(username) BETWEEN 1 AND 32),
    xp integer NOT NULL DEFAULT 0 CHECK (xp >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE public.items (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    price integer NOT NULL CHECK (price >= 0)
);

CREATE TABLE public.inventory (
    player_id bigint NOT NULL REFERENCES public.players (id) ON DELETE CASCADE,
    item_id integer NOT NULL REFERENCES public.items (id),
    qty integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (player_id, item_id)
);

-- Every stress test writes its own tag here and asserts it sees no other.
CREATE TABLE public.probe (
    tag text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION public.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER players_touch BEFORE UPDATE ON public.players
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

CREATE VIEW public.player_wealth AS
SELECT p.id, p.username, coalesce(sum(i.price * inv.qty), 0) AS wealth
FROM public.players p
LEFT JOIN public.inventory inv ON inv.player_id = p.id
LEFT JOIN public.items i ON i.id = inv.item_id
GROUP BY p.id, p.username;

INSERT INTO public.items (name, price) VALUES ('sword', 100), ('shield', 80), ('potion', 5);
INSERT INTO public.players (email, username, xp) VALUES ('Seed@Example.com', 'seed', 10);
