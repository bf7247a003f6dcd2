"""Schema files are installed the way psql runs them: a real pg_dump-style file works."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_project, output_of, run_inner

from pytest_schemasync.binaries import find_binaries
from pytest_schemasync.clusters import acquire_cluster
from pytest_schemasync.errors import SchemaInstallError
from pytest_schemasync.install import InstallTarget, run_sql
from pytest_schemasync.osuser import server_os_user

# What `pg_dump --schema-only` plus a data section writes (PostgreSQL 15.14+/17.6+ add the
# \restrict lines with a random key).
PG_DUMP_FILE = r"""--
-- PostgreSQL database dump
--

\restrict 8fH2kQz0aXbYc3dE4fG5hI6jK7lM8nO9pQ0rS1tU2vW3xY4z

-- Dumped from database version 15.8
-- Dumped by pg_dump version 15.8

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
-- Name: citext; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;

--
-- Name: pgcrypto; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

--
-- Name: touch_updated_at(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- a semicolon; inside a comment; and 'a quote
    NEW.updated_at := '2000-01-01 00:00:00+00';
    RETURN NEW;
END;
$$;

CREATE FUNCTION public.label(p_name text) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $_$ SELECT 'widget: ' || $1 || ' $$ ;' $_$;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: widgets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.widgets (
    id integer NOT NULL,
    name public.citext NOT NULL,
    note text,
    secret_hash text,
    updated_at timestamp with time zone
);

CREATE SEQUENCE public.widgets_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE public.widgets_id_seq OWNED BY public.widgets.id;

ALTER TABLE ONLY public.widgets ALTER COLUMN id
    SET DEFAULT nextval('public.widgets_id_seq'::regclass);

--
-- Data for Name: widgets; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.widgets (id, name, note, secret_hash, updated_at) FROM stdin;
1	Alpha	has a ; semicolon	\N	\N
2	Beta	tab\there and a backslash \\ here	\N	2024-01-01 00:00:00+00
3	Gamma	-- not a comment	\N	\N
\.

SELECT pg_catalog.setval('public.widgets_id_seq', 3, true);

ALTER TABLE ONLY public.widgets
    ADD CONSTRAINT widgets_pkey PRIMARY KEY (id);

CREATE TRIGGER widgets_touch BEFORE UPDATE ON public.widgets
    FOR EACH ROW EXECUTE FUNCTION public.touch_updated_at();

--
-- PostgreSQL database dump complete
--

\unrestrict 8fH2kQz0aXbYc3dE4fG5hI6jK7lM8nO9pQ0rS1tU2vW3xY4z

"""

SECOND_FILE = """\
-- A second file of the same set runs after the dump, in its own psql session.
UPDATE public.widgets SET secret_hash = encode(public.digest(name::text, 'sha256'), 'hex');
"""


@pytest.mark.needs_pg("citext", "pgcrypto")
def test_pg_dump_style_file_installs(pytester: pytest.Pytester, cache_dir: Path) -> None:
    make_project(
        pytester,
        sets={"default": {"files": ["db/dump.sql", "db/after.sql"]}},
        files={"db/dump.sql": PG_DUMP_FILE, "db/after.sql": SECOND_FILE},
    )
    pytester.makepyfile(test_dump=r"""
        import hashlib

        def test_data_and_objects(db):
            rows = db.execute(
                "SELECT id, name::text, note, updated_at::date::text FROM widgets ORDER BY id"
            ).fetchall()
            # updated_at: the second file's UPDATE fired the dump's plpgsql trigger.
            assert rows == [
                (1, "Alpha", "has a ; semicolon", "2000-01-01"),
                (2, "Beta", "tab\there and a backslash \\ here", "2000-01-01"),
                (3, "Gamma", "-- not a comment", "2000-01-01"),
            ]
            # citext compares case-insensitively; the dump's extensions are installed.
            assert db.execute("SELECT id FROM widgets WHERE name = 'ALPHA'").fetchone()[0] == 1
            exts = {r[0] for r in db.execute("SELECT extname FROM pg_extension")}
            assert {"citext", "pgcrypto", "plpgsql"} <= exts
            # The second file ran after the dump.
            assert db.execute("SELECT secret_hash FROM widgets WHERE id = 3").fetchone()[0] == \
                hashlib.sha256(b"Gamma").hexdigest()
            # The sequence was set by the dump.
            assert db.execute("INSERT INTO widgets (name) VALUES ('d') RETURNING id"
                              ).fetchone()[0] == 4

        def test_plpgsql_trigger_and_dollar_quotes(db):
            new = db.execute("INSERT INTO widgets (name) VALUES ('n') RETURNING id"
                             ).fetchone()[0]
            assert db.execute("SELECT updated_at FROM widgets WHERE id = %s", (new,)
                              ).fetchone()[0] is None
            db.execute("UPDATE widgets SET note = 'x' WHERE id = %s", (new,))
            assert db.execute("SELECT updated_at::date::text FROM widgets WHERE id = %s",
                              (new,)).fetchone()[0] == "2000-01-01"
            assert db.execute("SELECT label('w')").fetchone()[0] == "widget: w $$ ;"

        def test_settings_of_the_dump_do_not_leak(db):
            # pg_dump empties search_path for its own session; ours is the normal one.
            assert db.execute("SHOW search_path").fetchone()[0] == '"$user", public'
    """)
    result = run_inner(pytester, cache_dir)
    result.assert_outcomes(passed=3)
    assert "Traceback" not in output_of(result)


def _install_failure(cache_dir: Path, dump: Path, text: str) -> str:
    binaries = find_binaries()
    dump.write_text(text)
    lease = acquire_cluster(cache_dir, binaries, server_os_user())
    try:
        target = InstallTarget(lease.cluster.info(), "postgres", binaries.tool("psql"))
        with pytest.raises(SchemaInstallError) as raised:
            run_sql(target, dump, text, set_name="main", origin="pyproject.toml:3")
    finally:
        lease.release()
    return str(raised.value)


def _dump_head(source: int, pg_dump: int, setting: str) -> str:
    return (f"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version "
            f"{source}.2\n-- Dumped by pg_dump version {pg_dump}.2\n\nSET statement_timeout = 0;\n"
            f"SET lock_timeout = 0;\nSET {setting} = 0;\nSET client_encoding = 'UTF8';\n\n"
            f"CREATE TABLE public.t (id integer);\n")


def test_a_dump_from_a_newer_pg_dump_names_the_major_and_the_fix(cache_dir: Path,
                                                                  tmp_path: Path) -> None:
    """pg_dump 17+ writes ``SET transaction_timeout = 0``, which PostgreSQL 15 refuses."""
    server = find_binaries().major
    # The real case where this server predates it; a made-up future one on newer servers.
    newer, setting = (17, "transaction_timeout") if server < 17 else (99, "future_timeout")
    dump = tmp_path / "schema.sql"
    message = _install_failure(cache_dir, dump, _dump_head(newer, newer, setting))
    assert f"failed at {dump}:10 " in message
    assert f"This file was dumped by a newer pg_dump ({newer}) than this PostgreSQL {server} " \
           f"server" in message
    assert f"does not know the setting {setting!r}" in message
    assert f"delete the line ({dump}:10)" in message
    assert f"run the tests on PostgreSQL {newer}" in message
    assert f"/usr/lib/postgresql/{newer}/bin" in message
    assert "Fix the file and run again" not in message  # the generic advice gives way

    # A newer pg_dump of a database of this server's major: running a newer major is no fix.
    message = _install_failure(cache_dir, dump, _dump_head(server, newer, setting))
    assert f"This file was dumped by pg_dump {newer} from a PostgreSQL {server} database" \
        in message
    assert f"Fix: delete the line ({dump}:10), or dump with pg_dump {server}." in message
    assert "run the tests on" not in message
