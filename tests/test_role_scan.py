"""Which roles a file refers to, and which statements a build refuses (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_schemasync.errors import SchemaFileError
from pytest_schemasync.install import read_schema_file, refuse_cluster_statements
from pytest_schemasync.roledefs import scan_roles

DUMP = r"""
SET ROLE app_owner;
ALTER TABLE public.t OWNER TO "App Owner";
GRANT SELECT ON TABLE public.t TO app_reader, GROUP grp;
GRANT app_reader TO app_user;
REVOKE ALL ON FUNCTION public.f(x integer) FROM PUBLIC;
REVOKE GRANT OPTION FOR SELECT ON public.t FROM revoked;
ALTER DEFAULT PRIVILEGES FOR ROLE definer IN SCHEMA public GRANT SELECT ON TABLES TO dp_reader;
CREATE POLICY p ON public.t TO policy_role USING (owner = current_user);
CREATE FUNCTION public.g() RETURNS void LANGUAGE sql AS $$ GRANT SELECT ON t TO in_body $$;
COMMENT ON TABLE public.t IS 'GRANT SELECT ON t TO in_string';
-- GRANT SELECT ON t TO in_comment;
CREATE ROLE made LOGIN IN ROLE app_reader ROLE member1;
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'blk') THEN CREATE ROLE blk; END IF;
  EXECUTE 'GRANT SELECT ON public.t TO dynamic';
