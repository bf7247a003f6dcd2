"""pg_dump of production in refresh and dump: read-only, and it leaves a busy production
alone (a lock wait limit and a time limit), against a real stand-in production."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import scratch_cache_dir

from pytest_schemasync.binaries import find_pg_dump
from pytest_schemasync.errors import ProductionError
from pytest_schemasync.refresh import dump_schema
from pytest_schemasync.standin import OWNER, StandinProduction

PASSWORD = "Busy-Prod pw/7"
SCHEMA = """\
CREATE TABLE public.orders (id integer PRIMARY KEY, note text);
CREATE TABLE public.customers (id integer PRIMARY KEY);
"""


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinProduction]:
    schema = tmp_path_factory.mktemp("prod") / "schema.sql"
    schema.write_text(SCHEMA)
    with StandinProduction(password=PASSWORD) as server:
        server.create_database("shop", [schema])
        yield server


@contextlib.contextmanager
def migration_holding(prod: StandinProduction, table: str) -> Iterator[None]:
    """Another session in production holds ACCESS EXCLUSIVE on ``table``, as a migration's
    ALTER TABLE does while it runs."""
    with prod.superuser_connect("shop") as conn:
        conn.execute("BEGIN")
        conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # type: ignore[arg-type]
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


def pg_dump_backends(prod: StandinProduction) -> int:
    with prod.superuser_connect() as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                           "WHERE application_name = 'pg_dump'").fetchone()
    return int(row[0]) if row else 0


def wait_for_no_pg_dump(prod: StandinProduction, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    while (left := pg_dump_backends(prod)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def cli(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_schemasync.cli", *args], cwd=cwd,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=180)


def test_dump_gives_up_on_a_locked_table(prod: StandinProduction, tmp_path: Path) -> None:
    output = tmp_path / "schema.sql"
    with migration_holding(prod, "public.orders"):
        # The option after the command, as users type it.
        done = cli(tmp_path, "dump", "--url-env", "PROD_URL", "-o", str(output),
                   "--schemasync-dump-lock-timeout", "1", env={"PROD_URL": prod.url("shop")})
        assert wait_for_no_pg_dump(prod) == 0  # it let go while the migration still runs
    out = done.stdout + done.stderr
    assert done.returncode == ProductionError.exit_code, out
    assert "Production is busy: pg_dump" in out
    assert "waited 1 s for a lock on public.orders" in out
    assert "such as a migration's ACCESS EXCLUSIVE" in out
    assert "Nothing was changed. Try again when that session is done" in out
    assert "Traceback" not in out
    assert PASSWORD not in out
    assert not output.exists()


def test_refresh_gives_up_on_a_locked_table_and_changes_nothing(prod: StandinProduction,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    schema = tmp_path / "db" / "schema.sql"
    schema.write_text(SCHEMA + "-- the old file\n")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemasync.sets.shop]\nfiles = ["db/schema.sql"]\n'
        'production-url-env = "SHOP_URL"\n')
    before = schema.read_bytes()
    with scratch_cache_dir() as cache, migration_holding(prod, "public.customers"):
        done = cli(tmp_path, "refresh", "--schemasync-dump-lock-timeout=1",
                   f"--schemasync-cache-dir={cache}", env={"SHOP_URL": prod.url("shop")})
        assert wait_for_no_pg_dump(prod) == 0
    out = done.stdout + done.stderr
    assert done.returncode == ProductionError.exit_code, out
    assert "waited 1 s for a lock on public.customers" in out
    assert "Nothing was changed" in out
    assert schema.read_bytes() == before
    assert not (tmp_path / "backups").exists()


def test_a_dump_past_its_time_limit_is_stopped_and_lets_go(prod: StandinProduction) -> None:
    with migration_holding(prod, "public.orders"):
        with pytest.raises(ProductionError) as raised:
            dump_schema(prod.info("shop"), prod.info("shop").major, lock_timeout=600,
                        timeout=2)
        # The killed pg_dump's backend quits too, though it was waiting for the lock.
        assert wait_for_no_pg_dump(prod) == 0
    message = str(raised.value)
    assert "did not finish within 2 s and was stopped. Nothing was changed." in message
    assert "--schemasync-dump-timeout" in message
    assert PASSWORD not in message


def test_pg_dump_runs_read_only(prod: StandinProduction, tmp_path: Path) -> None:
    """A recording pg_dump in a pinned bindir: the options refresh.dump_schema gives it make
    even a superuser's session refuse to write."""
    real, _ = find_pg_dump(prod.info("shop").major)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "record"
    wrapper = bindir / "pg_dump"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$1" in --version|--help) ;; *) printf "%s\\n%s\\n" "$PGOPTIONS" "$*" '
        f"> {shlex.quote(str(record))} ;; esac\n"
        f'exec {shlex.quote(str(real))} "$@"\n')
    wrapper.chmod(0o755)
    owner = prod.info("shop", OWNER)
    text, _ = dump_schema(owner, owner.major, pinned_bindir=str(bindir))
    assert "CREATE TABLE public.orders" in text
    options, args = record.read_text().splitlines()[:2]
    assert "--lock-wait-timeout=5000" in args.split()
    assert "default_transaction_read_only=on" in options
    with psycopg.connect(owner.conninfo("shop"), options=options, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                            ).fetchone() == (True,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE public.written_by_the_dump (x int)")
