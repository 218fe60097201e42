#!/bin/sh
# build-deb.sh BINARY [OUTDIR] - build logship's .deb with plain dpkg-deb.
#
# No debhelper: the package is one binary plus a handful of text files, so
# the tree is laid out here and dpkg-deb --root-owner-group builds it
# without fakeroot. Dependencies come from dpkg-shlibdeps on the binary
# (the libraries it was actually linked with), plus the libraries plugins
# dlopen, which no tool can see. Prints the .deb's path.
#
#   sh packaging/build-deb.sh build/logship            -> build/logship_<ver>_<arch>.deb
#   sh packaging/build-deb.sh build/logship /tmp/out
set -eu

bin=${1:?usage: build-deb.sh BINARY [OUTDIR]}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
outdir=${2:-$(dirname "$bin")}
[ -x "$bin" ] || { echo "build-deb: '$bin' is not an executable" >&2; exit 1; }

version=$("$bin" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/logship-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg

install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/etc/logship" "$pkg/etc/logrotate.d" \
    "$pkg/lib/systemd/system" "$pkg/usr/share/man/man1" "$pkg/usr/share/doc/logship/examples"

helper="$bin-http"   # logship-http, built next to logship; it runs the HTTP requests (agent/http.h)
[ -x "$helper" ] || { echo "build-deb: '$helper' is missing (make $helper)" >&2; exit 1; }
install -d -m 0755 "$pkg/usr/lib/logship"
install -m 0755 "$bin" "$pkg/usr/bin/logship"
install -m 0755 "$helper" "$pkg/usr/lib/logship/logship-http"
# strip only what a normal build produced (sanitizer builds keep their symbols)
for b in "$pkg/usr/bin/logship" "$pkg/usr/lib/logship/logship-http"; do
    if command -v strip >/dev/null 2>&1 && ! nm -D "$b" 2>/dev/null | grep -q __asan_init; then
        strip --strip-unneeded --remove-section=.comment --remove-section=.note "$b"
    fi
done
install -m 0640 "$here/logship.conf" "$pkg/etc/logship/logship.conf"
install -m 0644 "$here/logship.logrotate" "$pkg/etc/logrotate.d/logship"
install -m 0644 "$here/logship.service" "$pkg/lib/systemd/system/logship.service"
gzip -9n < "$here/logship.1" > "$pkg/usr/share/man/man1/logship.1.gz"
chmod 0644 "$pkg/usr/share/man/man1/logship.1.gz"

doc=$pkg/usr/share/doc/logship
install -m 0644 "$root/README.md" "$doc/README.md"
if [ -f "$root/docs/plugins.md" ]; then
    install -m 0644 "$root/docs/plugins.md" "$doc/plugins.md"
fi
for f in "$root"/conf/*.conf; do
    [ -f "$f" ] && install -m 0644 "$f" "$doc/examples/"
done
cat > "$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: logship

Files: *
Copyright: the logship authors
License: see the source repository
EOF
printf 'logship (%s) unstable; urgency=medium\n\n  * Package built from the source tree.\n\n -- logship maintainers <logship@localhost>  %s\n' \
    "$version" "$(date -R)" | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

# shared library dependencies of the binary as built
depends=
if command -v dpkg-shlibdeps >/dev/null 2>&1; then
    mkdir -p "$work/src/debian"
    printf 'Source: logship\n\nPackage: logship\nArchitecture: any\n' > "$work/src/debian/control"
    depends=$(cd "$work/src" && dpkg-shlibdeps -O "$pkg/usr/bin/logship" "$pkg/usr/lib/logship/logship-http" 2>/dev/null |
              sed -n 's/^shlibs:Depends=//p')
fi
if [ -z "$depends" ]; then
    # fallback: the packages that own the linked libraries
    depends=$(ldd "$pkg/usr/bin/logship" "$pkg/usr/lib/logship/logship-http" | awk '/=> \//{print $3}' | xargs -r realpath |
              xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u | paste -sd, - | sed 's/,/, /g')
fi
# dlopen()ed by rds_slowlog, monitor_agent and zstd/xz compression (agent/dynlib.h): keep in
# step with the SONAMEs in plugins/in_rds_slowlog/rds_mysql.c, plugins/in_monitor_agent/mhd_api.c
# and agent/compress.c; the versions are those dpkg-shlibdeps gave when the binary was linked
# with them
dlopened="libmariadb3 (>= 3.0.0), libmicrohttpd12 (>= 0.9.50), libzstd1 (>= 1.5.2), liblzma5 (>= 5.1.1alpha+20120614)"
size=$(du -sk "$pkg" | cut -f1)

cat > "$pkg/DEBIAN/control" <<EOF
Package: logship
Version: $version
Architecture: $arch
Maintainer: logship maintainers <logship@localhost>
Installed-Size: $size
Depends: ${depends:+$depends, }$dlopened, passwd
Recommends: logrotate
Section: admin
Priority: optional
Description: log shipping agent with fluentd's configuration language
 logship tails nginx and other logs and harvests Amazon RDS slow logs,
 buffers the records in time-sliced chunks on disk and delivers them to
 files or S3-compatible object stores without losing or duplicating
 records across crashes, restarts, rotation and outages. It reads
 fluentd/td-agent configurations and exposes fluentd-style and
 Prometheus metrics.
EOF

cat > "$pkg/DEBIAN/conffiles" <<'EOF'
/etc/logship/logship.conf
/etc/logrotate.d/logship
EOF

for s in postinst prerm postrm; do
    install -m 0755 "$here/debian/$s" "$pkg/DEBIAN/$s"
done

deb=$outdir/logship_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
