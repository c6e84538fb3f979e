#!/usr/bin/env bash
# The main job: a throwaway PostgreSQL cluster with audit_log preloaded, a
# small sample application (users, roles, user_roles, api_keys) audited, a
# scripted session of changes, privileged changes and failed logins, a few
# searches printed, and a CSV export written to a file whose path is printed.
#
# As root on Debian 12 it first installs the packages it needs, builds and
# installs the extension; the cluster runs as "postgres" on a unix socket and
# 127.0.0.1 only, and is removed at the end (KEEP=1 keeps it running).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
export PG_CONFIG
bash scripts/setup.sh
BIN=$($PG_CONFIG --bindir)

RUNAS=()
[ "$(id -u)" = 0 ] && RUNAS=(runuser -u postgres --)
DIR=$(mktemp -d /tmp/audit_log_demo.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
PORT=${PORT:-5466}
OUT="$DIR/audit_export.csv"

cleanup() {
    if [ "${KEEP:-0}" != 1 ]; then
        "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

echo "== starting a throwaway cluster in $DIR (port $PORT)"
"${RUNAS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync --encoding=UTF8 --locale=C.UTF-8 >/dev/null
cat >> "$DIR/data/postgresql.conf" <<CONF
shared_preload_libraries = 'audit_log'
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
password_encryption = 'scram-sha-256'
audit_log.database = 'postgres'
CONF
# Logins over TCP need a password, so that failed logins can be shown.
cat > "$DIR/data/pg_hba.conf" <<HBA
local all all trust
host  all postgres 127.0.0.1/32 trust
host  all all 127.0.0.1/32 scram-sha-256
HBA
"${RUNAS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

PSQL=("${RUNAS[@]}" "$BIN/psql" -X -q -h "$DIR" -p "$PORT" -v ON_ERROR_STOP=1 -d postgres)

echo "== 1. a sample application, audited"
"${PSQL[@]}" -f "$SRC/scripts/demo_app.sql"

echo "== 2. logins over TCP"
for pw in wrong-password also-wrong; do
    PGPASSWORD=$pw "${RUNAS[@]}" "$BIN/psql" -X -h 127.0.0.1 -p "$PORT" -U app_service -d postgres \
        -c 'select 1' >/dev/null 2>&1 && echo "unexpected login" || echo "   login as app_service with a wrong password: refused"
done
PGPASSWORD=s3rvice-pass "${RUNAS[@]}" "$BIN/psql" -X -h 127.0.0.1 -p "$PORT" -U app_service -d postgres \
    -c 'select 1' >/dev/null && echo "   login as app_service with the right password: accepted"
# Logins and failed commands travel through the queue to the background
# worker: wait until it has stored the three logins and the two refusals.
for i in $(seq 100); do
    [ "$("${PSQL[@]}" -At -c "SELECT (SELECT count(*) FROM audit_log.login_activity WHERE user_name = 'app_service') >= 3
        AND (SELECT count(*) FROM audit_log.events WHERE status = 'failure' AND effective_role = 'app_service') >= 2")" = t ] && break
    [ "$i" = 100 ] && echo "   (the worker has not stored every login yet: the searches may miss some)"
    sleep 0.1
done

echo "== 3. what the audit trail holds"
"${PSQL[@]}" -f "$SRC/scripts/demo_search.sql"

echo "== 4. CSV export"
"${PSQL[@]}" -c "\\copy (SELECT * FROM audit_log.export(since => now() - interval '1 day')) TO '$OUT' WITH (FORMAT csv, HEADER)"
ROWS=$("${PSQL[@]}" -At -c "SELECT details->>'rows' FROM audit_log.events WHERE event_type = 'audit.exported' ORDER BY event_id DESC LIMIT 1")
echo "   $ROWS events exported (recorded as an audit.exported event) to:"
echo "   $OUT"
if [ "${KEEP:-0}" = 1 ]; then
    echo "== the cluster keeps running: psql -h $DIR -p $PORT -U postgres -d postgres"
fi
