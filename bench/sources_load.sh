#!/usr/bin/env bash
# Benchmark of sources (issue 13), part 2: (a) the source's W1 overhead with
# the publication on, (b) the central database's apply rate when catching up
# EVENTS events.  Two throwaway clusters on this machine (src, central).
#
# (a) W1 of bench/capture.sh (one single-row UPDATE of an audited 200,000-row
#     table per transaction) on the source, ROUNDS rounds of: no publication
#     (run A), no publication again (run B: the noise), then publish() + an
#     active, streaming subscription on the central (run P; the publication
#     and subscription are dropped again at the end of the round, and the
#     next round subscribes under a new name).  Reported: every run, the
#     median of each kind, P/A and B/A.
# (b) Catch-up: the central's subscription is DISABLED, the source writes
#     EVENTS events (audit_log.log(), BATCH per transaction) and waits until
#     they are all in its audit_log.events; then the subscription is enabled
#     and the time until the central has them all is measured (polled every
#     0.2 s): events/s = EVENTS / that time.  This is the "central was down"
#     catch-up, streamed through the slot (not the copy_history table copy).
#
#   bash bench/sources_load.sh            (as root or as postgres)
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config; the
# extension must be installed there), BENCH_PORT (5561; the central uses
# BENCH_PORT+1), DURATION (seconds per W1 run, 15), CLIENTS (2), ROWS
# (200000), ROUNDS (3), EVENTS (1000000), BATCH (50000), CENTRAL_NICE (0;
# 19 runs the central cluster at the lowest CPU priority), PIN=1 (the source
# on CPU 0, the central and the source's walsender on CPU 1), SKIP_W1=1,
# SKIP_CATCHUP=1, KEEP=1 keeps the clusters.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
PORT=${BENCH_PORT:-5561}
CPORT=$((PORT + 1))
DURATION=${DURATION:-15}
CLIENTS=${CLIENTS:-2}
ROWS=${ROWS:-200000}
ROUNDS=${ROUNDS:-3}
EVENTS=${EVENTS:-1000000}
BATCH=${BATCH:-50000}
CENTRAL_NICE=${CENTRAL_NICE:-0}

bench_workdir audit_log_bench_sources_load
psql_() { local port=$1; shift; as_pg env PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p "$port" -d postgres "$@"; }

