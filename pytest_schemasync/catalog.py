"""A normalized, read-only snapshot of a database's schema, read from the system catalogs.

Two databases are compared through their snapshots, never through SQL text: every object is
deparsed by the server itself (``pg_get_viewdef``, ``pg_get_functiondef``, ...) with an empty
``search_path``, so names come out fully qualified and the text does not depend on how the
source files were written or in which order the objects were created. OIDs never appear.

Safety: ``snapshot`` runs everything in one ``READ ONLY`` ``REPEATABLE READ`` transaction that
it rolls back, sends only ``BEGIN``, ``SET LOCAL``, ``SELECT`` and ``ROLLBACK``, and creates
nothing (not even temp objects), so it may be pointed at production.

Server versions: the queries are valid on PostgreSQL 12 to 18 (older servers are refused).
Version-dependent details:

* ``pg_trigger.tgparentid`` exists from 13; on 12 the triggers cloned onto partitions are
  marked ``tgisinternal`` instead, so both filters hide them.
* From 18, NOT NULL constraints of tables (and from 17 of domains) are also rows of
  ``pg_constraint`` (contype ``n``); they are skipped there and reported through the column's
  (or domain's) ``NOT NULL`` line, as on older servers.
* ``attgenerated`` 's' (STORED) exists from 12; 'v' (VIRTUAL) from 18.
* The database itself (encoding, locale, ``pg_db_role_setting``) is kind ``database``. The
  role-level settings of every role are read into ``Snapshot.database``; the check keeps and
  reports those of the set's roles (``roles.keep_set_role_settings``);
  ``datlocprovider``/``daticulocale`` exist from 15, ``daticurules`` from 16, and from 17
  ``datlocale`` holds the ICU or builtin locale (see dbprops.read).
* ``lock_timeout`` is 10 s: the only locks taken are AccessShareLocks on views.
* The deparsed text itself (views, defaults, function headers) can differ between majors;
  ``diff.compare`` warns when the two sides run different majors.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from . import dbprops
from .errors import CatalogError, ConfigError
from .names import sql_literal

# Report order; diff sorts differences the same way.
KINDS: tuple[str, ...] = (
    "database", "schema", "extension", "type", "enum", "domain", "sequence", "table", "column",
    "constraint", "index", "view", "materialized view", "function", "procedure", "aggregate",
    "trigger", "policy", "owner", "grant",
)
KIND_ORDER: dict[str, int] = {kind: i for i, kind in enumerate(KINDS)}

MIN_MAJOR = 12
ALWAYS_EXCLUDED: tuple[str, ...] = ("pg_catalog", "information_schema", "pg_toast*", "pg_temp*")


@dataclass(frozen=True)
class CatalogOptions:
    exclude_schemas: tuple[str, ...] = ()  # fnmatch patterns, e.g. "staging_*"
    include_owners: bool = False
    include_grants: bool = False
    # Objects created by an extension (pg_depend deptype 'e') are the extension's business:
    # PostGIS alone installs 1000+ functions. The extension and its version are still reported.
    include_extension_members: bool = False
    column_order: str = "warn"  # "warn" | "ignore" | "drift"


DEFAULT_OPTIONS = CatalogOptions()


@dataclass(frozen=True)
class CatalogObject:
    kind: str
    identity: str  # e.g. "public.users.email", "public.search(text)", "public.t ON public.users"
    definition: str  # normalized multi-line text, compared for equality and shown in diffs
    position: int | None = None  # columns: rank in attnum order (column-order warning)
    # (kind, identity) of the object this one belongs to (a column's table, an owner's object):
    # lets the diff fold children into a missing/extra parent and group columns by table.
    parent: tuple[str, str] | None = None


@dataclass
class Snapshot:
    server_version: str  # e.g. "15.18"
    server_major: int
    objects: dict[tuple[str, str], CatalogObject]  # (kind, identity) -> object, sorted
    schemas_excluded: list[str]  # schemas that matched the exclusion patterns
    # Encoding, locale and database-level settings (also in ``objects`` as kind "database").
    database: dbprops.DatabaseProps = field(default_factory=dbprops.DatabaseProps)
    # Result-changing server-wide settings a new session starts with: name -> (value, source).
    server_settings: dict[str, tuple[str, str]] = field(default_factory=dict)


def normalize(text: str) -> str:
    """Line endings, trailing blanks and blank lines never count as drift.

    Applied to every definition, including function bodies (which the server stores
    verbatim); indentation inside a body is kept, as it is visible in a diff anyway. (A blank
    line inside a multi-line string literal of a body is the one case this can hide.)
    """
    if _NEEDS_NORMALIZING.search(text) is None:
        return text  # most definitions: nothing to strip (the check normalizes ~70,000)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(stripped for line in lines if (stripped := line.rstrip()))


# What normalize() would change: a CR, a blank line, trailing whitespace (\s is what
# str.rstrip() strips), a leading empty line.
_NEEDS_NORMALIZING = re.compile(r"\s(?:\n|\Z)|\A\n|\r")


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No garbage collection while tens of thousands of rows and objects are made: none of
    them is garbage yet, and the collector would walk them all over and over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def _batched(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Statements sent in one round trip (pipeline mode), where libpq can."""
    if psycopg.Pipeline.is_supported():
        with conn.pipeline():
            yield
    else:
        yield


