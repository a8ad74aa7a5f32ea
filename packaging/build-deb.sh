#!/bin/sh
# build-deb.sh - build the Debian package; `scons deb` runs this.
#
# dpkg-buildpackage wants debian/ at the top of a source tree and leaves its results in the
# parent directory, so the package is built in a copy: the files git knows (tracked, and
# untracked ones that are not ignored, as the SConscripts' globs see them) are copied to
# build/deb/src/, packaging/debian becomes build/deb/src/debian, and
#     dpkg-buildpackage -us -uc -b
# leaves build/deb/gatehouse_<version>_<arch>.deb (with the -dbgsym package, .buildinfo and
# .changes) next to src/. Nothing is written outside build/deb/.
#
# Run as root, it first installs what is missing with apt-get: dpkg-dev and debhelper, then
# whatever dpkg-checkbuilddeps reports unmet in debian/control. DEB_BUILD_OPTIONS passes through
# (DEB_BUILD_OPTIONS=nocheck skips the unit tests).
set -eu
cd "$(dirname "$0")/.."
out=build/deb
src=$out/src

say() { printf 'build-deb: %s\n' "$*"; }

# One build at a time in this tree: a second one would delete the first one's copy.
mkdir -p "$out"
exec 9>"$out/.lock"
if ! flock -w 1800 9; then
	say "another package build in this tree holds $out/.lock"
	exit 1
fi

apt_install() { # package...
	if [ "$(id -u)" -ne 0 ]; then
		say "missing packages: $*; install them as root: apt-get install $*"
		exit 1
	fi
	say "installing: $*"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q || true
	# shellcheck disable=SC2068
	apt-get install -y -q --no-install-recommends $@
}

missing=""
for p in dpkg-dev debhelper; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] || apt_install $missing

# The package version must be the program's: changelog against SConstruct's VERSION.
deb_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
upstream=${deb_version#*:}
upstream=${upstream%-*}
prog_version=$(sed -n "s/^VERSION = '\\(.*\\)'\$/\\1/p" SConstruct)
if [ "$upstream" != "$prog_version" ]; then
	say "packaging/debian/changelog is at $deb_version but SConstruct's VERSION is $prog_version: add a changelog entry"
	exit 1
fi

rm -rf "$src"
rm -f "$out"/gatehouse_* "$out"/gatehouse-dbgsym_*
mkdir -p "$src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# Files deleted in the working tree but still in the index are skipped.
	git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		xargs -0 cp --parents -t "$src" --
else
	# What .gitignore leaves out, as the git branch above does: above all the browser tests'
	# npm modules (tests/integration/node/node_modules, tens of MB the package never uses).
	tar --exclude=./build --exclude=./.git --exclude=./.sconsign.dblite \
		--exclude=./tests/integration/node/node_modules --exclude=./tests/fuzz/corpus-run \
		--exclude=__pycache__ --exclude='*.pyc' -cf - . | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -r packaging/debian "$src/debian"

# Build dependencies from debian/control, reduced to package names ("debhelper-compat (= 13)"
# is provided by debhelper; alternatives take their first choice).
unmet=$(cd "$src" && dpkg-checkbuilddeps 2>&1 >/dev/null | sed -n 's/.*Unmet build dependencies: //p') || true
if [ -n "$unmet" ]; then
	pkgs=$(printf '%s\n' "$unmet" | sed -e 's/([^)]*)//g' -e 's/\[[^]]*\]//g' -e 's/<[^>]*>//g' \
		-e 's/|[^ ]*//g' -e 's/ | [^ ]*//g' -e 's/debhelper-compat/debhelper/g')
	# shellcheck disable=SC2086
	apt_install $pkgs
fi

say "dpkg-buildpackage in $src"
(cd "$src" && dpkg-buildpackage -us -uc -b -jauto)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$out/gatehouse_${deb_version#*:}_${arch}.deb"
[ -f "$deb" ] || { say "dpkg-buildpackage did not produce $deb"; exit 1; }
say "built $deb"
