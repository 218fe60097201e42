#!/usr/bin/env bash
# fresh-root.sh [COMMAND]: run COMMAND (default: the README's two commands, `make demo && make
# test`) on a clean clone of this repository's HEAD, in a new Debian 12 root, as root in a clean
# login environment: what a new machine of this kind has and nothing a session installed by hand.
#
# The root is debootstrap --variant=minbase bookworm with the host's apt sources and settings,
# plus what a new machine already has: build-essential, git, ca-certificates, curl, and the
# machine's Python (with moto and boto3) bound read-only at its own path, with the runtime
# libraries that Python links; at each run, the machine's added certificate authorities, npm
# configuration, hosts and resolver. The base is built once and cached as a tarball outside the
# repository ($LOGSHIP_ROOT_CACHE, default /var/cache/logship-ci); each run unpacks a new copy
# and deletes it afterwards. Runs in its own mount and pid namespaces, so every mount and every
# process the run started (test servers included) goes away with it.
#
#   scripts/fresh-root.sh                      # make demo && make test
#   scripts/fresh-root.sh 'make demo'          # any command, run in the clone
#   KEEP=1 scripts/fresh-root.sh               # keep the root afterwards (its path is printed)
#   REV=5ce9e7a scripts/fresh-root.sh          # another commit (e.g. to see an old failure)
set -eEuo pipefail
trap 'echo "fresh-root: failed (line $LINENO)" >&2' ERR

[ "$(id -u)" = 0 ] || { echo "fresh-root: must run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
cmd=${1:-make demo && make test}
cache=${LOGSHIP_ROOT_CACHE:-/var/cache/logship-ci}
py=$(python3 -c 'import sys; print(sys.base_prefix)')   # the machine's Python, e.g. /root/.pyenv/versions/3.11.7
python3 -c 'import moto, boto3' || { echo "fresh-root: the machine's python3 lacks moto/boto3" >&2; exit 1; }

# What a new machine of this kind has on top of minbase (see .library/env: the c kind), and the
# shared libraries the machine's Python and its modules (ssl, ctypes, sqlite3, readline...) link.
base_pkgs="build-essential git ca-certificates curl
           libssl3 libffi8 libsqlite3-0 libbz2-1.0 liblzma5 libreadline8 libncursesw6 libnsl2
           libtirpc3 libuuid1 libexpat1 zlib1g"

apt_files() {   # the host's apt sources and settings, copied into the root
    find /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/apt.conf.d /etc/apt/trusted.gpg.d \
         /etc/apt/keyrings /etc/apt/preferences.d -type f 2>/dev/null | sort || true
}
key=$( { echo "$base_pkgs" "$py" base-v2; apt_files | xargs cat; cat /usr/share/keyrings/*.gpg 2>/dev/null; } \
       | sha256sum | cut -c1-16)
tarball=$cache/bookworm-minbase-$key.tar.zst

mirror() {     # the host's Debian mirror for bookworm (deb822 or one-line sources)
    local m
    m=$(awk '/^URIs:/{u=$2} /^Suites:/ && / bookworm( |$)/{print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$m" ] || m=$(awk '$1=="deb" && $3=="bookworm"{print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    echo "${m:-http://deb.debian.org/debian}"
}

in_root() {    # in_root ROOT COMMAND: run COMMAND in ROOT's clean login shell, own mount+pid namespaces
    local root=$1 c=$2
    unshare --mount --pid --fork --propagation private /bin/bash -euc '
        root=$1 py=$2 c=$3
        mount --rbind /dev "$root/dev"
        mount -t proc proc "$root/proc"
        mount -t sysfs sysfs "$root/sys"
        mkdir -p "$root$py"
        mount --bind "$py" "$root$py"
        mount -o remount,bind,ro "$root$py"
        # the machine'"'"'s name and resolver, as on the machine (mariadb-install-db resolves them)
        cp /etc/resolv.conf /etc/hosts /etc/hostname "$root/etc/"
        exec chroot "$root" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash \
            TERM=dumb LANG=C.UTF-8 CI="${CI:-}" /bin/bash -lc "$c"
    ' fresh-root "$root" "$py" "$c"
}

make_base() {
    command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
    local tmp; tmp=$(mktemp -d /var/tmp/logship-base.XXXXXX)
    echo "fresh-root: debootstrap --variant=minbase bookworm ($(mirror)) -> $tarball"
    debootstrap --variant=minbase bookworm "$tmp" "$(mirror)" > "$tmp.log" 2>&1 \
        || { tail -20 "$tmp.log"; echo "fresh-root: debootstrap failed" >&2; exit 1; }
    rm -f "$tmp.log"
    rm -f "$tmp"/etc/apt/sources.list
    apt_files | while read -r f; do mkdir -p "$tmp$(dirname "$f")"; cp -p "$f" "$tmp$f"; done
    cp -pn /usr/share/keyrings/*.gpg "$tmp/usr/share/keyrings/" 2>/dev/null || true
    # the machine's Python first on PATH for login shells, as on the machine itself
    mkdir -p "$tmp/etc/profile.d"
    printf 'PATH=%s/bin:$PATH\nexport PATH\n' "$py" > "$tmp/etc/profile.d/machine-python.sh"
    printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"; chmod 755 "$tmp/usr/sbin/policy-rc.d"
    # shellcheck disable=SC2086
    in_root "$tmp" "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(echo $base_pkgs) >/dev/null && apt-get clean"
    rm -f "$tmp/usr/sbin/policy-rc.d" "$tmp/etc/resolv.conf"
    chmod 755 "$tmp"           # mktemp made it 0700: the root directory of the new system
    find "$tmp/var/lib/apt/lists" -maxdepth 1 -type f -delete
    rm -rf "$tmp$py"
    mkdir -p "$cache"
    tar -C "$tmp" --zstd -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf --one-file-system "$tmp"
}

[ -f "$tarball" ] || make_base
run=$(mktemp -d /var/tmp/logship-fresh.XXXXXX)
cleanup() {
    if [ "${KEEP:-}" = 1 ]; then echo "fresh-root: kept $run"; return; fi
    if findmnt -rn -o TARGET | grep -q "^$run"; then echo "fresh-root: $run still has mounts; not removed" >&2; return; fi
    rm -rf --one-file-system "$run"
}
trap cleanup EXIT
tar -C "$run" --zstd -xf "$tarball"
chmod 755 "$run"
# not under /root (0700): some tests run the build as an unprivileged user, as on the machine
# where the work tree is /work/...
mkdir -p "$run/work"
git clone -q --no-local "$src" "$run/work/logship"
[ -z "${REV:-}" ] || git -C "$run/work/logship" checkout -q "$REV"
# The machine's trust settings, as a new machine of this kind has them: the certificate
# authorities it adds to the system store (its registries are reached through them) and root's
# npm configuration that points npm at that store.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$run/usr/local/share/ca-certificates"
    cp -p /usr/local/share/ca-certificates/*.crt "$run/usr/local/share/ca-certificates/"
fi
[ ! -f /root/.npmrc ] || cp -p /root/.npmrc "$run/root/.npmrc"
echo "fresh-root: $(git -C "$run/work/logship" log -1 --format='%h %s') in a fresh Debian 12 root"
in_root "$run" "update-ca-certificates >/dev/null 2>&1 || true; cd /work/logship && $cmd"
