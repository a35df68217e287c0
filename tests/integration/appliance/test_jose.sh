#!/bin/sh
# tests/integration/appliance/test_jose.sh: the JWT that /oauth/token issues,
# verified by an independent implementation: the `jose` npm package
# (installed into $BUILD/node_modules from the npm registry when missing)
# fetches our /.well-known/jwks.json over HTTPS, trusting only the daemon's
# certificate (NODE_EXTRA_CA_CERTS), and checks the ES256 signature, the
# issuer, the audience and the times; a token with one byte changed and a
# token for another audience are refused. Then both signing keys are
# rotated (sr-keys, daemon stopped): the earlier token still verifies (jose,
# Bearer), a new one names the new version, and the audit log with
# checkpoints under both versions is intact. Skips, saying so, only when npm
# itself is missing.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/jose-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
pid=
. "$(dirname "$0")/../tap.sh"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
	echo "ok 1 # SKIP npm or node is not installed: jose cannot be fetched"
	exit 0
fi
if [ ! -f "$BUILD/node_modules/jose/package.json" ]; then
	npm install --prefix "$BUILD" --no-audit --no-fund --silent jose \
	    >/dev/null 2>&1
fi
mkdir -p "$TMP"
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
check "the jose package is installed from the npm registry" \
    '[ -f "$BUILD/node_modules/jose/package.json" ]'
"$D" --state-dir "$TMP/state" --listen 127.0.0.1:0 >"$TMP/out" 2>"$TMP/err" &
pid=$!
port=$(daemon_port "$TMP/out")
C="curl -sS --cacert $TMP/state/tls/cert.pem"
U="https://localhost:$port"
K=$(cat "$TMP/state/admin.key" 2>/dev/null)
j() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
A=$($C -H "Authorization: Bearer $K" -d '{"name":"jose","scopes":["inference"]}' "$U/api/apps" | j '["id"]')
AK=$($C -H "Authorization: Bearer $K" -X POST "$U/api/apps/$A/keys" | j '["key"]')
T=$($C -d "grant_type=client_credentials&client_id=$A&client_secret=$AK" "$U/oauth/token" | j '["access_token"]')
check "/oauth/token issues a token" '[ -n "$T" ]'

# The verifier lives under $BUILD so that `import "jose"` resolves to
# $BUILD/node_modules; it prints the verified claims or the error's code.
cat >"$BUILD/jose-verify-$$.mjs" <<'JS'
import { createRemoteJWKSet, jwtVerify } from "jose";
const [url, token, aud] = process.argv.slice(2);
const jwks = createRemoteJWKSet(new URL(url));
try {
	const { payload, protectedHeader } = await jwtVerify(token, jwks,
	    { issuer: "strongroom", audience: aud, algorithms: ["ES256"] });
	console.log(JSON.stringify({ header: protectedHeader, payload }));
} catch (e) {
	console.log(JSON.stringify({ error: e.code || String(e) }));
	process.exitCode = 1;
}
JS
V="env NODE_EXTRA_CA_CERTS=$TMP/state/tls/cert.pem node $BUILD/jose-verify-$$.mjs $U/.well-known/jwks.json"
$V "$T" strongroom >"$TMP/ok" 2>"$TMP/ok.err"
check "jose verifies it against our JWKS over HTTPS (ES256, iss, aud, times)" \
    'python3 - "$TMP/ok" "$A" <<PY
import json, sys
d = json.load(open(sys.argv[1]))
h, p = d["header"], d["payload"]
assert h["alg"] == "ES256" and h["kid"], h
assert p["sub"] == sys.argv[2] and p["scope"] == "inference", p
assert p["iss"] == p["aud"] == "strongroom"
assert 0 < p["exp"] - p["iat"] <= 900 and p["nbf"] <= p["iat"] + 1
PY'
# One character of the signature changed (the middle: not the padding bits).
BAD=$(python3 -c 'import sys; t=sys.argv[1]; i=len(t)-20; print(t[:i]+("A" if t[i]!="A" else "B")+t[i+1:])' "$T")
check "a token with its signature changed: jose refuses it" \
    '! $V "$BAD" strongroom >"$TMP/bad" && grep -q ERR_JWS_SIGNATURE_VERIFICATION_FAILED "$TMP/bad"'
