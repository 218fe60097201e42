#!/bin/sh
# build-deb.sh [OUTDIR] - build logship's .deb with debhelper (packaging/debian) from this
# source tree; prints the .deb's path.
#
# The tree (git's files: committed, changed and new, not ignored ones, so never build/) is
# copied to a temporary directory with packaging/debian as its debian/, and built there with
# dpkg-buildpackage: the package always comes from a clean build with Debian's flags, whatever
# build/ (or build/san) holds. Build-Depends must be installed (install-deps.sh deb).
#
#   sh packaging/build-deb.sh            -> build/logship_<ver>_<arch>.deb
#   sh packaging/build-deb.sh /tmp/out
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
outdir=${1:-$root/build}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
work=$(mktemp -d "${TMPDIR:-/tmp}/logship-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/logship-$version

git -C "$root" rev-parse --git-dir >/dev/null 2>&1 ||
    { echo "build-deb: $root is not a git checkout (the package is built from git's files)" >&2; exit 1; }
mkdir -p "$src"
git -C "$root" ls-files -z --cached --others --exclude-standard |
    (cd "$root" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
    (cd "$root" && tar --null -T - -cf -) | tar -xf - -C "$src"
rm -rf "$src/debian"
cp -a "$here/debian" "$src/debian"
# -J: as many jobs as dh allows; the log is printed only when the build fails
if ! (cd "$src" && dpkg-buildpackage -b -us -uc -Jauto) > "$work/build.log" 2>&1; then
    tail -60 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed (the lines above are the end of its log)" >&2
    exit 1
fi
deb=logship_${version}_${arch}.deb
cp "$work/$deb" "$outdir/$deb"
echo "$outdir/$deb"
