#!/usr/bin/env bash
# Install what audit_log needs on Debian 12 (as root), then build and install
# the extension.  Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-client-15 libipc-run-perl libkrb5-dev gcc make perl"
PACKAGES="$PACKAGES ${EXTRA_PACKAGES:-}"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing Debian packages:$missing (run as root to install them)" >&2
        exit 1
    fi
    echo "== installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo "== building audit_log"
make -s PG_CONFIG="$PG_CONFIG" AUDIT_CFLAGS="${AUDIT_CFLAGS:--Werror}" >/dev/null
if [ -w "$($PG_CONFIG --pkglibdir)" ]; then
    make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
else
    echo "cannot write $($PG_CONFIG --pkglibdir): run as root to install" >&2
    exit 1
fi
