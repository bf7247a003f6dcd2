"""The embedded clusters: the kept one in the cache folder and leases on it, private
throwaway ones, preloaded libraries, and removing the cache.

The embedded cluster is kept across sessions (on tmpfs when there is one), so its templates
are a cache; one session owns it at a time through a file lock, and a second concurrent
session gets a private, throwaway cluster instead of waiting.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from .binaries import PgBinaries
from .errors import ConfigError, ServerError
from .osuser import OsUser
from .server import EmbeddedCluster, pid_in_file, process_alive
from .swap import write_atomic

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by pytest-schemasync.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/spec.html\n"
)
PRELOAD_FILE = "preload-libraries"  # the templates' extension libraries, one per line
MAX_SOCKET_PATH = 100  # sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN"


def default_cache_root() -> Path:
    """A per-user folder on tmpfs when one is writable (clones are ~10x faster there)."""
    uid = os.getuid()
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"pytest-schemasync-{uid}"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pytest-schemasync"


def ensure_cache_dir(path: Path) -> Path:
    """Create ``path`` with a CACHEDIR.TAG atomically (a temp sibling renamed into place).
    An existing one must be ours: the server runs code and keeps data from there."""
    if path.is_dir():
        owner = path.stat().st_uid
        if owner != os.getuid():
            raise ConfigError(
                f"The cache directory {path} belongs to another user (uid {owner}), so it could "
                f"have been prepared by someone else. Remove it, or choose one of your own "
                f"with --schemasync-cache-dir / SCHEMASYNC_CACHE_DIR.")
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        (tmp / "CACHEDIR.TAG").write_text(CACHEDIR_TAG)
        os.chmod(tmp, 0o755)  # the unprivileged server user must traverse it
        try:
            tmp.rename(path)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another process won the race; use theirs
            if not path.is_dir():
                raise
    except OSError as exc:
        raise cache_dir_error(path, exc) from None
    return path


def cache_dir_error(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(
        f"Cannot create the cache directory {path}: {exc.strerror or exc}. Choose a writable "
        f"one with --schemasync-cache-dir / SCHEMASYNC_CACHE_DIR."
    )


def is_cache_dir(path: Path) -> bool:
    try:
        return "pytest-schemasync" in (path / "CACHEDIR.TAG").read_text()
    except OSError:
        return False


def _session_locks(root: Path) -> list[Path]:
    """The lock files sessions hold on the clusters of ``root`` (cached and private)."""
    return [*root.glob("pg*-*/cluster.lock"), *root.glob("private/*/owner.lock")]


def cache_in_use(root: Path) -> Path | None:
    """A cluster folder of ``root`` that a running session holds, if any."""
    for lock_path in _session_locks(root):
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return lock_path.parent
        lock.release()
    return None


def remove_cache(root: Path) -> bool:
    """Delete the whole cache folder (every project's templates); a server a killed session
    left running there is stopped first. Refused while a session uses it. Returns whether
    there was anything to delete."""
    if not root.is_dir():
        return False
    if not is_cache_dir(root):
        raise ConfigError(f"{root} has no pytest-schemasync CACHEDIR.TAG, so it is not our "
                          f"cache folder; not deleting it.")
    locks: list[FileLock] = []
    try:
        for lock_path in _session_locks(root):
            lock = FileLock(str(lock_path))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                raise ConfigError(
                    f"A running pytest session uses {lock_path.parent}; run this again when it "
                    f"has finished.") from None
            locks.append(lock)
        # Out of the way in one step, so a session starting now makes a new cache instead
        # of using a half-deleted one.
        doomed = root.with_name(f".{root.name}-deleting-{os.getpid()}")
        os.rename(root, doomed)
    except OSError as exc:
        raise ConfigError(f"Cannot delete {root}: {exc.strerror or exc}.") from None
    finally:
        for lock in locks:
            lock.release()
    for pid_file in doomed.glob("**/postmaster.pid"):
        _stop_postmaster(pid_file.parent, root / pid_file.parent.relative_to(doomed))
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def _stop_postmaster(data_dir: Path, started_in: Path) -> None:
    """Stop the server of ``data_dir`` (immediate: it is about to be deleted), if the pid in
    its pid file really is that server (its working directory is the data directory)."""
    pid = pid_in_file(data_dir)
    try:
        if pid is None:
            return
        cwd = Path(os.readlink(f"/proc/{pid}/cwd").removesuffix(" (deleted)"))
    except OSError:
        return  # no such process, or not ours to look at
    if cwd not in (data_dir, started_in):
        return  # the pid now belongs to another program
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process_alive(pid):
        time.sleep(0.01)


def _socket_dir(preferred: Path) -> Path:
    if len(str(preferred)) <= MAX_SOCKET_PATH:
        return preferred
    tag = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"schemasync-{tag}"


@dataclass(frozen=True)
class Preloaded:
    libraries: tuple[str, ...] = ()
    file: Path | None = None  # where the templates' libraries are remembered ("auto")
    problem: str | None = None


@dataclass
class ClusterLease:
    """An embedded cluster this session owns until ``release``."""

    cluster: EmbeddedCluster
    lock: FileLock
    cached: bool  # the shared cluster that keeps templates across sessions
    private_dir: Path | None = None
    found_orphan: bool = False
    preloaded: Preloaded = Preloaded()

    def remember_libraries(self, libraries: set[str]) -> None:
        """Add the templates' extension libraries to the list preloaded from the next start."""
        path = self.preloaded.file
        if path is None or not libraries:
            return
        with contextlib.suppress(OSError), _preload_lock(path):
            known = set(saved_libraries(path))
            if libraries <= known:
                return
            write_atomic(path, "".join(f"{name}\n" for name in sorted(known | libraries)))

    def begin_release(self) -> None:
        """Ask the server for its fast shutdown now, without waiting: it runs while the caller
        finishes up, and ``release`` then waits for it (sending the same signal again)."""
        pid = self.cluster.running_pid()
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)

    def release(self) -> None:
        try:
            self.cluster.stop()
        finally:
            if self.private_dir is not None:
                shutil.rmtree(self.private_dir, ignore_errors=True)
                if self.cluster.socket_dir.is_relative_to(Path(tempfile.gettempdir())):
                    shutil.rmtree(self.cluster.socket_dir, ignore_errors=True)
            self.lock.release()


