#!/usr/bin/env bash
# Benchmark pytest-schemasync against pytest-postgresql, testing.postgresql and raw
# CREATE DATABASE ... TEMPLATE; prints a table and writes bench/RESULTS.md.
#
#   bash bench/run.sh [--repeat N] [--testing-postgresql-disk]
#   bash bench/run.sh --only scale [--sizes 500,2000,10000]   (the scale section alone)
#
# About 3-4 minutes on a 2-CPU machine (longer when the machine is busy: the
# pytest-postgresql disk variant is the long pole; the schema check and refresh section, with
# a stand-in production, adds about 30 s; the stress suite (-n 0/1/2/4) and carthorse section,
# pytest-postgresql on the PostGIS set included, about 1 minute). Measurement only; no timing
# is asserted.
#
# Needs root (the competitors run as the `postgres` user through runuser) and PostgreSQL
# server binaries (BENCH_PG_BINDIR, default /usr/lib/postgresql/15/bin).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
export BENCH_PG_BINDIR="${BENCH_PG_BINDIR:-/usr/lib/postgresql/15/bin}"

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: run as root (the competitors are run as the postgres user)" >&2
    exit 2
fi
id postgres >/dev/null

SCRIPT="$REPO/bench/bench.py"
ONLY_SCALE=""
if [ "${1:-}" = "--only" ] && [ "${2:-}" = "scale" ]; then
    SCRIPT="$REPO/bench/scale.py"  # only the scale section (generated 500/2,000/10,000 tables)
    ONLY_SCALE=1
    shift 2
fi

# The competitors come with the [bench] extra; install it only when missing (a reinstall
# would briefly uninstall the editable package under anyone else using this .venv).
if [ -z "$ONLY_SCALE" ] && \
        ! "$PY" -c "import pytest_postgresql, testing.postgresql, pytest_schemasync" 2>/dev/null; then
    "$REPO/.venv/bin/pip" install --quiet --disable-pip-version-check -e "$REPO[bench]"
fi

WORK="$(mktemp -d /tmp/schemasync-bench.XXXXXX)"
SHM="$(mktemp -d /dev/shm/schemasync-bench.XXXXXX)"

DRIVER=""
cleanup() {
    # Stop the driver if it still runs (it stops its pytest runs), then any server a
    # crashed or interrupted run left behind in our folders, then remove them.
    local pidfile
    if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
        kill -TERM "$DRIVER" 2>/dev/null || true
        wait "$DRIVER" 2>/dev/null || true
    fi
    while IFS= read -r pidfile; do
        runuser -u postgres -- "$BENCH_PG_BINDIR/pg_ctl" -D "$(dirname "$pidfile")" \
            -m immediate -w -t 20 stop >/dev/null 2>&1 || true
    done < <(find "$WORK" "$SHM" -name postmaster.pid 2>/dev/null)
    rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cd "$REPO"
# In the background, so that a TERM to this script is handled at once (by cleanup).
"$PY" "$SCRIPT" --work "$WORK" --shm "$SHM" "$@" &
DRIVER=$!
wait "$DRIVER"
