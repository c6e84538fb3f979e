#!/usr/bin/env bash
# Search and export benchmark, run in one go on a running server:
#   PGHOST=/tmp/sock PGPORT=5530 bench/search.sh
# 1. 10 million events over 90 days (direct INSERT by a superuser inside
#    audit_log.internal = on), VACUUM ANALYZE;
# 2. first page of 100 rows of search() for each filter kind within 30 days,
#    a 7-day date range and a 7-day free-text query (best of 3, ms);
# 3. export of 100,000 rows through psql \copy of export() vs a bare
#    COPY (SELECT ... FROM audit_log.events ORDER BY event_id LIMIT 100000)
#    TO STDOUT CSV (best of 3), and the ratio;
# 4. write cost of the search indexes: pgbench single-row UPDATE and one
#    200,000-row UPDATE on an audited vs an unaudited table, with and
#    without the two search indexes.
# Env: PSQL, PGBENCH (default: on PATH), EVENTS (default 10000000), DB (default bench_search).
set -euo pipefail
PSQL=${PSQL:-psql}
PGBENCH=${PGBENCH:-pgbench}
EVENTS=${EVENTS:-10000000}
DB=${DB:-bench_search}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-15}
q() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
now_ms() { date +%s%3N; }
best_of_3() {  # best_of_3 <command...>: prints the best wall time in ms
    local best=999999999 t0 t1
    for _ in 1 2 3; do
        t0=$(now_ms); "$@" >/dev/null 2>&1; t1=$(now_ms)
        (( t1 - t0 < best )) && best=$((t1 - t0))
    done
    echo "$best"
}

"$PSQL" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
# Logins of the benchmark's own connections are not what is measured.
"$PSQL" -X -q -d postgres -c "ALTER SYSTEM SET audit_log.log_connections = 'none'" -c "SELECT pg_reload_conf()" >/dev/null
q -c "CREATE EXTENSION audit_log CASCADE" 2>/dev/null
q -c "SELECT count(*) FROM (SELECT audit_log._create_partition(d::date) FROM generate_series(current_date - 90, current_date + 1, '1 day') d) s" >/dev/null

echo "== generating $EVENTS events over 90 days"
t0=$(now_ms)
CHUNK=1000000
for ((start = 0; start < EVENTS; start += CHUNK)); do
    q <<SQL
BEGIN;
SET LOCAL audit_log.internal = on;
INSERT INTO audit_log.events (event_id, occurred_at, category, event_type, status, actor, actor_type,
    db_user, effective_role, client_addr, application_name, tenant, database, object_type, object_name,
    resource_id, command, old_data, new_data, statement, details, txid, backend_pid)