def _version(server_version: int) -> tuple[str, int]:
    major = server_version // 10000
    return f"{major}.{server_version % 10000}", major


# --- queries ---------------------------------------------------------------------------------
# Everything is schema-qualified: with search_path = '' pg_catalog is still searched, but
# qualifying keeps even a stray temp relation named like a catalog out of the picture.

# Functions the server made for a type (range and multirange constructors) depend on it
# internally (deptype 'i'); they come and go with the type.
_IS_INTERNAL_PROC = (
    "EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep WHERE dep.classid = "
    "'pg_catalog.pg_proc'::pg_catalog.regclass AND dep.objid = p.oid AND dep.deptype = 'i')"
)

_IS_MEMBER = (
    "EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep WHERE dep.classid = "
    "'pg_catalog.{catalog}'::pg_catalog.regclass AND dep.objid = {oid} AND dep.deptype = 'e')"
)

# A collation's name, qualified unless it lives in pg_catalog (regcollation is 13+).
_COLLATION = (
    "(SELECT CASE WHEN cn.nspname = 'pg_catalog' THEN pg_catalog.quote_ident(co.collname) "
    "ELSE pg_catalog.format('%%I.%%I', cn.nspname, co.collname) END "
    "FROM pg_catalog.pg_collation co "
    "JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = {oid})"
)

_NAMESPACES = f"""
SELECT n.nspname, pg_catalog.quote_ident(n.nspname) AS ident,
       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(n.nspowner)) AS owner,
       {_IS_MEMBER.format(catalog="pg_namespace", oid="n.oid")} AS is_member
FROM pg_catalog.pg_namespace n
ORDER BY n.nspname
"""

_EXTENSIONS = """
SELECT pg_catalog.quote_ident(e.extname) AS ident, e.extversion, n.nspname,
       pg_catalog.quote_ident(n.nspname) AS nsp
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
ORDER BY e.extname
"""