check "a token checked for another audience: jose refuses it" \
    '! $V "$T" someone-else >"$TMP/aud" && grep -q ERR_JWT_CLAIM_VALIDATION_FAILED "$TMP/aud"'

# Rotation of both signing keys (with the daemon stopped: it holds the
# keystore's lock). A kid and a checkpoint's key_id name the version,
# "<id>.v<N>": the token issued before still verifies, with jose against
# the JWKS and as a Bearer credential, and the log's new checkpoint key
# sits beside the old one.
kid() { python3 -c 'import sys,json,base64; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"=="))["kid"])' "$1"; }
stop
SK="$BUILD/bin/sr-keys --state-dir $TMP/state"
JID=$($SK list signing | awk '$5 == "oauth-jwt" { print $1 }')
AID=$($SK list signing | awk '$5 == "audit-checkpoint" { print $1 }')
check "a token's kid names the signing key's version (<id>.v1)" \
    '[ -n "$JID" ] && [ "$(kid "$T")" = "$JID.v1" ]'
$SK rotate "$JID" >/dev/null
start
check "the OAuth signing key rotated: the daemon starts" '[ -n "$port" ]'
U="https://localhost:$port"
V="env NODE_EXTRA_CA_CERTS=$TMP/state/tls/cert.pem node $BUILD/jose-verify-$$.mjs $U/.well-known/jwks.json"
check "the JWKS publishes the new version and the old one, whose tokens are still valid" \
    '$C "$U/.well-known/jwks.json" | python3 -c "import json,sys; assert sorted(k[\"kid\"] for k in json.load(sys.stdin)[\"keys\"]) == [\"$JID.v1\", \"$JID.v2\"]"'
check "the token issued before the rotation: jose still verifies it against the JWKS" \
    '$V "$T" strongroom >"$TMP/old" && grep -q "\"kid\":\"$JID.v1\"" "$TMP/old"'
check "... and the daemon still accepts it as a Bearer credential" \
    '[ "$($C -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $T" "$U/v1/models")" = 200 ]'
T2=$($C -d "grant_type=client_credentials&client_id=$A&client_secret=$AK" "$U/oauth/token" | j '["access_token"]')
check "a new token names the new version, and jose and the daemon accept it" \
    '[ "$(kid "$T2")" = "$JID.v2" ] && $V "$T2" strongroom >/dev/null && [ "$($C -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $T2" "$U/v1/models")" = 200 ]'
rm -f "$BUILD/jose-verify-$$.mjs"
stop
$SK rotate "$AID" >/dev/null
start
check "the audit checkpoint key rotated: the daemon starts" '[ -n "$port" ]'
stop
AUD="$TMP/state/audit"
check "the audit key rotated: each version's public key beside the log, the new one signs" \
    '[ -f "$AUD/checkpoint-key-$AID.v1.pub" ] && [ -f "$AUD/checkpoint-key-$AID.v2.pub" ] && grep -q "\"key_id\":\"$AID.v1\"" "$AUD"/audit-*.jsonl && grep -q "\"key_id\":\"$AID.v2\"" "$AUD"/audit-*.jsonl'
check "sr-audit verify: the log across the rotation is intact" \
    '"$BUILD/bin/sr-audit" verify --dir "$AUD" | grep -q "^intact:"'
check "sr-audit pubkey prints the current version and names it; --key-id ID.v1 the old one" \
    '"$BUILD/bin/sr-audit" pubkey --state-dir "$TMP/state" >"$TMP/k2.pem" 2>"$TMP/k2.err" && cmp -s "$TMP/k2.pem" "$AUD/checkpoint-key-$AID.v2.pub" && grep -q "^checkpoint key $AID.v2 " "$TMP/k2.err" && "$BUILD/bin/sr-audit" pubkey --state-dir "$TMP/state" --key-id "$AID.v1" 2>/dev/null | cmp -s - "$AUD/checkpoint-key-$AID.v1.pub"'
check "no key or token in the daemon's output or the audit log" \
    '! grep -q -F -e "$AK" -e "$T" -e "${T2:-$T}" "$TMP/out" "$TMP/err" "$TMP"/state/audit/*'
exit $status
