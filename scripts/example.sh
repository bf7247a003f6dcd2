#!/usr/bin/env bash
# The main job: the example project's tests on the embedded default server, then the schema
# check against a stand-in production (clean first, then after a hand-made hotfix: drift).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
cd example_project
echo "== example project tests (embedded PostgreSQL, cached templates)"
../.venv/bin/python -m pytest -p no:cacheprovider
echo "== schema check against a stand-in production"
../.venv/bin/python scripts/demo_schema_check.py
