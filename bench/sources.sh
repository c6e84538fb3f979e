#!/usr/bin/env bash
# Benchmark of sources (issue 13): end-to-end latency of an audit event from
# a source cluster to a central audit database over logical replication.
# Two throwaway clusters on this machine (same clock): pgbench calls
# audit_log.log() on the source at RATE events/s; on the central database a
# procedure polls every 10 ms for the source's new events and records, for
# each, clock_timestamp() - occurred_at (capture time on the source; the
# log() transaction commits right after).  Reports median, p99 and max.
#
#   bash bench/sources.sh            (as root or as postgres)
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config; the
# extension must be installed there), BENCH_PORT (5551; the central uses
# BENCH_PORT+1), RATE (events/s, 1000), PER_TXN (events per transaction, 1),
# DURATION (seconds, 30), CLIENTS (4),
# KEEP=1 keeps the clusters.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PORT=${BENCH_PORT:-5551}
CPORT=$((PORT + 1))
RATE=${RATE:-1000}
PER_TXN=${PER_TXN:-1}
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-4}

bench_workdir audit_log_bench_sources
psql_() { local port=$1; shift; as_pg "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$WORK" -p "$port" -d postgres "$@"; }

cleanup() {
    for d in src central; do
        as_pg "$BIN/pg_ctl" -D "$WORK/$d" -m fast -w stop >/dev/null 2>&1 || true
    done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

for d in src central; do
    as_pg "$BIN/initdb" -D "$WORK/$d" -A trust >/dev/null
    cat >> "$WORK/$d/postgresql.conf" <<CONF
shared_preload_libraries = 'audit_log'
audit_log.database = 'postgres'
listen_addresses = ''
unix_socket_directories = '$WORK'
wal_level = logical
max_worker_processes = 16
CONF
done
as_pg "$BIN/pg_ctl" -D "$WORK/src" -o "-p $PORT" -l "$WORK/src.log" -w start >/dev/null
as_pg "$BIN/pg_ctl" -D "$WORK/central" -o "-p $CPORT" -l "$WORK/central.log" -w start >/dev/null
psql_ "$PORT" -c 'CREATE EXTENSION audit_log CASCADE' -c 'SELECT audit_log.publish()' >/dev/null
psql_ "$CPORT" -c 'CREATE EXTENSION audit_log CASCADE' >/dev/null
psql_ "$CPORT" -c "SELECT audit_log.subscribe('src', 'host=$WORK port=$PORT dbname=postgres')" >/dev/null
until [ "$(psql_ "$CPORT" -c "SELECT state FROM audit_log.sources WHERE source = 'src'")" = streaming ]; do sleep 0.5; done

psql_ "$CPORT" <<'SQL'
CREATE TABLE lat (event_id bigint PRIMARY KEY, latency interval);
CREATE PROCEDURE watch(seconds int) LANGUAGE plpgsql AS $$
DECLARE
    first bigint := coalesce((SELECT max(event_id) FROM audit_log.events WHERE source = 'src'), 0);
    last bigint := first;
    stop timestamptz := clock_timestamp() + seconds * interval '1 second';
BEGIN
    WHILE clock_timestamp() < stop LOOP
        -- Ids are taken before commit: a smaller one may arrive later.
        INSERT INTO lat SELECT e.event_id, clock_timestamp() - e.occurred_at
          FROM audit_log.events e WHERE e.source = 'src' AND e.event_id > greatest(first, last - 10000)
        ON CONFLICT DO NOTHING;
        last := coalesce((SELECT max(event_id) FROM lat), last);
        COMMIT;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;
SQL

# PER_TXN events per transaction (one statement), at RATE / PER_TXN
# transactions per second: how an application that logs in batches, or a
# bulk statement, reaches rates that one event per commit cannot here.
if [ "$PER_TXN" = 1 ]; then
    echo "SELECT audit_log.log('app.bench');" > "$WORK/log.sql"
else
    echo "SELECT count(audit_log.log('app.bench')) FROM generate_series(1, $PER_TXN);" > "$WORK/log.sql"
fi
chmod a+r "$WORK/log.sql"
psql_ "$CPORT" -c "CALL watch($((DURATION + 10)))" &
WATCH=$!
as_pg "$BIN/pgbench" -n -h "$WORK" -p "$PORT" -c "$CLIENTS" -j 2 -R "$((RATE / PER_TXN))" -T "$DURATION" -f "$WORK/log.sql" postgres \
    2>&1 | grep -E '^(tps|number of transactions actually)' || true
wait $WATCH
psql_ "$CPORT" -F ' ' -c "
SELECT 'events ' || count(*),
       'median ' || round((percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM latency)))::numeric, 3) || ' s',
       'p99 ' || round((percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(epoch FROM latency)))::numeric, 3) || ' s',
       'max ' || round(max(EXTRACT(epoch FROM latency))::numeric, 3) || ' s'
  FROM lat"
