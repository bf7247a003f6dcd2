"""The main job's schema-check demo: a stand-in production, then `pytest --schema-check`.

1. Start a stand-in "production" PostgreSQL (TCP, passwords, a read-only role) holding both
   sets as the team has them deployed: gameforge by the team's own tooling (schema.sql, a
   000_baseline row, then psql runs each migration file, which records itself with
   record_migration), carthorse with a few ephemeral staging_<timestamp> schemas that the
   check must ignore; and a "dev" gameforge database migrated with `schemasync migrate`.
2. `schemasync status --env prod`: every file applied, none unknown or pending.
3. `schemasync diff dev prod` and `pytest --schema-check`: no drift, tests run.
4. Apply a hand-made hotfix to production (the kind that causes drift) and run both again:
   the diff and the check report it (exit status 10), and no test runs.
Exits 0 when every step behaved as expected.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_schemasync.binaries import find_binaries
from pytest_schemasync.migrations import apply_pending
from pytest_schemasync.standin import OWNER, READER, StandinProduction

PROJECT = Path(__file__).resolve().parent.parent
CARTHORSE_FILES = [
    PROJECT / "sql/schemas/carthorse-complete-schema.sql",
    PROJECT / "docs/sql/fix_routing_functions.sql",
    PROJECT / "sql/schemas/missing-functions.sql",
]
HOTFIX = """
ALTER TABLE public.users ADD COLUMN nickname text;
CREATE INDEX users_last_login_idx ON public.users (created_at) WHERE nickname IS NOT NULL;
"""


def pytest_run(env: dict[str, str], *args: str) -> int:
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--schema-check", *args]
    print(f"\n$ pytest --schema-check {' '.join(args)}", flush=True)
    return subprocess.run(command, cwd=PROJECT, env=env).returncode


def schemasync(env: dict[str, str], *args: str) -> int:
    print(f"\n$ schemasync {' '.join(args)}", flush=True)
    return subprocess.run([sys.executable, "-m", "pytest_schemasync.cli", *args], cwd=PROJECT,
                          env=env).returncode


def deploy_like_the_team(prod: StandinProduction) -> None:
    """What the team's schema-sync.ps1 does: schema.sql, a baseline row, then every file
    through psql as it is (each records itself)."""
    migrations = sorted((PROJECT / "db/gameforge/migrations").glob("*.sql"))
    prod.create_database("gameforge", [PROJECT / "db/gameforge/schema.sql", migrations[0]])
    prod.execute("gameforge", "SELECT record_migration('000_baseline', 'schema.sql before the "
                              "migration system', 'baseline')")
    for path in migrations[1:]:
        with prod.superuser_connect("gameforge") as conn:
            conn.execute(f"SET ROLE {OWNER}")
            conn.execute(path.read_text())  # type: ignore[arg-type]


def main() -> int:
    dotenv = PROJECT / ".env.database"
    with StandinProduction() as prod:
        deploy_like_the_team(prod)
        prod.create_database("gameforge_dev", [PROJECT / "db/gameforge/schema.sql"])
        psql = find_binaries(None, need_server=False).tool("psql")
        apply_pending(prod.info("gameforge_dev", OWNER), psql,
                      PROJECT / "db/gameforge/migrations", PROJECT, set_name="gameforge")
        prod.create_database("carthorse", CARTHORSE_FILES)
        for stamp in ("20261120_031500", "20261122_231000"):
            prod.execute("carthorse", f"CREATE SCHEMA staging_{stamp}; CREATE TABLE "
                                      f"staging_{stamp}.trails (id int, name text);")
        dev = prod.info("gameforge_dev")
        dotenv.write_text(f"DB_HOST=127.0.0.1\nDB_PORT={dev.port}\nDB_NAME=gameforge_dev\n"
                          f"DB_USER={READER}\nDB_PASSWORD={prod.password}\n"
                          f"DB_SSL_MODE=disable\n")
        env = dict(os.environ,
                   GAMEFORGE_PRODUCTION_URL=prod.url("gameforge"),
                   CARTHORSE_PRODUCTION_URL=prod.url("carthorse"))
        try:
            results = [schemasync(env, "status", "--env", "prod"),
                       schemasync(env, "diff", "dev", "prod"), pytest_run(env)]
            prod.execute("gameforge", HOTFIX)
            results += [schemasync(env, "diff", "dev", "prod"), pytest_run(env, "-q")]
        finally:
            dotenv.unlink()
    expected = [0, 0, 0, 10, 10]
    print(f"\ndemo: status, diff, check on a clean production -> exit {results[:3]} (expected "
          f"{expected[:3]}); diff and check after a hotfix in production -> exit "
          f"{results[3:]} (expected {expected[3:]}, no test run)")
    return 0 if results == expected else 1


if __name__ == "__main__":
    sys.exit(main())
