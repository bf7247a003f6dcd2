"""Clones made ahead of time, and dropped behind the test, on a background connection.

Creating a database from a template costs a few milliseconds on tmpfs and much more on disk;
a test that asks for a clone should find one ready. One thread per process does the work on
its own connection, so the test's thread never waits for it except when the pool is empty.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import psycopg

Connect = Callable[[], psycopg.Connection[Any]]
Create = Callable[[psycopg.Connection[Any], str], str]  # (conn, template) -> new name
Drop = Callable[[psycopg.Connection[Any], str], None]


class ClonePool:
    def __init__(self, connect: Connect, create: Create, drop: Drop, size: int) -> None:
        self._connect = connect
        self._create = create
        self._drop = drop
        self.size = size
        self._ready: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="schemasync-pool",
                                             daemon=True)
            self._thread.start()

    def take(self, template: str) -> str | None:
        """A ready clone of ``template`` (None when none is ready); refills behind it."""
        with self._lock:
            ready = self._ready.setdefault(template, [])
            name = ready.pop(0) if ready else None
        if not self.errors:
            self._ensure_thread()
            self._jobs.put(("fill", template))
        return name

    def discard(self, name: str) -> None:
        """Drop ``name`` in the background."""
        self._ensure_thread()
        self._jobs.put(("drop", name))

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while True:
            job = self._jobs.get()
            if job is None:
                break
            action, arg = job
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                if action == "drop":
                    self._drop(conn, arg)
                    continue
                while True:
                    with self._lock:
                        if len(self._ready.get(arg, [])) >= self.size:
                            break
                    name = self._create(conn, arg)
                    with self._lock:
                        self._ready.setdefault(arg, []).append(name)
            except Exception as exc:  # the test thread falls back to creating clones itself
                self.errors.append(f"{action} {arg}: {exc}")
                with contextlib.suppress(Exception):
                    if conn is not None:
                        conn.close()
                conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> list[str]:
        """Finish queued drops, stop the thread, and return the clones still unused."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=60)
            self._thread = None
        with self._lock:
            leftover = [name for names in self._ready.values() for name in names]
            self._ready.clear()
        return leftover
