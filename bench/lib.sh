# Sourced by the benchmarks: BIN, the server's programs (PG_CONFIG's,
# by default Debian's PostgreSQL 15); bench_workdir PREFIX makes the
# throwaway directory WORK (/tmp/PREFIX.XXXXXX); as_pg runs a command as
# postgres when the benchmark runs as root (initdb refuses root) and as
# the caller otherwise; bench_touch_ram GB touches that much memory once
# (nothing for 0).
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
bench_touch_ram() {
    case ${1:-0} in
        '' | *[!0-9]*) echo "TOUCH_GB must be a whole number of GB, not \"$1\"" >&2; exit 2 ;;
    esac
    [ "${1:-0}" -gt 0 ] || return 0
    echo "== touching ${1} GB of RAM once (TOUCH_GB)"
    perl -e 'my @b; push @b, "\1" x (1 << 30) for 1 .. $ARGV[0]' "$1"
}
