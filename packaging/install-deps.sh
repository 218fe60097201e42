#!/bin/sh
# Install the Debian packages logship needs, only those missing (fresh Debian 12, as root).
#   install-deps.sh build   libraries and tools to compile
#   install-deps.sh demo    build, and what `make demo` runs (the S3 server is moto, from the
#                           machine's Python): no web or database server
#   install-deps.sh test    also the real servers and tools the tests start (nginx, MariaDB...)
#   install-deps.sh fuzz    build, and clang with its fuzzer/sanitizer runtime
#   install-deps.sh deb     build, and what building and checking the .deb takes
# No package installed here starts a system service: a package's own start (nginx on port 80,
# mariadbd) is refused by a policy-rc.d for the time of the install; the tests start their own
# servers on 127.0.0.1.
set -e
mode=${1:-build}
build="build-essential pkg-config libev-dev libcurl4-openssl-dev zlib1g-dev libssl-dev libpcre2-dev
       libmariadb-dev libexpat1-dev libdeflate-dev libmicrohttpd-dev libzstd-dev liblzma-dev libsnappy-dev libmsgpack-dev libsystemd-dev libmongoc-dev check"
case $mode in
build) pkgs=$build ;;
demo)  pkgs="$build gzip" ;;
test)  pkgs="$build gzip zstd xz-utils nginx-light mariadb-server mariadb-client procps curl logrotate faketime debhelper lintian debootstrap
       python3-msgpack python3-fluent-logger rsyslog prometheus systemd-journal-remote python3-bson" ;;
fuzz)  pkgs="$build clang libclang-rt-14-dev" ;;
deb)   pkgs="$build dpkg-dev debhelper lintian" ;;
*)     echo "install-deps: unknown mode '$mode' (build, demo, test, fuzz, deb)" >&2; exit 2 ;;
esac

missing=
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
# DuckDB from npm reads the Parquet files back in the tests: the machine's Node.js and npm when it
# has them (this kind of machine comes with them), else Debian's
if [ "$mode" = test ] && ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: installing packages needs root (run as root, or install them and use NO_DEPS=1)" >&2
        exit 1
    fi
    # invoke-rc.d and deb-systemd-invoke ask policy-rc.d before starting a service; 101 = refuse.
    # Only when the machine has none of its own, and removed again whatever happens.
    prc=/usr/sbin/policy-rc.d
    if [ ! -e $prc ]; then
        printf '#!/bin/sh\n# logship install-deps.sh: no service starts during the install\nexit 101\n' > $prc
        chmod 0755 $prc
        trap "rm -f $prc" EXIT
        trap 'exit 1' INT TERM
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
case $mode in
demo|test)
    if ! python3 -c 'import moto, boto3' 2>/dev/null; then
        echo "install-deps: the machine's python3 lacks moto/boto3 (the S3 test server and client;" \
             "Debian 12 has no moto package, so it must come with the machine's Python)" >&2
        exit 1
    fi ;;
esac
