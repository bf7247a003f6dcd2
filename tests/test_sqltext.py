"""Tests for pytest_schemasync.sqltext (pure: no database, no psql needed).

What the real psql 15.18 does was checked by hand against a throwaway server: psql -f on probe
files, and every statement the server received (log_statement=all) compared with
split_statements() for 338 contrib/PostGIS/pgRouting extension scripts and two pg_dump files,
~764k statements, identical (psql only differs in keeping a trailing "-- comment" in a
statement sent at EOF, which split_statements() leaves out). Findings this suite pins down:

* ``psql:FILE:LINE: ERROR`` carries psql's line counter when the statement was SENT: the line
  of its terminating ';', not its first line. ``SELECT nope1; SELECT nope2;`` on one line
  reports both errors at that line.
* ';' inside parentheses does not end a statement: ``SELECT (1;`` / ``);`` went to the server as
  one statement and failed with "syntax error at or near ';'" reported at the second line.
* A statement without ';' at EOF is sent at EOF and reported at the file's last line (line 17
  for a statement on line 14 followed by blank and comment lines), not where it ends.
* COPY ... FROM stdin data starts on the line after the ';' and ends at a line that is exactly
  ``\\.``; bad data is reported at the ``\\.`` line. Text after the ';' on the COPY line runs after
  the data, with the line counter already past it. At EOF without ``\\.`` the last line counts
  only if it ends with a newline.
* ``\\g``/``\\gexec`` errors are reported at their own line, ``\\r`` drops the buffer, ``\\;``
  glues statements into one query (a COPY FROM stdin in it still reads data), ``\\echo a
  \\echo b`` and ``\\echo a\\echo b`` are two commands, ``\\\\`` makes the rest of the line SQL
  again, but ``\\!`` and ``\\o |`` take the whole line; ``\\!echo`` is the (invalid) command
  ``!echo``.
* BEGIN ATOMIC bodies with CASE ... END inside keep their ';' (PG14+ psqlscan.l begin_depth).
"""

from typing import Any

import pytest

from pytest_schemasync.sqltext import (
    MetaCommand,
    Statement,
    blank_restrict_lines,
    meta_commands,
    split_statements,
    statement_at_line,
)


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def cases(table: list[tuple[str, str, Any]]) -> list[Any]:
    """Rows of (id, input, expected) as pytest params."""
    return [pytest.param(sql, expected, id=name) for name, sql, expected in table]


# --------------------------------------------------------------------------- splitting

