#!/usr/bin/env bash
# Alerts benchmark, on a running server with the preload (superuser):
#   PGHOST=/tmp/sock PGPORT=5531 bench/alerts.sh
# 1. 20 rules: the 5 built-ins + 15 custom (app.bench events, one per
#    details key k, 20 within 30 s per object_name);
# 2. a stream of RATE events/s (default 5000: pgbench at RATE/10 tx/s, each
#    tx 10 audit_log.log() calls) for DURATION s (default 60), while a
#    session runs check_alerts() every INTERVAL s (default 10, as the
#    worker would): per pass, its wall time, its CPU (the backend's
#    utime+stime from /proc/self/stat) and the events it read;
# 3. alert latency (raised_at - occurred_at of the event that fired it):
#    median and p99;
# 4. one pass over 50,000 new events.
# Env: PSQL, PGBENCH (default: on PATH), DB (default bench_alerts).
set -euo pipefail
PSQL=${PSQL:-psql}
PGBENCH=${PGBENCH:-pgbench}
DB=${DB:-bench_alerts}
RATE=${RATE:-5000}
DURATION=${DURATION:-60}
INTERVAL=${INTERVAL:-10}
q() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

"$PSQL" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
"$PSQL" -X -q -d postgres -c "ALTER SYSTEM SET audit_log.log_connections = 'none'" -c "SELECT pg_reload_conf()" >/dev/null
q -c "CREATE EXTENSION audit_log CASCADE" 2>/dev/null
q <<'SQL'
SELECT audit_log.create_alert(format('bench_%s', k), threshold => 20, within => '30 seconds',
       group_by => 'object_name', severity => 'low', event_types => '{app.bench}',
       details_contain => jsonb_build_object('k', k))
  FROM generate_series(1, 15) k;
SELECT audit_log.log('app.bench');
CREATE TABLE bench_pass (at timestamptz, fired int, events bigint, wall_ms numeric, cpu_ms numeric);
-- one pass, measured from inside the backend
CREATE FUNCTION bench_one_pass() RETURNS void LANGUAGE plpgsql AS $$
DECLARE s0 text[]; s1 text[]; t0 timestamptz; h0 bigint; n int;
BEGIN
    SELECT hwm INTO h0 FROM audit_log.alert_state;
    s0 := string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ');
    t0 := clock_timestamp();
    n := audit_log.check_alerts();
    s1 := string_to_array(split_part(pg_read_file('/proc/self/stat'), ') ', 2), ' ');
    INSERT INTO bench_pass VALUES (t0, n, (SELECT hwm FROM audit_log.alert_state) - h0,
        extract(epoch FROM clock_timestamp() - t0) * 1000,
        ((s1[12]::bigint + s1[13]::bigint) - (s0[12]::bigint + s0[13]::bigint)) * 1000.0 / 100);
END $$;
SELECT bench_one_pass();
TRUNCATE bench_pass;
SQL
cat > /tmp/bench_alerts_tx.sql <<'SQL'
SELECT audit_log.log('app.bench', 'success', 'thing', 'o' || (g % 10), (random() * 1000)::int::text,
       jsonb_build_object('k', 1 + (random() * 14)::int)) FROM generate_series(1, 10) g;
SQL
echo "== stream: $RATE events/s for $DURATION s, a pass every $INTERVAL s"
"$PGBENCH" -n -c 4 -j 2 -R $((RATE / 10)) -T "$DURATION" -f /tmp/bench_alerts_tx.sql "$DB" > /tmp/bench_alerts_pgbench.txt 2>&1 &
PGB=$!
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
    sleep "$INTERVAL"
    q -c "SELECT bench_one_pass()" >/dev/null
done
wait $PGB || true
q -c "SELECT bench_one_pass()" >/dev/null
grep -E 'tps|latency average' /tmp/bench_alerts_pgbench.txt || true
q <<'SQL'
\pset footer off
SELECT count(*) AS passes, sum(events) AS events,
       round(sum(events) / nullif(extract(epoch FROM max(at) - min(at)), 0)) AS events_per_s,
       round(avg(wall_ms), 1) AS avg_pass_ms, round(max(wall_ms), 1) AS max_pass_ms,
       round(avg(cpu_ms), 1) AS avg_pass_cpu_ms,
       round(sum(cpu_ms) * 1000 / nullif(sum(events), 0), 2) AS cpu_us_per_event,
       sum(fired) AS alerts
  FROM bench_pass WHERE events > 0;
SELECT count(*) AS alerts,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.raised_at - e.occurred_at)))::numeric, 2) AS latency_median_s,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.raised_at - e.occurred_at)))::numeric, 2) AS latency_p99_s
  FROM audit_log.alerts a JOIN audit_log.events e ON e.event_id = a.last_event_id
 WHERE a.rule LIKE 'bench%';
SQL
echo "== one pass over 50,000 new events"
q -c "SELECT audit_log.log('app.bench', 'success', 'thing', 'o' || (g % 10), g::text, jsonb_build_object('k', 1 + g % 15)) FROM generate_series(1, 50000) g" >/dev/null
q -c "TRUNCATE bench_pass" -c "SELECT bench_one_pass()" >/dev/null
q -c "SELECT events, fired, round(wall_ms) AS wall_ms, round(cpu_ms) AS cpu_ms FROM bench_pass"
