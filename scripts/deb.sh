#!/usr/bin/env bash
# deb.sh OUTDIR: builds Tide's Debian packages (tide-agent, tide-controlplane, tidectl and the
# native source package) into OUTDIR with dpkg-buildpackage, then runs lintian on them: an error
# or a warning fails. The build runs in a copy of the tree (OUTDIR/src/tide-VERSION: the files git
# tracks plus new ones it does not ignore, or everything but build/ and bin/ outside git), so it
# is a clean build with dpkg-buildflags' hardening flags that neither reads nor touches this
# tree's build/ and bin/, and dpkg-buildpackage's output lands in OUTDIR, not in the parent
# directory. Prints the package files and the build time; `make deb` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: deb.sh OUTDIR}
for t in dpkg-buildpackage dh lintian fakeroot; do
    command -v "$t" > /dev/null || {
        echo "deb: $t not found: run scripts/setup.sh as root (debhelper, dpkg-dev, lintian, fakeroot)" >&2
        exit 1
    }
done
version=$(dpkg-parsechangelog -S Version)
src_version=$(sed -n 's/^#define TIDE_VERSION "\(.*\)"/\1/p' shared/version.h)
[ "$version" = "$src_version" ] || {
    echo "deb: debian/changelog says $version, shared/version.h $src_version: add a changelog entry" >&2
    exit 1
}
start=$(date +%s)
rm -rf "$out"
mkdir -p "$out/src/tide-$version"
out=$(cd "$out" && pwd)
tree=$out/src/tide-$version
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    # tracked and new files as they are in the work tree (deleted ones are left out)
    git ls-files -z -co --exclude-standard | xargs -0 -r sh -c 'for f; do if [ -e "$f" ]; then printf "%s\0" "$f"; fi; done' _ |
        tar --null -T - -cf - | tar -xf - -C "$tree"
else
    tar --exclude=./build --exclude=./bin -cf - . | tar -xf - -C "$tree"
fi
jobs=${DEB_JOBS:-$(nproc)}
(cd "$tree" && DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc --build=full) > "$out/build.log" 2>&1 || {
    tail -40 "$out/build.log" >&2
    echo "deb: dpkg-buildpackage failed (whole log: $out/build.log)" >&2
    exit 1
}
mv "$out/src/"*.deb "$out/src/"*.dsc "$out/src/"*.tar.* "$out/src/"*.changes "$out/src/"*.buildinfo "$out/"
rm -rf "$out/src"
changes=$(ls "$out"/*.changes)
# --fail-on error,warning: lintian's exit status says whether anything at those levels was found
# (info and pedantic tags are printed but do not fail)
if ! lintian --fail-on error,warning --info "$changes" > "$out/lintian.log" 2>&1; then
    cat "$out/lintian.log" >&2
    echo "deb: lintian found errors or warnings (above)" >&2
    exit 1
fi
[ -s "$out/lintian.log" ] && cat "$out/lintian.log"
ls -1 "$out"/*.deb
echo "deb: built and lintian-clean in $(($(date +%s) - start)) s"