SPLIT_CASES: list[tuple[str, str, list[str]]] = [
    ("simple", "SELECT 1;\nSELECT 2;\n", ["SELECT 1;", "SELECT 2;"]),
    ("same line", "SELECT 1; SELECT 2;", ["SELECT 1;", "SELECT 2;"]),
    ("no trailing semicolon", "SELECT 1;\nSELECT 2", ["SELECT 1;", "SELECT 2"]),
    ("trailing comment not included", "SELECT 1\n-- bye\n\n", ["SELECT 1"]),
    ("only comments", "-- a\n/* b */\n\n", []),
    ("empty", "", []),
    ("lone semicolons skipped", ";;\nSELECT 1;;\n;", ["SELECT 1;"]),
    ("line comment hides semicolon", "SELECT 1 -- x; y\n;", ["SELECT 1 -- x; y\n;"]),
    ("line comment hides block start", "-- /*\nSELECT 1;", ["SELECT 1;"]),
    ("line comment after operator", "SELECT 1+--;\n2;", ["SELECT 1+--;\n2;"]),
    ("block comment hides semicolon", "SELECT /* ; */ 1;", ["SELECT /* ; */ 1;"]),
    (
        "block comments nest",
        "/* a /* b ; */ still ; */ SELECT 1; SELECT 2;",
        ["SELECT 1;", "SELECT 2;"],
    ),
    ("nested three deep", "SELECT /*/* /* ; */*/;*/ 1;", ["SELECT /*/* /* ; */*/;*/ 1;"]),
    ("block comment spans lines", "SELECT 1 /*\n;\n*/;", ["SELECT 1 /*\n;\n*/;"]),
    ("block comment with dash dash", "/* -- */ SELECT 1;", ["SELECT 1;"]),
    ("string with semicolon", "SELECT ';'; SELECT 2;", ["SELECT ';';", "SELECT 2;"]),
    ("doubled quote", "SELECT 'it''s;'; SELECT 2;", ["SELECT 'it''s;';", "SELECT 2;"]),
    (
        "standard strings: backslash is literal",
        "SELECT 'a\\'; SELECT 'b';",
        ["SELECT 'a\\';", "SELECT 'b';"],
    ),
    (
        "E string backslash escapes quote",
        "SELECT E'a\\';b'; SELECT 2;",
        ["SELECT E'a\\';b';", "SELECT 2;"],
    ),
    ("e string lowercase", "SELECT e'\\';'; SELECT 2;", ["SELECT e'\\';';", "SELECT 2;"]),
    ("E string double backslash", "SELECT E'\\\\'; SELECT 2;", ["SELECT E'\\\\';", "SELECT 2;"]),
    (
        "identifier ending in e is no prefix",
        "SELECT xe'\\'; SELECT 2;",
        ["SELECT xe'\\';", "SELECT 2;"],
    ),
    ("number junk is no prefix", "SELECT 1e'\\'; SELECT 2;", ["SELECT 1e'\\';", "SELECT 2;"]),
    (
        "U& string has no backslash escapes",
        "SELECT U&'d\\0061t\\'; SELECT 2;",
        ["SELECT U&'d\\0061t\\';", "SELECT 2;"],
    ),
    ("U& identifier", 'SELECT 1 AS U&"a;b"; SELECT 2;', ['SELECT 1 AS U&"a;b";', "SELECT 2;"]),
    (
        "bit and hex strings",
        "SELECT B'10;', X'1F;'; SELECT 2;",
        ["SELECT B'10;', X'1F;';", "SELECT 2;"],
    ),
    ("national string", "SELECT N'a;'; SELECT 2;", ["SELECT N'a;';", "SELECT 2;"]),
    ("string spans lines", "SELECT 'a\n;\nb'; SELECT 2;", ["SELECT 'a\n;\nb';", "SELECT 2;"]),
    (
        "quoted identifier",
        'CREATE TABLE "a;""b" (x int); SELECT 2;',
        ['CREATE TABLE "a;""b" (x int);', "SELECT 2;"],
    ),
    ("dollar quote", "SELECT $$;$$; SELECT 2;", ["SELECT $$;$$;", "SELECT 2;"]),
    (
        "tagged dollar quote with inner $$",
        "SELECT $fn$ ; $$ ; $fn$; SELECT 2;",
        ["SELECT $fn$ ; $$ ; $fn$;", "SELECT 2;"],
    ),
    (
        "other tag inside body does not close",
        "SELECT $a$ $b$ ; $a$; SELECT 2;",
        ["SELECT $a$ $b$ ; $a$;", "SELECT 2;"],
    ),
    (
        "tag that is a prefix of the real one",
        "SELECT $ab$ $a$ ; $ab$; SELECT 2;",
        ["SELECT $ab$ $a$ ; $ab$;", "SELECT 2;"],
    ),
    ("dollar tags are case sensitive", "SELECT $A$ $a$ ; $A$;", ["SELECT $A$ $a$ ; $A$;"]),
    ("quote inside dollar body", "SELECT $$ ' $$; SELECT 2;", ["SELECT $$ ' $$;", "SELECT 2;"]),
    ("dollar inside string", "SELECT '$$'; SELECT 2;", ["SELECT '$$';", "SELECT 2;"]),
    ("dollar inside identifier", 'SELECT "$$"; SELECT 2;', ['SELECT "$$";', "SELECT 2;"]),
    ("dollar inside comment", "/* $$ */ SELECT 1; SELECT 2;", ["SELECT 1;", "SELECT 2;"]),
    ("param is not a quote", "SELECT $1; SELECT $2;", ["SELECT $1;", "SELECT $2;"]),
    (
        "param then tag",
        "SELECT $1$x$ ; $x$; SELECT 2;",
        ["SELECT $1$x$ ; $x$;", "SELECT 2;"],
    ),
    (
        "dollar inside identifier is no quote",
        "SELECT a$$b; SELECT 2;",
        ["SELECT a$$b;", "SELECT 2;"],
    ),
    ("lone dollar", "SELECT $ ; SELECT 2;", ["SELECT $ ;", "SELECT 2;"]),
    ("dollar tag with digits", "SELECT $t1$;$t1$; SELECT 2;", ["SELECT $t1$;$t1$;", "SELECT 2;"]),
    (
        "dollar quote spans lines",
        "SELECT $$\n;\n$$;\nSELECT 2;",
        ["SELECT $$\n;\n$$;", "SELECT 2;"],
    ),
    ("semicolon in parentheses", "SELECT (1;\n);\nSELECT 2;", ["SELECT (1;\n);", "SELECT 2;"]),
    ("unbalanced close paren", "SELECT 1);\nSELECT 2;", ["SELECT 1);", "SELECT 2;"]),
    (
        "typecast and psql variable",
        "SELECT 1::int, :v; SELECT 2;",
        ["SELECT 1::int, :v;", "SELECT 2;"],
    ),
    ("backslash semicolon glues", "SELECT 1 \\; SELECT 2;", ["SELECT 1 \\; SELECT 2;"]),
    (
        "transaction BEGIN is not tracked",
        "BEGIN;\nSELECT 1;\nEND;",
        ["BEGIN;", "SELECT 1;", "END;"],
    ),
    (
        "plpgsql body in dollar quotes",
        "DO $$ BEGIN PERFORM 1; END $$;\nSELECT 2;",
        ["DO $$ BEGIN PERFORM 1; END $$;", "SELECT 2;"],
    ),
    (
        "BEGIN ATOMIC with CASE",
        "CREATE FUNCTION f(x int) RETURNS text LANGUAGE sql\nBEGIN ATOMIC\n"
        "  SELECT CASE WHEN x > 0 THEN 'p' ELSE 'n' END;\n  SELECT 'x';\nEND;\nSELECT 2;",
        [
            "CREATE FUNCTION f(x int) RETURNS text LANGUAGE sql\nBEGIN ATOMIC\n"
            "  SELECT CASE WHEN x > 0 THEN 'p' ELSE 'n' END;\n  SELECT 'x';\nEND;",
            "SELECT 2;",
        ],
    ),
    (
        "create or replace procedure, lower case",
        "create or replace procedure p() language sql begin atomic select 1; select 2; end;"
        " call p();",
        [
            "create or replace procedure p() language sql begin atomic select 1; select 2; end;",
            "call p();",
        ],
    ),
    (
        "CASE outside BEGIN is not counted",
        "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
        "RETURN CASE WHEN x > 0 THEN 1 ELSE 0 END;\nSELECT 2;",
        [
            "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
            "RETURN CASE WHEN x > 0 THEN 1 ELSE 0 END;",
            "SELECT 2;",
        ],
    ),
    (
        "begin inside parentheses is not counted",
        "CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN 1; SELECT 2;",
        ["CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN 1;", "SELECT 2;"],
    ),
    (
        "quoted begin is not counted",
        'CREATE FUNCTION "begin"() RETURNS int LANGUAGE sql RETURN 1; SELECT 2;',
        ['CREATE FUNCTION "begin"() RETURNS int LANGUAGE sql RETURN 1;', "SELECT 2;"],
    ),
    (
        "begin in CREATE TABLE is not counted",
        "CREATE TABLE t (a int) ; CREATE VIEW begin AS SELECT 1; SELECT 2;",
        ["CREATE TABLE t (a int) ;", "CREATE VIEW begin AS SELECT 1;", "SELECT 2;"],
    ),
    (
        "nested BEGIN ATOMIC in procedure",
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; "
        "SELECT CASE WHEN true THEN CASE 1 WHEN 1 THEN 2 END END; END; SELECT 3;",
        [
            "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; "
            "SELECT CASE WHEN true THEN CASE 1 WHEN 1 THEN 2 END END; END;",
            "SELECT 3;",
        ],
    ),
    ("unterminated string at EOF", "SELECT 1;\nSELECT 'abc;\n\n", ["SELECT 1;", "SELECT 'abc;"]),
    ("unterminated comment at EOF", "SELECT 1 /* ;\n", ["SELECT 1"]),
    ("vertical tab is not whitespace", "\vSELECT 1;", ["\vSELECT 1;"]),
    ("non-ASCII identifiers", "SELECT 1 AS größe; SELECT 2;", ["SELECT 1 AS größe;", "SELECT 2;"]),
]


