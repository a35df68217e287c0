#!/bin/sh
# tests/integration/appliance/test_api.sh: the authenticated routes of
# strongroomd with curl over real TLS, the real keystore and SoftHSM2:
# the first-start admin key, an app with bound networks and scopes, its API
# key shown once, refusals with distinct codes (none, malformed, wrong
# network, suspended), the policy's 403, OAuth client credentials giving an
# ES256 JWT that verifies against /.well-known/jwks.json, and every
# decision in an audit log that sr-audit verifies, with no secret in it.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/api-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
pid=
. "$(dirname "$0")/../tap.sh"

mkdir -p "$TMP"
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
"$D" --state-dir "$TMP/state" --listen 127.0.0.1:0 >"$TMP/out" 2>"$TMP/err" &
pid=$!
port=$(daemon_port "$TMP/out")
C="curl -sS --cacert $TMP/state/tls/cert.pem"
U="https://localhost:$port"
K=$(cat "$TMP/state/admin.key" 2>/dev/null)
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

check "first start writes the admin key, 0600, and never logs it" \
    '[ -n "$K" ] && [ "$(stat -c %a "$TMP/state/admin.key")" = 600 ] && ! grep -q "$K" "$TMP/out" "$TMP/err"'
check "no credential: 401 unauthenticated" \
    '$C "$U/api/apps" | grep -q "\"code\":\"unauthenticated\""'
check "a malformed key: 401 invalid_api_key" \
    '$C -H "Authorization: Bearer srk_nonsense" "$U/api/apps" | grep -q "\"code\":\"invalid_api_key\""'
$C -H "Authorization: Bearer $K" -d '{"name":"svc","scopes":["inference"],"cidrs":["127.0.0.2/32"]}' "$U/api/apps" >"$TMP/app"
A=$(json '["id"]' <"$TMP/app")
check "admin creates an app bound to 127.0.0.2 (201, scopes kept)" \
    '[ ${#A} -eq 12 ] && grep -q "\"scopes\":\[\"inference\"\]" "$TMP/app"'
$C -H "Authorization: Bearer $K" -X POST "$U/api/apps/$A/keys" >"$TMP/key"
AK=$(json '["key"]' <"$TMP/key")
check "an app key is shown once at creation" \
    '[ "$(echo "$AK" | cut -c1-4)" = srk_ ] && ! $C -H "Authorization: Bearer $K" "$U/api/apps/$A/keys" | grep -q "$AK"'
check "the listing names the key by prefix" \
    '$C -H "Authorization: Bearer $K" "$U/api/apps/$A/keys" | grep -q "\"prefix\":\"$(echo "$AK" | cut -c1-8)\""'
check "the app key from 127.0.0.1: 401 address_not_allowed" \
    '$C -H "Authorization: Bearer $AK" "$U/api/apps" | grep -q "\"code\":\"address_not_allowed\""'
check "the app key from 127.0.0.2: allowed in, then 403 by the policy" \
    '$C --interface 127.0.0.2 -H "Authorization: Bearer $AK" "$U/api/apps" | grep -q "\"code\":\"forbidden\""'
# The app's key with its last (checksum) character changed: refused as
# malformed before any lookup, and the audit line names no key.
BAD=$(echo "$AK" | sed 's/.$//')$( [ "$(echo "$AK" | cut -c64)" = a ] && echo b || echo a)
check "the app key with a wrong checksum: 401 invalid_api_key, no key in the audit line" \
    '$C --interface 127.0.0.2 -H "Authorization: Bearer $BAD" "$U/v1/models" | grep -q "\"code\":\"invalid_api_key\"" &&
     tail -n 3 "$TMP"/state/audit/audit-*.jsonl | grep "\"status\":\"401\"" | grep -v "\"key\":" | grep -q "/v1/models"'
check "the key's listing: no last use before, a last use now" \
    '! grep -q last_used "$TMP/key" && $C -H "Authorization: Bearer $K" "$U/api/apps/$A/keys" | grep -q "\"last_used\":1[0-9]\{9\}"'
