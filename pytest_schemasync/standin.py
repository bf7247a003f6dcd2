"""A stand-in "production" server for demos and tests: TCP on 127.0.0.1, passwords, roles.

It is a separate throwaway cluster (never the scratch server), with an owner role that
installs the schema and a read-only role of the kind a schema check should be given. Optional
``log_statement=all`` and a self-signed certificate let tests prove what the check sends and
that ``sslmode`` is honoured.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .binaries import find_binaries
from .install import InstallTarget, read_schema_file, run_sql
from .osuser import reachable_binaries, server_os_user
from .server import EmbeddedCluster, ServerInfo, ServerKind

OWNER = "app_owner"
READER = "app_reader"


def _major() -> int | None:
    """The major a stand-in runs, as the plugin's SCHEMASYNC_PG_VERSION picks it."""
    value = os.environ.get("SCHEMASYNC_PG_VERSION", "")
    return int(value) if value.isdigit() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _self_signed_cert(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "server.key", directory / "server.crt"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return key, cert


class StandinProduction:
    """``with StandinProduction() as prod:`` gives a running server with two roles."""

    def __init__(self, *, ssl: bool = False, log_statements: bool = False,
                 password: str = "s3cret-Prod-pw", base_dir: Path | None = None,
                 major: int | None = None) -> None:
        self.ssl = ssl
        self.major = major
        self.password = password
        self.log_statements = log_statements
        self.base_dir = base_dir
        self._tmp: Path | None = None
        self.cluster: EmbeddedCluster | None = None
        self.ca_file: Path | None = None

    def __enter__(self) -> StandinProduction:
        try:
            self.start()
        except BaseException:
            self.stop()  # e.g. ssl on a build without SSL: no directory left behind
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        binaries = find_binaries(os.environ.get("SCHEMASYNC_PG_BINDIR"),
                                 major=self.major or _major())
        os_user = server_os_user(os.environ.get("SCHEMASYNC_SERVER_USER"))
        root = Path(tempfile.mkdtemp(prefix="standin-prod-", dir=self.base_dir or "/dev/shm"
                                     if Path("/dev/shm").is_dir() else None))
        os.chmod(root, 0o755)
        self._tmp = root
        binaries = reachable_binaries(binaries, os_user, root)
        settings = {"listen_addresses": "'127.0.0.1'", "password_encryption": "'scram-sha-256'"}
        if self.log_statements:
            settings.update(log_statement="'all'", log_min_messages="info",
                            log_line_prefix="'%m [%p] %u@%d '")
        if self.ssl:
            certs = root / "certs"
            certs.mkdir()
            key, cert = _self_signed_cert(certs)
            self.ca_file = cert
            settings.update(ssl="on", ssl_cert_file=f"'{cert}'", ssl_key_file=f"'{key}'")
        for attempt in range(3):
            cluster = EmbeddedCluster(binaries, root / "data", root / "run", os_user=os_user,
                                      port=_free_port(), superuser="postgres", settings=settings)
            if not cluster.initialized:
                cluster.initialize()
                self._write_hba(cluster)
            if self.ssl and os_user is not None:
                for path in (root / "certs").iterdir():
                    os.chown(path, os_user.uid, os_user.gid)
                os.chmod(root / "certs" / "server.key", 0o600)
            try:
                cluster.start()
                break
            except Exception:
                if attempt == 2:
                    raise
        self.cluster = cluster
        with self.superuser_connect() as conn:
            # The owner installs extensions such as PostGIS, which needs superuser rights.
            for role, rights in ((OWNER, "LOGIN SUPERUSER"), (READER, "LOGIN")):
                conn.execute(sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(
                    sql.Identifier(role), sql.SQL(rights), sql.Literal(self.password)))

    def _write_hba(self, cluster: EmbeddedCluster) -> None:
        # Local superuser by trust (our own setup), everyone else over TCP with a password.
        method = "hostssl" if self.ssl else "host"
        hba = cluster.data_dir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            f"{method} all all 127.0.0.1/32 scram-sha-256\n"
        )
        if cluster.os_user is not None:
            os.chown(hba, cluster.os_user.uid, cluster.os_user.gid)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop(mode="immediate")
            self.cluster = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # --- access -------------------------------------------------------------------

    @property
    def _cluster(self) -> EmbeddedCluster:
        assert self.cluster is not None, "start() the stand-in first"
        return self.cluster

    def superuser_connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        info = self._cluster.info()
        return psycopg.connect(info.conninfo(dbname), autocommit=True)

    def info(self, dbname: str, role: str = READER, *, sslmode: str | None = None) -> ServerInfo:
        params = {"sslmode": sslmode or ("require" if self.ssl else "disable")}
        return ServerInfo(kind=ServerKind.PRODUCTION, host="127.0.0.1", port=self._cluster.port,
                          user=role, password=self.password, admin_db=dbname, params=params,
                          major=self._cluster.binaries.major,
                          version=self._cluster.binaries.version)

    def url(self, dbname: str, role: str = READER, *, sslmode: str | None = None) -> str:
        return self.info(dbname, role, sslmode=sslmode).url(dbname)

    def create_database(self, name: str, files: list[Path] | tuple[Path, ...] = (),
                        *, options: str = "") -> None:
        """A database owned by the owner role, with ``files`` installed and read rights
        granted to the reader role; ``options`` are more CREATE DATABASE options, e.g.
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"."""
        with self.superuser_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} {}").format(
                sql.Identifier(name), sql.Identifier(OWNER), sql.SQL(options)))
        psql = self._cluster.binaries.tool("psql")
        # Like a real production: the reader role can read whatever the owner creates later.
        with psycopg.connect(self.info(name, OWNER).conninfo(name), autocommit=True) as conn:
            conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} GRANT SELECT ON TABLES "
                         f"TO {READER}")
            conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} GRANT USAGE ON SCHEMAS "
                         f"TO {READER}")
        owner = self.info(name, OWNER)
        for path in files:
            run_sql(InstallTarget(owner, name, psql), path,
                    read_schema_file(path, "stand-in production"), set_name=name,
                    origin="stand-in production")
        self.execute(name, f"""
            DO $$ DECLARE s text; BEGIN
              FOR s IN SELECT nspname FROM pg_namespace
                       WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO {READER}', s);
                EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {READER}', s);
              END LOOP; END $$;
        """)

    def execute(self, dbname: str, statement: str) -> None:
        """Run SQL as superuser (to apply a drift the way a hand-made hotfix would)."""
        with self.superuser_connect(dbname) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def log_text(self) -> str:
        return self._cluster.log_file.read_text(errors="replace")