_SAVED_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # a $libdir library: never a path


def _preload_lock(path: Path) -> FileLock:
    return FileLock(str(path.with_name(path.name + ".lock")), timeout=10)


def saved_libraries(path: Path) -> list[str]:
    """The remembered list, if it is ours alone to write (it makes the server load code)."""
    try:
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            return []
        lines = path.read_text().split()
    except OSError:
        return []
    return [line for line in lines if _SAVED_NAME.match(line)]


def _start_preloading(cluster: EmbeddedCluster, base: Path,
                      preload: tuple[tuple[str, ...], bool]) -> Preloaded:
    """Start ``cluster`` with the libraries to preload (those named, plus with "auto" those
    the templates of this cache used)."""
    explicit, auto = preload
    saved_file = base / PRELOAD_FILE
    remembered = [n for n in saved_libraries(saved_file) if n not in explicit] if auto else []
    base_settings = {k: v for k, v in cluster.settings.items()
                     if k != "shared_preload_libraries"}

    def start(libraries: list[str]) -> None:
        cluster.settings = {**base_settings, **_preload_settings(libraries)}
        try:
            cluster.start()
        except ServerError as exc:
            if not explicit:
                raise
            raise ServerError(
                f"{exc}\nThe server was told to preload {', '.join(explicit)} "
                f"(preload-libraries / --schemasync-preload-libraries): check those names and "
                f"that their packages are installed for PostgreSQL {cluster.binaries.major}."
            ) from None

    try:
        start([*explicit, *remembered])
    except ServerError as exc:
        failed = [name for name in remembered if f'"{name}"' in str(exc)]
        if not failed:
            raise  # not a remembered library's fault (a named one, a full disk, ...)
        # A library the templates used is gone (e.g. its package was removed): start without
        # the remembered ones; the next session relearns the list from the templates.
        start(list(explicit))
        with contextlib.suppress(OSError), _preload_lock(saved_file):
            saved_file.unlink(missing_ok=True)
        return Preloaded(explicit, saved_file if auto else None,
                         f"could not preload {', '.join(failed)}, so the server started "
                         f"without the remembered libraries ({', '.join(remembered)})")
    return Preloaded((*explicit, *remembered), saved_file if auto else None)