_RELATIONS = """
SELECT c.relkind, pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS ident,
       c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
       c.reloptions, c.relispartition,
       CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END
           AS partbound,
       CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END AS partkey,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid, true) END
           AS viewdef,
       ARRAY(SELECT pg_catalog.format('%%I.%%I', pn.nspname, p.relname)
             FROM pg_catalog.pg_inherits i
             JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
             JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
             WHERE i.inhrelid = c.oid ORDER BY i.inhseqno) AS parents,
       am.amname,
       CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END AS oftype,
       (SELECT pg_catalog.quote_ident(ri.relname)
        FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class ri ON ri.oid = x.indexrelid
        WHERE x.indrelid = c.oid AND x.indisreplident) AS replident_index,
       pg_catalog.quote_ident(fs.srvname) AS server, ft.ftoptions,
       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)) AS owner
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
LEFT JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
LEFT JOIN pg_catalog.pg_foreign_server fs ON fs.oid = ft.ftserver
WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(is_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"))

# Columns of tables only: a view's columns follow from its definition.
_COLUMNS = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS tbl,
       pg_catalog.quote_ident(a.attname) AS col,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, a.attidentity, a.attgenerated,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS default_expr,
       CASE WHEN a.attcollation <> t.typcollation THEN {collation} END AS collation,
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       pg_catalog.row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS position
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_depend sd ON a.attidentity <> ''
     AND sd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
     AND sd.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
     AND sd.refobjid = a.attrelid AND sd.refobjsubid = a.attnum AND sd.deptype = 'i'
LEFT JOIN pg_catalog.pg_sequence s ON s.seqrelid = sd.objid
WHERE a.attnum > 0 AND NOT a.attisdropped
  AND c.relkind IN ('r', 'p', 'f')
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(is_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"),
           collation=_COLLATION.format(oid="a.attcollation"))

# Constraints cloned onto partitions (conparentid) or inherited (not conislocal) are reported
# once, on the parent. NOT NULL rows (contype 'n', 18+) are covered by the column.
# Constraint triggers (contype 't') are reported as triggers.
_CONSTRAINTS = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS tbl, c.relkind,
       pg_catalog.quote_ident(co.conname) AS name,
       pg_catalog.pg_get_constraintdef(co.oid) AS def
FROM pg_catalog.pg_constraint co
JOIN pg_catalog.pg_class c ON c.oid = co.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE co.contype IN ('c', 'f', 'p', 'u', 'x')
  AND co.conparentid = 0 AND co.conislocal
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(is_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"))

# Indexes that back a constraint are reported as that constraint; indexes attached to a
# partitioned parent index are reported once, on the parent.
_INDEXES = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, ic.relname) AS ident,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS tbl, c.relkind,
       pg_catalog.pg_get_indexdef(i.indexrelid) AS def, i.indisvalid, i.indisclustered
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'f')
  AND NOT ic.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint co
                  WHERE co.conrelid = i.indrelid AND co.conindid = i.indexrelid
                    AND co.contype IN ('p', 'u', 'x'))
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(is_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"))

# Identity sequences belong to their column (deptype 'i') and are reported there.
_SEQUENCES = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS ident, c.relpersistence,
       pg_catalog.format_type(s.seqtypid, NULL) AS type,
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       (SELECT pg_catalog.format('%%I.%%I.%%I', rn.nspname, rc.relname, ra.attname)
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
        JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
        JOIN pg_catalog.pg_attribute ra ON ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid
        WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
          AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
          AND d.deptype = 'a' AND d.refobjsubid > 0) AS owned_by,
       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(c.relowner)) AS owner
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                    AND d.objid = c.oid AND d.deptype = 'i')
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(is_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"))

# Aggregates have no pg_get_functiondef; they get a signature plus their support functions.
_FUNCTIONS = """
SELECT p.prokind,
       pg_catalog.format('%%I.%%I(%%s)', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid)) AS ident,
       CASE WHEN p.prokind <> 'a' THEN pg_catalog.pg_get_functiondef(p.oid) END AS def,
       p.prosrc, l.lanname,
       a.aggkind, a.aggtransfn::pg_catalog.text AS transfn,
       pg_catalog.format_type(a.aggtranstype, NULL) AS transtype,
       CASE WHEN a.aggfinalfn <> 0 THEN a.aggfinalfn::pg_catalog.text END AS finalfn,
       CASE WHEN a.aggcombinefn <> 0 THEN a.aggcombinefn::pg_catalog.text END AS combinefn,
       CASE WHEN a.aggmtransfn <> 0 THEN a.aggmtransfn::pg_catalog.text END AS mtransfn,
       CASE WHEN a.aggsortop <> 0
            THEN a.aggsortop::pg_catalog.regoperator::pg_catalog.text END AS sortop,
       a.agginitval,
       CASE WHEN p.prokind = 'a'
            THEN pg_catalog.pg_get_function_result(p.oid) END AS aggresult,
       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(p.proowner)) AS owner
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE NOT {is_internal}
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(is_member=_IS_MEMBER.format(catalog="pg_proc", oid="p.oid"),
           is_internal=_IS_INTERNAL_PROC)

# {parent_filter}: from 13 a partition's clone of its parent's trigger has tgparentid set
# (on 12 such clones are tgisinternal).
_TRIGGERS = """
SELECT pg_catalog.format('%%I.%%I ON %%I.%%I', n.nspname, t.tgname, n.nspname, c.relname)
           AS ident,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS tbl, c.relkind,
       pg_catalog.pg_get_triggerdef(t.oid, false) AS def, t.tgenabled
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal {parent_filter}
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
"""

