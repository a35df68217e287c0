#!/bin/sh
# tests/integration/pkcs11/test_pkcs11_tool.sh: OpenSC's pkcs11-tool, an
# independent client, lists the keys Strongroom created in its SoftHSM2
# token, and their attributes say sensitive and never extractable.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/pkcs11-tool-$$
SRP11="$BUILD/bin/sr-p11"
MODULE=/usr/lib/softhsm/libsofthsm2.so
. "$(dirname "$0")/../tap.sh"

mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
check "first-start set-up prints a URI" \
    '"$SRP11" --state-dir "$TMP" setup > "$TMP/uri"'
check "set-up is idempotent" \
    '"$SRP11" --state-dir "$TMP" setup | cmp -s - "$TMP/uri"'
check "PIN files are owner-only" \
    '[ "$(stat -c %a "$TMP/hsm/user.pin")" = 600 ] && [ "$(stat -c %a "$TMP/hsm/so.pin")" = 600 ]'
check "the URI names the pin file, not the PIN" \
    '! grep -q "$(cat "$TMP/hsm/user.pin")" "$TMP/uri" && grep -q "pin-source=file:" "$TMP/uri"'
for k in "aes root-kek-v1" "hmac root-kdk-v1" "ec jwt-sign-v1"; do
	check "genkey $k" '"$SRP11" --state-dir "$TMP" genkey $k'
done
check "a duplicate label is refused" \
    '! "$SRP11" --state-dir "$TMP" genkey aes root-kek-v1 2>/dev/null'

export SOFTHSM2_CONF="$TMP/hsm/softhsm2.conf"
pkcs11-tool --module "$MODULE" --token-label strongroom --login \
    --pin "$(cat "$TMP/hsm/user.pin")" --list-objects >"$TMP/objects" 2>&1
check "pkcs11-tool lists the objects" 'grep -q "label: *root-kek-v1" "$TMP/objects"'
cat "$TMP/objects"

# One attribute block per object: "Secret Key Object" or "Private Key
# Object" up to the next object.
block() {
	awk -v want="$1" '
	/Object;/ { inblock = 0 }
	/Object;/ && index($0, want) { inblock = 1 }
	inblock { print }' "$TMP/objects" | awk -v lbl="$2" '
	/label:/ { ok = index($0, lbl) > 0 } ok { print }'
}
for o in "Secret Key Object:root-kek-v1" "Secret Key Object:root-kdk-v1" \
    "Private Key Object:jwt-sign-v1"; do
	kind=${o%%:*}
	label=${o#*:}
	check "$label: sensitive" \
	    'block "$kind" "$label" | grep -q "Access:.*sensitive"'
	check "$label: never extractable" \
	    'block "$kind" "$label" | grep -q "never extractable"'
done
usage() {
	block "$1" "$2" | sed -n 's/^ *Usage: *//p'
}
check "root-kek-v1: wrap and unwrap only" \
    '[ "$(usage "Secret Key Object" root-kek-v1)" = "wrap, unwrap" ]'
# pkcs11-tool 0.23 does not print CKA_SIGN for secret keys; what matters
# is that the HMAC key cannot encrypt, decrypt, wrap or unwrap.
check "root-kdk-v1: no encrypt, decrypt, wrap or unwrap" \
    '[ "$(usage "Secret Key Object" root-kdk-v1)" = "verify" ]'
check "jwt-sign-v1: sign only" \
    '[ "$(usage "Private Key Object" jwt-sign-v1)" = "sign" ]'
check "the AES KEK is a 32-byte AES key" \
    'grep -q "Secret Key Object; AES length 32" "$TMP/objects"'
check "the EC key is on P-256" \
    'grep -A3 "Public Key Object; EC" "$TMP/objects" | grep -qi "prime256v1\|EC_POINT 256"'
check "destroy removes both halves of the EC pair" \
    '"$SRP11" --state-dir "$TMP" destroy ec jwt-sign-v1 &&
     ! pkcs11-tool --module "$MODULE" --token-label strongroom --login \
         --pin "$(cat "$TMP/hsm/user.pin")" --list-objects 2>/dev/null |
         grep -q jwt-sign-v1'
exit $status
