"""Replace files all at once through a journal: an interrupted swap is finished (or undone)
by the next command, so the files are never half old, half new.

Kept apart from the refresh so that the recovery every session runs first imports nothing
heavy.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

JOURNAL = ".schemasync-refresh.json"
NEW_SUFFIX = ".schemasync-new"


def _journal_path(root: Path) -> Path:
    return root / JOURNAL


def _write_journal(root: Path, payload: dict[str, object]) -> None:
    journal = _journal_path(root)
    tmp = journal.with_name(journal.name + ".tmp")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, journal)


def replace_files(root: Path, new_texts: dict[Path, str]) -> None:
    """Record the swap in a journal, write each file aside, mark the journal ready, then
    rename. A crash before the journal is ready leaves the old files (``recover`` drops what
    was written aside); after it, ``recover`` finishes the swap."""
    files = [str(p) for p in new_texts]
    _write_journal(root, {"files": files, "ready": False})
    for path, text in new_texts.items():
        aside = path.with_name(path.name + NEW_SUFFIX)
        aside.parent.mkdir(parents=True, exist_ok=True)
        with open(aside, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    _write_journal(root, {"files": files, "ready": True})
    recover(root)


def recover(root: Path) -> list[Path]:
    """Finish a swap a killed refresh or rollback started; drop the files written aside by
    one that never got its journal ready. Returns the files it completed."""
    journal = _journal_path(root)
    done: list[Path] = []
    if journal.exists():
        try:
            data = json.loads(journal.read_text())
            files = [Path(p) for p in data["files"]]
            ready = data.get("ready", True) is True  # journals without the key were ready
        except (ValueError, KeyError, TypeError, AttributeError):
            files, ready = [], False
        for path in files:
            aside = path.with_name(path.name + NEW_SUFFIX)
            if not ready:
                aside.unlink(missing_ok=True)
            elif aside.exists():
                os.replace(aside, path)
                done.append(path)
        journal.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        _journal_path(root).with_name(JOURNAL + ".tmp").unlink(missing_ok=True)
    return done


def clean_strays(paths: list[Path]) -> None:
    for path in paths:
        path.with_name(path.name + NEW_SUFFIX).unlink(missing_ok=True)