_POLICIES = """
SELECT pg_catalog.format('%%I.%%I ON %%I.%%I', n.nspname, pol.polname, n.nspname, c.relname)
           AS ident,
       pg_catalog.format('%%I.%%I', n.nspname, c.relname) AS tbl, c.relkind,
       pg_catalog.quote_ident(pol.polname) AS name, pol.polpermissive, pol.polcmd,
       ARRAY(SELECT CASE WHEN r.oid = 0 THEN 'PUBLIC'
                         ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(r.oid)) END
             FROM pg_catalog.unnest(pol.polroles) AS r(oid) ORDER BY 1) AS roles,
       pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) AS using_expr,
       pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) AS check_expr
FROM pg_catalog.pg_policy pol
JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(is_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"))


# Enums, domains, composite and range types (not the row types of tables, nor array and
# multirange types, which the server creates by itself).
_TYPES = """
SELECT t.typtype, pg_catalog.format('%%I.%%I', n.nspname, t.typname) AS ident,
       ARRAY(SELECT e.enumlabel::pg_catalog.text FROM pg_catalog.pg_enum e
             WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels,
       CASE WHEN t.typtype = 'd'
            THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END AS basetype,
       t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0) AS default_expr,
       CASE WHEN t.typtype = 'd' AND t.typcollation <> bt.typcollation
            THEN {type_collation} END AS collation,
       ARRAY(SELECT pg_catalog.format('CONSTRAINT %%I %%s', co.conname,
                                      pg_catalog.pg_get_constraintdef(co.oid))
             FROM pg_catalog.pg_constraint co
             WHERE co.contypid = t.oid AND co.contype = 'c' ORDER BY co.conname) AS checks,
       ARRAY(SELECT pg_catalog.format('%%I %%s', a.attname,
                        pg_catalog.format_type(a.atttypid, a.atttypmod))
                    || CASE WHEN a.attcollation <> at.typcollation
                            THEN ' COLLATE ' || {att_collation} ELSE '' END
             FROM pg_catalog.pg_attribute a
             JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
             WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum) AS attributes,
       pg_catalog.format_type(r.rngsubtype, NULL) AS subtype,
       (SELECT pg_catalog.format('%%I.%%I', ocn.nspname, oc.opcname)
        FROM pg_catalog.pg_opclass oc
        JOIN pg_catalog.pg_namespace ocn ON ocn.oid = oc.opcnamespace
        WHERE oc.oid = r.rngsubopc) AS subopclass,
       CASE WHEN r.rngcollation <> 0 THEN {range_collation} END AS subcollation,
       CASE WHEN r.rngcanonical <> 0 THEN r.rngcanonical::pg_catalog.text END AS canonical,
       CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::pg_catalog.text END AS subdiff,
       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(t.typowner)) AS owner
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
  AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
  AND (%(members)s OR NOT {is_member})
""".format(
    is_member=_IS_MEMBER.format(catalog="pg_type", oid="t.oid"),
    type_collation=_COLLATION.format(oid="t.typcollation"),
    att_collation=_COLLATION.format(oid="a.attcollation"),
    range_collation=_COLLATION.format(oid="r.rngcollation"),
)

# ACLs as (object, grantee) rows. A NULL ACL means the default one (acldefault), and the
# owner's own privileges are implied by ownership, so they are left out: otherwise every
# object owned by another role in production would show up as a grant difference.
_GRANTS = """
WITH objects AS (
    SELECT 'schema' AS kind, pg_catalog.quote_ident(n.nspname) AS ident, n.nspacl AS acl,
           n.nspowner AS owner, 'n' AS objtype
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname = ANY(%(schemas)s::pg_catalog.text[])
      AND (%(members)s OR NOT {nsp_member})
  UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' ELSE 'table' END,
           pg_catalog.format('%%I.%%I', n.nspname, c.relname), c.relacl, c.relowner,
           CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                        AND d.objid = c.oid AND d.deptype = 'i')
      AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
      AND (%(members)s OR NOT {rel_member})
  UNION ALL
    SELECT 'column', pg_catalog.format('%%I.%%I.%%I', n.nspname, c.relname, a.attname),
           a.attacl, c.relowner, 'c'
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
      AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
      AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
      AND (%(members)s OR NOT {rel_member})
  UNION ALL
    SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                          ELSE 'function' END,
           pg_catalog.format('%%I.%%I(%%s)', n.nspname, p.proname,
                             pg_catalog.pg_get_function_identity_arguments(p.oid)),
           p.proacl, p.proowner, 'f'
    FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE NOT {proc_internal}
      AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
      AND (%(members)s OR NOT {proc_member})
  UNION ALL
    SELECT CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' ELSE 'type' END,
           pg_catalog.format('%%I.%%I', n.nspname, t.typname), t.typacl, t.typowner, 'T'
    FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    LEFT JOIN pg_catalog.pg_class c ON c.oid = t.typrelid
    WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
      AND n.nspname = ANY(%(schemas)s::pg_catalog.text[])
      AND (%(members)s OR NOT {type_member})
)
SELECT o.kind, o.ident,
       CASE WHEN x.grantee = 0 THEN 'PUBLIC'
            ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x.grantee)) END AS grantee,
       pg_catalog.string_agg(x.privilege_type
                             || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
                             ', ' ORDER BY x.privilege_type) AS privileges
