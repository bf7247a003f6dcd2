"""Finding production and reaching it read-only.

Every connection made here is read-only twice over: the session default
(``default_transaction_read_only=on`` sent as a startup option) and the read-only
REPEATABLE READ transaction the catalog snapshot runs in. Nothing here writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from dotenv import dotenv_values

from .config import Environment, SchemaSet, Settings
from .errors import ConfigError, ProductionError
from .masking import mask_secrets
from .server import LIBPQ_ENV, ServerInfo, ServerKind, server_info_from_url

# The layout teams already keep in .env.production files.
# The PG* variables that name production when nothing else does.
_PRODUCTION = ServerKind.PRODUCTION
_PG_VARIABLES = ("host", "port", "user", "password", "dbname", "sslmode", "sslrootcert")
DOTENV_KEYS = {
    "DB_HOST": "host", "DB_PORT": "port", "DB_NAME": "dbname", "DB_USER": "user",
    "DB_PASSWORD": "password", "DB_SSL_MODE": "sslmode", "DB_SSL_ROOT_CERT": "sslrootcert",
}


@dataclass(frozen=True)
class ProductionTarget:
    info: ServerInfo
    source: str  # where the target was named, e.g. "env GAMEFORGE_PRODUCTION_URL"
    name: str = "production"  # the side as the user named it (``diff dev``); "" for a URL

    @property
    def described(self) -> str:
        """How messages name the database: "production at URL", "dev at URL", or the URL."""
        return f"{self.name} at {self.masked}" if self.name else self.masked

    @property
    def dbname(self) -> str:
        return self.info.admin_db

    @property
    def masked(self) -> str:
        return mask_secrets(self.info.url(), self.secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.info.password,) if self.info.password else ()


def _from_dotenv(path: Path, origin: str, side: str = "production") -> ServerInfo:
    if not path.is_file():
        fix = "remove production-dotenv" if side == "production" else "fix the name"
        raise ConfigError(
            f"The {side} dotenv file {path} does not exist (named at {origin}). Create it "
            f"with DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD (and DB_SSL_MODE), or {fix}."
        )
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    parts = {DOTENV_KEYS[k]: v for k, v in values.items() if k in DOTENV_KEYS}
    missing = [k for k in ("DB_HOST", "DB_NAME", "DB_USER") if k not in values]
    if missing:
        raise ConfigError(f"{path}: missing {', '.join(missing)} (needed to reach {side}).")
    info = server_info_from_url(psycopg.conninfo.make_conninfo(**parts), kind=_PRODUCTION)
    return info


def resolve_production(settings: Settings, schema_set: SchemaSet,
                       environ: Mapping[str, str] | None = None) -> ProductionTarget | None:
    """Where this set's production is, or None when nothing names it.

    Order: the set's ``production-url-env`` variable, ``SCHEMASYNC_PRODUCTION_URL_<SET>``,
    the set's ``production-dotenv`` file, then (default set only) ``--schemasync-production-url``
    / ``SCHEMASYNC_PRODUCTION_URL`` and finally the standard ``PG*`` variables.
    """
    environ = os.environ if environ is None else environ
    candidates: list[tuple[str, str]] = []
    if schema_set.production_url_env:
        candidates.append((schema_set.production_url_env, f"env {schema_set.production_url_env}"))
    specific = "SCHEMASYNC_PRODUCTION_URL_" + schema_set.name.upper().replace("-", "_")
    candidates.append((specific, f"env {specific}"))
    for var, source in candidates:
        if environ.get(var):
            return ProductionTarget(server_info_from_url(environ[var], kind=_PRODUCTION), source)
    if schema_set.production_dotenv is not None:
        path = schema_set.production_dotenv
        return ProductionTarget(_from_dotenv(path, schema_set.origin(path)), f"file {path.name}")
    if schema_set.name == settings.default_set:
        if settings.production_url:
            return ProductionTarget(server_info_from_url(settings.production_url,
                                                         kind=_PRODUCTION),
                                    "--schemasync-production-url")
        if environ.get("PGHOST") and environ.get("PGDATABASE"):
            parts = {key: environ[LIBPQ_ENV[key]] for key in _PG_VARIABLES
                     if environ.get(LIBPQ_ENV[key])}
            info = server_info_from_url(psycopg.conninfo.make_conninfo(**parts), kind=_PRODUCTION)
            return ProductionTarget(info, "PG* variables")
    return None


def environment_target(environment: Environment,
                       environ: Mapping[str, str] | None = None) -> ProductionTarget:
    """The database a ``[tool.schemasync.environments.NAME]`` table names."""
    environ = os.environ if environ is None else environ
    if environment.dotenv is not None:
        return ProductionTarget(_from_dotenv(environment.dotenv, environment.origin,
                                             f"environment {environment.name!r}"),
                                f"environment {environment.name} (file "
                                f"{environment.dotenv.name})", environment.name)
    var = environment.url_env or ""
    if not environ.get(var):
        raise ConfigError(f"Environment {environment.name!r} ({environment.origin}) reads its "
                          f"URL from ${var}, which is not set. Export it.")
    return ProductionTarget(server_info_from_url(environ[var], kind=_PRODUCTION),
                            f"environment {environment.name} (env {var})", environment.name)


def named_target(spec: str, settings: Settings, cwd: Path,
                 environ: Mapping[str, str] | None = None) -> ProductionTarget:
    """A database given on the command line as an environment name, ``env:VAR``, a libpq
    URL, or a dotenv file (DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, DB_SSL_MODE)."""
    environ = os.environ if environ is None else environ
    if spec in settings.environments:
        return environment_target(settings.environments[spec], environ)
    if spec.startswith(("env:", "$")):
        var = spec.removeprefix("env:").removeprefix("$")
        if not environ.get(var):
            raise ConfigError(f"{spec}: the environment variable {var} is not set.")
        return ProductionTarget(server_info_from_url(environ[var], kind=_PRODUCTION),
                                f"env {var}", spec)
    if re.match(r"^postgres(ql)?://", spec) or "=" in spec:
        return ProductionTarget(server_info_from_url(spec, kind=_PRODUCTION), "command line",
                                "")
    path = (cwd / spec) if not Path(spec).is_absolute() else Path(spec)
    if path.is_file():
        return ProductionTarget(_from_dotenv(path, "the command line", spec),
                                f"file {path.name}", spec)
    known = ", ".join(sorted(settings.environments)) or "none configured"
    raise ConfigError(
        f"{spec!r} is not an environment (configured: {known}), a postgresql:// URL, "
        f"env:VARIABLE or an existing dotenv file. Name environments under "
        f"[tool.schemasync.environments.NAME] with url-env or dotenv."
    )


def _classify(exc: psycopg.OperationalError, target: ProductionTarget, timeout: int) -> str:
    text = str(exc).strip()
    # Classify on the wording of libpq and the server only: the quoted names in a message
    # (database, user, host, file) are the user's and may contain any of the words looked
    # for, e.g. a database called "ssl_archive".
    low = re.sub(r'"[^"]*"', '""', text.lower())
    if "password authentication failed" in low or "no password supplied" in low:
        what = "the server refused the credentials (wrong user or password)"
        todo = "check the user and password where they are set"
    elif "no pg_hba.conf entry" in low and "no encryption" in low:
        what = ("the server refused a connection without SSL from this host for this user "
                "and database (pg_hba.conf); it probably accepts SSL connections only")
        todo = "connect with sslmode=require (or verify-full with sslrootcert)"
    elif "no pg_hba.conf entry" in low:
        what = ("the server's pg_hba.conf allows no connection from this host for this user "
                "and database")
        todo = "check host, user and database, or ask the server's administrator for access"
    elif "does not exist" in low and "database" in low:
        what = f"database {target.dbname!r} does not exist on that server"
        todo = "check the database name"
    elif "ssl" in low:
        what = "the SSL negotiation failed"
        todo = "check sslmode (require/verify-full), the server's SSL setup and the CA file"
    elif "timeout" in low or "timed out" in low:
        what = f"no answer within {timeout}s"
        todo = "check host, port, VPN/firewall, or raise --schemasync-connect-timeout"
    elif "connection refused" in low or "could not translate host" in low or "no route" in low:
        what = "the server is unreachable"
        todo = "check host and port, and that the server is up"
    else:
        what = "the connection failed"
        todo = "check the connection settings"
    return mask_secrets(
        f"Cannot reach {target.described} (from {target.source}): {what}; {todo}. "
        f"Server said: {text}", target.secrets,
    )


def connect_readonly(target: ProductionTarget, timeout: int = 5) -> psycopg.Connection[Any]:
    """A connection whose every transaction is read-only; verified before it is returned."""
    options = (target.info.params.get("options", "") + " -c default_transaction_read_only=on")
    conninfo = target.info.conninfo(connect_timeout=max(1, timeout), options=options.strip(),
                                    application_name="pytest-schemasync (read-only)")
    try:
        conn = psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as exc:
        raise ProductionError(_classify(exc, target, timeout)) from None
    row = conn.execute("SHOW default_transaction_read_only").fetchone()
    if not row or row[0] != "on":
        conn.close()
        raise ProductionError(
            f"The server of {target.described} did not accept default_transaction_read_only="
            f"on; refusing to go on (a pooler may strip startup options: connect directly)."
        )
    return conn


def system_identifier(conn: psycopg.Connection[Any]) -> str | None:
    """The cluster's unique id, to tell two servers apart (None when not readable)."""
    try:
        # Rolled back, not committed: a production session sends nothing but reads,
        # BEGIN and ROLLBACK (the read-only test checks the server's statement log).
        with conn.transaction(force_rollback=True):
            row = conn.execute("SELECT system_identifier::text FROM pg_control_system()").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None
