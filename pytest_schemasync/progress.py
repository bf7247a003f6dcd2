"""Progress of long template builds: nothing for the first seconds (most builds are done by
then), then one line, rewritten in place, naming the set, the file and how far psql got."""

from __future__ import annotations

import time
from collections.abc import Callable

SHOW_AFTER = 2.0  # seconds into a build before progress appears
_EVERY = 0.1  # at most this often


class BuildProgress:
    """Progress sink of one process. ``show`` writes one line in place (the caller decides
    whether there is a terminal to write to at all); ``clear`` removes it when a build ends."""

    def __init__(self, show: Callable[[str], None], clear: Callable[[], None], *,
                 after: float = SHOW_AFTER) -> None:
        self._show = show
        self._clear = clear
        self.after = after
        self._began = 0.0
        self._last = 0.0
        self._shown = False
        self._set = ""

    def start(self, set_name: str) -> None:
        self._began = time.monotonic()
        self._last = 0.0
        self._set = set_name

    def file(self, shown: str, index: int, count: int, what: str = "file"
             ) -> Callable[[int, int, int, int], None]:
        """A callback for psql's progress through one file: (bytes done, bytes in all,
        lines done, lines in all)."""

        def report(done: int, total: int, line: int, lines: int) -> None:
            now = time.monotonic()
            if now - self._began < self.after or (now - self._last < _EVERY and done < total):
                return
            self._last = now
            self._shown = True
            percent = 100 * done // total if total else 100
            step = f"{what} {index}/{count} " if count > 1 else ""
            self._show(f"schemasync: building set {self._set!r}: {step}{shown}: {percent}% "
                       f"(line {line:,} of {lines:,}), {now - self._began:.0f}s")

        return report

    def finish(self) -> None:
        if self._shown:
            self._shown = False
            self._clear()


def stderr_progress() -> BuildProgress | None:
    """Progress on the command line's stderr, when that is a terminal."""
    import sys

    stream = sys.stderr
    if not stream.isatty():
        return None

    def show(line: str) -> None:
        stream.write(f"\r{line}\x1b[K")
        stream.flush()

    def clear() -> None:
        stream.write("\r\x1b[K")
        stream.flush()

    return BuildProgress(show, clear)