@pytest.mark.parametrize(("sql", "expected"), cases(SPLIT_CASES))
def test_split(sql: str, expected: list[str]) -> None:
    assert texts(sql) == expected


def test_line_numbers() -> None:
    sql = (
        "-- header\n"  # 1
        "\n"  # 2
        "SELECT 1;\n"  # 3
        "/* lead */ SELECT\n"  # 4
        "  2\n"  # 5
        ";  SELECT 3; SELECT\n"  # 6
        "4;\n"  # 7
        "\\set x 1\n"  # 8
        "SELECT 5"  # 9
    )
    got = [(s.kind, s.start_line, s.end_line, s.text) for s in split_statements(sql)]
    assert got == [
        ("sql", 3, 3, "SELECT 1;"),
        ("sql", 4, 6, "SELECT\n  2\n;"),
        ("sql", 6, 6, "SELECT 3;"),
        ("sql", 6, 7, "SELECT\n4;"),
        ("meta", 8, 8, "\\set x 1"),
        ("sql", 9, 9, "SELECT 5"),
    ]


def test_crlf_and_bom() -> None:
    sql = "\ufeffSET a = 1;\r\nSELECT\r\n  2;\r\n\\c other\r\nSELECT 3\r\n"
    got = [(s.kind, s.start_line, s.end_line, s.text) for s in split_statements(sql)]
    assert got == [
        ("sql", 1, 1, "SET a = 1;"),
        ("sql", 2, 3, "SELECT\r\n  2;"),
        ("meta", 4, 4, "\\c other"),
        ("sql", 5, 5, "SELECT 3"),
    ]
    assert meta_commands(sql) == [MetaCommand(4, "c", "other")]