cleanup() {
    for d in src central; do
        as_pg "$BIN/pg_ctl" -D "$WORK/$d" -m fast -w stop >/dev/null 2>&1 || true
    done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

echo "== clusters in $WORK (ports $PORT, $CPORT, central niceness $CENTRAL_NICE; $("$PG_CONFIG" --version)); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for d in src central; do
    as_pg "$BIN/initdb" -D "$WORK/$d" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$WORK/$d/postgresql.conf" <<CONF
shared_preload_libraries = 'audit_log'
audit_log.database = 'postgres'
listen_addresses = ''
unix_socket_directories = '$WORK'
wal_level = logical
max_worker_processes = 16
synchronous_commit = off
shared_buffers = 256MB
max_wal_size = 8GB
checkpoint_timeout = 30min
log_min_messages = warning
CONF
done
# PIN=1: the source (its server and pgbench) runs on CPU 0 only, the
# central and the source's walsender on CPU 1: the source keeps the same
# CPU with and without the publication, and the walsender gets the core a
# database server has to spare for it (this machine has two).
SRC_CPU=(); CEN_CPU=()
if [ "${PIN:-0}" = 1 ]; then SRC_CPU=(taskset -c 0); CEN_CPU=(taskset -c 1); fi
as_pg "${SRC_CPU[@]}" "$BIN/pg_ctl" -D "$WORK/src" -o "-p $PORT" -l "$WORK/src.log" -w start >/dev/null
# CENTRAL_NICE: the central cluster runs at this niceness, so that on one
# machine it takes the CPU the source's load leaves (as if it ran elsewhere).
as_pg "${CEN_CPU[@]}" nice -n "$CENTRAL_NICE" "$BIN/pg_ctl" -D "$WORK/central" -o "-p $CPORT" -l "$WORK/central.log" -w start >/dev/null
cp "$HERE"/capture_setup.sql "$HERE"/capture_w1.sql "$WORK"/
[ ${#RUNAS[@]} -gt 0 ] && chown postgres "$WORK"/*.sql
psql_ "$PORT" -f "$WORK/capture_setup.sql" >/dev/null
psql_ "$CPORT" -c 'CREATE EXTENSION audit_log CASCADE' >/dev/null
psql_ "$PORT" -c "SELECT bench_make_table('w1', $ROWS, 'audit_log')" -c 'VACUUM ANALYZE w1' -c CHECKPOINT >/dev/null

subscribe() {   # subscribe NAME: publish on the source, subscribe on the central, wait for streaming
    psql_ "$PORT" -c 'SELECT audit_log.publish()' >/dev/null
    psql_ "$CPORT" -c "SELECT audit_log.subscribe('$1', 'host=$WORK port=$PORT dbname=postgres', copy_history => false)" >/dev/null
    until [ "$(psql_ "$CPORT" -c "SELECT state FROM audit_log.sources WHERE source = '$1'")" = streaming ]; do sleep 0.5; done
    if [ "${PIN:-0}" = 1 ]; then   # the walsender to the spare core
        for pid in $(psql_ "$PORT" -c "SELECT pid FROM pg_stat_replication"); do taskset -p -c 1 "$pid" >/dev/null; done
    fi
}
unsubscribe() {   # unsubscribe NAME: drop the subscription, its slot and the publication
    psql_ "$CPORT" -c "SELECT audit_log.unsubscribe('$1')" >/dev/null
    psql_ "$PORT" -c 'DROP PUBLICATION audit_log_events' >/dev/null
}
tps() {
    as_pg "${SRC_CPU[@]}" "$BIN/pgbench" -n -h "$WORK" -p "$PORT" -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" \
        -D tbl=w1 -D rows="$ROWS" -f "$WORK/capture_w1.sql" postgres 2>&1 |
        awk '/^tps = / { printf "%.1f", $3 }'
}
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

if [ "${SKIP_W1:-0}" != 1 ]; then
    echo "== (a) W1 TPS on the source, $CLIENTS clients, ${DURATION}s per run"
    A=(); B=(); P=()
    for r in $(seq 1 "$ROUNDS"); do
        a=$(tps); b=$(tps)
        subscribe "w1r$r"
        p=$(tps)
        lag=$(psql_ "$CPORT" -c "SELECT coalesce(lag_bytes::text, '?') FROM audit_log.sources WHERE source = 'w1r$r'" 2>/dev/null || echo '?')
        unsubscribe "w1r$r"
        A+=("$a"); B+=("$b"); P+=("$p")
        echo "round $r: no publication A $a, no publication B $b, publication + subscription $p (slot lag after the run: $lag bytes)"
    done
    ma=$(median "${A[@]}"); mb=$(median "${B[@]}"); mp=$(median "${P[@]}")
    echo "median: A $ma  B $mb  P $mp   P/A $(awk -v p="$mp" -v a="$ma" 'BEGIN { printf "%.3f", p / a }')   noise B/A $(awk -v b="$mb" -v a="$ma" 'BEGIN { printf "%.3f", b / a }')"
fi

if [ "${SKIP_CATCHUP:-0}" != 1 ]; then
    echo "== (b) catch-up of $EVENTS events, subscription disabled while they are written"
    subscribe catchup
    psql_ "$CPORT" -c 'ALTER SUBSCRIPTION audit_log_catchup DISABLE' >/dev/null
    base=$(psql_ "$PORT" -c 'SELECT coalesce(max(event_id), 0) FROM audit_log.events')
    t0=$(date +%s.%N)
    for i in $(seq 1 $((EVENTS / BATCH))); do
        psql_ "$PORT" -c "SELECT count(audit_log.log('app.bulk', details => jsonb_build_object('i', g))) FROM generate_series(1, $BATCH) g" >/dev/null
    done
    until [ "$(psql_ "$PORT" -c "SELECT count(*) FROM audit_log.events WHERE event_id > $base AND event_type = 'app.bulk'")" -ge "$EVENTS" ]; do sleep 0.5; done
    t1=$(date +%s.%N)
    last=$(psql_ "$PORT" -c "SELECT max(event_id) FROM audit_log.events WHERE event_id > $base AND event_type = 'app.bulk'")
    echo "source wrote $EVENTS events in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
    slot=$(psql_ "$PORT" -c "SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)) FROM pg_replication_slots WHERE slot_name = 'audit_log_catchup'")
    echo "slot behind by $slot of WAL"
    t0=$(date +%s.%N)
    psql_ "$CPORT" -c 'ALTER SUBSCRIPTION audit_log_catchup ENABLE' >/dev/null
    # Poll for the source's last event alone (one probe of the central's
    # (source, event_id, ...) index): the apply commits in the source's
    # commit order, so once it is there every earlier one is; the count
    # below checks that.  (Counting 1,000,000 rows every 0.2 s took most of
    # a core from the apply it was timing.)
    until [ "$(psql_ "$CPORT" -c "SELECT count(*) FROM audit_log.events WHERE source = 'catchup' AND event_id = $last")" -ge 1 ]; do sleep 0.2; done
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v n="$EVENTS" 'BEGIN { printf "central caught up %d events in %.1f s: %.0f events/s\n", n, b - a, n / (b - a) }'
    echo "central copy: $(psql_ "$CPORT" -c "SELECT count(*) || ' events, ' || count(DISTINCT event_id) || ' distinct ids' FROM audit_log.events WHERE source = 'catchup' AND event_type = 'app.bulk'")"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
