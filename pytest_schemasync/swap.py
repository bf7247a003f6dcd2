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


def write_atomic(path: Path, text: str) -> None:
    """Write ``path`` aside, then rename it into place: readers see the old or the new text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_journal(root: Path, payload: dict[str, object]) -> None:
    write_atomic(_journal_path(root), json.dumps(payload))


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
    for tmp in root.glob(f"{JOURNAL}.*.tmp"):  # a journal write that was cut short
        with contextlib.suppress(OSError):
            tmp.unlink()
    return done