def test_crlf_line_comment_ends_at_cr() -> None:
    # flex's comment rule stops at \r as well as \n
    assert texts("SELECT 1 -- x\r\n;") == ["SELECT 1 -- x\r\n;"]


# --------------------------------------------------------------------------- pg_dump

PG_DUMP = r"""--
-- PostgreSQL database dump
--

\restrict 74fwwGIydnJ9EGckhTYiRzcVTAvzI3bsFEqbe8YQyTRbndkYDcNQGyqGGT08ebC

-- Dumped from database version 15.18
-- Dumped by pg_dump version 15.18

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;

--
-- Name: hstore; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;


--
-- Name: plf(integer); Type: FUNCTION; Schema: we;ird; Owner: postgres
--

CREATE FUNCTION "we;ird".plf(a integer) RETURNS integer
    LANGUAGE plpgsql
    AS $_$
DECLARE q text := $q$ it's ; $$ $q$;
BEGIN
  -- comment ; inside
  IF a > 0 THEN RETURN a; END IF;
  RETURN -a;
END
$_$;


--
-- Name: atomic(integer); Type: FUNCTION; Schema: we;ird; Owner: postgres
--

CREATE FUNCTION "we;ird".atomic(x integer) RETURNS text
    LANGUAGE sql
    BEGIN ATOMIC
 SELECT
         CASE
             WHEN (atomic.x > 0) THEN 'p;'::text
             ELSE 'n'::text
         END AS "case";
END;


CREATE TABLE "we;ird"."t$$1" (
    id integer NOT NULL,
    body text,
    note text DEFAULT 'a;b'::text
);

COMMENT ON TABLE "we;ird"."t$$1" IS 'it''s a table; with $$ and \ backslash';

--
-- Data for Name: t$$1; Type: TABLE DATA; Schema: we;ird; Owner: postgres
--

COPY "we;ird"."t$$1" (id, body, note) FROM stdin;
1	semi;colon\nnew line\ttab	x
2	\\.	$$ dollar $$
3	back\\slash \\. end	'quote'
4	-- not a comment	/* nor this */
5	\\restrict nope	\echo nope
\.


ALTER TABLE ONLY "we;ird"."t$$1"
    ADD CONSTRAINT "t$$1_pkey" PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--

\unrestrict 74fwwGIydnJ9EGckhTYiRzcVTAvzI3bsFEqbe8YQyTRbndkYDcNQGyqGGT08ebC

"""


def test_pg_dump_excerpt() -> None:
    got = [
        (s.kind, s.start_line, s.end_line, s.text.split("\n")[0]) for s in split_statements(PG_DUMP)
    ]
    assert got == [
        (
            "meta",
            5,
            5,
            "\\restrict 74fwwGIydnJ9EGckhTYiRzcVTAvzI3bsFEqbe8YQyTRbndkYDcNQGyqGGT08ebC",
        ),
        ("sql", 10, 10, "SET statement_timeout = 0;"),
        ("sql", 11, 11, "SET client_encoding = 'UTF8';"),
        ("sql", 12, 12, "SET standard_conforming_strings = on;"),
        ("sql", 13, 13, "SELECT pg_catalog.set_config('search_path', '', false);"),
        ("sql", 14, 14, "SET check_function_bodies = false;"),
        ("sql", 20, 20, "CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA public;"),
        ("sql", 27, 36, 'CREATE FUNCTION "we;ird".plf(a integer) RETURNS integer'),
        ("sql", 43, 51, 'CREATE FUNCTION "we;ird".atomic(x integer) RETURNS text'),
        ("sql", 54, 58, 'CREATE TABLE "we;ird"."t$$1" ('),
        (
            "sql",
            60,
            60,
            "COMMENT ON TABLE \"we;ird\".\"t$$1\" IS 'it''s a table; with $$ and \\ backslash';",
        ),
        ("copy", 66, 72, 'COPY "we;ird"."t$$1" (id, body, note) FROM stdin;'),
        ("sql", 75, 76, 'ALTER TABLE ONLY "we;ird"."t$$1"'),
        (
            "meta",
            83,
            83,
            "\\unrestrict 74fwwGIydnJ9EGckhTYiRzcVTAvzI3bsFEqbe8YQyTRbndkYDcNQGyqGGT08ebC",
        ),
    ]
    statements = split_statements(PG_DUMP)
    plf = statements[7].text
    assert plf.endswith("END\n$_$;") and "$q$ it's ; $$ $q$;" in plf
    copy = statements[11].text
    assert copy.endswith("5\t\\\\restrict nope\t\\echo nope\n\\.")
    assert copy.count("\n") == 6


