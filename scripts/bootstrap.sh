#!/usr/bin/env bash
# Everything a fresh machine needs: system packages (PostgreSQL, PostGIS, pgRouting) and a
# virtualenv in .venv with the plugin installed. Idempotent and quick when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
extras="${1:-test}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=".venv/.installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    touch "$stamp"
fi
echo "bootstrap: .venv ready (extras: $extras)"
