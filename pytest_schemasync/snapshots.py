"""The bundled side's catalog snapshot, stored with its template so a check reads it back
instead of cloning the template and reading the clone's catalog again.

Where: one file per template in the cache folder (``snapshots/<template>.json``), not in the
server. A template cannot be connected to, a side table would be a database of ours in a
user's existing server that clones and dumps would have to skip, and a database comment holds
a whole catalog badly. The cache folder is there for the embedded cluster and for an existing
server alike, and xdist workers share it (files are written aside and renamed into place).

Never trusted blindly: the first line holds the key the file was written for (file format,
a hash of the catalog code, the template's name and OID, the server's identity and version,
the catalog options) and a SHA-256 over key and payload. A file whose key differs (a rebuilt
template has a new OID; another server; a changed catalog.py) or whose checksum fails is
ignored, and the snapshot is read from a clone again and stored anew.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path

from . import catalog, dbprops
from .admin import ServerAdmin
from .catalog import CatalogObject, CatalogOptions, Snapshot
from .config import SchemaSet

FORMAT = "2"  # bump when the file layout changes (2: role-level settings, #12)


@functools.cache
def catalog_version() -> str:
    """A hash of the code that reads a catalog (catalog.py and the database properties it
    includes): any change to the queries or the normalizing makes older stored snapshots
    stale, with nothing to bump."""
    digest = hashlib.sha256()
    for module in (catalog, dbprops):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


def encode(snap: Snapshot) -> str:
    return json.dumps({
        "server_version": snap.server_version,
        "server_major": snap.server_major,
        "schemas_excluded": snap.schemas_excluded,
        "database": dataclasses.asdict(snap.database),
        "server_settings": snap.server_settings,
        "objects": [[o.kind, o.identity, o.definition, o.position,
                     list(o.parent) if o.parent else None] for o in snap.objects.values()],
    }, ensure_ascii=False, separators=(",", ":"))


def decode(payload: str) -> Snapshot:
    # One string per kind and one tuple per parent, shared by all their objects, as in a
    # snapshot read from a server (at 10,000 tables ~150,000 parents, ~30 MB otherwise).
    kinds: dict[str, str] = {}
    parents: dict[tuple[str, str], tuple[str, str]] = {}
    with catalog.paused_gc():
        data = json.loads(payload)
        objects = {}
        for kind, identity, definition, position, parent in data["objects"]:
            kind = kinds.setdefault(kind, kind)
            if parent:
                key = (kinds.setdefault(parent[0], parent[0]), parent[1])
                parent = parents.setdefault(key, key)
            objects[(kind, identity)] = CatalogObject(kind, identity, definition, position,
                                                      parent or None)
    database = data["database"]
    props = dbprops.DatabaseProps(**{**database, "settings": tuple(
        (str(name), str(value)) for name, value in database["settings"]),
        "role_settings": tuple((str(role), tuple((str(n), str(v)) for n, v in settings))
                               for role, settings in database["role_settings"])})
    server_settings = {str(name): (str(value), str(source)) for name, (value, source)
                       in data["server_settings"].items()}
    return Snapshot(data["server_version"], int(data["server_major"]), objects,
                    list(data["schemas_excluded"]), props, server_settings)


def catalog_options(schema_set: SchemaSet) -> CatalogOptions:
    """How a set's catalog is read, on both sides of a check."""
    return CatalogOptions(exclude_schemas=schema_set.exclude_schemas,
                          include_owners=schema_set.include_owners,
                          include_grants=schema_set.include_grants)


def _checksum(key: str, payload: str) -> str:
    return hashlib.sha256(f"{key}\n{payload}".encode()).hexdigest()


class SnapshotStore:
    """Stored bundled snapshots of one server's templates, in ``folder``."""

    def __init__(self, folder: Path, admin: ServerAdmin) -> None:
        self.folder = folder
        self.admin = admin
        self._server: str | None = None

    def path(self, template: str) -> Path:
        return self.folder / f"{template}.json"

    def _server_identity(self) -> str:
        if self._server is None:
            server = self.admin.server
            ident = self.admin.identifier()
            self._server = f"cluster {ident}" if ident else f"{server.host}:{server.port}"
        return self._server

    def key(self, template: str, options: CatalogOptions) -> str | None:
        """The key a stored snapshot of ``template`` must carry (None: no such template)."""
        row = self.admin.conn.execute(
            "SELECT oid::text FROM pg_database WHERE datname = %s AND datistemplate",
            (template,)).fetchone()
        if row is None:
            return None
        return json.dumps({
            "format": FORMAT, "catalog": catalog_version(), "template": template,
            "oid": row[0], "server": self._server_identity(),
            "version": self.admin.conn.info.server_version,
            "options": dataclasses.asdict(options),
            "role_settings": self._role_wide_settings(),
        }, sort_keys=True)

    def _role_wide_settings(self) -> list[list[str]]:
        """The server's role-wide settings (``ALTER ROLE r SET``; ours are per database):
        clones see them and a snapshot holds them, so a change makes stored ones stale."""
        return [[role, *config] for role, config in self.admin.conn.execute(
            "SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON "
            "r.oid = s.setrole WHERE s.setdatabase = 0 ORDER BY 1")]

    def load(self, template: str, options: CatalogOptions) -> Snapshot | None:
        """The stored snapshot, or None when there is none or it cannot be trusted."""
        try:
            with open(self.path(template), encoding="utf-8") as file:
                head = json.loads(file.readline())
                payload = file.read()
        except (OSError, ValueError):
            return None
        key = self.key(template, options)
        if not isinstance(head, dict) or key is None or head.get("key") != key:
            self._distrust(template, "stale")
            return None
        if head.get("sha256") != _checksum(key, payload):
            self._distrust(template, "corrupted (checksum)")
            return None
        try:
            return decode(payload)
        except (ValueError, KeyError, TypeError):
            self._distrust(template, "unreadable")
            return None

    def save(self, template: str, options: CatalogOptions, snap: Snapshot) -> None:
        """Store ``snap`` as the snapshot of ``template``; drop the set's older ones."""
        key = self.key(template, options)
        if key is None:
            return
        payload = encode(snap)
        head = json.dumps({"key": key, "sha256": _checksum(key, payload)})
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(template)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as file:
            file.write(head + "\n" + payload)
        os.replace(tmp, path)
        # The snapshots of this set's templates that are gone (dropped as stale when a newer
        # one was built) go too; a refresh's other template of the set may still be there.
        prefix = template[: template.rfind("_") + 1]
        alive = set(self.admin.names("starts_with(datname, %s)", prefix))
        for other in self.folder.glob(f"{prefix}*.json"):
            if other.stem not in alive and len(other.stem) == len(template):
                with contextlib.suppress(OSError):
                    other.unlink()

    def prune(self) -> list[str]:
        """Delete the stored snapshots of this server's templates that are gone (and files
        left half written); those of other servers sharing the folder stay."""
        live = set(self.admin.names("datistemplate"))
        gone = []
        for path in sorted(self.folder.glob("*.json*")):
            if path.name.endswith(".tmp"):
                stale = True
            else:
                try:
                    with open(path, encoding="utf-8") as file:
                        server = json.loads(json.loads(file.readline())["key"]).get("server")
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    server = None  # unreadable: nobody can use it
                stale = server in (None, self._server_identity()) and path.stem not in live
            if stale:
                with contextlib.suppress(OSError):
                    path.unlink()
                    gone.append(path.name)
        return gone

    def _distrust(self, template: str, why: str) -> None:
        self.admin.event(f"stored snapshot of {template} {why}: read again")

