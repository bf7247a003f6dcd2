"""First imports that may run on two threads at once.

``schemasync check`` imports the check code (and psycopg) on the thread that reads production
while the main thread starts the scratch server, which imports psycopg too (and ``Scratch``
imports it on a thread of its own while the server starts). Two threads importing a package
with import cycles for the first time can each hold a module lock the other needs; Python then
hands one of them a partly initialised module ("ImportError: cannot import name ... from
partially initialized module"). So every import that may overlap another thread's goes
through ``ensure_imported``: one at a time, each finished before anyone uses it. It must only
be called at run time, never while a module is being imported.
"""

from __future__ import annotations

import importlib
import threading

_LOCK = threading.RLock()


def ensure_imported(*names: str) -> None:
    """Import ``names`` (absolute module names), waiting for another thread's imports."""
    with _LOCK:
        for name in names:
            importlib.import_module(name)
