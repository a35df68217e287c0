#!/bin/sh
# tests/integration/keystore/test_sr_keys.sh: sr-keys, the keystore's admin
# command, end to end in a scratch state folder on the embedded SoftHSM2
# token: create, list, show, API keys, devices, rotation, revocation,
# destruction, the consistency check, statistics and its error exits.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/sr-keys-$$
SRKEYS="$BUILD/bin/sr-keys"
. "$(dirname "$0")/../tap.sh"

# sr-keys on the scratch state folder; stdout to $TMP/out, stderr to
# $TMP/err; the exit status is kept in $rc.
k() {
	"$SRKEYS" --state-dir "$TMP" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	return $rc
}

mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

check "--help exits 0 and lists the commands" \
    '"$SRKEYS" --help >"$TMP/help" && grep -q "rotate-root" "$TMP/help"'
check "create --help exits 0" '"$SRKEYS" create --help >/dev/null'
check "device --help says it prints secret material" \
    '"$SRKEYS" device --help | grep -q "SECRET KEY MATERIAL"'
check "an unknown command exits 2 with usage on stderr" \
    '! k frobnicate; [ $rc -eq 2 ] && grep -q "^usage:" "$TMP/err"'
check "an unknown option exits 2" \
    '! k list app --frobnicate; [ $rc -eq 2 ]'
check "a missing argument exits 2" '! k show; [ $rc -eq 2 ]'

check "create app (first start makes token and keystore)" \
    'k create app billing --cidr 10.20.0.0/16 --scope "{\"env\":\"test\"}"'
app=$(cut -d" " -f1 "$TMP/out")
check "create prints id kind state version name" \
    'grep -Eq "^[0-9A-Za-z]{12} app active v1 billing - [0-9]{4}-" "$TMP/out"'
check "the keystore lives in the state folder" '[ -f "$TMP/keystore/data.mdb" ]'
check "list app shows it" \
    'k list app && grep -q "^$app app active v1 billing " "$TMP/out"'
check "show prints key=value lines" \
    'k show "$app" && grep -qx "id=$app" "$TMP/out" &&
     grep -qx "state=active" "$TMP/out" && grep -qx "version=1" "$TMP/out"'
check "show has the scope and the bound network" \
    'grep -qx "scope={\"env\":\"test\"}" "$TMP/out" &&
     grep -qx "cidrs=10.20.0.0/16" "$TMP/out"'
check "a second app with the same name is refused" \
    '! k create app billing; [ $rc -eq 1 ] && grep -q "^sr-keys: create: " "$TMP/err"'

check "apikey prints one line" \
    'k apikey "$app" && [ "$(wc -l <"$TMP/out")" -eq 1 ]'
key=$(cat "$TMP/out")
check "the API key is 64 characters with the srk_ prefix" \
    '[ ${#key} -eq 64 ] && case $key in srk_*) true ;; *) false ;; esac'
check "the API key is base62 after its prefix" \
    '! printf "%s" "${key#srk_}" | grep -q "[^0-9A-Za-z]"'
check "apikey warns that the key will not be shown again" \
    'grep -q "will not be shown again" "$TMP/err" && ! grep -q "$key" "$TMP/err"'
kid=$(printf "%s" "$key" | cut -c5-16)
check "the API key embeds its record id; show has no secret" \
    'k show "$kid" && grep -qx "kind=apikey" "$TMP/out" &&
     grep -qx "parent=$app" "$TMP/out" && ! grep -q "${key#srk_????????}" "$TMP/out"'
check "list apikey shows it, without the key" \
    'k list apikey --parent "$app" && grep -q "^$kid apikey active" "$TMP/out" &&
     ! grep -q "$key" "$TMP/out"'

check "device prints a 32-byte key in hex" \
    'k device "$app" sn-007-888 && grep -Eqx "[0-9a-f]{64}" "$TMP/out" &&
     grep -q "secret key material" "$TMP/err"'
