#!/usr/bin/env bash
# Run every test of audit_log: the regression suite (sql/), the isolation
# specs (test/specs), the TAP tests (test/t), each on its own temporary
# PostgreSQL instance, and PostgreSQL's own regression suite without and
# with audit_log (pgregress).  As root on Debian 12 it first installs the packages
# it needs, builds and installs; the tests themselves run as "postgres".
# Ends with a line "N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG

EXTRA_PACKAGES="${EXTRA_PACKAGES:-} libpostgresql-jdbc-java default-jdk-headless" bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

# initdb refuses root: run the suites as postgres in a copy it owns.
RUNAS=()
WORK="$SRC"
if [ "$(id -u)" = 0 ]; then
    WORK=$(mktemp -d /tmp/audit_log_test.XXXXXX)
    cp -a "$SRC"/. "$WORK"/
    chown -R postgres "$WORK"
    RUNAS=(runuser -u postgres --)
fi
cd "$WORK"

# TAP clusters take their encoding from the locale: UTF-8 whatever the caller has.
export LANG=C.UTF-8
unset LC_ALL

OUT=$(mktemp)
status=0
for suite in regress isolation tap; do
    echo "== $suite"
    if ! "${RUNAS[@]}" make -s PG_CONFIG="$PG_CONFIG" "check-$suite" 2>&1 | tee -a "$OUT"; then
        status=1
        # The diffs right after the suite's summary, where a reader looks first.
        for f in regression.diffs output_iso/regression.diffs; do
            [ -f "$f" ] && { echo "--- $f"; cat "$f"; }
        done
    fi
done

# PostgreSQL's own regression suite without and with audit_log, compared
# (scripts/pg_regress_compare.sh): regress.so, pg_regress and psql are
# built from the PostgreSQL source once per machine, as root, into
# /var/cache/audit_log; the two runs go as postgres.  One line
# "test pg_regress_compare ... ok|FAILED".
echo "== pgregress"
PG_REGRESS_SOURCE=${PG_REGRESS_SOURCE:-$(ls "$SRC"/../shared/postgres/postgresql-15_*.orig.tar.bz2 2>/dev/null | head -n 1)}
export PG_REGRESS_SOURCE
if ! { bash scripts/pg_regress_compare.sh build &&
       "${RUNAS[@]}" env PG_CONFIG="$PG_CONFIG" PG_REGRESS_SOURCE="$PG_REGRESS_SOURCE" \
           bash scripts/pg_regress_compare.sh run; } 2>&1 | tee -a "$OUT"; then
    status=1
fi

# pg_regress lines ("test name ... ok"); TAP files are counted below.
passed=$(grep -vE '^test/t/' "$OUT" | grep -cE '\.\.\. ok( |$)' || true)
failed=$(grep -vE '^test/t/' "$OUT" | grep -cE '\.\.\. FAILED|\.\.\. failed' || true)
tap_ok=$(grep -cE '^test/t/[^ ]+\.pl \.+ ok' "$OUT" || true)
tap_bad=$(grep -cE '^test/t/[^ ]+\.pl \.+ ' "$OUT" || true)
tap_bad=$((tap_bad - tap_ok))
passed=$((passed + tap_ok))
failed=$((failed + tap_bad))

if [ $status -ne 0 ] || [ $failed -ne 0 ]; then
    echo "== failure details (diffs above, after each suite)"
    for f in tmp_check/log/*.log tmp_check_iso/log/*.log log/*.log tmp_check/log/regress_log_*; do
        [ -f "$f" ] && { echo "--- $f (last 80 lines)"; tail -n 80 "$f"; }
    done
    [ $failed -eq 0 ] && failed=1
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
