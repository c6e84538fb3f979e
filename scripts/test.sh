#!/usr/bin/env bash
# Run every test of audit_log: the regression suite (sql/), the isolation
# specs (test/specs) and the TAP tests (test/t), each on its own temporary
# PostgreSQL instance, on each PostgreSQL version asked for; PostgreSQL's own
# regression suite without and with audit_log (pgregress, on 15); then, with
# TEST_DEB=1, build the Debian package, install it and run the regression
# suite against the installed files.  As root on Debian 12 it first installs
# the packages it needs, builds and installs; the tests themselves run as
# "postgres".  Ends with a line "N passed, N failed" counting every suite of
# every version.
#
#   PG_VERSIONS  the majors to test, default "15"; CI: "15 18"
#   PG_CONFIG    pg_config of 15 (default: Debian's /usr/lib/postgresql/15)
#   PG18_CONFIG  pg_config of 18 (default: built once by scripts/pg18.sh into
#                /var/cache/audit_log and copied for this run)
#   TEST_DEB=1   also build, install (dpkg -i, into the system's PostgreSQL
#                15: CI only) and test the Debian package, after everything
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_VERSIONS=${PG_VERSIONS:-15}
export AUDIT_CFLAGS=${AUDIT_CFLAGS:--Werror}

# TAP clusters take their encoding from the locale: UTF-8 whatever the caller has.
export LANG=C.UTF-8
unset LC_ALL

BASE=$(mktemp -d /tmp/audit_log_test.XXXXXX)
chmod 755 "$BASE"
RESULTS="$BASE/results"
mkdir "$RESULTS"
status=0
T0=$(date +%s)

