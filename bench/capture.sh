#!/usr/bin/env bash
# Benchmark of table capture: pgbench against a 200,000-row table of eight
# mixed-type columns, with no auditing, with the floor (rules adding one
# constant 420-byte row per changed row to an unindexed table: the extra
# write every in-transaction trail pays, nothing computed), with audit_log,
# and with the common PL/pgSQL pattern (a row trigger writing
# to_jsonb(OLD)/to_jsonb(NEW) into a table), each method on a fresh table,
# all in one run on one throwaway cluster, reported as ratios to "no
# auditing" and to the floor.  "none2" is no auditing again, on tables of
# its own: its ratio to "none" is the noise of the run.
#
#   bash bench/capture.sh            (as root or as postgres)
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config; the
# extension must be installed there), BENCH_PORT (5541), DURATION (seconds
# per TPS run, 15), RUNS (rounds, 3: every figure is the median of its
# rounds), CLIENTS (2), ROWS (200000), METHODS (default
# "none floor audit_log plpgsql none2"), KEEP=1 keeps the cluster,
# TOUCH_GB (0): on a virtual machine whose RAM the host backs on first
# touch, touch that many GB once before starting (see bench/README.md,
# Method).
#
# Every timed run (TPS or statement) starts settled: no autovacuum worker
# running, a checkpoint taken and synced, so that no method pays for the
# write-back or the vacuum the one before it left.  The methods run in
# the order given in round 1, and that order turns by one each round, so
# that no method always follows the same one.
#
# Workloads: W1 single-row UPDATE per transaction (TPS); W2 INSERT + UPDATE
# + DELETE per transaction (TPS); W3 one UPDATE of every row (seconds); W4
# INSERT ... SELECT of ROWS rows into an empty table (seconds); and bytes
# of audit storage (table + indexes + TOAST growth) per audited
# single-column update, measured over the W1 runs.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
PORT=${BENCH_PORT:-5541}
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-2}
ROWS=${ROWS:-200000}
RUNS=${RUNS:-3}
read -r -a METHODS <<< "${METHODS:-none floor audit_log plpgsql none2}"

bench_workdir audit_log_bench
DATA=$WORK/data
psql_() { as_pg env PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -d bench "$@"; }