def test_pg_dump_meta_commands_only_outside_data() -> None:
    key = "74fwwGIydnJ9EGckhTYiRzcVTAvzI3bsFEqbe8YQyTRbndkYDcNQGyqGGT08ebC"
    assert meta_commands(PG_DUMP) == [
        MetaCommand(5, "restrict", key),
        MetaCommand(83, "unrestrict", key),
    ]


# --------------------------------------------------------------------------- COPY

COPY_CASES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "data with semicolons, quotes, dollars, comments and backslashes",
        "COPY t (a, b) FROM stdin;\n1\tx;y\n2\t$$ ' \"\n3\t/* -- \\\\. \\echo\n\\.\nSELECT 2;",
        [
            ("copy", "COPY t (a, b) FROM stdin;\n1\tx;y\n2\t$$ ' \"\n3\t/* -- \\\\. \\echo\n\\."),
            ("sql", "SELECT 2;"),
        ],
    ),
    (
        "lower case with options",
        'copy t from STDIN with (format csv);\na,"b;\n\\.\nSELECT 2;',
        [("copy", 'copy t from STDIN with (format csv);\na,"b;\n\\.'), ("sql", "SELECT 2;")],
    ),
    ("empty data", "COPY t FROM stdin;\n\\.\n", [("copy", "COPY t FROM stdin;\n\\.")]),
    (
        "end marker needs the whole line",
        "COPY t FROM stdin;\n\\. \n x\\.\n\\.\nSELECT 2;",
        [("copy", "COPY t FROM stdin;\n\\. \n x\\.\n\\."), ("sql", "SELECT 2;")],
    ),
    (
        "CRLF data",
        "COPY t FROM stdin;\r\na;b\r\n\\.\r\nSELECT 2;\r\n",
        [("copy", "COPY t FROM stdin;\r\na;b\r\n\\."), ("sql", "SELECT 2;")],
    ),
    (
        "data runs to EOF without end marker",
        "COPY t FROM stdin;\n1\n2\t\n",
        [("copy", "COPY t FROM stdin;\n1\n2\t")],
    ),
    (
        "COPY at EOF without semicolon has no data",
        "COPY t FROM stdin",
        [("copy", "COPY t FROM stdin")],
    ),
    (
        "comment between FROM and STDIN",
        "COPY t FROM /* x */ stdin;\n;\n\\.\n",
        [("copy", "COPY t FROM /* x */ stdin;\n;\n\\.")],
    ),
    (
        "COPY TO stdout has no data",
        "COPY t TO stdout;\nSELECT 2;",
        [("sql", "COPY t TO stdout;"), ("sql", "SELECT 2;")],
    ),
    (
        "FROM stdin inside a query is not COPY FROM stdin",
        "COPY (SELECT * FROM stdin) TO stdout;\nSELECT 2;",
        [("sql", "COPY (SELECT * FROM stdin) TO stdout;"), ("sql", "SELECT 2;")],
    ),
    (
        "COPY FROM a file has no data",
        "COPY t FROM '/tmp/stdin';\nSELECT 2;",
        [("sql", "COPY t FROM '/tmp/stdin';"), ("sql", "SELECT 2;")],
    ),
    (
        "data starts after the COPY line; the rest of that line runs afterwards",
        "COPY t FROM stdin; SELECT 'r';\n1\n\\.\nSELECT 2;",
        [
            ("copy", "COPY t FROM stdin; SELECT 'r';\n1\n\\."),
            ("sql", "SELECT 'r';"),
            ("sql", "SELECT 2;"),
        ],
    ),
    (
        "COPY glued on with backslash-semicolon",
        "SELECT 1 \\; COPY t FROM stdin;\n1;\n\\.\nSELECT 2;",
        [("copy", "SELECT 1 \\; COPY t FROM stdin;\n1;\n\\."), ("sql", "SELECT 2;")],
    ),
    (
        "psql \\copy from stdin also reads data lines",
        "\\copy t from stdin\n1;\n\\.\nSELECT 2;",
        [("meta", "\\copy t from stdin\n1;\n\\."), ("sql", "SELECT 2;")],
    ),
    (
        "psql \\copy from pstdin reads no data from the file",
        "\\copy t from pstdin\nSELECT 2;",
        [("meta", "\\copy t from pstdin"), ("sql", "SELECT 2;")],
    ),
    (
        "COPY sent by \\g",
        "COPY t FROM stdin \\g\n1\n\\.\nSELECT 2;",
        [("copy", "COPY t FROM stdin \\g\n1\n\\."), ("meta", "\\g"), ("sql", "SELECT 2;")],
    ),
]


