#!/bin/bash
# Builds iommud_<version>_<arch>.deb from the source tree with dpkg-buildpackage -b -us -uc, in a
# copy of the tree under OUTDIR (dpkg-buildpackage writes the .deb next to the tree it builds).
#   build-deb.sh SOURCE_DIR OUTDIR      -> OUTDIR/iommud_<version>_<arch>.deb (+ .changes, .buildinfo)
# The copy holds the files git tracks plus the untracked ones it does not ignore, as they are in the
# working tree, so uncommitted changes are built too (no build directories).
set -euo pipefail
src=$(realpath "$1")
out=$(realpath -m "$2")

for tool in dpkg-buildpackage dh lintian; do
        command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (.ci/install-deps)" >&2; exit 1; }
done

version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
rm -rf "$out"
mkdir -p "$out/src/iommud-$version"
if [ -e "$src/.git" ]; then
        (cd "$src" && git ls-files -z --cached --others --exclude-standard |
                xargs -0 -I{} sh -c 'if [ -e "{}" ] || [ -L "{}" ]; then printf "%s\0" "{}"; fi' |
                cpio --quiet -0 -pdm "$out/src/iommud-$version")
else
        (cd "$src" && find . -path './build*' -prune -o -print0 | cpio --quiet -0 -pdm "$out/src/iommud-$version")
fi

cd "$out/src/iommud-$version"
started=$(date +%s)
# The unit tests run in the package build too (dh_auto_test); DEB_BUILD_OPTIONS=nocheck skips them.
dpkg-buildpackage -b -us -uc >"$out/dpkg-buildpackage.log" 2>&1 || {
        tail -40 "$out/dpkg-buildpackage.log" >&2
        echo "build-deb: dpkg-buildpackage failed; the whole log is $out/dpkg-buildpackage.log" >&2
        exit 1
}
find "$out/src" -maxdepth 1 -type f -exec mv -t "$out" {} +
rm -rf "$out/src"
echo "build-deb: $(cd "$out" && ls iommud_*.deb) in $(($(date +%s) - started)) s"
