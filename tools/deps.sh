#!/bin/sh
# tools/deps.sh: installs what Strongroom needs to build, test and run on
# Debian 12, and nothing more. Idempotent: a second run checks and returns.
#
# - Debian 12 packages come from the system's apt sources with apt-get install.
# - llhttp and yyjson come from Debian 13's binary packages, fetched through a
#   private apt configuration under $BUILD/deps/apt (its own sources list,
#   lists and cache) and unpacked with dpkg -x into $BUILD/deps/root. The
#   system's apt sources are never touched. apt checks Debian 13's Release
#   file against debian-archive-keyring (which carries the Debian 13
#   "trixie" keys), then each .deb against the SHA-256 listed there.
# - mbedTLS 3.6 is built here from Debian 13's source package (the same
#   version as its libmbedtls-dev, whose headers and configuration we keep),
#   fetched the same way (apt checks the .dsc, .orig and .debian tarballs
#   against the signed Sources index) and unpacked with dpkg-source, which
#   applies Debian's patches. It is built with Debian's mbedtls_config.h
#   plus tools/mbedtls_config_extra.h (MBEDTLS_USER_CONFIG_FILE), libraries
#   only, and its three .a files replace the Debian ones. The stamp records
#   the extra configuration's SHA-256, so changing that file rebuilds it.
# It must never change /etc/apt or install a Debian 13 package system-wide.
set -eu

BUILD=${BUILD:-build}
DEPS=$BUILD/deps
mkdir -p "$DEPS"
DEPS=$(cd "$DEPS" && pwd)
STAMP=$DEPS/.complete-v2
MBEDTLS_EXTRA=$(pwd)/tools/mbedtls_config_extra.h
test -f "$MBEDTLS_EXTRA" || { echo "deps: run from the checkout's root ($MBEDTLS_EXTRA missing)" >&2; exit 1; }

# Debian 12 packages: build tools, libraries, test clients.
APT_PKGS="build-essential pkg-config ca-certificates debian-archive-keyring \
 softhsm2 opensc libp11-kit-dev libcmocka-dev libuv1-dev liblmdb-dev \
 libargon2-dev libpcre2-dev libgfshare-dev libunistring-dev clang-format \
 libnss3 zlib1g-dev curl openssl prometheus clang libclang-rt-14-dev \
 nghttp2-client nginx-light testssl.sh oathtool python3 dpkg-dev bzip2 xz-utils \
 libssl-dev"
# libmbedtls-dev for Debian's headers and mbedtls_config.h (its libraries
# are replaced by the ones built below from the matching source package).
DEB13_PKGS="libmbedtls-dev libllhttp-dev libllhttp9.2 libyyjson-dev libyyjson0"

missing=""
for p in $APT_PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing Debian packages:$missing (run as root, or install them)" >&2
		exit 1
	fi
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || apt-get update
	# Packages with services (nginx, prometheus) are installed for their
	# programs only: no service is started here. A policy-rc.d already in
	# place (containers have one) is left alone.
	norc=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		norc=1
	fi
	rc=0
	if ! apt-get install -y -q --no-install-recommends $missing >/dev/null
	then
		apt-get install -y --no-install-recommends $missing || rc=1
	fi
	if [ -n "$norc" ]; then
		rm -f /usr/sbin/policy-rc.d
	fi
	[ $rc -eq 0 ] || exit $rc
fi

# The stamp names the extra mbedTLS configuration it was built with; a
# matching stamp is touched (make compares its time with the file's) and
# nothing is fetched again.
extra_sum=$(sha256sum "$MBEDTLS_EXTRA" | cut -d' ' -f1)
if [ -f "$STAMP" ] && grep -qx "mbedtls-config $extra_sum" "$STAMP"; then
	touch "$STAMP"
	exit 0
fi

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if [ ! -f /usr/share/keyrings/debian-archive-trixie-automatic.gpg ] && \
    [ ! -f /usr/share/keyrings/debian-archive-trixie-stable.gpg ]; then
	echo "deps: $KEYRING does not carry Debian 13's archive key; refusing to fetch unverified packages" >&2
	exit 1
fi