cleanup() {
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

bench_touch_ram "${TOUCH_GB:-0}"
echo "== cluster in $WORK (port $PORT, $("$PG_CONFIG" --version))"
as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
cat "$HERE/capture.conf" - >> "$DATA/postgresql.conf" <<CONF
port = $PORT
unix_socket_directories = '$WORK'
CONF
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null
as_pg "$BIN/psql" -X -q -h "$WORK" -p "$PORT" -d postgres -c "CREATE DATABASE bench"
cp "$HERE"/capture_setup.sql "$HERE"/capture_w1.sql "$HERE"/capture_w2.sql "$WORK"/
[ ${#RUNAS[@]} -gt 0 ] && chown postgres "$WORK"/*.sql
psql_ -f "$WORK/capture_setup.sql" 2>&1 | grep -v 'NOTICE' || true

# quiet: wait (up to 5 minutes) until no autovacuum worker is running.
quiet() {
    local i
    for i in $(seq 1 300); do
        [ "$(psql_ -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")" = 0 ] && return
        sleep 1
    done
    echo "   (autovacuum still running after 5 minutes)"
}
# settle: no autovacuum running, then a checkpoint and sync: what is timed
# next starts with nothing left to write back or vacuum.
settle() {
    quiet
    psql_ -c "CHECKPOINT" >/dev/null
    sync
}
# fresh_table METHOD NAME ROWS: a new table, filled, with METHOD attached,
# then settled.
fresh_table() {
    psql_ -c "SELECT bench_make_table('$2', $3, '$1')" >/dev/null
    psql_ -c "VACUUM ANALYZE $2" >/dev/null
    settle
}
audit_bytes() {
    psql_ -At -c "SELECT bench_audit_bytes('$1')"
}
audit_rows() {
    psql_ -At -c "SELECT bench_audit_rows('$1')"
}
tps() {   # tps SCRIPT TABLE
    as_pg "$BIN/pgbench" -n -h "$WORK" -p "$PORT" -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" \
        -D tbl="$2" -D rows="$ROWS" -f "$WORK/$1" bench 2>&1 |
        awk '/^tps = / { printf "%.1f", $3 }'
}
seconds() {   # seconds SQL: wall time of one statement (with its commit)
    local t0 t1
    t0=$(date +%s.%N)
    psql_ -c "$1" >/dev/null
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

declare -A R     # R[w1_audit_log] = "run1 run2 run3"
add() { R[$1]="${R[$1]:-}${R[$1]:+ }$2"; }
median() {   # median of the numbers in $1 ("-" if none)
    tr ' ' '\n' <<< "$1" | awk '/^[0-9.]+$/' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-";
             else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "== load before: $(uptime)"
for m in "${METHODS[@]}"; do
    fresh_table "$m" "w1_$m" "$ROWS"
    fresh_table "$m" "w2_$m" "$ROWS"
done
for run in $(seq 1 "$RUNS"); do
    # this round's order: METHODS turned by run - 1
    k=$(( (run - 1) % ${#METHODS[@]} ))
    ORDER=("${METHODS[@]:k}" "${METHODS[@]:0:k}")
    echo "== round $run of $RUNS ($(uptime | sed 's/.*load/load/')), order: ${ORDER[*]}"
    for m in "${ORDER[@]}"; do
        settle
        b0=$(audit_bytes "$m"); r0=$(audit_rows "$m")
        t=$(tps capture_w1.sql "w1_$m"); add "w1_$m" "$t"
        b1=$(audit_bytes "$m"); r1=$(audit_rows "$m")
        if [ "$r1" -gt "$r0" ]; then add "bytes_$m" $(( (b1 - b0) / (r1 - r0) )); fi
        echo "   W1 $m: $t tps  (audit rows +$((r1 - r0)), bytes +$((b1 - b0)))"
    done
    for m in "${ORDER[@]}"; do
        settle
        t=$(tps capture_w2.sql "w2_$m"); add "w2_$m" "$t"
        echo "   W2 $m: $t tps"
    done
    for m in "${ORDER[@]}"; do
        fresh_table "$m" "w3_$m" "$ROWS"
        t=$(seconds "UPDATE w3_$m SET qty = qty + 1"); add "w3_$m" "$t"
        echo "   W3 $m: $t s"
    done
    for m in "${ORDER[@]}"; do
        fresh_table "$m" "w4_$m" 0
        t=$(seconds "SELECT bench_fill('w4_$m', $ROWS)"); add "w4_$m" "$t"
        echo "   W4 $m: $t s"
    done
done
echo "== load after: $(uptime)"

declare -A M
for m in "${METHODS[@]}"; do
    for f in w1 w2 w3 w4 bytes; do M[${f}_$m]=$(median "${R[${f}_$m]:-}"); done
done
# ratio FIGURE METHOD BASE: the median over the rounds of METHOD's figure
# divided by BASE's in the same round (a pair measured minutes apart: less
# swayed by the machine's load than a ratio of medians).
ratio() {
    local a="${R[$1_$2]:-}" b="${R[$1_$3]:-}"
    [ -n "$a" ] && [ -n "$b" ] || { echo "-"; return; }
    median "$(paste -d' ' <(tr ' ' '\n' <<< "$a") <(tr ' ' '\n' <<< "$b") |
              awk '$2 > 0 { printf "%s%.4f", sep, $1 / $2; sep = " " }')" |
        awk '{ printf "%.2f", $1 }'
}
has() { local x; for x in "${METHODS[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
echo
echo "== medians of $RUNS rounds (W1/W2 tps: higher is better; W3/W4 seconds: lower is better)"
printf "%-10s %10s %10s %10s %10s %14s\n" method "W1 tps" "W2 tps" "W3 s" "W4 s" "bytes/update"
for m in "${METHODS[@]}"; do
    printf "%-10s %10s %10s %10s %10s %14s\n" "$m" "${M[w1_$m]}" "${M[w2_$m]}" "${M[w3_$m]}" "${M[w4_$m]}" "${M[bytes_$m]}"
done
for base in none floor; do
    has "$base" || continue
    echo
    echo "== ratios to '$base', median of the rounds' ratios (W1/W2: tps ratio; W3/W4: time ratio)"
    printf "%-10s %10s %10s %10s %10s %14s\n" method W1 W2 W3 W4 bytes/update
    for m in "${METHODS[@]}"; do
        [ "$m" = "$base" ] && continue
        printf "%-10s %10s %10s %10s %10s %14s\n" "$m" \
            "$(ratio w1 "$m" "$base")" "$(ratio w2 "$m" "$base")" \
            "$(ratio w3 "$m" "$base")" "$(ratio w4 "$m" "$base")" "${M[bytes_$m]}"
    done
done
if has none && has none2; then
    echo
    echo "noise (none2 / none, same workloads, same rounds): W1 $(ratio w1 none2 none)," \
         "W2 $(ratio w2 none2 none), W3 $(ratio w3 none2 none)," \
         "W4 $(ratio w4 none2 none)"
fi
echo "goals for audit_log against the floor: W1, W2 >= 0.95; W3, W4 <= 1.25; <= 480 bytes/update"
