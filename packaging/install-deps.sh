#!/bin/sh
# Install the Debian packages logship needs, only those missing.
#   install-deps.sh build   libraries and tools to compile
#   install-deps.sh test    also the real servers the tests start (nginx, MariaDB)
# and check that the machine's Python has moto and boto3 (the S3 test server
# and the independent client; PyPI is not reachable, so they must be there).
set -e
mode=${1:-build}
pkgs="build-essential pkg-config libev-dev libcurl4-openssl-dev zlib1g-dev libssl-dev libpcre2-dev
      libmariadb-dev libexpat1-dev libdeflate-dev libmicrohttpd-dev check
      libzstd-dev libsnappy-dev"
if [ "$mode" = test ]; then
    pkgs="$pkgs nginx-light mariadb-server mariadb-client gzip procps curl logrotate"
fi
missing=
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    SUDO=
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ "$mode" = test ]; then
    if ! python3 -c 'import moto, boto3' 2>/dev/null; then
        echo "install-deps: the machine's python3 lacks moto/boto3 (needed for the S3 test server)" >&2
        exit 1
    fi
fi
