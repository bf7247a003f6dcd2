"""The main job's schema-check demo: a stand-in production, then `pytest --schema-check`.

1. Start a stand-in "production" PostgreSQL (TCP, passwords, a read-only role) holding both
   sets as a team would have them deployed: gameforge migrated with `schemasync migrate`,
   carthorse with a few ephemeral staging_<timestamp> schemas that the check must ignore.
2. Run the example tests with --schema-check: no drift, tests run.
3. Apply a hand-made hotfix to production (the kind that causes drift) and run again: the
   check stops the session before any test with a readable report (exit status 10).
Exits 0 when both runs behaved as expected.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pytest_schemasync.migrations import apply_pending
from pytest_schemasync.server import find_binaries
from pytest_schemasync.standin import OWNER, StandinProduction

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


def main() -> int:
    with StandinProduction() as prod:
        prod.create_database("gameforge", [PROJECT / "db/gameforge/schema.sql"])
        psql = find_binaries(None, need_server=False).tool("psql")
        apply_pending(prod.info("gameforge", OWNER), psql, PROJECT / "db/gameforge/migrations",
                      PROJECT, set_name="gameforge")
        prod.create_database("carthorse", CARTHORSE_FILES)
        for stamp in ("20261120_031500", "20261122_231000"):
            prod.execute("carthorse", f"CREATE SCHEMA staging_{stamp}; CREATE TABLE "
                                      f"staging_{stamp}.trails (id int, name text);")
        env = dict(os.environ,
                   GAMEFORGE_PRODUCTION_URL=prod.url("gameforge"),
                   CARTHORSE_PRODUCTION_URL=prod.url("carthorse"))
        clean = pytest_run(env)
        prod.execute("gameforge", HOTFIX)
        drift = pytest_run(env, "-q")
    print(f"\ndemo: clean production -> exit {clean} (expected 0); "
          f"after a hotfix in production -> exit {drift} (expected 10, no test run)")
    return 0 if (clean, drift) == (0, 10) else 1


if __name__ == "__main__":
    sys.exit(main())