@pytest.mark.parametrize(("sql", "expected"), cases(COPY_CASES))
def test_copy(sql: str, expected: list[tuple[str, str]]) -> None:
    assert [(s.kind, s.text) for s in split_statements(sql)] == expected


def test_copy_lines() -> None:
    sql = "SELECT 1;\nCOPY t FROM stdin;\na\nb\n\\.\nSELECT 2;\n"
    got = [(s.kind, s.start_line, s.end_line) for s in split_statements(sql)]
    assert got == [("sql", 1, 1), ("copy", 2, 5), ("sql", 6, 6)]


# --------------------------------------------------------------------------- meta-commands

META_CASES: list[tuple[str, str, list[tuple[int, str, str]]]] = [
    ("restrict", "\\restrict abc123\n", [(1, "restrict", "abc123")]),
    ("connect", "SELECT 1;\n\\connect other\n", [(2, "connect", "other")]),
    ("c", "\\c db user", [(1, "c", "db user")]),
    ("shell", "\\! rm -rf /\n", [(1, "!", "rm -rf /")]),
    ("set", "\\set ON_ERROR_STOP on\n", [(1, "set", "ON_ERROR_STOP on")]),
    (
        "include",
        "\\i file.sql\n\\ir  other.sql  \n",
        [(1, "i", "file.sql"), (2, "ir", "other.sql")],
    ),
    ("indented", "   \\echo hi\n", [(1, "echo", "hi")]),
    ("CRLF", "\\set a 1\r\n\\set b 2\r\n", [(1, "set", "a 1"), (2, "set", "b 2")]),
    ("no args", "\\q\n", [(1, "q", "")]),
    ("bare backslash", "\\\n", [(1, "", "")]),
    ("two on one line", "\\echo a \\echo b\n", [(1, "echo", "a"), (1, "echo", "b")]),
    ("name ends at backslash", "\\echo a\\echo b\n", [(1, "echo", "a"), (1, "echo", "b")]),
    ("shell with no space", "\\!ls\n", [(1, "!ls", "")]),
    ("double backslash ends args", "\\echo x \\\\ SELECT 1;\n", [(1, "echo", "x")]),
    (
        "double backslash then meta",
        "\\set x 1 \\\\ \\echo y\n",
        [(1, "set", "x 1"), (1, "echo", "y")],
    ),
    (
        "shell takes whole line",
        "\\! echo a \\\\ b \\echo c\n",
        [(1, "!", "echo a \\\\ b \\echo c")],
    ),
    ("pipe takes whole line", "\\o | cat \\\\ \\echo z\n", [(1, "o", "| cat \\\\ \\echo z")]),
    ("copy takes whole line", "\\COPY t TO 'f' \\echo\n", [(1, "COPY", "t TO 'f' \\echo")]),
    ("quoted arg hides backslash", "\\echo 'a \\\\ b' c\n", [(1, "echo", "'a \\\\ b' c")]),
    ("quoted arg with doubled quote", "\\set x 'it''s \\echo'\n", [(1, "set", "x 'it''s \\echo'")]),
    (
        "double-quoted arg",
        '\\echo "a \\ b" \\echo c\n',
        [(1, "echo", '"a \\ b"'), (1, "echo", "c")],
    ),
    ("backquoted arg", "\\set d `date \\\\ x`\n", [(1, "set", "d `date \\\\ x`")]),
    ("after SQL on the same line", "SELECT 1 \\gset\n", [(1, "gset", "")]),
    ("after a statement", "SELECT 1; \\echo done\n", [(1, "echo", "done")]),
    ("inside an unfinished statement", "SELECT\n\\echo mid\n1;\n", [(2, "echo", "mid")]),
    ("not in a string", "SELECT '\\echo x';\n", []),
    ("not in an E string", "SELECT E'\\\\echo \\' \\echo';\n", []),
    ("not in an identifier", 'SELECT 1 AS "\\echo";\n', []),
    ("not in a line comment", "-- \\echo x\nSELECT 1;\n", []),
    ("not in a block comment", "/*\n\\echo x\n*/\n", []),
    ("not in a dollar body", "SELECT $$\n\\echo x\n$$;\n", []),
    (
        "not in COPY data",
        "COPY t FROM stdin;\n\\echo x\n\\! rm\n\\.\n\\echo y\n",
        [(5, "echo", "y")],
    ),
    ("backslash-semicolon is SQL", "SELECT 1 \\; SELECT 2;\n", []),
    ("backslash-colon is SQL", "SELECT '1' \\:x;\n", []),
]


@pytest.mark.parametrize(("sql", "expected"), cases(META_CASES))
def test_meta_commands(sql: str, expected: list[tuple[int, str, str]]) -> None:
    assert meta_commands(sql) == [MetaCommand(*e) for e in expected]