END $$;
SET SESSION AUTHORIZATION 'session_auth';
CREATE SCHEMA s AUTHORIZATION schema_owner;
ALTER POLICY p ON public.t TO policy_two;
ALTER TYPE public.mood OWNER TO postgres;
ALTER EVENT TRIGGER watch_ddl OWNER TO event_owner;
"""


def test_roles_a_file_refers_to() -> None:
    use = scan_roles(DUMP)
    assert set(use.needed) == {
        "app_owner", "App Owner", "app_reader", "grp", "app_user", "revoked", "definer",
        "dp_reader", "policy_role", "member1", "dynamic", "session_auth", "schema_owner",
        "policy_two", "postgres", "event_owner"}
    assert set(use.created) == {"made"}
    assert use.created_in_blocks == {"blk"}
    assert use.superusers == {"event_owner"}  # an event trigger's owner must be a superuser
    assert use.referenced["dp_reader"].line == 8
    assert use.referenced["App Owner"].how == "owner"
    # never a name inside a function body, a string or a comment
    assert not {"in_body", "in_string", "in_comment", "public"} & set(use.referenced)


REFUSED = {
    "ALTER SYSTEM SET work_mem = '1MB';": "ALTER SYSTEM",
    "CREATE DATABASE other;": "CREATE DATABASE",
    "DROP DATABASE IF EXISTS other;": "DROP DATABASE",
    "ALTER DATABASE gameforge_dev SET timezone = 'UTC';": "ALTER DATABASE",
    "GRANT CONNECT ON DATABASE gameforge_dev TO app_user;": "or name no database: DO $$",
    "COMMENT ON DATABASE gameforge_dev IS 'x';": "COMMENT ON DATABASE CURRENT_DATABASE",
    "CREATE TABLESPACE fast LOCATION '/tmp/x';": "TABLESPACE",
    "ALTER ROLE CURRENT_USER SET search_path = 'nowhere';": "the role the plugin builds with",
    "ALTER USER builder SET work_mem = '1MB';": "the role the plugin builds with",
    "DROP ROLE builder;": "the role the plugin builds with",
    "ALTER ROLE ALL SET work_mem = '1MB';": "the role the plugin builds with",
    "REASSIGN OWNED BY CURRENT_USER TO app_owner;": "owns",
    "COPY (SELECT 1) TO PROGRAM 'true';": "shell command",
    "COPY t FROM '/etc/passwd';": "file on the database server",
    "SELECT lo_import('/etc/passwd');": "lo_import",
    "SELECT pg_read_file('/etc/passwd');": "pg_read_file",
    "DO $$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $$;": "pg_read_file",
    "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''true'''; END $$;": "shell command",
    "DO $$ BEGIN ALTER ROLE CURRENT_USER SET work_mem = '1MB'; END $$;": "builds with",
    # file_fdw runs programs and reads the server's files, as COPY does
    "CREATE FOREIGN TABLE ft (x text) SERVER files OPTIONS (program 'true');": "shell command",
    "CREATE FOREIGN TABLE ft (x text) SERVER files OPTIONS (filename '/etc/passwd');":
        "reads a file on the database server",
    "ALTER FOREIGN TABLE ft OPTIONS (SET filename '/etc/passwd');": "reads a file",
    "DO $$ BEGIN EXECUTE 'CREATE FOREIGN TABLE ft (x text) SERVER s "
    "OPTIONS (program ''true'')'; END $$;": "shell command",
}


@pytest.mark.parametrize("statement", sorted(REFUSED))
def test_cluster_statements_are_refused_with_file_and_line(statement: str,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "schema.sql"
    text = f"CREATE TABLE t (id int);\n\n{statement}\n"
    with pytest.raises(SchemaFileError) as info:
        refuse_cluster_statements(path, text, "builder")
    message = str(info.value)
    assert message.startswith(f"{path}:3: refused before the build ran"), message
    assert REFUSED[statement] in message


ALLOWED = [
    "COPY t FROM stdin;\n1\n\\.",
    "COPY t TO STDOUT;",
    "REVOKE EXECUTE ON FUNCTION pg_catalog.lo_import(text) FROM PUBLIC;",
    "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('x') $$;",
    "ALTER ROLE app_user SET search_path = app;",
    "CREATE USER MAPPING FOR app_user SERVER s;",
    "ALTER USER MAPPING FOR builder SERVER s OPTIONS (user 'x');",
    "COMMENT ON TABLE t IS 'ALTER SYSTEM SET x = 1';",
    "SELECT 'CREATE DATABASE x';",
    "CREATE TABLE databases (tablespace text);",
    "CREATE TABLE lo_export (id int REFERENCES lo_import (id));",
    # the portable forms the refusal of ON DATABASE suggests
    "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO app_user', "
    "current_database()); END $$;",
    "COMMENT ON DATABASE CURRENT_DATABASE IS 'the game';",
    "INSERT INTO pg_read_file (a) VALUES (1);",
    "CREATE FOREIGN TABLE ft (x text) SERVER pg OPTIONS (table_name 'program');",
    "CREATE TABLE program (filename text);",
]


@pytest.mark.parametrize("statement", ALLOWED)
def test_ordinary_statements_pass(statement: str, tmp_path: Path) -> None:
    refuse_cluster_statements(tmp_path / "schema.sql", statement + "\n", "builder")


HAZARD = """\
CREATE FUNCTION public.export_all() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('true');
END $$;
COMMENT ON FUNCTION public.export_all() IS 'defining, granting and commenting is fine';
GRANT EXECUTE ON FUNCTION public.export_all() TO app_user;
CREATE OR REPLACE FUNCTION wrapper() RETURNS void LANGUAGE sql AS $$ SELECT export_all() $$;
"""


@pytest.mark.parametrize(("call", "defined"), [
    ("SELECT public.export_all();", "export_all() (defined at {path}:1)"),
    ("SELECT wrapper();", "wrapper() (defined at {path}:7)"),  # a function calling one
    ("DO $$ BEGIN PERFORM wrapper(); END $$;", "wrapper()"),
    ("CREATE TRIGGER t AFTER INSERT ON t EXECUTE FUNCTION export_all();", "export_all()"),
])
def test_calling_a_function_whose_body_would_be_refused_is_refused(
        call: str, defined: str, tmp_path: Path) -> None:
    path, other = tmp_path / "functions.sql", tmp_path / "calls.sql"
    hazards: dict[str, str] = {}
    refuse_cluster_statements(path, HAZARD, "builder", hazards)  # defining it is fine
    with pytest.raises(SchemaFileError) as info:  # calling it, in a later file too
        refuse_cluster_statements(other, f"CREATE TABLE t ();\n{call}\n", "builder", hazards)
    message = str(info.value)
    assert message.startswith(f"{other}:2: refused before the build ran"), message
    assert f"It calls {defined.format(path=path)}" in message, message
    assert "COPY ... PROGRAM runs a shell command" in message


@pytest.mark.parametrize("line", ["\\set ON_ERROR_STOP off", "\\unset ON_ERROR_STOP",
                                  "\\set ON_ERROR_STOP 0", "\\set ON_ERROR_STOP false"])
def test_turning_on_error_stop_off_is_refused(line: str, tmp_path: Path) -> None:
    path = tmp_path / "schema.sql"
    path.write_text(f"CREATE TABLE t ();\n{line}\nSELECT 1/0;\n")
    with pytest.raises(SchemaFileError, match=rf"schema.sql:2: \\{line.split()[0][1:]} "
                                              r"ON_ERROR_STOP.* is refused"):
        read_schema_file(path, "test")


def test_on_error_stop_on_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "schema.sql"
    path.write_text("\\set ON_ERROR_STOP on\n\\set ON_ERROR_STOP\nCREATE TABLE t ();\n")
    assert read_schema_file(path, "test")


def test_a_shell_command_in_backquotes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "schema.sql"
    path.write_text("CREATE TABLE t ();\n\\set gate `touch /tmp/x`\n\\echo 'a `quoted` word'\n")
    with pytest.raises(SchemaFileError, match=r"schema.sql:2: psql meta-command \\set with `...` "
                                              r"is refused"):
        read_schema_file(path, "test")
    path.write_text("CREATE TABLE t ();\n\\echo 'a `quoted` word'\n")
    assert read_schema_file(path, "test")
