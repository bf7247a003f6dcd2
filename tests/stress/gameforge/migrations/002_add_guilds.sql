-- 002_add_guilds.sql
CREATE TABLE public.guilds (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name <> '')
);

ALTER TABLE public.players ADD COLUMN guild_id integer REFERENCES public.guilds (id);
