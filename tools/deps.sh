#!/bin/sh
# tools/deps.sh: installs what Strongroom needs to build, test and run on
# Debian 12, and nothing more. Idempotent: a second run checks and returns.
#
# - Debian 12 packages come from the system's apt sources with apt-get install.
# - mbedTLS 3.6, llhttp and yyjson come from Debian 13's binary packages,
#   fetched through a private apt configuration under $BUILD/deps/apt (its own
#   sources list, lists and cache) and unpacked with dpkg -x into
#   $BUILD/deps/root. The system's apt sources are never touched. apt checks
#   Debian 13's Release file against debian-archive-keyring (which carries the
#   Debian 13 "trixie" keys), then each .deb against the SHA-256 listed there.
# It must never change /etc/apt or install a Debian 13 package system-wide.
set -eu

BUILD=${BUILD:-build}
DEPS=$BUILD/deps
mkdir -p "$DEPS"
DEPS=$(cd "$DEPS" && pwd)
STAMP=$DEPS/.complete-v1

# Debian 12 packages: build tools, libraries, test clients.
APT_PKGS="build-essential pkg-config ca-certificates debian-archive-keyring \
 softhsm2 opensc libp11-kit-dev libcmocka-dev libuv1-dev liblmdb-dev \
 libargon2-dev libpcre2-dev libgfshare-dev libunistring-dev clang-format \
 libnss3 zlib1g-dev curl openssl prometheus clang libclang-rt-14-dev \
 nghttp2-client nginx-light testssl.sh oathtool python3"
DEB13_PKGS="libmbedtls-dev libmbedtls21 libmbedx509-7 libmbedcrypto16 \
 libllhttp-dev libllhttp9.2 libyyjson-dev libyyjson0"

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

if [ -f "$STAMP" ]; then
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
echo "deb [signed-by=$KEYRING] http://deb.debian.org/debian trixie main" >"$APTDIR/etc/sources.list"
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
(cd "$APTDIR/debs" && apt-get -q download $DEB13_PKGS >"$APTDIR/download.log" 2>&1) || \
    { cat "$APTDIR/download.log" >&2; exit 1; }
rm -rf "$DEPS/root"
mkdir -p "$DEPS/root"
for deb in "$APTDIR"/debs/*.deb; do
	dpkg-deb -x "$deb" "$DEPS/root"
done
test -f "$DEPS/root/usr/include/mbedtls/ssl.h"
test -f "$DEPS/root/usr/lib/x86_64-linux-gnu/libmbedcrypto.a" || \
    test -n "$(find "$DEPS/root" -name libmbedcrypto.a)"
date -u +%Y-%m-%dT%H:%M:%SZ >"$STAMP"
echo "deps: Debian 13 packages unpacked into $DEPS/root"
