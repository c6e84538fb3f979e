#!/usr/bin/env bash
# Build PostgreSQL 18 from the source tarball kept in shared/postgres (as CI
# has it beside the clone) into a cache outside the clone, once per machine,
# and print the path of its pg_config.  A later run finds the cache and only
# prints the path.  Run as root on Debian 12 (it installs the packages the
# build needs); the tests then run as "postgres", who can read the cache.
#
# What is built: the server and client programs, the PGXS files with
# pg_regress, the isolation tester (make -C src/test/isolation install), the
# TAP modules (--enable-tap-tests) and contrib (pgcrypto, which audit_log
# requires, needs --with-openssl; the suites also use cube and dblink), with
# LZ4 (--with-lz4, as Debian builds it: the writer compresses row images
# with it).  No docs, no ICU, no readline: nothing here needs them.
#
#   PG18_TARBALL  the tarball   (default: ../shared/postgres/postgresql-18_18.6.orig.tar.bz2
#                               beside the clone, else /work/shared/postgres/...)
#   PG18_CACHE    the cache dir (default: /var/cache/audit_log)
#   PG18_JOBS     make -j       (default: 2)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SRC=$(pwd)

TARBALL_NAME=postgresql-18_18.6.orig.tar.bz2
if [ -z "${PG18_TARBALL:-}" ]; then
    for d in "$SRC/../shared/postgres" /work/shared/postgres; do
        [ -f "$d/$TARBALL_NAME" ] && { PG18_TARBALL="$d/$TARBALL_NAME"; break; }
    done
fi
[ -f "${PG18_TARBALL:-}" ] || { echo "pg18.sh: $TARBALL_NAME not found (set PG18_TARBALL)" >&2; exit 1; }
CACHE=${PG18_CACHE:-/var/cache/audit_log}
JOBS=${PG18_JOBS:-2}

# The cache is keyed by the tarball's checksum and this script's configure
# line: change either and the next run builds anew beside the old one.
CONFIGURE_OPTS="--with-openssl --with-lz4 --enable-tap-tests --without-icu --without-readline --with-zlib"
sum=$(sha256sum "$PG18_TARBALL" | cut -d' ' -f1)
if [ -f "$(dirname "$PG18_TARBALL")/SHA256SUMS" ]; then
    grep -q "^$sum  $TARBALL_NAME\$" "$(dirname "$PG18_TARBALL")/SHA256SUMS" \
        || { echo "pg18.sh: $PG18_TARBALL does not match SHA256SUMS" >&2; exit 1; }
fi
key=$(printf '%s %s' "$sum" "$CONFIGURE_OPTS" | sha256sum | cut -c1-12)
# (A prefix naming "postgresql" keeps lib/ and share/ free of an extra
# postgresql/ level.)
PREFIX="$CACHE/postgresql-18-$key"

if [ -x "$PREFIX/bin/pg_config" ] && [ -f "$PREFIX/.complete" ]; then
    echo "$PREFIX/bin/pg_config"
    exit 0
fi

# The Debian packages the build needs (IPC::Run for the TAP tests).
PACKAGES="bison flex libssl-dev liblz4-dev zlib1g-dev pkg-config libipc-run-perl gcc make perl"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "pg18.sh: missing Debian packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "== installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

mkdir -p "$CACHE"
# One build at a time; a second caller waits and then finds the cache.
exec 9>"$CACHE/.pg18.lock"
flock 9
if [ -x "$PREFIX/bin/pg_config" ] && [ -f "$PREFIX/.complete" ]; then
    echo "$PREFIX/bin/pg_config"
    exit 0
fi

echo "== building PostgreSQL 18 into $PREFIX (once per machine)" >&2
start=$(date +%s)
BUILD=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
rm -rf "$PREFIX"
tar -xjf "$PG18_TARBALL" -C "$BUILD"
cd "$BUILD"/postgresql-18*
{
    ./configure --prefix="$PREFIX" $CONFIGURE_OPTS
    nice -n 10 make -j"$JOBS"
    make install
    make -C src/test/regress install
    make -C src/test/isolation install
    make -C src/test/perl install
    nice -n 10 make -j"$JOBS" -C contrib install
} > "$BUILD/build.log" 2>&1 || { tail -n 60 "$BUILD/build.log" >&2; echo "pg18.sh: build kept in $BUILD" >&2; trap - EXIT; exit 1; }
# The TAP modules, pg_regress and pg_isolation_regress are where PGXS looks.
pgxs=$(dirname "$("$PREFIX/bin/pg_config" --pgxs)")/..
for f in "$pgxs/test/perl/PostgreSQL/Test/Cluster.pm" "$pgxs/test/regress/pg_regress" \
         "$pgxs/test/isolation/pg_isolation_regress" \
         "$("$PREFIX/bin/pg_config" --sharedir)/extension/pgcrypto.control"; do
    [ -e "$f" ] || { echo "pg18.sh: $f missing after the build" >&2; trap - EXIT; exit 1; }
done
chmod -R a+rX "$PREFIX"
touch "$PREFIX/.complete"
echo "== PostgreSQL 18 built in $(( $(date +%s) - start ))s" >&2
echo "$PREFIX/bin/pg_config"
