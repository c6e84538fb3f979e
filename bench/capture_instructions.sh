#!/usr/bin/env bash
# The CPU work of table capture, counted: the same four workloads as
# capture.sh (W1 one-row UPDATE per transaction, W2 INSERT + UPDATE +
# DELETE per transaction, W3 an UPDATE of every row, W4 INSERT ... SELECT)
# for each method, in a single-user server under valgrind's callgrind, and
# reported as instructions per transaction (W1, W2) or per row (W3, W4),
# with their ratios to no auditing and to the floor.  Instruction counts
# are deterministic: where capture.sh's TPS and seconds move by 10-20%
# from run to run on a small virtual machine, these move by well under 1%.
# They count CPU work only (no waits, no I/O, no cache misses, not the
# background workers) and valgrind counts a "rep stosb" (memset) per byte,
# so they complement capture.sh's figures; they do not replace them.
#
#   bash bench/capture_instructions.sh      (as root or as postgres; needs valgrind)
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config; the
# extension installed there), N (W1 statements and W2 transactions, 1000),
# ROWS (rows of W3 and W4, 10000), METHODS (default "none floor audit_log").
# Each count is the difference between a run of the workload and a run of
# one fifth of it, divided by the difference in transactions (or rows):
# start-up, caches warming and the shutdown checkpoint cancel out.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
N=${N:-1000}
ROWS=${ROWS:-10000}
read -r -a METHODS <<< "${METHODS:-none floor audit_log}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }

bench_workdir audit_log_instr
DATA=$WORK/data
trap 'as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT

echo "== $("$PG_CONFIG" --version), N=$N, ROWS=$ROWS"
as_pg "$BIN/initdb" -D "$DATA" -A trust -U postgres --encoding=UTF8 --locale=C.UTF-8 >/dev/null
cat "$HERE/capture.conf" - >> "$DATA/postgresql.conf" <<CONF
unix_socket_directories = '$WORK'
autovacuum = off
CONF
as_pg "$BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null
psql_() { as_pg env PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$WORK" -d "$@"; }
psql_ postgres -c "CREATE DATABASE bench"
cp "$HERE/capture_setup.sql" "$WORK/"
[ ${#RUNAS[@]} -gt 0 ] && chown postgres "$WORK"/*.sql
psql_ bench -f "$WORK/capture_setup.sql" >/dev/null
for m in "${METHODS[@]}"; do
    psql_ bench -c "SELECT bench_make_table('t1_$m', 200000, '$m')" \
        -c "SELECT bench_make_table('t3_$m', $ROWS, '$m')" \
        -c "SELECT bench_make_table('t3s_$m', $((ROWS / 5)), '$m')" \
        -c "SELECT bench_make_table('t4_$m', 0, '$m')" \
        -c "SELECT bench_make_table('t4s_$m', 0, '$m')" \
        -c "VACUUM ANALYZE" >/dev/null
done
as_pg "$BIN/pg_ctl" -D "$DATA" -w stop >/dev/null

# workload W METHOD COUNT: the SQL of COUNT transactions (W1, W2) or of
# one statement over COUNT rows (W3, W4; COUNT picks the table).
workload() {
    local i id
    case $1 in
        W1) for ((i = 0; i < $3; i++)); do
                echo "UPDATE t1_$2 SET qty = qty + 1 WHERE id = $(( (i * 7919) % 200000 + 1 ));"
            done ;;
        W2) for ((i = 0; i < $3; i++)); do
                id=$((1000000 + i))
                echo "BEGIN;"
                echo "INSERT INTO t1_$2 (id, name, email, amount, created_at, attrs, active, qty)" \
                     "VALUES ($id, 'new customer', 'new@example.com', 12.34, now(), '{\"tier\": 1, \"tags\": [\"n\"]}', true, 1);"
                echo "UPDATE t1_$2 SET qty = qty + 1 WHERE id = $(( (i * 104729) % 200000 + 1 ));"
                echo "DELETE FROM t1_$2 WHERE id = $id;"
                echo "END;"
            done ;;
        W3) if [ "$3" = "$ROWS" ]; then echo "UPDATE t3_$2 SET qty = qty + 1;"
            else echo "UPDATE t3s_$2 SET qty = qty + 1;"; fi ;;
        W4) if [ "$3" = "$ROWS" ]; then echo "SELECT bench_fill('t4_$2', $3);"
            else echo "SELECT bench_fill('t4s_$2', $3);"; fi ;;
    esac
}
# count W METHOD COUNT: instructions of a single-user server running it.
count() {
    workload "$1" "$2" "$3" > "$WORK/run.sql"
    [ ${#RUNAS[@]} -gt 0 ] && chown postgres "$WORK/run.sql"
    as_pg valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$BIN/postgres" --single -D "$DATA" bench < "$WORK/run.sql" 2>&1 >/dev/null |
        awk '/Collected/ { print $4 }'
}

declare -A C
for w in W1 W2 W3 W4; do
    case $w in W1 | W2) n=$N ;; *) n=$ROWS ;; esac
    for m in "${METHODS[@]}"; do
        big=$(count "$w" "$m" "$n")
        small=$(count "$w" "$m" $((n / 5)))
        C[$w,$m]=$(( (big - small) / (n - n / 5) ))
        echo "   $w $m: ${C[$w,$m]} instructions per $( [ "$n" = "$N" ] && echo transaction || echo row)"
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "== instructions per transaction (W1, W2) and per row (W3, W4)"
printf "%-10s %10s %10s %10s %10s\n" method W1 W2 W3 W4
for m in "${METHODS[@]}"; do
    printf "%-10s %10s %10s %10s %10s\n" "$m" "${C[W1,$m]}" "${C[W2,$m]}" "${C[W3,$m]}" "${C[W4,$m]}"
done
for base in none floor; do
    [[ " ${METHODS[*]} " == *" $base "* ]] || continue
    echo
    echo "== ratio to '$base' (lower is less CPU work)"
    printf "%-10s %10s %10s %10s %10s\n" method W1 W2 W3 W4
    for m in "${METHODS[@]}"; do
        [ "$m" = "$base" ] && continue
        printf "%-10s %10s %10s %10s %10s\n" "$m" "$(ratio "${C[W1,$m]}" "${C[W1,$base]}")" \
            "$(ratio "${C[W2,$m]}" "${C[W2,$base]}")" "$(ratio "${C[W3,$m]}" "${C[W3,$base]}")" \
            "$(ratio "${C[W4,$m]}" "${C[W4,$base]}")"
    done
done
if [[ " ${METHODS[*]} " == *" none "* && " ${METHODS[*]} " == *" floor "* && " ${METHODS[*]} " == *" audit_log "* ]]; then
    echo
    echo "== audit_log's work above no auditing, as a share of the floor's (W: audit_log - none) / (floor - none)"
    for w in W1 W2 W3 W4; do
        printf "   %s %s\n" "$w" "$(ratio $(( C[$w,audit_log] - C[$w,none] )) $(( C[$w,floor] - C[$w,none] )))"
    done
fi
