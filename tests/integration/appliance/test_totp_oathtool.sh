#!/bin/sh
# tests/integration/appliance/test_totp_oathtool.sh: our TOTP (appliance/
# totp.c) against an independent implementation, Debian's oathtool: codes
# oathtool makes for random secrets at random and step-boundary times are
# accepted by totp_verify and refused when replayed, and the codes we make
# are the ones oathtool validates (window 0). oathtool comes from
# tools/deps.sh; without it this test fails rather than skip. It drives the
# unit test program's two helper modes (see tests/unit/appliance/test_totp.c).
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/sr-totp-$$
TOTP="$BUILD/test/unit/appliance/test_totp"
. "$(dirname "$0")/../tap.sh"

mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT

check "oathtool is installed (tools/deps.sh)" 'command -v oathtool >/dev/null'
check "the TOTP test program is built" '[ -x "$TOTP" ]'
check "oathtool gives RFC 6238's code for T=59 (last 6 digits)" \
    '[ "$(oathtool --totp -b -N @59 GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ)" = 287082 ]'

# 24 random 160-bit secrets, each at six times: now, step boundaries (the
# first and last second of a step) and random times up to 2100.
: >"$TMP/vectors"
i=0
while [ $i -lt 24 ]; do
	secret=$(head -c 20 /dev/urandom | base32 | tr -d '=\n')
	now=$(date +%s)
	r1=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	r2=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	# r1 and r2 are below 2^32; 4102444800 is 2100-01-01.
	for t in $now $((r1 / 30 * 30)) $((r1 / 30 * 30 + 29)) $r2 \
	    $((r2 % 4102444800 + 60)) 1111111109; do
		code=$(oathtool --totp -b -N "@$t" "$secret") || code=failed
		echo "$secret $t $code" >>"$TMP/vectors"
		echo "$secret $t" >>"$TMP/ours"
	done
	i=$((i + 1))
done
check "oathtool made 144 codes" \
    '[ "$(grep -c " [0-9][0-9][0-9][0-9][0-9][0-9]$" "$TMP/vectors")" = 144 ]'
check "every oathtool code is accepted and then refused as a replay" \
    '"$TOTP" --vectors "$TMP/vectors" >"$TMP/verify.log" 2>&1 &&
     grep -q "144 oathtool codes accepted" "$TMP/verify.log" ||
     { sed "s/^/# /" "$TMP/verify.log"; false; }'

bad=0
while read -r secret t; do
	ours=$("$TOTP" --code "$secret" "$t") || { bad=$((bad + 1)); continue; }
	oathtool --totp -b -w 0 -N "@$t" "$secret" "$ours" >/dev/null 2>&1 ||
	    bad=$((bad + 1))
done <"$TMP/ours"
check "oathtool validates each of our 144 codes at window 0" '[ $bad -eq 0 ]'

# A code one step ahead of what oathtool makes for the current step +2 is
# refused by ours (the window is one step).
secret=$(head -c 20 /dev/urandom | base32 | tr -d '=\n')
now=$(date +%s)
far=$(oathtool --totp -b -N "@$((now + 60))" "$secret")
echo "$secret $now $far" >"$TMP/far"
check "a code two steps ahead is refused" \
    '! "$TOTP" --vectors "$TMP/far" >"$TMP/far.log" 2>&1 &&
     grep -q "refused" "$TMP/far.log"'
exit $status
