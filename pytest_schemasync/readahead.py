"""Production reads started before the scratch server is up (``schemasync check``).

Reading production's catalog is most of a warm check, and it needs nothing from the scratch
server until the two snapshots are compared. So the command starts it first, in a thread,
and the server's start (pg_ctl, waiting for ready, imports) overlaps it instead of coming
before it. Whether production is the scratch server itself is still asked, once that one is
up and before either snapshot is used (``check.check_set``).

Kept free of psycopg at import time: the thread imports the check code itself, so that too
overlaps the server's start.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from .config import SchemaSet, Settings
from .errors import ConfigError
from .lazyimport import ensure_imported


class ReadAhead:
    """``ReadAhead(settings, names)``: one thread reads the production of each set to be
    checked, in order; ``take(name)`` hands out that set's future (an ``AheadRead``, or None
    when the set has no production)."""

    def __init__(self, settings: Settings, names: list[str] | None,
                 environ: Mapping[str, str] | None = None) -> None:
        try:
            sets = ([settings.schema_set(n) for n in names] if names
                    else list(settings.sets.values()))
        except ConfigError:
            sets = []  # check_sets reports the unknown name, as without reading ahead
        self._futures: dict[str, Future[Any]] = {s.name: Future() for s in sets}
        # A daemon: a failed server start must not wait for production to answer.
        self._thread = threading.Thread(target=self._run, args=(settings, sets, environ),
                                         name="schemasync-production", daemon=True)
        self._thread.start()

    def _run(self, settings: Settings, sets: list[SchemaSet],
             environ: Mapping[str, str] | None) -> None:
        for schema_set in sets:
            future = self._futures[schema_set.name]
            if not future.set_running_or_notify_cancel():
                continue
            try:
                ensure_imported(f"{__package__}.check")  # the main thread imports too
                from .check import read_production_ahead

                future.set_result(read_production_ahead(settings, schema_set, environ))
            except BaseException as exc:  # raised where check_set takes the result
                future.set_exception(exc)

    def take(self, name: str) -> Future[Any] | None:
        return self._futures.pop(name, None)

    def close(self) -> None:
        """Reads not begun are not begun; one under way ends with the process."""
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