$C --interface 127.0.0.2 -d "grant_type=client_credentials&client_id=$A&client_secret=$AK" "$U/oauth/token" >"$TMP/tok"
T=$(json '["access_token"]' <"$TMP/tok")
check "OAuth client credentials: a Bearer token for 900 s" \
    'grep -q "\"token_type\":\"Bearer\",\"expires_in\":900" "$TMP/tok"'
check "a wrong client secret: 401 invalid_client" \
    '$C -d "grant_type=client_credentials&client_id=$A&client_secret=x" "$U/oauth/token" | grep -q "\"error\":\"invalid_client\""'
# RFC 6749: HTTP Basic client authentication (2.3.1), the scope parameter
# (3.3, 4.4.2) and the error codes of 5.2.
O="$C --interface 127.0.0.2 $U/oauth/token"
check "OAuth with HTTP Basic client credentials: a token" \
    '$O -u "$A:$AK" -d grant_type=client_credentials | grep -q "\"token_type\":\"Bearer\""'
check "a wrong secret with Basic: 401 invalid_client and WWW-Authenticate: Basic" \
    '$O -u "$A:x" -D "$TMP/oh" -d grant_type=client_credentials | grep -q "\"error\":\"invalid_client\"" && grep -qi "^www-authenticate: Basic realm=" "$TMP/oh"'
check "Basic and a client_secret in the body together: 400 invalid_request" \
    '$O -u "$A:$AK" -d "grant_type=client_credentials&client_secret=$AK" | grep -q "\"error\":\"invalid_request\""'
check "a parameter given twice: 400 invalid_request" \
    '$O -d "grant_type=client_credentials&grant_type=client_credentials&client_id=$A&client_secret=$AK" | grep -q "\"error\":\"invalid_request\""'
check "no grant_type: 400 invalid_request; another grant: 400 unsupported_grant_type" \
    '$O -d "client_id=$A&client_secret=$AK" | grep -q "\"error\":\"invalid_request\"" && $O -d "grant_type=password&client_id=$A&client_secret=$AK" | grep -q "\"error\":\"unsupported_grant_type\""'
check "a JSON body: 400 invalid_request (the grant is form-encoded)" \
    '$O -H "Content-Type: application/json" -d "{\"grant_type\":\"client_credentials\"}" | grep -q "\"error\":\"invalid_request\""'
check "scope=inference, which the app holds: a token for it" \
    '$O -d "grant_type=client_credentials&client_id=$A&client_secret=$AK&scope=inference" | grep -q "\"scope\":\"inference\"}"'
check "a scope the app does not hold: 400 invalid_scope, no token" \
    '$O -d "grant_type=client_credentials&client_id=$A&client_secret=$AK&scope=inference%20keys" >"$TMP/os"; grep -q "\"error\":\"invalid_scope\"" "$TMP/os" && ! grep -q access_token "$TMP/os"'
# RFC 6749 5.2's shape, exactly: "error" and "error_description" are
# strings, the description only of the characters 5.2 allows, even when
# it names a scope the client sent with quotes, a backslash, a control
# character and UTF-8 in it.
check "an OAuth error is RFC 6749 5.2's JSON, its description cut down to 5.2's characters" \
    '$O -d "grant_type=client_credentials&client_id=$A&client_secret=$AK&scope=a%22b%5Cc%01d%C3%A9" >"$TMP/oq" && python3 - "$TMP/oq" <<PY
