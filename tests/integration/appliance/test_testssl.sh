#!/bin/sh
# tests/integration/appliance/test_testssl.sh: testssl.sh (Debian's
# package) against strongroomd, trusting the daemon's own certificate as
# the CA an operator would install. No HIGH or CRITICAL finding may remain
# but one: a first-start self-signed certificate names no CRL or OCSP URL
# (there is no revocation service to name); an operator's certificate from
# their CA carries those.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/testssl-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
pid=
. "$(dirname "$0")/../tap.sh"
mkdir -p "$TMP"
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT
if ! command -v testssl >/dev/null 2>&1; then
	echo "not ok 1 - testssl.sh is not installed (make deps installs it)"
	exit 1
fi
"$D" --state-dir "$TMP/state" --listen 127.0.0.1:0 >"$TMP/out" 2>"$TMP/err" &
pid=$!
port=$(daemon_port "$TMP/out")
timeout 300 testssl --quiet --color 0 --warnings off --fast \
    --add-ca "$TMP/state/tls/cert.pem" --jsonfile "$TMP/ts.json" \
    "127.0.0.1:$port" >"$TMP/ts.txt" 2>&1
# One finding per JSON object: "id", then "severity".
awk -F'"' '/"id"/ { id = $4 } /"severity"/ { print id, $4 }' "$TMP/ts.json" \
    >"$TMP/findings"
echo "# testssl summary: $(cut -d' ' -f2 "$TMP/findings" | sort | uniq -c | tr -s ' ' | tr '\n' ',')"
bad=$(grep -E ' (HIGH|CRITICAL)$' "$TMP/findings" | grep -v '^cert_revocation ')
if [ -s "$TMP/findings" ] && [ -z "$bad" ]; then
	echo "ok 1 - testssl.sh: no HIGH or CRITICAL finding (cert_revocation excepted)"
else
	echo "not ok 1 - testssl.sh findings: ${bad:-no JSON written}"
	exit 1
fi
if grep -q '^cert_chain_of_trust OK$\|^cert_chain_of_trust INFO$' "$TMP/findings"; then
	echo "ok 2 - the chain of trust holds with the appliance's CA"
else
	echo "not ok 2 - chain of trust: $(grep '^cert_chain_of_trust' "$TMP/findings")"
	exit 1
fi
