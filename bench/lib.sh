# Sourced by the benchmarks: BIN, the server's programs (PG_CONFIG's,
# by default Debian's PostgreSQL 15); bench_workdir PREFIX makes the
# throwaway directory WORK (/tmp/PREFIX.XXXXXX); as_pg runs a command as
# postgres when the benchmark runs as root (initdb refuses root) and as
# the caller otherwise.
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BIN=$("$PG_CONFIG" --bindir)
bench_workdir() {
    WORK=$(mktemp -d "/tmp/$1.XXXXXX")
    RUNAS=()
    if [ "$(id -u)" = 0 ]; then
        RUNAS=(runuser -u postgres --)
        chown postgres "$WORK"
    fi
}
as_pg() { "${RUNAS[@]}" "$@"; }