FROM objects o,
     LATERAL pg_catalog.aclexplode(COALESCE(o.acl, pg_catalog.acldefault(
         o.objtype::pg_catalog."char", o.owner))) AS x
WHERE x.grantee <> o.owner
GROUP BY 1, 2, 3
""".format(
    nsp_member=_IS_MEMBER.format(catalog="pg_namespace", oid="n.oid"),
    rel_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"),
    proc_member=_IS_MEMBER.format(catalog="pg_proc", oid="p.oid"),
    proc_internal=_IS_INTERNAL_PROC,
    type_member=_IS_MEMBER.format(catalog="pg_type", oid="t.oid"),
)

# Settings that change how the server deparses constants and names, pinned as pg_dump does
# so that two servers configured differently still print the same schema the same way.
_SESSION_SETTINGS: tuple[str, ...] = (
    "SET LOCAL search_path = ''",
    "SET LOCAL DateStyle = 'ISO'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
    "SET LOCAL quote_all_identifiers = off",
    # pg_get_viewdef locks each view (AccessShareLock) until ROLLBACK: never queue behind a
    # running ALTER/DROP in production (and make everyone else queue behind us).
    "SET LOCAL lock_timeout = '10s'",
)


# --- building objects ------------------------------------------------------------------------

_RELKIND_NAMES = {"r": "table", "p": "table", "f": "table", "v": "view",
                  "m": "materialized view"}
_TRIGGER_STATE = {"O": "ENABLED", "D": "DISABLED", "R": "ENABLED REPLICA",
                  "A": "ENABLED ALWAYS"}
_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
_REPLICA_IDENTITY = {"n": "NOTHING", "f": "FULL", "i": "USING INDEX"}


class _Collector:
    """Accumulates objects; a key seen twice (rare name collisions) merges deterministically."""

    def __init__(self, options: CatalogOptions) -> None:
        self.options = options
        self.objects: dict[tuple[str, str], CatalogObject] = {}
        self._parents: dict[tuple[str, str], tuple[str, str]] = {}  # one tuple per parent

    def add(self, kind: str, identity: str, definition: str, *, position: int | None = None,
            parent: tuple[str, str] | None = None) -> None:
        text = normalize(definition)
        key = (kind, identity)
        if parent is not None:  # shared by all its children: ~30 MB less at 10,000 tables
            parent = self._parents.setdefault(parent, parent)
        old = self.objects.get(key)
        if old is not None:
            text = "\n".join(sorted([old.definition, text]))
        self.objects[key] = CatalogObject(kind, identity, text, position, parent)

    def owner(self, kind: str, identity: str, owner: str) -> None:
        if self.options.include_owners:
            self.add("owner", f"{kind} {identity}", f"OWNER TO {owner}",
                     parent=(kind, identity))


def _lines(*parts: str | None) -> str:
    return "\n".join(p for p in parts if p)


def _options(values: Iterable[str] | None) -> str | None:
    return f"WITH ({', '.join(sorted(values))})" if values else None


def _sequence_lines(row: Mapping[str, Any]) -> list[str]:
    return [
        f"START WITH {row['seqstart']}",
        f"INCREMENT BY {row['seqincrement']}",
        f"MINVALUE {row['seqmin']}",
        f"MAXVALUE {row['seqmax']}",
        f"CACHE {row['seqcache']}",
        "CYCLE" if row["seqcycle"] else "NO CYCLE",
    ]


def _schemas(c: _Collector, rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Split namespaces into included and user-excluded ones; record the included ones."""
    included: list[str] = []
    excluded: list[str] = []
    for row in rows:
        name = row["nspname"]
        if any(fnmatch.fnmatchcase(name, p) for p in ALWAYS_EXCLUDED):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in c.options.exclude_schemas):
            excluded.append(name)
            continue
        included.append(name)
        if row["is_member"] and not c.options.include_extension_members:
            continue
        c.add("schema", row["ident"], f"SCHEMA {row['ident']}")
        c.owner("schema", row["ident"], row["owner"])
    return included, excluded


def _extensions(c: _Collector, rows: list[dict[str, Any]], excluded: list[str]) -> None:
    for row in rows:
        if row["nspname"] in excluded:
            continue
        c.add("extension", row["ident"], _lines(
            f"EXTENSION {row['ident']}",
            f"VERSION {sql_literal(row['extversion'])}",
            f"SCHEMA {row['nsp']}",
        ))