def test_double_backslash_returns_to_sql() -> None:
    assert [(s.kind, s.text) for s in split_statements("\\echo x \\\\ SELECT 1;\n")] == [
        ("meta", "\\echo x"),
        ("sql", "SELECT 1;"),
    ]


def test_send_commands_end_the_statement() -> None:
    sql = (
        "SELECT 'SELECT 1'\n"  # 1
        "\\gexec\n"  # 2
        "SELECT count(*) AS n FROM t \\gset\n"  # 3
        "SELECT 1 \\g out.txt\n"  # 4
    )
    assert [(s.kind, s.start_line, s.end_line, s.text) for s in split_statements(sql)] == [
        ("sql", 1, 1, "SELECT 'SELECT 1'"),
        ("meta", 2, 2, "\\gexec"),
        ("sql", 3, 3, "SELECT count(*) AS n FROM t"),
        ("meta", 3, 3, "\\gset"),
        ("sql", 4, 4, "SELECT 1"),
        ("meta", 4, 4, "\\g out.txt"),
    ]


def test_send_command_resets_begin_tracking() -> None:
    sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1 \\g\nSELECT 2;"
    assert texts(sql) == [
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1",
        "\\g",
        "SELECT 2;",
    ]


def test_reset_discards_the_buffer() -> None:
    sql = "SELECT nope\n\\r\nSELECT 1;\n"
    assert [(s.kind, s.text) for s in split_statements(sql)] == [
        ("meta", "\\r"),
        ("sql", "SELECT 1;"),
    ]


def test_meta_inside_statement_keeps_collecting() -> None:
    sql = "SELECT\n\\echo mid\n1;\n"
    assert [(s.kind, s.start_line, s.end_line, s.text) for s in split_statements(sql)] == [
        ("sql", 1, 3, "SELECT\n\\echo mid\n1;"),
        ("meta", 2, 2, "\\echo mid"),
    ]


# --------------------------------------------------------------------------- \restrict


def test_blank_restrict_lines_pg_dump() -> None:
    out = blank_restrict_lines(PG_DUMP)
    assert out.count("\n") == PG_DUMP.count("\n")
    assert "restrict 74fw" not in out
    assert "5\t\\\\restrict nope" in out  # COPY data untouched
    assert [s.text for s in split_statements(out)] == [
        s.text for s in split_statements(PG_DUMP) if s.kind != "meta"
    ]
    lines, out_lines = PG_DUMP.split("\n"), out.split("\n")
    assert [i for i, (a, b) in enumerate(zip(lines, out_lines, strict=True)) if a != b] == [4, 82]
    assert out_lines[4] == out_lines[82] == ""


RESTRICT_CASES: list[tuple[str, str, str]] = [
    ("plain", "\\restrict abc\nSELECT 1;\n\\unrestrict abc\n", "\nSELECT 1;\n\n"),
    ("CRLF keeps the line ending", "\\restrict abc\r\nSELECT 1;\r\n", "\r\nSELECT 1;\r\n"),
    ("no trailing newline", "SELECT 1;\n\\unrestrict abc", "SELECT 1;\n"),
    ("BOM kept", "\ufeff\\restrict abc\nSELECT 1;", "\ufeff\nSELECT 1;"),
    ("surrounding blanks", "  \\restrict abc \t\nx", "\nx"),
    ("missing key", "\\restrict\nSELECT 1;", "\\restrict\nSELECT 1;"),
    ("extra argument", "\\restrict abc def\n", "\\restrict abc def\n"),
    ("not alone on the line", "SELECT 1; \\restrict abc\n", "SELECT 1; \\restrict abc\n"),
    ("other command", "\\restricted abc\n", "\\restricted abc\n"),
    ("in a dollar body", "SELECT $$\n\\restrict abc\n$$;\n", "SELECT $$\n\\restrict abc\n$$;\n"),
    ("in a comment", "/*\n\\restrict abc\n*/\n", "/*\n\\restrict abc\n*/\n"),
    ("in a string", "SELECT '\n\\restrict abc\n';\n", "SELECT '\n\\restrict abc\n';\n"),
    (
        "in COPY data",
        "COPY t FROM stdin;\n\\restrict abc\n\\.\n\\restrict abc\n",
        "COPY t FROM stdin;\n\\restrict abc\n\\.\n\n",
    ),
    ("nothing to do", "SELECT 1;\n", "SELECT 1;\n"),
]


@pytest.mark.parametrize(("sql", "expected"), cases(RESTRICT_CASES))
def test_blank_restrict_lines(sql: str, expected: str) -> None:
    out = blank_restrict_lines(sql)
    assert out == expected
    assert out.count("\n") == sql.count("\n")


# --------------------------------------------------------------------------- psql error lines