def _preload_settings(libraries: list[str]) -> dict[str, str]:
    return {"shared_preload_libraries": "'" + ",".join(libraries) + "'"} if libraries else {}


def _stop_launched(cluster: EmbeddedCluster | None, *, wait: bool) -> None:
    """After Ctrl-C/SIGTERM during start-up: a postmaster that was launched must not outlive
    us (its pid file can appear a moment after pg_ctl returns, hence ``wait``)."""
    if cluster is None or not cluster.data_dir.exists():
        return
    deadline = time.monotonic() + (1.0 if wait else 0.0)
    with contextlib.suppress(Exception):
        while True:  # checked at least once, even without waiting
            if cluster.running_pid() is not None:
                cluster.stop(mode="immediate")
                return
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def _stop_orphan(cluster: EmbeddedCluster) -> bool:
    """Stop a postmaster left running by a session that was killed (we hold its lock now)."""
    if cluster.running_pid() is None:
        return False
    cluster.stop(mode="immediate")
    return True


def sweep_private_clusters(root: Path, binaries: PgBinaries, os_user: OsUser | None) -> int:
    """Remove private clusters whose owning session is gone (their lock is free)."""
    private = root / "private"
    removed = 0
    if not private.is_dir():
        return 0
    for entry in private.iterdir():
        lock_path = entry / "owner.lock"
        if not entry.is_dir():
            continue
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        try:
            socket_file = entry / "socket-dir"
            socket_dir = Path(socket_file.read_text()) if socket_file.exists() else entry / "run"
            cluster = EmbeddedCluster(binaries, entry / "data", socket_dir, os_user=os_user)
            _stop_orphan(cluster)
            shutil.rmtree(entry, ignore_errors=True)
            if socket_dir != entry / "run":
                shutil.rmtree(socket_dir, ignore_errors=True)
            removed += 1
        finally:
            lock.release()
    return removed


def acquire_cluster(root: Path, binaries: PgBinaries, os_user: OsUser | None,
                    preload: tuple[tuple[str, ...], bool] = ((), False)) -> ClusterLease:
    """Own the cached cluster for this session, or a private one if another session has it."""
    ensure_cache_dir(root)
    bindir_tag = hashlib.sha256(str(binaries.bindir).encode()).hexdigest()[:6]
    base = root / f"pg{binaries.major}-{bindir_tag}"
    try:
        base.mkdir(exist_ok=True)
    except OSError as exc:
        raise cache_dir_error(base, exc) from None
    sweep_private_clusters(root, binaries, os_user)
    lock = FileLock(str(base / "cluster.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return _private_cluster(root, binaries, os_user, base, preload)
    cluster: EmbeddedCluster | None = None
    try:
        cluster = EmbeddedCluster(binaries, base / "data", _socket_dir(base / "run"),
                                  os_user=os_user)
        orphan = _stop_orphan(cluster)
        if not cluster.initialized:
            cluster.initialize()
        preloaded = _start_preloading(cluster, base, preload)
    except BaseException as exc:
        _stop_launched(cluster, wait=not isinstance(exc, Exception))
        lock.release()
        raise
    return ClusterLease(cluster=cluster, lock=lock, cached=True, found_orphan=orphan,
                        preloaded=preloaded)


def _private_cluster(root: Path, binaries: PgBinaries, os_user: OsUser | None, base: Path,
                     preload: tuple[tuple[str, ...], bool]) -> ClusterLease:
    private = root / "private"
    private.mkdir(exist_ok=True)
    os.chmod(private, 0o755)
    entry = private / f"{os.getpid()}-{secrets.token_hex(3)}"
    entry.mkdir()
    lock = FileLock(str(entry / "owner.lock"))
    lock.acquire(timeout=0)
    cluster: EmbeddedCluster | None = None
    try:
        socket_dir = _socket_dir(entry / "run")
        (entry / "socket-dir").write_text(str(socket_dir))
        cluster = EmbeddedCluster(binaries, entry / "data", socket_dir, os_user=os_user)
        cluster.initialize()
        preloaded = _start_preloading(cluster, base, preload)  # the cached cluster's list
    except BaseException as exc:
        _stop_launched(cluster, wait=not isinstance(exc, Exception))
        lock.release()
        shutil.rmtree(entry, ignore_errors=True)
        raise
    return ClusterLease(cluster=cluster, lock=lock, cached=False, private_dir=entry,
                        preloaded=preloaded)
