"""Our exception types. Each message says what went wrong, where, and what to do.

The pytest layer turns these into ``pytest.UsageError`` / ``pytest.exit``; the CLI prints
the message and exits with ``exit_code``: 10 for drift, 11 when production cannot be reached or
read, 4 (pytest's usage-error status) for everything else. Messages must never contain a
password: build them with ``mask_dsn`` from :mod:`pytest_schemasync.masking`.
"""

from __future__ import annotations


class SchemaSyncError(Exception):
    """Base class: a problem the user can act on, reported without a traceback."""

    exit_code = 4  # pytest's own status for usage errors


class ConfigError(SchemaSyncError):
    """The configuration names something that does not exist or does not fit."""


class PostgresNotFoundError(SchemaSyncError):
    """No usable PostgreSQL binaries on this machine."""


class ServerError(SchemaSyncError):
    """The embedded or existing server could not be started or reached."""


class SchemaFileError(SchemaSyncError):
    """A schema file is missing, unreadable, or refused before it is run."""


class SchemaInstallError(SchemaSyncError):
    """A schema file failed while it was being installed into a scratch database."""


class CatalogError(SchemaSyncError):
    """A catalog could not be read: the server is too old, or the connection was not idle."""


class ExtensionMissingError(SchemaInstallError):
    """A schema file creates an extension this server's installation does not have."""


class ProductionError(SchemaSyncError):
    """Production could not be reached or read (unreachable, auth, missing database, SSL)."""

    exit_code = 11


class DriftError(SchemaSyncError):
    """The bundled schema does not describe production."""

    exit_code = 10  # pytest uses 0-5; ours must not be mistaken for one of them


class MigrationError(SchemaSyncError):
    """A migration folder or history is inconsistent, or a migration failed."""


class RefreshError(SchemaSyncError):
    """A refresh could not produce files that reproduce production; nothing was replaced."""
