#!/usr/bin/env bash
# The whole test suite: lint, the plugin's own tests (real PostgreSQL servers), and the
# example project's tests. Any extra arguments go to the plugin's pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/ruff check pytest_schemasync tests bench example_project
.venv/bin/python -m pytest tests -p no:cacheprovider -n 2 "$@"
(cd example_project && ../.venv/bin/python -m pytest -p no:cacheprovider -q)
