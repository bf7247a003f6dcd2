"""Names of what we create on a server. Only databases with these prefixes are ever ours.

``sst_`` templates (kept as the cache, keyed by content hash), ``ssb_`` templates being
built, ``sss_`` per-process rollback databases and ``ssc_`` per-test clones (both carry the
session's token and are dropped at the end). Advisory locks all use ``LOCK_NAMESPACE`` as
their first key, so they never meet an application's own locks.
"""

from __future__ import annotations

import zlib

TEMPLATE = "sst"
BUILDING = "ssb"
ROLLBACK = "sss"
CLONE = "ssc"

LOCK_NAMESPACE = 0x5353  # "SS"
MIGRATE_LOCK = 0x4D494752  # "MIGR": second key of the lock `schemasync migrate` holds
BUILD_LOCK = 0x4255494C  # "BUIL": held for the whole of a template build, one at a time


def sql_literal(value: str) -> str:
    """``value`` as a standard-conforming SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def lock_key(name: str) -> int:
    """Second advisory-lock key for work on the database ``name`` (e.g. building it)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def token_key(token: str) -> int:
    """Second advisory-lock key a live session holds for its token."""
    return int(token, 16) & 0x7FFFFFFF