import json, re, sys
e = json.load(open(sys.argv[1]))
assert sorted(e) == ["error", "error_description"], e
assert e["error"] == "invalid_scope", e
d = e["error_description"]
assert re.fullmatch(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+", d), d
assert "a\x27b?c?d??" in d, d
PY'
# A value is decoded whole or refused: the right secret with an encoded
# NUL and more behind it once read as the secret alone.
check "the right client_secret followed by %00 and more: 400 invalid_request naming it, no token" \
    '$O -d "grant_type=client_credentials&client_id=$A&client_secret=$AK%00junk" >"$TMP/on"; grep -q "\"error\":\"invalid_request\"" "$TMP/on" && grep -q "client_secret: holds an encoded NUL byte" "$TMP/on" && ! grep -q access_token "$TMP/on"'
check "... and the same through a client_id: 400" \
    '$O -d "grant_type=client_credentials&client_id=$A%00x&client_secret=$AK" | grep -q "client_id: holds an encoded NUL byte"'
long=$(head -c 300 /dev/zero | tr '\0' s)
check "a client_secret of 300 bytes: 400 invalid_request (too long), one of 200: 401 invalid_client" \
    '$O -d "grant_type=client_credentials&client_id=$A&client_secret=$long" | grep -q "client_secret: too long (at most 255 bytes)" && $O -d "grant_type=client_credentials&client_id=$A&client_secret=$(echo $long | cut -c1-200)" | grep -q "\"error\":\"invalid_client\""'
check "a query value too long for its filter or holding a NUL: 400, never cut" \
    '$C -H "Authorization: Bearer $K" "$U/api/audit?key=$long" | grep -q "key: too long (at most 63 bytes)" && $C -H "Authorization: Bearer $K" "$U/api/apps?after=%00" | grep -q "after: holds an encoded NUL byte"'
check "the app key outside its bound networks gets no token (401 address_not_allowed)" \
    '$C -d "grant_type=client_credentials&client_id=$A&client_secret=$AK" "$U/oauth/token" | grep -q "\"error\":\"address_not_allowed\""'
$C "$U/.well-known/jwks.json" >"$TMP/jwks"
check "the token is ES256 and verifies against the published JWKS" \
    'python3 - "$T" "$TMP/jwks" <<PY
import base64, json, subprocess, sys
tok, jwks = sys.argv[1], json.load(open(sys.argv[2]))
h, p, s = tok.split(".")
d = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
hdr, claims = json.loads(d(h)), json.loads(d(p))
k = [k for k in jwks["keys"] if k["kid"] == hdr["kid"]][0]
assert hdr["alg"] == "ES256" and claims["exp"] - claims["iat"] <= 900
assert claims["sub"] and claims["scope"] == "inference"
# Check the signature with openssl: the JWK as a PEM key, r||s as DER.
x, y = d(k["x"]), d(k["y"])
der = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + x + y
open("$TMP/pub.der", "wb").write(der)
sig = d(s); r, s2 = sig[:32], sig[32:]
def i(b):
    b = b.lstrip(b"\x00")
    if b[0] & 0x80: b = b"\x00" + b
    return b"\x02" + bytes([len(b)]) + b
seq = i(r) + i(s2)
open("$TMP/sig.der", "wb").write(b"\x30" + bytes([len(seq)]) + seq)
open("$TMP/msg", "wb").write((h + "." + p).encode())
sys.exit(subprocess.call(["openssl", "dgst", "-sha256", "-keyform", "DER", "-verify", "$TMP/pub.der", "-signature", "$TMP/sig.der", "$TMP/msg"], stdout=subprocess.DEVNULL))
PY'
check "the JWT authenticates (the policy then decides: 403)" \
    '$C --interface 127.0.0.2 -H "Authorization: Bearer $T" "$U/api/apps" | grep -q "\"code\":\"forbidden\""'
check "a tampered JWT: 401 invalid_token" \
    '$C -H "Authorization: Bearer ${T}x" "$U/api/apps" | grep -q "\"code\":\"invalid_token\""'
# A second key of the app, a token from it, then that key revoked: the
# token goes with its key (the app's other key and token stay good), and
# its requests are that key's in the audit log.
$C -H "Authorization: Bearer $K" -X POST "$U/api/apps/$A/keys" >"$TMP/key2"
AK2=$(json '["key"]' <"$TMP/key2")
AK2ID=$(json '["id"]' <"$TMP/key2")
$C --interface 127.0.0.2 -d "grant_type=client_credentials&client_id=$A&client_secret=$AK2" "$U/oauth/token" >"$TMP/tok2"
T2=$(json '["access_token"]' <"$TMP/tok2")
$C --interface 127.0.0.2 -H "Authorization: Bearer $T2" "$U/api/apps" >/dev/null
$C -H "Authorization: Bearer $K" -X POST -d '{"reason":"test"}' "$U/api/keys/$AK2ID/revoke" >/dev/null
check "a token whose API key was revoked: 401 key_revoked; the other key's token still authenticates" \
    '$C --interface 127.0.0.2 -H "Authorization: Bearer $T2" "$U/api/apps" | grep -q "\"code\":\"key_revoked\"" && $C --interface 127.0.0.2 -H "Authorization: Bearer $T" "$U/api/apps" | grep -q "\"code\":\"forbidden\""'
check "the token's requests are its key's in the audit log" \
    '$C -H "Authorization: Bearer $K" "$U/api/audit?key=$AK2ID" | python3 -c "import json,sys; d=json.load(sys.stdin); s={(l[\"action\"], l[\"status\"]) for l in d[\"requests\"]}; assert (\"oauth.token\", \"200\") in s and (\"apps.list\", \"403\") in s and (\"apps.list\", \"401\") in s, s"'
check "admin disables the app" \
    '$C -H "Authorization: Bearer $K" -X POST "$U/api/apps/$A/disable" | grep -q "\"state\":\"suspended\""'
sleep 1.2
check "its key then: 401 key_suspended (within a second)" \
    '$C --interface 127.0.0.2 -H "Authorization: Bearer $AK" "$U/api/apps" | grep -q "\"code\":\"key_suspended\""'
check "its token then: 401 key_suspended" \
    '$C -H "Authorization: Bearer $T" "$U/api/apps" | grep -q "\"code\":\"key_suspended\""'
check "a method a route does not take: 405 with Allow naming the ones it does" \
    '$C -sS -D- -o /dev/null -X PUT -H "Authorization: Bearer $AK" "$U/api/apps" | grep -qi "^Allow: POST, GET" && $C -sS -D- -o /dev/null -X PUT "$U/api/apps/AAAAAAAAAAAA" | grep -qi "^Allow: GET, HEAD, PATCH, DELETE" && $C -sS -D- -o /dev/null "$U/v1/chat/completions" | grep -q "^HTTP/1.1 405" && $C -sS -D- -o /dev/null "$U/v1/chat/completions" | grep -qi "^Allow: POST" && $C -sS -D- -o /dev/null -X POST "$U/health" | grep -qi "^Allow: GET, HEAD"'
# Every JSON body: an object of the route's own members, each once; a typo
# or a second value is refused, never ignored. (In the patterns, '.' stands
# for the backslash-escaped quotes of a JSON message.)
H="Authorization: Bearer $K"
check "a body member the route does not take: 400 naming it and the ones it takes" \
    '$C -H "$H" -d "{\"name\":\"bob\",\"roles\":[\"developer\"],\"rolez\":[\"admin\"]}" "$U/api/users" | grep -q "unknown member ..rolez.. (name, roles, scopes)"'
check "a member given twice: 400, the app not made" \
    '$C -H "$H" -d "{\"name\":\"twice\",\"name\":\"other\"}" "$U/api/apps" | grep -q "member ..name.. given more than once" && ! $C -H "$H" "$U/api/apps" | grep -q "\"name\":\"\(twice\|other\)\""'
check "a user's scopes are checked as an app's are: 400 for a number" \
    '$C -H "$H" -d "{\"name\":\"carol\",\"roles\":[\"developer\"],\"scopes\":[1]}" "$U/api/users" | grep -q "scopes..: each 1 to 64 bytes"'
$C -H "$H" -d '{"name":"revoker"}' "$U/api/apps" >"$TMP/app3"
A3=$(json '["id"]' <"$TMP/app3")
$C -H "$H" -X POST "$U/api/apps/$A3/keys" >"$TMP/key3"
AK3ID=$(json '["id"]' <"$TMP/key3")
check "revoke with compromised as the string \"true\": 400, the key still active" \
    '$C -H "$H" -d "{\"compromised\":\"true\"}" "$U/api/keys/$AK3ID/revoke" | grep -q "compromised..: true or false" && $C -H "$H" "$U/api/apps/$A3/keys" | grep -q "\"state\":\"active\""'
check "revoke with a reason holding a control character: 400; a plain reason: revoked, reason kept" \
    '$C -H "$H" -d "{\"reason\":\"a\\nb\"}" "$U/api/keys/$AK3ID/revoke" | grep -q "no control characters" && $C -H "$H" -d "{\"reason\":\"rotated out\",\"compromised\":false}" "$U/api/keys/$AK3ID/revoke" | grep -q "\"state\":\"revoked\".*\"reason\":\"rotated out\""'
check "login with a member it does not take: 400 invalid_request" \
    '$C -d "{\"name\":\"admin\",\"password\":\"x\",\"totp\":\"1\",\"remember\":true}" "$U/api/login" | grep -q "unknown member ..remember.."'
# --- each route acts on its own kind of record, and only a security
# officer manages a security officer ------------------------------------
mkdir -p "$TMP/seen"
. "$(dirname "$0")/apicalls.sh"
# The JWKS kid is "<keystore id>.v<version>"; KID is the signing key's id.
KIDV=$(json '["keys"][0]["kid"]' <"$TMP/jwks")
KID=${KIDV%.v*}
as "$K" GET /api/users >/dev/null
SO=$(python3 -c 'import json,sys; print([u["id"] for u in json.load(open(sys.argv[1]))["data"] if u["name"] == "admin"][0])' "$(last)")
SOKEY=$(echo "$K" | cut -c5-16)
as "$K" POST /api/apps '{"name":"kinds"}' >/dev/null
KA=$(j "$(last)" '["id"]')
as "$K" POST "/api/apps/$KA/keys" >/dev/null
KAK=$(j "$(last)" '["key"]')
tok() { $C -d "grant_type=client_credentials&client_id=$KA&client_secret=$KAK" "$U/oauth/token" | grep -q '"access_token"'; }
check "apps routes on the OAuth signing key: 404 not_found, and /oauth/token still issues tokens" \
    '[ "$(as "$K" DELETE "/api/apps/$KID")" = 404 ] && [ "$(code)" = not_found ] && [ "$(as "$K" POST "/api/apps/$KID/disable")" = 404 ] && [ "$(as "$K" POST "/api/keys/$KID/revoke")" = 404 ] && [ "$(as "$K" POST "/api/keys/$KID/rotate")" = 404 ] && tok'
check "apps routes on a user and keys routes on an app: 404, the user and the app unchanged" \
    '[ "$(as "$K" DELETE "/api/apps/$SO")" = 404 ] && [ "$(as "$K" POST "/api/apps/$SO/disable")" = 404 ] && [ "$(as "$K" POST "/api/keys/$KA/revoke")" = 404 ] && [ "$(as "$K" GET "/api/users/$SO")" = 200 ] && grep -q "\"state\":\"active\"" "$(last)" && [ "$(as "$K" GET "/api/apps/$KA")" = 200 ] && grep -q "\"state\":\"active\"" "$(last)"'
check "a key listing or new key under an id of the wrong kind, or of none: 404" \
    '[ "$(as "$K" GET /api/apps/zzzzzzzzzzzz/keys)" = 404 ] && [ "$(as "$K" GET "/api/apps/$SO/keys")" = 404 ] && [ "$(as "$K" GET "/api/users/$KA/keys")" = 404 ] && [ "$(as "$K" POST "/api/apps/$SO/keys")" = 404 ] && [ "$(as "$K" POST "/api/users/$KA/keys")" = 404 ] && [ "$(as "$K" POST "/api/apps/$KID/keys")" = 404 ] && [ "$(as "$K" GET "/api/users/$SO/keys")" = 200 ]'
check "an id that cannot be an id: 404 not_found" \
    '[ "$(as "$K" DELETE /api/apps/............)" = 404 ] && [ "$(code)" = not_found ] && [ "$(as "$K" POST "/api/keys/AAAAAAAAAAA-/revoke")" = 404 ]'
as "$K" POST /api/users '{"name":"adm2","roles":["admin"]}' >/dev/null
A2=$(j "$(last)" '["id"]')
as "$K" POST "/api/users/$A2/keys" >/dev/null
A2K=$(j "$(last)" '["key"]')
check "an admin who is not a security officer may not mint a key for one (403), nor change its password or TOTP" \
    '[ "$(as "$A2K" POST "/api/users/$SO/keys")" = 403 ] && [ "$(msg)" = "only a security officer may manage a security officer'"'"'s credentials" ] && [ "$(as "$A2K" POST "/api/users/$SO/password" "{\"password\":\"correct horse battery staple\"}")" = 403 ] && [ "$(as "$A2K" POST "/api/users/$SO/totp")" = 403 ]'
check "... nor disable or delete one, nor rotate, leak-report or revoke its key; the officer's key still works" \
    '[ "$(as "$A2K" POST "/api/users/$SO/disable")" = 403 ] && [ "$(as "$A2K" DELETE "/api/users/$SO")" = 403 ] && [ "$(as "$A2K" POST "/api/keys/$SOKEY/rotate")" = 403 ] && [ "$(as "$A2K" POST "/api/keys/$SOKEY/leak")" = 403 ] && [ "$(as "$A2K" POST "/api/keys/$SOKEY/revoke")" = 403 ] && [ "$(as "$K" GET "/api/users/$SO/keys")" = 200 ] && [ "$(j "$(last)" "[\"data\"].__len__()")" = 1 ] && grep -q "\"state\":\"active\"" "$(last)"'
as "$K" POST /api/users '{"name":"dev1","roles":["developer"]}' >/dev/null
DV=$(j "$(last)" '["id"]')
check "that admin still manages other users: a developer's key (201)" \
    '[ "$(as "$A2K" POST "/api/users/$DV/keys")" = 201 ]'
DK=$(j "$(last)" '["key"]')
DKID=$(j "$(last)" '["id"]')
as "$DK" POST /api/apps '{"name":"dev1-app"}' >/dev/null
DA=$(j "$(last)" '["id"]')
as "$DK" POST "/api/apps/$DA/keys" >/dev/null
DAKID=$(j "$(last)" '["id"]')
# The daemon's per-key limit (50/s, burst 100 here) guards one tenant
# from another: a developer's app may have less, never more; an admin's
# may.
check "a developer's app above the per-key limit: 403 naming it, no app made; at or under it: 201" \
    '[ "$(as "$DK" POST /api/apps "{\"name\":\"dev1-fast\",\"rate_limit\":{\"rate\":51}}")" = 403 ] && [ "$(code)" = forbidden ] && msg | grep -q "per-key limit (rate 50, burst 100) only an admin may set" &&
     [ "$(as "$DK" POST /api/apps "{\"name\":\"dev1-burst\",\"rate_limit\":{\"rate\":5,\"burst\":101}}")" = 403 ] &&
     [ "$(as "$DK" POST /api/apps "{\"name\":\"dev1-slow\",\"rate_limit\":{\"rate\":50,\"burst\":100}}")" = 201 ] &&
     [ "$(as "$K" POST /api/apps "{\"name\":\"admin-fast\",\"rate_limit\":{\"rate\":5000}}")" = 201 ] &&
     as "$K" GET /api/apps >/dev/null && ! grep -q "dev1-fast\|dev1-burst" "$(last)" && grep -q dev1-slow "$(last)"'
check "a developer rotates a key of their own app (201), then revokes the replacement (200)" \
    '[ "$(as "$DK" POST "/api/keys/$DAKID/rotate" "{\"grace_seconds\":60}")" = 201 ] && R=$(j "$(last)" "[\"replacement\"][\"id\"]") && [ "$(as "$DK" POST "/api/keys/$R/revoke")" = 200 ] && grep -q "\"state\":\"revoked\"" "$(last)"'
check "a developer may not rotate or revoke another user's key (403)" \
    '[ "$(as "$DK" POST "/api/keys/$SOKEY/rotate")" = 403 ] && [ "$(as "$DK" POST "/api/keys/$(echo "$A2K" | cut -c5-16)/revoke")" = 403 ]'
check "a key rotated once, still in its grace period: rotate and leak again are 409 conflict" \
    '[ "$(as "$DK" POST "/api/keys/$DAKID/rotate")" = 409 ] && [ "$(msg)" = "only an active key can be rotated or reported" ] && [ "$(as "$DK" POST "/api/keys/$DAKID/leak")" = 409 ]'
as "$K" POST "/api/apps/$KA/keys" >/dev/null
XID=$(j "$(last)" '["id"]')
as "$K" POST "/api/keys/$XID/rotate" '{"grace_seconds":0}' >/dev/null
sleep 1.1
check "an expired key: rotate and leak are 409, and no new key was made" \
    '[ "$(as "$K" POST "/api/keys/$XID/rotate")" = 409 ] && [ "$(as "$K" POST "/api/keys/$XID/leak")" = 409 ] && [ "$(as "$K" GET "/api/apps/$KA/keys")" = 200 ] && [ "$(j "$(last)" "[\"data\"].__len__()")" = 3 ]'
check "a developer leak-reports their own key: 201 with a replacement" \
    '[ "$(as "$DK" POST "/api/keys/$DKID/leak")" = 201 ] && [ "$(j "$(last)" "[\"revoked\"][\"state\"]")" = revoked ]'
check "a password with a NUL inside: 400 invalid_password, nothing set" \
    '[ "$(as "$K" POST "/api/users/$DV/password" "{\"password\":\"correct horse\\u0000battery staple\"}")" = 400 ] && [ "$(code)" = invalid_password ]'
login() { $C -o "$(next)" -w '%{http_code}' -d "$1" "$U/api/login"; }
check "a login name or password with a NUL inside: 400 invalid_request (never cut short)" \
    '[ "$(login "{\"name\":\"dev1\\u0000zz\",\"password\":\"correct horse battery staple\",\"totp\":\"123456\"}")" = 400 ] && [ "$(code)" = invalid_request ] && [ "$(login "{\"name\":\"dev1\",\"password\":\"correct horse\\u0000battery staple\",\"totp\":\"123456\"}")" = 400 ]'
check "a user name with a NUL inside: 400, no user made" \
    '[ "$(as "$K" POST /api/users "{\"name\":\"dev3\\u0000zz\",\"roles\":[\"developer\"]}")" = 400 ] && as "$K" GET /api/users >/dev/null && ! grep -q "\"name\":\"dev3" "$(last)"'
check "a rate_limit member given twice: 400, the app not made" \
    '[ "$(as "$K" POST /api/apps "{\"name\":\"twice-rate\",\"rate_limit\":{\"rate\":5,\"rate\":7}}")" = 400 ] && grep -q "given more than once" "$(last)" && as "$K" GET /api/apps >/dev/null && ! grep -q twice-rate "$(last)"'
check "GET /api/hsm: module, token, mechanisms, root key versions, no secret" \
    '$C -H "Authorization: Bearer $K" "$U/api/hsm" >"$TMP/hsm" && grep -q "\"root_kek_version\":1" "$TMP/hsm" && grep -q "\"module\":{\"path\":\"[^\"]*softhsm2.so\"" "$TMP/hsm" && grep -q "\"token\":{\"label\":\"strongroom\"" "$TMP/hsm" && grep -q "\"mechanisms\":\[\"CKM_AES_KEY_GEN\".*\"CKM_ECDSA\"" "$TMP/hsm" && ! grep -qi "pin" "$TMP/hsm"'
$C -o /dev/null -H "Authorization: Bearer $K" "$U/api/no-such-route"
$C -o /dev/null -H "Authorization: Bearer $K" -X PUT "$U/api/apps"
stop
AUD="$TMP/state/audit"
KKID=$(echo "$K" | cut -c5-16)
AKID=$(echo "$AK" | cut -c5-16)
check "404 and 405 answers are recorded with the caller's key" \
    'grep -q "\"resource\":\"/api/no-such-route\",\"key\":\"$KKID\",\"status\":\"404\"" "$AUD"/audit-*.jsonl && grep -q "\"action\":\"http.request\",\"resource\":\"/api/apps\",\"key\":\"$KKID\",\"status\":\"405\"" "$AUD"/audit-*.jsonl'
# A change's decision goes on disk before the change: every apps.create
# that answered 201 follows its own "allowed" line.
check "a state change is recorded as allowed before its outcome" \
    'cat "$AUD"/audit-*.jsonl | python3 -c "
import json, sys
seen, ok, n = set(), True, 0
for l in sys.stdin:
    e = json.loads(l)
    if e[\"action\"] != \"apps.create\": continue
    who = (e[\"actor\"], e.get(\"key\"))
    if e[\"status\"] == \"allowed\": seen.add(who)
    elif e[\"status\"] == \"201\": n += 1; ok = ok and who in seen
sys.exit(0 if ok and n >= 3 else 1)"'
check "a key's making is found by its id (sr-audit query --key, resource #ID)" \
    '"$BUILD/bin/sr-audit" query --dir "$AUD" --key "$AKID" 2>/dev/null | grep -q "\"action\":\"keys.create\",\"resource\":\"/api/apps/$A/keys#$AKID\""'
check "event_id carries this appliance's id (/api/hsm appliance)" \
    'app=$(json "[\"appliance\"]" <"$TMP/hsm") && [ -n "$app" ] && head -n 1 "$(ls "$AUD"/audit-*.jsonl | head -n 1)" | grep -q "\"event_id\":\"$app-1\""'
check "every decision is in the audit log, which verifies" \
    '[ "$(cat "$AUD"/audit-*.jsonl | grep -c "\"action\":\"apps\.")" -ge 8 ] && "$BUILD/bin/sr-audit" verify --dir "$AUD" >/dev/null'
check "refusals are recorded with their status and the key id" \
    'grep -q "\"key\":\"$(echo "$AK" | cut -c5-16)\",\"status\":\"401\"" "$AUD"/audit-*.jsonl'
check "no API key, token or secret in the audit log or the daemon's output" \
    '! grep -q -e "$K" -e "$AK" -e "$T" "$AUD"/* "$TMP/out" "$TMP/err"'
# A signing key that exists but is not active: the start stops saying
# which key and what to do (never "a key with this name exists").
"$BUILD/bin/sr-keys" --state-dir "$TMP/state" suspend "$KID" >"$TMP/sk" 2>&1
start
check "the OAuth signing key suspended: the daemon does not start and names the key and the way out" \
    '[ -z "$port" ] && grep -q "signing key \"oauth-jwt\" ($KID) is suspended; resume it with .sr-keys resume $KID." "$TMP/err" && ! grep -q "name or serial exists" "$TMP/err"'
stop
"$BUILD/bin/sr-keys" --state-dir "$TMP/state" resume "$KID" >"$TMP/sk" 2>&1
start
check "resumed, it starts again with the same key" \
    '[ -n "$port" ] && $C "https://localhost:$port/.well-known/jwks.json" | grep -q "\"kid\":\"$KIDV\""'
stop
exit $status