SELECT nextval('audit_log.events_event_id_seq'),
       now() - interval '90 days' + (i::float8 / $EVENTS) * interval '90 days',
       (ARRAY['data','data','data','data','auth','role','privilege','ddl','config','app'])[1 + i % 10],
       (ARRAY['data.update','data.insert','data.delete','data.update','auth.login_succeeded','role.altered',
              'privilege.granted','ddl.alter_table','config.setting_altered','app.report_sent'])[1 + i % 10]
         || CASE WHEN i % 100003 = 0 THEN '_rare' ELSE '' END,
       CASE WHEN i % 50 = 0 THEN 'failure' ELSE 'success' END,
       'user' || (i % 5000), (ARRAY['user','api_client','support','provisioner'])[1 + i % 4],
       'app', 'app', ('10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256)::inet,
       'web', 'tenant' || (i % 50), 'bench', 'table', 'public.accounts', (i % 1000000)::text,
       'UPDATE', jsonb_build_object('email', 'old' || i || '@example.com', 'plan', 'basic'),
       jsonb_build_object('email', 'new' || i || '@example.com'),
       CASE WHEN i % 10 = 5 THEN 'UPDATE accounts SET email = \$1 WHERE id = \$2' END,
       CASE WHEN i % 50 = 0 THEN jsonb_build_object('error', 'permission denied for table accounts') END,
       i / 10, 4000 + i % 100
  FROM generate_series($start + 1, LEAST($start + $CHUNK, $EVENTS)) i;
COMMIT;
SQL
    echo "   $((start + CHUNK)) rows, $(( ($(now_ms) - t0) / 1000 )) s"
done
t1=$(now_ms)
q -c "VACUUM ANALYZE audit_log.events"
t2=$(now_ms)
echo "generation: $(( (t1 - t0) / 1000 )) s for $EVENTS rows ($(( EVENTS * 1000 / (t1 - t0 + 1) )) rows/s), VACUUM ANALYZE $(( (t2 - t1) / 1000 )) s"
# What maintain() does once a day has ended: the search indexes of the closed days.
leaves=$(q -At -c "SELECT count(*) FROM audit_log._index_closed() WHERE action = 'indexed'")
t3=$(now_ms)
echo "search indexes of the closed days ($leaves leaves): $(( (t3 - t2) / 1000 )) s"
q -At -c "SELECT 'events table + indexes: ' || pg_size_pretty(sum(pg_total_relation_size(t.relid))) FROM pg_partition_tree('audit_log.events') t WHERE t.isleaf"

echo "== search(): first page of 100 rows (best of 3, ms)"
D30="since => now() - interval '30 days'"
D7="since => now() - interval '37 days', until => now() - interval '30 days'"
search() {  # search <label> <filters>
    local label=$1 filters=$2 ms rows
    ms=$(best_of_3 q -c "SELECT count(*) FROM audit_log.search($filters, max_rows => 100)")
    rows=$(q -At -c "SELECT count(*) FROM audit_log.search($filters, max_rows => 100)")
    printf '  %-40s %6s ms  (%s rows)\n' "$label" "$ms" "$rows"
}
search "date range, 7 days"                    "$D7"
search "username, 30 days"                     "usernames => '{user4242}', $D30"
search "username (actor or db_user), 30 days"  "usernames => '{user4242,nobody}', $D30"
search "event type (rare), 30 days"            "event_types => '{role.altered_rare}', $D30"
search "event type (10% of events), 30 days"   "event_types => '{data.delete}', $D30"
search "resource id, 30 days"                  "resource_ids => '{424242}', $D30"
search "IP address /32, 30 days"               "ip_addresses => '{10.150.42.42/32}', $D30"
search "IP network /24, 30 days"               "ip_addresses => '{10.150.7.0/24}', $D30"
search "category, 30 days"                     "categories => '{privilege}', $D30"
search "user type, 30 days"                    "user_types => '{support}', $D30"
search "status failure, 30 days"               "statuses => '{failure}', $D30"
search "tenant, 30 days"                       "tenants => '{tenant7}', $D30"
search "free text (rare), 7 days"              "text_query => 'NEW4242424@EXAMPLE', $D7"
search "free text (frequent), 7 days"          "text_query => 'permission denied', $D7"
search "username, no date range"               "usernames => '{user4242}'"
echo "plan of the username search (30 days):"
q -At -c "SELECT 'EXPLAIN (COSTS OFF) SELECT * FROM audit_log.event_log e WHERE ' || audit_log._search_where('{user4242}', NULL, NULL, NULL, NULL, NULL, now() - interval '30 days', NULL, NULL, NULL, NULL, NULL) || ' ORDER BY e.event_id LIMIT 100'" \
  | q -At | sed -E 's/events_p[0-9]{8}/events_pN/g' | sort | uniq -c | sort -rn | head -8

echo "== export of 100,000 rows (best of 3, ms)"
bare=$(best_of_3 q -c "COPY (SELECT * FROM audit_log.events ORDER BY event_id LIMIT 100000) TO STDOUT CSV")
exp=$(best_of_3 q -c "\\copy (SELECT * FROM audit_log.export(max_rows => 100000)) TO STDOUT CSV")
capped=$(best_of_3 q -c "\\copy (SELECT * FROM audit_log.export()) TO STDOUT CSV")
printf '  bare COPY ... LIMIT 100000 TO STDOUT CSV   %6s ms\n' "$bare"
printf '  \\copy export(max_rows => 100000)          %6s ms   ratio %s\n' "$exp" "$(awk "BEGIN{printf \"%.2f\", $exp/$bare}")"
printf '  \\copy export() (cap: counts all matches)  %6s ms   ratio %s\n' "$capped" "$(awk "BEGIN{printf \"%.2f\", $capped/$bare}")"

echo "== write cost of the search indexes (pgbench ${PGBENCH_SECONDS}s, 1 client)"
q -c "DROP TABLE IF EXISTS plain_acc, audited_acc" \
  -c "CREATE TABLE plain_acc (id int PRIMARY KEY, balance int, note text)" \
  -c "CREATE TABLE audited_acc (id int PRIMARY KEY, balance int, note text)" \
  -c "INSERT INTO plain_acc SELECT i, 0, 'n' FROM generate_series(1, 200000) i" \
  -c "INSERT INTO audited_acc SELECT i, 0, 'n' FROM generate_series(1, 200000) i" \
  -c "SELECT audit_log.enable('audited_acc')" -c "VACUUM ANALYZE plain_acc, audited_acc" >/dev/null
tps() {
    printf '\\set id random(1, 200000)\nUPDATE %s SET balance = balance + 1 WHERE id = :id;\n' "$1" > /tmp/bench_search_$1.sql
    "$PGBENCH" -n -c 1 -T "$PGBENCH_SECONDS" -f /tmp/bench_search_$1.sql "$DB" 2>/dev/null | awk '/^tps/ {print int($3)}'
}
bulk() { local t0; t0=$(now_ms); q -c "UPDATE $1 SET balance = balance + 1" >/dev/null; echo $(( $(now_ms) - t0 )); }
report() {
    local p a bp ba
    p=$(tps plain_acc); a=$(tps audited_acc); bp=$(bulk plain_acc); ba=$(bulk audited_acc)
    printf '  %-24s single-row UPDATE: %6s vs %6s tps (ratio %s)   200k-row UPDATE: %6s vs %6s ms (x%s)\n' \
        "$1" "$a" "$p" "$(awk "BEGIN{printf \"%.2f\", $a/$p}")" "$ba" "$bp" "$(awk "BEGIN{printf \"%.2f\", $ba/$bp}")"
}
report "event_id index only"
q -c "SELECT audit_log._index_leaf(t.relid) FROM pg_partition_tree(format('audit_log.events_p%s', to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'))::regclass) t WHERE t.isleaf" >/dev/null
report "search indexes on today"
q -At -c "SELECT format('DROP INDEX %s;', c.oid::regclass) FROM pg_partition_tree(format('audit_log.events_p%s', to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'))::regclass) t JOIN pg_index x ON x.indrelid = t.relid JOIN pg_class c ON c.oid = x.indexrelid WHERE c.relname ~ '_(keys|addr)_idx$'" > /tmp/bench_search_drop.sql
q <<SQL >/dev/null
BEGIN;
SET audit_log.internal = on;
\i /tmp/bench_search_drop.sql
COMMIT;
SQL
echo "== done"
