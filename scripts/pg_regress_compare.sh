#!/usr/bin/env bash
# PostgreSQL's own regression suite (src/test/regress, parallel schedule)
# run twice against the installed server: once without audit_log, once with
# it preloaded and created in the regression database.  The two result sets
# (results/*.out) are compared with each other, not with the expected files
# (the source and the installed minor version may differ); every difference
# must be on the commented list test/pg_regress_expected_diffs, anything else
# fails.
#
#   pg_regress_compare.sh build   (as root or the cache owner) build regress.so,
#                                 pg_regress and a matching psql from the
#                                 PostgreSQL source, once, into a cache outside
#                                 the repository that later runs reuse
#   pg_regress_compare.sh run     (as a non-root user) the two runs and the
#                                 comparison; prints
#                                 "test pg_regress_compare ... ok|FAILED"
#   pg_regress_compare.sh all     both (a developer's non-root run)
#
# Environment: PG_CONFIG (the installed server), PG_REGRESS_SOURCE (the
# tarball, default ../shared/postgres/postgresql-15_*.orig.tar.bz2 next to
# the repository), PG_REGRESS_CACHE (default /var/cache/audit_log when
# writable, else ~/.cache/audit_log), PG_REGRESS_OUT (where the runs go,
# default ./pg_regress_compare), PG_REGRESS_PARALLEL=1|0 (both runs at
# once; default when the machine has 4 cores or more).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO=$(pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
# The build cache: /var/cache/audit_log (root, CI), else ~/.cache/audit_log.
if [ -n "${PG_REGRESS_CACHE:-}" ]; then
    CACHE_ROOTS=("$PG_REGRESS_CACHE")
else
    CACHE_ROOTS=(/var/cache/audit_log "${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/audit_log")
fi

find_source() {
    local f
    if [ -n "${PG_REGRESS_SOURCE:-}" ]; then echo "$PG_REGRESS_SOURCE"; return; fi
    for f in "$REPO"/../shared/postgres/postgresql-15_*.orig.tar.bz2 \
             /work/shared/postgres/postgresql-15_*.orig.tar.bz2; do
        [ -f "$f" ] && { echo "$f"; return; }
    done
    echo "no PostgreSQL 15 source tarball (set PG_REGRESS_SOURCE)" >&2
    return 1
}

# The build directory of a tarball under a cache root: its version and
# checksum in the name, so another tarball never reuses a stale build.
build_name() {
    local src=$1 sum ver
    sum=$(sha256sum "$src" | cut -c1-12)
    ver=$(basename "$src" | sed -E 's/^postgresql-[0-9]+_([0-9.]+)\.orig\.tar\.bz2$/\1/')
    echo "pg-regress-$ver-$sum"
}

do_build() {
    local src dir root CACHE_ROOT=
    src=$(find_source) || return 1
    for root in "${CACHE_ROOTS[@]}"; do
        if mkdir -p "$root" 2>/dev/null && [ -w "$root" ]; then CACHE_ROOT=$root; break; fi
    done
    [ -n "$CACHE_ROOT" ] || { echo "no writable cache directory (set PG_REGRESS_CACHE)" >&2; return 1; }
    chmod 755 "$CACHE_ROOT" 2>/dev/null
    dir=$CACHE_ROOT/$(build_name "$src")
    # One build at a time per machine; the second caller waits and reuses it.
    exec 9>"$dir.lock"
    flock 9
    if [ -f "$dir/.built" ]; then
        echo "pg_regress build: cached in $dir"
        return 0
    fi
    echo "pg_regress build: building $(basename "$src") into $dir (once per machine)"
    rm -rf "$dir"
    mkdir -p "$dir" && chmod 755 "$dir" || return 1
    tar xjf "$src" -C "$dir" || return 1
    local s
    s=$(echo "$dir"/postgresql-*)
    mv "$s" "$dir/src"
    local jobs
    jobs=$(nproc 2>/dev/null || echo 2)
    (
        set -e
        cd "$dir/src"
        # Only what the suite needs: no readline, zlib, ICU, LLVM or docs.
        nice ./configure --prefix="$dir/install" --without-readline --without-zlib \
            --without-icu --without-llvm --disable-nls >"$dir/build.log" 2>&1
        nice make -s -j"$jobs" -C src/backend generated-headers >>"$dir/build.log" 2>&1
        nice make -s -j"$jobs" -C src/test/regress >>"$dir/build.log" 2>&1
        nice make -s -j"$jobs" -C src/bin/psql >>"$dir/build.log" 2>&1
        make -s -C src/interfaces/libpq install >>"$dir/build.log" 2>&1
        make -s -C src/bin/psql install >>"$dir/build.log" 2>&1
    ) || { echo "pg_regress build failed: see $dir/build.log" >&2; tail -n 30 "$dir/build.log" >&2; return 1; }
    chmod -R a+rX "$dir"
    touch "$dir/.built"
    echo "pg_regress build: done"
}

