#!/usr/bin/env bash
# Benchmark of table capture: pgbench against a 200,000-row table of eight
# mixed-type columns, with no auditing, with audit_log, and with the common
# PL/pgSQL pattern (a row trigger writing to_jsonb(OLD)/to_jsonb(NEW) into
# a table), each method on a fresh table, all in one run on one throwaway
# cluster, reported as ratios to "no auditing".
#
#   bash bench/capture.sh            (as root or as postgres)
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config; the
# extension must be installed there), BENCH_PORT (5541), DURATION (seconds
# per TPS run, 15), CLIENTS (2), ROWS (200000), KEEP=1 keeps the cluster.
#
# Workloads: W1 single-row UPDATE per transaction (TPS); W2 INSERT + UPDATE
# + DELETE per transaction (TPS); W3 one UPDATE of every row (seconds); W4
# INSERT ... SELECT of ROWS rows into an empty table (seconds); and bytes
# of audit storage (table + indexes + TOAST growth) per audited
# single-column update, measured over the W1 run.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
PORT=${BENCH_PORT:-5541}
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-2}
ROWS=${ROWS:-200000}
METHODS=(none audit_log plpgsql)

WORK=$(mktemp -d /tmp/audit_log_bench.XXXXXX)
RUNAS=()
if [ "$(id -u)" = 0 ]; then
    RUNAS=(runuser -u postgres --)
    chown postgres "$WORK"
fi
as_pg() { "${RUNAS[@]}" "$@"; }
DATA=$WORK/data
psql_() { as_pg env PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -d bench "$@"; }

cleanup() {
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

echo "== cluster in $WORK (port $PORT, $("$PG_CONFIG" --version))"
as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$WORK'
shared_preload_libraries = 'audit_log'
synchronous_commit = off
shared_buffers = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = on
log_min_messages = warning
CONF
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null
as_pg "$BIN/psql" -X -q -h "$WORK" -p "$PORT" -d postgres -c "CREATE DATABASE bench"
cp "$HERE"/capture_setup.sql "$HERE"/capture_w1.sql "$HERE"/capture_w2.sql "$WORK"/
[ ${#RUNAS[@]} -gt 0 ] && chown postgres "$WORK"/*.sql
psql_ -f "$WORK/capture_setup.sql" 2>&1 | grep -v 'NOTICE' || true

# fresh_table METHOD NAME ROWS: a new table, filled, with METHOD attached.
fresh_table() {
    psql_ -c "SELECT bench_make_table('$2', $3, '$1')" >/dev/null
    psql_ -c "VACUUM ANALYZE $2" -c "CHECKPOINT" >/dev/null
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

declare -A R
for m in "${METHODS[@]}"; do
    fresh_table "$m" "w1_$m" "$ROWS"
done
echo "== W1: single-row UPDATE per transaction, $CLIENTS clients, ${DURATION}s each"
for m in "${METHODS[@]}"; do
    b0=$(audit_bytes "$m"); r0=$(audit_rows "$m")
    R[w1_$m]=$(tps capture_w1.sql "w1_$m")
    b1=$(audit_bytes "$m"); r1=$(audit_rows "$m")
    if [ "$r1" -gt "$r0" ]; then
        R[bytes_$m]=$(( (b1 - b0) / (r1 - r0) ))
    else
        R[bytes_$m]="-"
    fi
    echo "   $m: ${R[w1_$m]} tps  (audit rows +$((r1 - r0)), bytes +$((b1 - b0)))"
done
echo "== W2: INSERT + UPDATE + DELETE per transaction"
for m in "${METHODS[@]}"; do
    fresh_table "$m" "w2_$m" "$ROWS"
    R[w2_$m]=$(tps capture_w2.sql "w2_$m")
    echo "   $m: ${R[w2_$m]} tps"
done
echo "== W3: one UPDATE of $ROWS rows"
for m in "${METHODS[@]}"; do
    fresh_table "$m" "w3_$m" "$ROWS"
    R[w3_$m]=$(seconds "UPDATE w3_$m SET qty = qty + 1")
    echo "   $m: ${R[w3_$m]} s"
done
echo "== W4: INSERT ... SELECT of $ROWS rows into an empty table"
for m in "${METHODS[@]}"; do
    fresh_table "$m" "w4_$m" 0
    R[w4_$m]=$(seconds "SELECT bench_fill('w4_$m', $ROWS)")
    echo "   $m: ${R[w4_$m]} s"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "== results (ratios to 'none' from this run; W1/W2 higher is better, W3/W4 lower is better)"
printf "%-10s %10s %10s %10s %10s %14s\n" method "W1 tps" "W2 tps" "W3 s" "W4 s" "bytes/update"
for m in "${METHODS[@]}"; do
    printf "%-10s %10s %10s %10s %10s %14s\n" "$m" "${R[w1_$m]}" "${R[w2_$m]}" "${R[w3_$m]}" "${R[w4_$m]}" "${R[bytes_$m]}"
done
for m in audit_log plpgsql; do
    printf "%-10s %9sx %9sx %9sx %9sx %14s\n" "$m/none" \
        "$(ratio "${R[w1_$m]}" "${R[w1_none]}")" "$(ratio "${R[w2_$m]}" "${R[w2_none]}")" \
        "$(ratio "${R[w3_$m]}" "${R[w3_none]}")" "$(ratio "${R[w4_$m]}" "${R[w4_none]}")" "${R[bytes_$m]}"
done
echo "targets for audit_log: W1, W2 >= 0.85x; W3, W4 <= 1.8x; <= 400 bytes/update"