APTDIR=$DEPS/apt
mkdir -p "$APTDIR/etc" "$APTDIR/state/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/debs"
: >"$APTDIR/state/status"
cat >"$APTDIR/etc/sources.list" <<LIST
deb [signed-by=$KEYRING] http://deb.debian.org/debian trixie main
deb-src [signed-by=$KEYRING] http://deb.debian.org/debian trixie main
LIST
cat >"$APTDIR/etc/apt.conf" <<CONF
Dir::Etc::SourceList "$APTDIR/etc/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Preferences "/nonexistent";
Dir::Etc::PreferencesParts "/nonexistent";
Dir::State "$APTDIR/state";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
APT::Sandbox::User "root";
Acquire::AllowInsecureRepositories "false";
Acquire::AllowDowngradeToInsecureRepositories "false";
CONF
export APT_CONFIG=$APTDIR/etc/apt.conf
echo "deps: fetching Debian 13 packages:$DEB13_PKGS"
apt-get -q update >"$APTDIR/update.log" 2>&1 || { cat "$APTDIR/update.log" >&2; exit 1; }
rm -f "$APTDIR"/debs/*.deb
(cd "$APTDIR/debs" && apt-get -q download $DEB13_PKGS >"$APTDIR/download.log" 2>&1) || \
    { cat "$APTDIR/download.log" >&2; exit 1; }
rm -rf "$DEPS/root"
mkdir -p "$DEPS/root"
for deb in "$APTDIR"/debs/*.deb; do
	dpkg-deb -x "$deb" "$DEPS/root"
done
LIBDIR=$DEPS/root/usr/lib/x86_64-linux-gnu
test -f "$DEPS/root/usr/include/mbedtls/ssl.h"

# mbedTLS from the source package of the libmbedtls-dev just unpacked
# (its Source field names the source version when it differs).
dev_deb=$(ls "$APTDIR"/debs/libmbedtls-dev_*.deb)
mbedtls_ver=$(dpkg-deb -f "$dev_deb" Source | sed -n 's/.*(\(.*\)).*/\1/p')
[ -n "$mbedtls_ver" ] || mbedtls_ver=$(dpkg-deb -f "$dev_deb" Version)
SRC=$DEPS/src
rm -rf "$SRC"
mkdir -p "$SRC"
echo "deps: building mbedTLS $mbedtls_ver from Debian 13's source package"
(cd "$SRC" && apt-get -q source --download-only "mbedtls=$mbedtls_ver" \
    >"$SRC/source.log" 2>&1 &&
    dpkg-source -x mbedtls_*.dsc mbedtls >>"$SRC/source.log" 2>&1) ||
    { cat "$SRC/source.log" >&2; exit 1; }
# Debian's configuration (its rules file sets it with config.py at build
# time; the -dev package ships the result), then ours on top through
# MBEDTLS_USER_CONFIG_FILE. GNU make, not CMake: Debian's CMake patch leaves
# out 3rdparty/ (Everest), which the library Makefile builds. The release
# ships its generated sources, so neither Python nor Perl runs here. The
# flags are Debian's hardening ones (its build uses hardening=+all).
# MAKEFLAGS is cleared: ours (-r, a jobserver) must not reach mbedTLS's
# Makefile, which relies on make's built-in rules.
cp "$DEPS/root/usr/include/mbedtls/mbedtls_config.h" "$SRC/mbedtls/include/mbedtls/"
MAKEFLAGS= MFLAGS= MAKELEVEL= make -C "$SRC/mbedtls/library" -j2 static \
    CFLAGS="-O2 -fPIC -fstack-protector-strong -fstack-clash-protection \
    -fcf-protection -D_FORTIFY_SOURCE=2 \
    -DMBEDTLS_USER_CONFIG_FILE='\"$MBEDTLS_EXTRA\"'" \
    >"$SRC/build.log" 2>&1 || { tail -n 40 "$SRC/build.log" >&2; exit 1; }
for lib in libmbedcrypto.a libmbedx509.a libmbedtls.a; do
	cp "$SRC/mbedtls/library/$lib" "$LIBDIR/$lib"
done
# No shared mbedTLS (the -dev package's .so links would dangle), and the
# Everest headers that mbedtls/ecdh.h includes when it is enabled.
rm -f "$LIBDIR"/libmbed*.so*
cp -R "$SRC/mbedtls/3rdparty/everest/include/everest" "$DEPS/root/usr/include/"
rm -rf "$SRC"
printf '%s\nmbedtls %s\nmbedtls-config %s\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$mbedtls_ver" "$extra_sum" >"$STAMP"
echo "deps: Debian 13 packages unpacked and mbedTLS built into $DEPS/root"