# One run of the parallel schedule on a temporary instance of the installed
# server; $1 = output directory, the rest = extra pg_regress options.
run_schedule() {
    local out=$1; shift
    local regress=$BUILD/src/src/test/regress
    mkdir -p "$out"
    # pg_regress finds initdb, postgres and pg_ctl through PATH (--bindir=):
    # the installed server's, and the psql built from the same source as
    # the tests.
    PATH="$BUILD/install/bin:$($PG_CONFIG --bindir):$PATH" \
    "$regress/pg_regress" --bindir= --temp-instance="$out/tmp_check" \
        --inputdir="$regress" --outputdir="$out" --dlpath="$regress" \
        --schedule="$regress/parallel_schedule" --max-concurrent-tests=20 \
        --encoding=UTF8 --no-locale "$@" >"$out/pg_regress.log" 2>&1
    local rc=$?
    # Failures against the expected files are not ours to judge (another
    # minor version); a run that did not get through the schedule is.
    if ! grep -qE '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)' "$out/pg_regress.log"; then
        echo "pg_regress did not complete ($out, exit $rc):" >&2
        tail -n 30 "$out/pg_regress.log" >&2
        return 1
    fi
    return 0
}

do_run() {
    local src out name root
    src=$(find_source) || return 1
    name=$(build_name "$src")
    BUILD=
    for root in "${CACHE_ROOTS[@]}"; do
        [ -f "$root/$name/.built" ] && { BUILD=$root/$name; break; }
    done
    if [ -z "$BUILD" ]; then
        echo "no build of $(basename "$src") in ${CACHE_ROOTS[*]}: run '$0 build' first" >&2
        return 1
    fi
    out=${PG_REGRESS_OUT:-$REPO/pg_regress_compare}
    rm -rf "$out"
    mkdir -p "$out"
    printf '%s\n' "# audit_log's own settings for the \"with\" run" \
        "shared_preload_libraries = 'audit_log'" \
        "audit_log.database = 'regression'" >"$out/with.conf"
    # pgcrypto, which audit_log requires, is in both runs: the differences
    # are audit_log's own.
    local t0=$SECONDS rc1 rc2
    if [ "${PG_REGRESS_PARALLEL:-$( [ "$(nproc 2>/dev/null || echo 1)" -ge 4 ] && echo 1 || echo 0)}" = 1 ]; then
        # Enough cores: both runs at once (their instances share nothing).
        run_schedule "$out/without" --load-extension=pgcrypto & local p1=$!
        run_schedule "$out/with" --temp-config="$out/with.conf" \
            --load-extension=pgcrypto --load-extension=audit_log & local p2=$!
        wait $p1; rc1=$?
        wait $p2; rc2=$?
    else
        run_schedule "$out/without" --load-extension=pgcrypto; rc1=$?
        run_schedule "$out/with" --temp-config="$out/with.conf" \
            --load-extension=pgcrypto --load-extension=audit_log; rc2=$?
    fi
    [ $rc1 = 0 ] && [ $rc2 = 0 ] || return 1
    echo "pg_regress: $((SECONDS - t0)) s for both runs; without audit_log: $(summary "$out/without"), with audit_log: $(summary "$out/with") (against the expected files of $(basename "$src"))"
    perl "$REPO/test/pg_regress_compare.pl" "$REPO/test/pg_regress_expected_diffs" \
        "$out/without/results" "$out/with/results"
}

summary() {
    grep -hE '^ *(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)' "$1/pg_regress.log" | sed -E 's/^ +| +$//g; s/\.$//'
}

# The suite's line for scripts/test.sh's count.
verdict() {
    if [ "$1" = 0 ]; then
        echo "test pg_regress_compare ... ok"
    else
        echo "test pg_regress_compare ... FAILED"
    fi
    return "$1"
}

case "${1:-}" in
    build) do_build || verdict 1 ;;
    run) do_run; verdict $? ;;
    all) do_build && do_run; verdict $? ;;
    *) echo "usage: $0 build|run|all" >&2; exit 2 ;;
esac