dev1=$(cat "$TMP/out")
check "device again gives the same key" \
    'k device "$app" sn-007-888 && [ "$(cat "$TMP/out")" = "$dev1" ] &&
     grep -q "enrolled before" "$TMP/err"'
check "another serial gives another key" \
    'k device "$app" sn-007-889 && [ "$(cat "$TMP/out")" != "$dev1" ]'
check "list device shows the two enrolments" \
    'k list device --parent "$app" && [ "$(wc -l <"$TMP/out")" -eq 2 ]'

check "rotate makes v2" \
    'k rotate "$app" && grep -q "^$app app active v2 billing " "$TMP/out"'
check "the old version is decrypt-only" \
    'k show "$app" --version 1 && grep -qx "decrypt_only=yes" "$TMP/out" &&
     grep -qx "current_version=2" "$TMP/out"'
check "destroying an active key is refused" \
    '! k destroy "$app"; [ $rc -eq 1 ] &&
     grep -q "^sr-keys: destroy: the key.s state forbids" "$TMP/err"'
check "revoke needs --reason" '! k revoke "$app"; [ $rc -eq 2 ]'
check "revoke with a reason" \
    'k revoke "$app" --reason "leaked in a ticket" --compromised &&
     grep -q "^$app app revoked v2 " "$TMP/out"'
check "show has the reason and the compromised flag" \
    'k show "$app" && grep -qx "reason=leaked in a ticket" "$TMP/out" &&
     grep -qx "compromised=yes" "$TMP/out"'
check "a revoked app gives no device key" \
    '! k device "$app" sn-007-888; [ $rc -eq 1 ] && [ ! -s "$TMP/out" ]'
check "resume of a revoked key is refused" '! k resume "$app"; [ $rc -eq 1 ]'
check "destroy" 'k destroy "$app" && grep -q "^$app app destroyed v2 " "$TMP/out"'
check "list hides the destroyed key; --all shows it" \
    'k list app && ! grep -q "^$app " "$TMP/out" &&
     k list app --all && grep -q "^$app app destroyed" "$TMP/out"'

check "check walks the keystore" \
    'k check && grep -Eqx "checked=[1-9][0-9]*" "$TMP/out"'
check "stats prints key=value lines" \
    'k stats && grep -qx "root_kek_version=1" "$TMP/out" &&
     grep -qx "records.app=2" "$TMP/out" && grep -Eqx "appliance_id=sr-.+" "$TMP/out"'
check "rotate-root makes root v2 and a new DEK" \
    'k rotate-root && grep -qx "root_kek_version=2" "$TMP/out" &&
     grep -qx "dek_version=2" "$TMP/out"'
check "check passes after the root rotation" 'k check'

check "show of an unknown id exits 1 with a clear message" \
    '! k show AAAAAAAAAAAA; [ $rc -eq 1 ] &&
     grep -qx "sr-keys: show: no such key" "$TMP/err"'
check "a malformed id exits 2 and is not echoed" \
    '! k show "srk_not-an-id"; [ $rc -eq 2 ] && ! grep -q "not-an-id" "$TMP/err"'
check "create app with --expires-in 2 years exits 1" \
    '! k create app toolong --expires-in $((2 * 365 * 86400)); [ $rc -eq 1 ] &&
     grep -q "^sr-keys: create: malformed keystore request" "$TMP/err"'
check "create app with --expires-in 365d works" \
    'k create app oneyear --expires-in 365d'
check "a CIDR with host bits set exits 2" \
    '! k create user bob --cidr 10.0.0.1/8; [ $rc -eq 2 ]'
check "expiring finds an app expiring within 2 hours" \
    'k create app soon --expires-in 1h && soon=$(cut -d" " -f1 "$TMP/out") &&
     k expiring --within 2 && grep -q "^$soon app active" "$TMP/out" &&
     ! grep -q " oneyear " "$TMP/out"'
exit $status
