#!/usr/bin/env bash
# Benchmark of the server hooks (issue 3), on a temporary cluster of its own
# (unix socket only), with pgbench:
#  (a) pgbench (TPC-B-like) on tables that are not audited: the library not
#      loaded vs preloaded with the extension installed (target >= 0.97);
#  (b) pgbench -C -S (a new connection per transaction) with
#      audit_log.log_connections = all vs none (target >= 0.90).
# Usage: bench/hooks.sh   (env: PG_BIN, DURATION seconds per run [20],
#        CLIENTS [4], SCALE [10], PORT [5510], REPEAT [1])
# Must run as a user that may run initdb (not root).
set -euo pipefail
PG_BIN=${PG_BIN:-$(dirname "$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)")}
[ -x "$PG_BIN/initdb" ] || PG_BIN=/usr/lib/postgresql/15/bin
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-10}
PORT=${PORT:-5510}
REPEAT=${REPEAT:-1}
DIR=$(mktemp -d /tmp/audit_log_bench.XXXXXX)
DATA=$DIR/data
SOCK=$DIR
export PGHOST=$SOCK PGPORT=$PORT PGDATABASE=bench

cleanup() { "$PG_BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
trap cleanup EXIT

"$PG_BIN/initdb" -D "$DATA" -A trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$DATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$SOCK'
max_connections = 50
shared_buffers = 128MB
fsync = off
synchronous_commit = off
include_if_exists = 'bench.conf'
CONF

start() { "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/log" -w start >/dev/null; }
stop() { "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; }
tps() { "$PG_BIN/pgbench" -n "$@" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -1; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }

echo "" > "$DATA/bench.conf"
start
"$PG_BIN/createdb" bench
"$PG_BIN/pgbench" -i -q -s "$SCALE" >/dev/null 2>&1
stop

without=(); with=(); all=(); none=()
for r in $(seq "$REPEAT"); do
    # (a) without the library
    echo "" > "$DATA/bench.conf"
    start
    without+=("$(tps -c "$CLIENTS" -j 2 -T "$DURATION")")
    stop
    # (a) preloaded, extension installed, tables not audited
    printf "shared_preload_libraries = 'audit_log'\naudit_log.database = 'bench'\naudit_log.log_connections = 'none'\n" > "$DATA/bench.conf"
    start
    "$PG_BIN/psql" -qX -c 'CREATE EXTENSION IF NOT EXISTS audit_log CASCADE' >/dev/null 2>&1
    with+=("$(tps -c "$CLIENTS" -j 2 -T "$DURATION")")
    # (b) a new connection per transaction: logins not recorded
    none+=("$(tps -C -S -c "$CLIENTS" -j 2 -T "$DURATION")")
    stop
    # (b) every login recorded
    printf "shared_preload_libraries = 'audit_log'\naudit_log.database = 'bench'\naudit_log.log_connections = 'all'\n" > "$DATA/bench.conf"
    start
    all+=("$(tps -C -S -c "$CLIENTS" -j 2 -T "$DURATION")")
    logins=$("$PG_BIN/psql" -qXAt -c "SELECT pg_sleep(1); SELECT count(*) FROM audit_log.events WHERE event_type = 'auth.login_succeeded'" | tail -1)
    logged=$("$PG_BIN/psql" -qXAt -c "SELECT events_logged FROM audit_log.status")
    stop
done

A0=$(best "${without[@]}"); A1=$(best "${with[@]}")
B0=$(best "${none[@]}"); B1=$(best "${all[@]}")
echo "runs: ${DURATION}s each, $CLIENTS clients, scale $SCALE, best of $REPEAT"
printf "(a) pgbench, tables not audited:   without library %10.1f tps   preloaded %10.1f tps   ratio %.3f (target >= 0.97)\n" \
    "$A0" "$A1" "$(echo "$A1 / $A0" | bc -l)"
printf "(b) pgbench -C -S, log_connections: none            %10.1f tps   all       %10.1f tps   ratio %.3f (target >= 0.90)\n" \
    "$B0" "$B1" "$(echo "$B1 / $B0" | bc -l)"
echo "    logins stored by the worker in the last run: $logins; sent to the server log instead: $logged"