# Script run with the real psql 15.18 (`psql -X -q -f probe.sql`, ON_ERROR_STOP off) and the
# error lines it printed, verbatim apart from the file name.
PROBE = (
    "CREATE TEMP TABLE t (a int, b text);\n"  # 1
    "SELECT\n"  # 2
    "  nosuchcol\n"  # 3
    "FROM\n"  # 4
    "  pg_class\n"  # 5
    ";\n"  # 6
    "SELECT nope1; SELECT nope2;\n"  # 7
    "SELECT (1;\n"  # 8
    ");\n"  # 9
    "CREATE FUNCTION f1(x int) RETURNS text\n"  # 10
    "LANGUAGE sql\n"  # 11
    "BEGIN ATOMIC\n"  # 12
    "  SELECT CASE WHEN x > 0 THEN 'pos' ELSE 'neg' END;\n"  # 13
    "  SELECT nope_in_atomic;\n"  # 14
    "END;\n"  # 15
    "COPY t (a, b) FROM stdin;\n"  # 16
    "1\tx;y\n"  # 17
    "notanumber\t$$ '\n"  # 18
    "\\.\n"  # 19
    "SELECT nope_g\n"  # 20
    "\\g\n"  # 21
    "\\i /nonexistent_file.sql\n"  # 22
    "COPY t (a) FROM stdin; SELECT nope_rest;\n"  # 23
    "2\n"  # 24
    "\\.\n"  # 25
    "SELECT nope_eof\n"  # 26
    "\n"  # 27
    "-- trailing\n"  # 28
)
PSQL_ERRORS = [
    # (line psql printed, its message, a fragment of the statement it belongs to)
    (6, 'ERROR:  column "nosuchcol" does not exist', "nosuchcol"),
    (7, 'ERROR:  column "nope1" does not exist', "nope1"),
    (7, 'ERROR:  column "nope2" does not exist', "nope1"),  # same line: first one wins
    (9, 'ERROR:  syntax error at or near ";"', "SELECT (1;\n);"),
    (15, 'ERROR:  column "nope_in_atomic" does not exist', "nope_in_atomic"),
    (19, 'ERROR:  invalid input syntax for type integer: "notanumber"', "notanumber"),
    (21, 'ERROR:  column "nope_g" does not exist', "nope_g"),
    (22, "error: /nonexistent_file.sql: No such file or directory", "\\i /nonexistent"),
    (25, 'ERROR:  column "nope_rest" does not exist', "COPY t (a) FROM stdin"),  # shares line 25
    (28, 'ERROR:  column "nope_eof" does not exist', "nope_eof"),
]


@pytest.mark.parametrize(("line", "message", "fragment"), PSQL_ERRORS)
def test_statement_at_line_matches_real_psql(line: int, message: str, fragment: str) -> None:
    st = statement_at_line(PROBE, line)
    assert st is not None, message
    assert fragment in st.text


def test_statement_at_line_inside_and_outside() -> None:
    assert statement_at_line(PROBE, 3) == Statement(
        "SELECT\n  nosuchcol\nFROM\n  pg_class\n;", 2, 6, "sql"
    )
    in_data = statement_at_line(PROBE, 17)
    assert in_data is not None and in_data.kind == "copy"
    assert statement_at_line("-- nothing\nSELECT 1;\n", 1) is None
    assert statement_at_line("SELECT 1;\n", 5) is None
    assert statement_at_line("", 1) is None


def test_statement_at_line_prefers_sql_over_the_send_command() -> None:
    sql = "SELECT 'SELECT nope'\n\\gexec\n"
    assert statement_at_line(sql, 2) == Statement("SELECT 'SELECT nope'", 1, 1, "sql")


def test_large_input() -> None:
    one = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$;\n"
    sql = one * 20000 + "COPY t FROM stdin;\n" + "1\tx\n" * 20000 + "\\.\n"
    statements = split_statements(sql)
    assert len(statements) == 20001
    assert statements[-1].kind == "copy"
    assert statements[-1].end_line == 40002


# --------------------------------------------------------------------------- invariants


@pytest.mark.parametrize(("sql", "_expected"), cases(SPLIT_CASES + COPY_CASES + META_CASES))
def test_statements_are_file_slices_with_consistent_lines(sql: str, _expected: Any) -> None:
    after = 0
    for st in split_statements(sql):
        start = sql.find(st.text, after)  # starts strictly increase; nesting is allowed
        assert start >= 0
        after = start + 1
        assert st.start_line == sql.count("\n", 0, start) + 1
        assert st.end_line == sql.count("\n", 0, start + len(st.text) - 1) + 1
        assert st.start_line <= st.end_line
        assert st.kind in ("sql", "meta", "copy")
        assert not st.text.endswith(("\n", "\r"))
        if st.kind == "sql":
            assert st.text.strip(" \t\r\n\f") == st.text  # psql whitespace; \v is not