def _relations(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        kind = _RELKIND_NAMES[row["relkind"]]
        ident = row["ident"]
        options = _options(row["reloptions"])
        if kind == "table":
            head = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE"}[row["relkind"]]
            if row["relpersistence"] == "u":
                head = "UNLOGGED " + head
            parents = row["parents"] or []
            replident = _REPLICA_IDENTITY.get(row["relreplident"])
            if replident and row["relreplident"] == "i":
                replident += f" {row['replident_index']}"
            text = _lines(
                f"{head} {ident}",
                f"OF {row['oftype']}" if row["oftype"] else None,
                f"PARTITION OF {parents[0]} {row['partbound']}" if row["relispartition"]
                else (f"INHERITS ({', '.join(parents)})" if parents else None),
                f"PARTITION BY {row['partkey']}" if row["partkey"] else None,
                f"SERVER {row['server']}" if row["server"] else None,
                f"OPTIONS ({', '.join(sorted(row['ftoptions']))})" if row["ftoptions"] else None,
                f"USING {row['amname']}" if row["amname"] not in (None, "heap") else None,
                options,
                "ROW LEVEL SECURITY " + ("ENABLED" if row["relrowsecurity"] else "DISABLED")
                + (", FORCED" if row["relforcerowsecurity"] else ""),
                f"REPLICA IDENTITY {replident}" if replident else None,
            )
        else:
            head = "VIEW" if kind == "view" else "MATERIALIZED VIEW"
            text = _lines(f"{head} {ident}", options, "AS", row["viewdef"])
        c.add(kind, ident, text)
        c.owner(kind, ident, row["owner"])


def _columns(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        clauses = [f"{row['col']} {row['type']}"]
        if row["collation"]:
            clauses.append(f"COLLATE {row['collation']}")
        if row["attnotnull"]:
            clauses.append("NOT NULL")
        if row["attidentity"]:
            how = "ALWAYS" if row["attidentity"] == "a" else "BY DEFAULT"
            seq = " ".join(_sequence_lines(row)) if row["seqincrement"] is not None else ""
            clauses.append(f"GENERATED {how} AS IDENTITY ({seq})" if seq
                           else f"GENERATED {how} AS IDENTITY")
        if row["attgenerated"]:
            stored = "VIRTUAL" if row["attgenerated"] == "v" else "STORED"
            clauses.append(f"GENERATED ALWAYS AS ({row['default_expr']}) {stored}")
        elif row["default_expr"] is not None:
            clauses.append(f"DEFAULT {row['default_expr']}")
        c.add("column", f"{row['tbl']}.{row['col']}", "\n  ".join(clauses),
              position=int(row["position"]), parent=("table", row["tbl"]))


def _constraints(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        parent = (_RELKIND_NAMES[row["relkind"]], row["tbl"])
        c.add("constraint", f"{row['tbl']}.{row['name']}",
              f"CONSTRAINT {row['name']} {row['def']}", parent=parent)


def _indexes(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        c.add("index", row["ident"], _lines(
            row["def"],
            None if row["indisvalid"] else "INVALID (a failed CREATE INDEX CONCURRENTLY?)",
            "CLUSTER" if row["indisclustered"] else None,
        ), parent=(_RELKIND_NAMES[row["relkind"]], row["tbl"]))


def _sequences(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        head = "UNLOGGED SEQUENCE" if row["relpersistence"] == "u" else "SEQUENCE"
        c.add("sequence", row["ident"], _lines(
            f"{head} {row['ident']}", f"AS {row['type']}", *_sequence_lines(row),
            f"OWNED BY {row['owned_by']}" if row["owned_by"] else None,
        ))
        c.owner("sequence", row["ident"], row["owner"])


_CLOSING_TAG = re.compile(r"\$\w*\$\s*\Z")


def _function_text(definition: str, body: str | None, language: str) -> str:
    """Put a quoted body on lines of its own: ``AS $$BEGIN`` and ``AS $$\nBEGIN`` in the
    source files are the same function. BEGIN ATOMIC bodies (empty prosrc) are deparsed by
    the server and C/internal bodies are symbol names: those are left alone."""
    if not body or language in ("c", "internal"):
        return definition
    closing = _CLOSING_TAG.search(definition)
    if closing is None:
        return definition
    tag = closing.group(0).strip()
    before = definition[: closing.start()]
    if not before.endswith(body) or not before[: len(before) - len(body)].endswith(tag):
        return definition
    return f"{before[: len(before) - len(body)]}\n{normalize(body)}\n{tag}"


def _functions(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["prokind"] == "a":
            kind = "aggregate"
            text = _lines(
                f"AGGREGATE {row['ident']}",
                f"RETURNS {row['aggresult']}",
                "ORDERED-SET" if row["aggkind"] == "o" else
                ("HYPOTHETICAL-SET" if row["aggkind"] == "h" else None),
                f"SFUNC = {row['transfn']}",
                f"STYPE = {row['transtype']}",
                f"FINALFUNC = {row['finalfn']}" if row["finalfn"] else None,
                f"COMBINEFUNC = {row['combinefn']}" if row["combinefn"] else None,
                f"MSFUNC = {row['mtransfn']}" if row["mtransfn"] else None,
                f"SORTOP = {row['sortop']}" if row["sortop"] else None,
                f"INITCOND = {sql_literal(row['agginitval'])}"
                if row["agginitval"] is not None else None,
            )
        else:
            kind = "procedure" if row["prokind"] == "p" else "function"
            text = _function_text(row["def"], row["prosrc"], row["lanname"])
        c.add(kind, row["ident"], text)
        c.owner(kind, row["ident"], row["owner"])


def _triggers(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        state = _TRIGGER_STATE.get(row["tgenabled"], row["tgenabled"])
        c.add("trigger", row["ident"], _lines(row["def"], state),
              parent=(_RELKIND_NAMES[row["relkind"]], row["tbl"]))


def _policies(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        c.add("policy", row["ident"], _lines(
            f"POLICY {row['name']} ON {row['tbl']}",
            "AS PERMISSIVE" if row["polpermissive"] else "AS RESTRICTIVE",
            f"FOR {_POLICY_COMMANDS.get(row['polcmd'], row['polcmd'])}",
            f"TO {', '.join(row['roles'])}",
            f"USING ({row['using_expr']})" if row["using_expr"] is not None else None,
            f"WITH CHECK ({row['check_expr']})" if row["check_expr"] is not None else None,
        ), parent=(_RELKIND_NAMES[row["relkind"]], row["tbl"]))


def _types(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        ident = row["ident"]
        typtype = row["typtype"]
        if typtype == "e":
            kind = "enum"
            text = _lines(f"ENUM {ident}", *(f"  {sql_literal(label)}" for label in row["labels"]))
        elif typtype == "d":
            kind = "domain"
            text = _lines(
                f"DOMAIN {ident} AS {row['basetype']}",
                f"COLLATE {row['collation']}" if row["collation"] else None,
                f"DEFAULT {row['default_expr']}" if row["default_expr"] is not None else None,
                "NOT NULL" if row["typnotnull"] else None,
                *row["checks"],
            )
        elif typtype == "r":
            kind = "type"
            text = _lines(
                f"TYPE {ident} AS RANGE",
                f"  SUBTYPE = {row['subtype']}",
                f"  SUBTYPE_OPCLASS = {row['subopclass']}",
                f"  COLLATION = {row['subcollation']}" if row["subcollation"] else None,
                f"  CANONICAL = {row['canonical']}" if row["canonical"] else None,
                f"  SUBTYPE_DIFF = {row['subdiff']}" if row["subdiff"] else None,
            )
        else:
            kind = "type"
            text = _lines(f"TYPE {ident} AS", *(f"  {a}" for a in row["attributes"]))
        c.add(kind, ident, text)
        c.owner(kind, ident, row["owner"])


def _grants(c: _Collector, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        target = (row["kind"], row["ident"])
        c.add("grant", f"{row['kind']} {row['ident']} TO {row['grantee']}",
              f"GRANT {row['privileges']} ON {row['kind'].upper()} {row['ident']} "
              f"TO {row['grantee']}", parent=target)


# --- entry point -----------------------------------------------------------------------------


def snapshot(conn: psycopg.Connection[Any], options: CatalogOptions = DEFAULT_OPTIONS
             ) -> Snapshot:
    """Read the schema of ``conn``'s database (read-only, one transaction, rolled back).

    The connection must be idle; it is left idle with its autocommit setting unchanged.
    """
    if options.column_order not in ("warn", "ignore", "drift"):
        raise ConfigError(f"column_order must be 'warn', 'ignore' or 'drift', "
                          f"not {options.column_order!r}")
    status = conn.info.transaction_status
    if status != TransactionStatus.IDLE:
        raise CatalogError(
            f"snapshot() needs an idle connection (it opens its own read-only transaction); "
            f"this one is {status.name}: commit or roll back first."
        )
    version, major = _version(conn.info.server_version)
    if major < MIN_MAJOR:
        raise CatalogError(
            f"PostgreSQL {version} is too old for the schema check: the catalog queries need "
            f"PostgreSQL {MIN_MAJOR} or newer."
        )
    autocommit = conn.autocommit
    # In autocommit mode psycopg sends nothing by itself, so the BEGIN below is the only one
    # and carries our isolation level and READ ONLY whatever the connection's defaults are.
    conn.autocommit = True
    try:
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            server_settings = dbprops.read_server_settings(conn)  # before our SET LOCALs
            with _batched(conn):  # one round trip
                for statement in _SESSION_SETTINGS:
                    conn.execute(statement)
            collector = _Collector(options)
            database = dbprops.read(conn, major, role_settings=True)
            for identity, definition in dbprops.objects(database, with_roles=False):
                collector.add("database", identity, definition)
            with paused_gc():
                excluded = _read(conn, collector, major)
                objects = _in_report_order(collector.objects)
        finally:
            if conn.info.transaction_status != TransactionStatus.IDLE and not conn.closed:
                conn.execute("ROLLBACK")
    finally:
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            conn.autocommit = autocommit
    return Snapshot(version, major, objects, sorted(excluded), database, server_settings)


def _in_report_order(objects: dict[tuple[str, str], CatalogObject]
                     ) -> dict[tuple[str, str], CatalogObject]:
    """Sorted by (KIND_ORDER, kind, identity): kind by kind, each kind's identities sorted
    as plain strings (cheaper than one sort over 70,000 computed tuple keys)."""
    by_kind: dict[str, list[str]] = {}
    for kind, identity in objects:
        by_kind.setdefault(kind, []).append(identity)
    ordered: dict[tuple[str, str], CatalogObject] = {}
    for kind in sorted(by_kind, key=lambda k: (KIND_ORDER.get(k, len(KINDS)), k)):
        for identity in sorted(by_kind[kind]):
            ordered[(kind, identity)] = objects[(kind, identity)]
    return ordered


def _in_batches(cur: psycopg.Cursor[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A query's rows, made a few thousand at a time (each collector reads its rows once):
    all 90,000 column rows of a 10,000-table schema as dicts at once would be ~100 MB."""
    with cur:
        while batch := cur.fetchmany(2000):
            yield from batch


def _read(conn: psycopg.Connection[Any], c: _Collector, major: int) -> list[str]:
    ahead: dict[str, psycopg.Cursor[dict[str, Any]]] = {}
    with conn.cursor(row_factory=dict_row) as cur:

        def rows(query: str, params: Mapping[str, Any] | None = None
                 ) -> Iterable[dict[str, Any]]:
            sent = ahead.pop(query, None)
            if sent is not None:
                return _in_batches(sent)
            cur.execute(query, params)
            return cur.fetchall()

        def send_ahead(*queries: tuple[str, Mapping[str, Any] | None]) -> None:
            """Send these queries in one round trip; rows() then hands out their rows (a
            query not sent ahead just runs when rows() asks for it)."""
            with _batched(conn):
                for query, query_params in queries:
                    ahead[query] = conn.cursor(row_factory=dict_row)
                    ahead[query].execute(query, query_params)

        included, excluded = _schemas(c, rows(_NAMESPACES))
        params = {"schemas": included, "members": c.options.include_extension_members}
        triggers = _TRIGGERS.format(
            parent_filter="AND t.tgparentid = 0" if major >= 13 else "",
            is_member=_IS_MEMBER.format(catalog="pg_class", oid="c.oid"))
        send_ahead((_EXTENSIONS, None), *((q, params) for q in (
            _RELATIONS, _COLUMNS, _CONSTRAINTS, _INDEXES, _SEQUENCES, _FUNCTIONS, triggers,
            _POLICIES, _TYPES, *([_GRANTS] if c.options.include_grants else []))))
        _extensions(c, rows(_EXTENSIONS), excluded)
        _relations(c, rows(_RELATIONS, params))
        _columns(c, rows(_COLUMNS, params))
        _constraints(c, rows(_CONSTRAINTS, params))
        _indexes(c, rows(_INDEXES, params))
        _sequences(c, rows(_SEQUENCES, params))
        _functions(c, rows(_FUNCTIONS, params))
        _triggers(c, rows(triggers, params))
        _policies(c, rows(_POLICIES, params))
        _types(c, rows(_TYPES, params))
        if c.options.include_grants:
            _grants(c, rows(_GRANTS, params))
    return excluded
