#!/usr/bin/env bash
# bench/retention.sh: retention and seals at scale.
#
# 10 million events spread over the last 120 days (generated in bulk by a
# superuser inside an internal section, straight into the daily
# partitions), then:
#   1. seal()      : the first seal of 120 days; throughput in events/s
#   2. maintain()  : the 90-day default policy purges 30 days by DROP TABLE;
#                    its time, and proof that no row was DELETEd
#                    (pg_stat_database.tup_deleted does not move)
#   3. verify()    : one day of windows
# Usage: PGHOST=... PGPORT=... bench/retention.sh   (EVENTS=, DAYS= to scale)
# Needs a superuser connection to a server with audit_log installed
# (preloaded or not).  Creates and drops the database audit_bench.
set -euo pipefail
N=${EVENTS:-10000000}
DAYS=${DAYS:-120}
DB=${BENCH_DB:-audit_bench}
OUT=${OUT:-$(dirname "$0")/out/retention.txt}
mkdir -p "$(dirname "$OUT")"
PSQL=${PSQL:-psql}

q() { $PSQL -X -q -At -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
now_ms() { date +%s%3N; }
report() { echo "$*" | tee -a "$OUT"; }
: > "$OUT"

$PSQL -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
q "SET client_min_messages = warning; CREATE EXTENSION audit_log CASCADE" >/dev/null
report "retention benchmark: $N events over $DAYS days ($(date -u +%F))"

# Partitions for every day, then the events, in event_id (= time) order.
t0=$(now_ms)
q "SET audit_log.internal = on;
   SELECT count(audit_log._create_partition(d::date)) AS days
     FROM generate_series((now() AT TIME ZONE 'UTC')::date - $DAYS, (now() AT TIME ZONE 'UTC')::date, interval '1 day') d;" >/dev/null
q "SET synchronous_commit = off;
   SET audit_log.internal = on;
   INSERT INTO audit_log.events
   SELECT i, now() - interval '$DAYS days' + (i * ($DAYS * 86400.0 / $N)) * interval '1 second',
          c, c || '.bench', 'success', 'user' || (i % 997), 'user', 'app', 'app',
          ('10.0.' || (i % 250) || '.' || (i % 200))::inet, 'bench', NULL, 't' || (i % 10), NULL,
          'audit_bench', 'table', 'public.accounts', (i % 100000)::text, 'UPDATE',
          jsonb_build_object('id', i % 100000, 'balance', i % 1000),
          jsonb_build_object('balance', i % 1000 + 1), NULL, NULL, i, 4242
     FROM generate_series(1, $N) i,
          LATERAL (SELECT (ARRAY['data','ddl','privilege','role','auth','config','audit','app'])[1 + i % 8] AS c) k;
   SELECT setval('audit_log.events_event_id_seq', $N);
   RESET audit_log.internal;" >/dev/null
q "VACUUM ANALYZE audit_log.events"
t1=$(now_ms)
report "generate: $N events in $(( (t1 - t0) / 1000 )) s; table size $(q "SELECT pg_size_pretty(sum(bytes)) FROM audit_log.partitions")"

# 1. seal(): 120 days of 1-hour windows.
t0=$(now_ms)
w=$(q "SET audit_log.seal_delay = 0; SELECT audit_log.seal()")
t1=$(now_ms)
sealed=$(q "SELECT sum(events) FROM audit_log.seals")
report "seal(): $w windows, $sealed events in $(( t1 - t0 )) ms = $(( sealed * 1000 / (t1 - t0 + 1) )) events/s"

# 2. maintain(): the 90-day default policy.
stats() { q "SELECT (SELECT tup_deleted FROM pg_stat_database WHERE datname = current_database()) || ' ' ||
                    (SELECT sum(n_tup_del) FROM pg_stat_sys_tables)"; }
sleep 1
read -r del0 sys0 <<< "$(stats)"
rows0=$(q "SELECT count(*) FROM audit_log.events")
t0=$(now_ms)
q "SELECT action, count(*), sum(split_part(detail, ' ', 1)::bigint) FILTER (WHERE action = 'purged')
     FROM audit_log.maintain() GROUP BY action ORDER BY action" > /tmp/retention_bench_maintain.$$
t1=$(now_ms)
sleep 1
read -r del1 sys1 <<< "$(stats)"
rows1=$(q "SELECT count(*) FROM audit_log.events")
report "maintain(): $(( t1 - t0 )) ms; actions (action|count|rows purged):"
sed 's/^/    /' /tmp/retention_bench_maintain.$$ | tee -a "$OUT"
rm -f /tmp/retention_bench_maintain.$$
report "    events before $rows0, after $rows1 (purged $(( rows0 - rows1 ))); rows deleted during maintain(): $(( del1 - del0 )) in all, $(( sys1 - sys0 )) of them catalog rows of the dropped tables, so $(( del1 - del0 - sys1 + sys0 )) rows DELETEd from audit tables (pg_stat_database.tup_deleted - pg_stat_sys_tables.n_tup_del)"
report "    audit.purged events: $(q "SELECT count(*) || ' recording ' || sum((details->>'rows')::bigint) || ' rows' FROM audit_log.events WHERE event_type = 'audit.purged'")"

# 3. verify() of one day (24 windows).
t0=$(now_ms)
v=$(q "SELECT string_agg(status || ':' || n, ' ') FROM (SELECT status, count(*) n FROM audit_log.verify(date_trunc('day', now()) - interval '50 days', date_trunc('day', now()) - interval '49 days') GROUP BY 1) x")
t1=$(now_ms)
report "verify() of one day ($v): $(( t1 - t0 )) ms"

$PSQL -X -q -d postgres -c "DROP DATABASE $DB"
