"""The admin connection to the test server, and the few things done through it by everyone:
advisory locks, dropping a database, the event log."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .errors import ServerError
from .masking import mask_dsn
from .names import LOCK_NAMESPACE
from .server import ServerInfo


@dataclass(frozen=True)
class Database:
    """A database we created; ``url`` is a libpq URL any client can use."""

    name: str
    url: str
    conninfo: str
    role: str | None = None  # the role its url and connect() act as (None: the superuser)

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, **kwargs)


class ServerAdmin:
    """One process's autocommit connection to the test server's admin database."""

    def __init__(self, server: ServerInfo, events: Path | None = None) -> None:
        self.server = server
        self.events = events
        self._conn: psycopg.Connection[Any] | None = None
        self._identifier: tuple[str | None] | None = None

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self.connect()
        return self._conn

    def connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection (the clone pool's thread needs its own)."""
        try:
            return psycopg.connect(self.server.conninfo(connect_timeout=10), autocommit=True)
        except psycopg.OperationalError as exc:
            raise ServerError(mask_dsn(
                f"Cannot connect to the {self.server.describe()}: {exc}".strip()
            )) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def identifier(self) -> str | None:
        """The server's system identifier (None when not readable), asked once: it tells two
        servers apart and keys the stored snapshots."""
        if self._identifier is None:
            from .production import system_identifier

            self._identifier = (system_identifier(self.conn),)
        return self._identifier[0]

    def event(self, text: str) -> None:
        if self.events is not None:
            with contextlib.suppress(OSError), open(self.events, "a") as log:
                log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid={os.getpid()} {text}\n")

    def database(self, name: str) -> Database:
        return Database(name=name, url=self.server.url(name), conninfo=self.server.conninfo(name))

    def names(self, where: str, *params: Any) -> list[str]:
        """Names of the databases matching the SQL condition ``where`` (on ``datname``)."""
        return [row[0] for row in self.conn.execute(
            f"SELECT datname FROM pg_database WHERE {where} ORDER BY 1", params or None
        ).fetchall()]

    def lock(self, key: int) -> None:
        self.conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key))

    def unlock(self, key: int) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, key))

    def try_lock(self, key: int) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                (LOCK_NAMESPACE, key)).fetchone()
        return bool(row and row[0])

    @contextlib.contextmanager
    def advisory(self, key: int) -> Iterator[None]:
        self.lock(key)
        try:
            yield
        finally:
            self.unlock(key)

    def drop(self, name: str, conn: psycopg.Connection[Any] | None = None) -> None:
        conn = conn or self.conn
        ident = sql.Identifier(name)
        row = conn.execute(
            "SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if row is None:
            return
        if row[0]:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
        # A connection the test just closed has a backend that exits a moment later; DROP
        # would then sleep 100 ms before looking again. Waiting ourselves takes ~1 ms.
        for _ in range(200):
            busy = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s",
                                (name,)).fetchone()
            if not busy or not busy[0]:
                break
            time.sleep(0.001)
        if self.server.major >= 13:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        else:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