# run_suites NAME PG_CONFIG: copy the tree, build and install it into that
# PostgreSQL, and run the three suites there; their output goes to
# $RESULTS/NAME-SUITE.out.
run_suites()
{
    local name=$1 pgc=$2 work="$BASE/$1" t0
    local runas=()
    t0=$(date +%s)
    echo "==== PostgreSQL $name ($pgc)"
    mkdir -p "$work"
    cp -a "$SRC"/. "$work"/
    make -s -C "$work" PG_CONFIG="$pgc" clean >/dev/null 2>&1
    if ! PG_CONFIG="$pgc" EXTRA_PACKAGES="${EXTRA_PACKAGES:-} libpostgresql-jdbc-java default-jdk-headless" \
            bash "$work/scripts/setup.sh"; then
        echo "build failed: $name" | tee -a "$RESULTS/$name-build.out"
        status=1
        return
    fi
    # initdb refuses root: run the suites as postgres in the copy it owns.
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres "$work"
        runas=(runuser -u postgres --)
    fi
    for suite in regress isolation tap; do
        echo "== $name $suite"
        if ! (cd "$work" && "${runas[@]}" make -s PG_CONFIG="$pgc" "check-$suite") 2>&1 | tee "$RESULTS/$name-$suite.out"; then
            status=1
            # The diffs right after the suite's summary, where a reader looks first.
            for f in "$work/regression.diffs" "$work/output_iso/regression.diffs"; do
                [ -f "$f" ] && { echo "--- $f"; cat "$f"; }
            done
            for f in "$work"/tmp_check/log/*.log "$work"/tmp_check_iso/log/*.log "$work"/log/*.log \
                     "$work"/tmp_check/log/regress_log_*; do
                [ -f "$f" ] && echo "$f" >> "$RESULTS/logs"
            done
        fi
    done
    echo "== $name: $(( $(date +%s) - t0 ))s"
}

for v in $PG_VERSIONS; do
    case $v in
        15) run_suites 15 "$PG_CONFIG" ;;
        18)
            pgc=${PG18_CONFIG:-}
            if [ -z "$pgc" ]; then
                # The cached build stays pristine: each run installs
                # audit_log into a copy of its own.
                if cached=$(bash scripts/pg18.sh); then
                    prefix=$(dirname "$(dirname "$cached")")
                    cp -a "$prefix" "$BASE/pg18-install"
                    pgc="$BASE/pg18-install/bin/pg_config"
                fi
            fi
            if [ -n "$pgc" ]; then
                run_suites 18 "$pgc"
            else
                echo "PostgreSQL 18 build failed" | tee -a "$RESULTS/18-build.out"
                status=1
            fi
            ;;
        *) echo "build failed: unknown PostgreSQL version $v (15 or 18)" | tee -a "$RESULTS/$v-build.out"; status=1 ;;
    esac
done

# PostgreSQL's own regression suite without and with audit_log, compared
# (scripts/pg_regress_compare.sh), against the PostgreSQL 15 build installed
# above: regress.so, pg_regress and psql are built from the PostgreSQL source
# once per machine, as root, into /var/cache/audit_log; the two runs go as
# postgres.  One line "test pg_regress_compare ... ok|FAILED".
case " $PG_VERSIONS " in
    *" 15 "*)
        echo "==== pgregress"
        PG_REGRESS_SOURCE=${PG_REGRESS_SOURCE:-$(ls "$SRC"/../shared/postgres/postgresql-15_*.orig.tar.bz2 2>/dev/null | head -n 1)}
        export PG_REGRESS_SOURCE
        runas=()
        [ "$(id -u)" = 0 ] && runas=(runuser -u postgres --)
        if ! { (cd "$BASE/15" && bash scripts/pg_regress_compare.sh build) &&
               (cd "$BASE/15" && "${runas[@]}" env PG_CONFIG="$PG_CONFIG" PG_REGRESS_SOURCE="$PG_REGRESS_SOURCE" \
                    bash scripts/pg_regress_compare.sh run); } 2>&1 | tee "$RESULTS/pgregress.out"; then
            status=1
        fi
        ;;
esac

# The package last: installing it replaces the files "make install" put
# into the system's PostgreSQL 15 (the same build, from the same tree).
if [ "${TEST_DEB:-0}" = 1 ]; then
    echo "==== Debian package"
    if ! bash scripts/package.sh "$BASE/deb" 2>&1 | tee "$RESULTS/package.out"; then
        status=1
    fi
fi

# pg_regress lines: "test x ... ok" (15), "ok 1 - x" / "not ok 1 - x" (16 and
# later); prove's "test/t/x.pl .. ok" lines; a build that failed.
passed=0
failed=0
for f in $(ls -tr "$RESULTS"/*.out 2>/dev/null); do
    [ -f "$f" ] || continue
    p=$(grep -vE '^test/t/' "$f" | grep -cE '\.\.\. ok( |$)|^ok [0-9]+ +[-+] ' || true)
    b=$(grep -vE '^test/t/' "$f" | grep -cE '\.\.\. FAILED|\.\.\. failed|^not ok [0-9]+ +[-+] |build failed|PostgreSQL 18 build failed' || true)
    tap_ok=$(grep -cE '^test/t/[^ ]+\.pl \.+ ok' "$f" || true)
    tap_all=$(grep -cE '^test/t/[^ ]+\.pl \.+ ' "$f" || true)
    echo "== summary of $(basename "$f" .out): $((p + tap_ok)) ok, $((b + tap_all - tap_ok)) failing$(
        grep -qE '^test/t/upgrade_1_0\.pl \.+ ok' "$f" && echo ' (upgrade from 1.0: ok)')"
    passed=$((passed + p + tap_ok))
    failed=$((failed + b + tap_all - tap_ok))
done

if [ $status -ne 0 ] || [ $failed -ne 0 ]; then
    echo "== failure details (diffs above, after each suite)"
    if [ -f "$RESULTS/logs" ]; then
        while read -r f; do
            echo "--- $f (last 80 lines)"; tail -n 80 "$f"
        done < "$RESULTS/logs"
    fi
    [ $failed -eq 0 ] && failed=1
fi
echo "== total: $(( $(date +%s) - T0 ))s"
# A run that passed leaves nothing behind; a failed one keeps its copies and logs.
if [ $failed -eq 0 ]; then rm -rf "$BASE"; else echo "== kept: $BASE"; fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
