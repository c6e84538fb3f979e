#!/usr/bin/env bash
# Build the Debian packages (postgresql-NN-audit-log, one per version in
# debian/pgversions whose postgresql-server-dev-NN is installed) with
# dpkg-buildpackage, install them with dpkg -i, and run the regression suite
# against the installed files (debian/tests/installcheck: pg_buildext
# installcheck on a pg_virtualenv cluster).  Run as root on Debian 12; CI
# runs it last (scripts/test.sh with TEST_DEB=1), as the packages replace the
# files "make install" put into the system's PostgreSQL.
#
#   package.sh [WORKDIR]   (default: a new /tmp/audit_log_deb.XXXXXX)
#   PACKAGE_INSTALL=0      build only: no dpkg -i, no test
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# pg_virtualenv reads PACKAGE (debian/$PACKAGE as extension_destdir): none of ours.
unset PACKAGE
SRC=$(pwd)
WORK=${1:-$(mktemp -d /tmp/audit_log_deb.XXXXXX)}

PACKAGES="debhelper postgresql-server-dev-all dpkg-dev fakeroot libkrb5-dev postgresql-15 make gcc"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "== installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# dpkg-buildpackage writes the .deb files beside the source tree.
mkdir -p "$WORK"
chmod 755 "$WORK"
rm -rf "$WORK/audit-log"
mkdir "$WORK/audit-log"
cp -a "$SRC"/. "$WORK/audit-log"/
cd "$WORK/audit-log"
rm -rf .git
make -s clean PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null 2>&1 || true

echo "== dpkg-buildpackage -us -uc -b"
t0=$(date +%s)
# The suite runs below against the installed package (and, without nocheck,
# during the build against the package's files).
DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -us -uc -b > "$WORK/build.log" 2>&1 \
    || { tail -n 80 "$WORK/build.log"; echo "package build failed"; exit 1; }
echo "== built in $(( $(date +%s) - t0 ))s:"
ls "$WORK"/*.deb
for deb in "$WORK"/postgresql-*-audit-log_*.deb; do
    dpkg-deb --contents "$deb" | awk '{print "   " $6}' | grep -E '\.(so|control|sql)$' || true
done
[ "${PACKAGE_INSTALL:-1}" = 1 ] || exit 0

echo "== dpkg -i"
dpkg -i "$WORK"/postgresql-*-audit-log_*.deb

# The regression suite against the installed files, as postgres (initdb
# refuses root) in a copy of the tree it owns.
echo "== debian/tests/installcheck"
chown -R postgres "$WORK/audit-log"
runuser -u postgres -- env -C "$WORK/audit-log" debian/tests/installcheck
