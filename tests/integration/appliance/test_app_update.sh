#!/bin/sh
# tests/integration/appliance/test_app_update.sh: PATCH /api/apps/{id}
# with curl over real TLS against one real strongroomd (real keystore,
# real SoftHSM2, the tiny model): an app's name, networks, scopes, expiry
# and rate limit changed alone or together, the rest kept; its existing
# API key and an existing JWT refused from the old network and for the
# removed scope within one second (and let back in when widened again);
# bad bodies refused with 400 naming the member, a taken name 409, an
# unknown, deleted or non-app id 404, a disabled app updated and still
# disabled; a developer refused on an app not theirs (403) and allowed on
# their own; and every update, refusals included, in the audit log.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/appupdate-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
pid=
. "$(dirname "$0")/../tap.sh"

mkdir -p "$TMP/seen"
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
start
C="curl -sS --cacert $TMP/state/tls/cert.pem"
U="https://localhost:$port"
K=$(cat "$TMP/state/admin.key" 2>/dev/null)
. "$(dirname "$0")/apicalls.sh"
# patch BODY: the status of PATCH /api/apps/$AP as the admin.
patch() { as "$K" PATCH "/api/apps/$AP" "$1"; }
# refused_within CMD WANT: run CMD (prints a status) until it prints WANT,
# for at most a second; prints the milliseconds, or "never".
refused_within() {
	t0=$(date +%s%N)
	while :; do
		ms=$((($(date +%s%N) - t0) / 1000000))
		[ "$(eval "$1")" = "$2" ] && echo $ms && return
		[ $ms -gt 1000 ] && echo never && return
	done
}

# --- an app, its key and a JWT, all in use ----------------------------------
as "$K" POST /api/apps '{"name":"upd","cidrs":["127.0.0.2/32"],"scopes":["inference"],"rate_limit":{"rate":50,"burst":100}}' >/dev/null
AP=$(j "$(last)" '["id"]')
$C -H "Authorization: Bearer $K" -X POST "$U/api/apps/$AP/keys" >"$TMP/appkey"
PK=$(j "$TMP/appkey" '["key"]')
$C --interface 127.0.0.2 -d "grant_type=client_credentials&client_id=$AP&client_secret=$PK" "$U/oauth/token" >"$TMP/tok"
T=$(j "$TMP/tok" '["access_token"]')
models() { # KEY ADDR: the status of GET /v1/models from ADDR
	$C -o /dev/null -w '%{http_code}' --interface "$2" \
	    -H "Authorization: Bearer $1" "$U/v1/models"
}
check "the app's key and its JWT reach /v1/models from 127.0.0.2" \
    '[ ${#AP} -eq 12 ] && [ "$(models "$PK" 127.0.0.2)" = 200 ] && [ "$(models "$T" 127.0.0.2)" = 200 ]'
check "the app's metadata shows its networks" \
    '[ "$(as "$K" GET "/api/apps/$AP")" = 200 ] && [ "$(jd "$(last)" "[\"cidrs\"]")" = "[\"127.0.0.2/32\"]" ]'

# --- one member at a time; the rest stays -----------------------------------
check "PATCH name: 200 with the app, the rest as it was" \
    '[ "$(patch "{\"name\":\"upd-renamed\"}")" = 200 ] && python3 - "$(last)" <<PY
import json, sys
a = json.load(open(sys.argv[1]))
assert a["name"] == "upd-renamed" and a["state"] == "active", a
assert a["cidrs"] == ["127.0.0.2/32"], a
assert a["attributes"] == {"scopes": ["inference"], "rate_limit": {"rate": 50, "burst": 100}}, a
PY'
E0=$(j "$(last)" '["expires_at"]')
check "PATCH expires_in_days 30: a new expiry 30 days from now" \
    '[ "$(patch "{\"expires_in_days\":30}")" = 200 ] && e=$(j "$(last)" "[\"expires_at\"]") && [ $((e - $(date +%s))) -gt $((30 * 86400 - 60)) ] && [ $((e - $(date +%s))) -le $((30 * 86400)) ] && [ "$e" != "$E0" ]'
check "PATCH rate_limit keeps the scopes" \
    '[ "$(patch "{\"rate_limit\":{\"rate\":40,\"burst\":80}}")" = 200 ] && [ "$(jd "$(last)" "[\"attributes\"][\"scopes\"]")" = "[\"inference\"]" ] && [ "$(j "$(last)" "[\"attributes\"][\"rate_limit\"][\"rate\"]")" = 40 ]'
check "GET reads back what PATCH answered" \
    '[ "$(as "$K" GET "/api/apps/$AP")" = 200 ] && [ "$(j "$(last)" "[\"name\"]")" = upd-renamed ]'

# --- narrowing takes effect within a second ---------------------------------
check "PATCH cidrs to 127.0.0.3/32 and scopes to none: 200" \
    '[ "$(patch "{\"cidrs\":[\"127.0.0.3/32\"],\"scopes\":[]}")" = 200 ] && [ "$(jd "$(last)" "[\"cidrs\"]")" = "[\"127.0.0.3/32\"]" ]'
ms=$(refused_within 'models "$PK" 127.0.0.2' 401)
check "the existing key from the old network: 401 within a second (+${ms} ms)" \
    '[ "$ms" != never ] && $C --interface 127.0.0.2 -H "Authorization: Bearer $PK" "$U/v1/models" | grep -q "\"code\":\"address_not_allowed\""'
ms=$(refused_within 'models "$PK" 127.0.0.3' 403)
check "the key from the new network, for the removed scope: 403 within a second (+${ms} ms)" \
    '[ "$ms" != never ]'
ms=$(refused_within 'models "$T" 127.0.0.2' 401)
check "the existing JWT from the old network: 401 within a second (+${ms} ms)" \
    '[ "$ms" != never ]'
ms=$(refused_within 'models "$T" 127.0.0.3' 403)
check "the JWT from the new network, for the removed scope: 403 within a second (+${ms} ms)" \
    '[ "$ms" != never ]'
check "a new token carries no scope" \
    '$C --interface 127.0.0.3 -d "grant_type=client_credentials&client_id=$AP&client_secret=$PK" "$U/oauth/token" | grep -q "\"scope\":\"\""'
check "widened again (scopes back, no networks): key and JWT let in" \
    '[ "$(patch "{\"cidrs\":[],\"scopes\":[\"inference\"]}")" = 200 ] && [ "$(refused_within "models \"\$PK\" 127.0.0.2" 200)" != never ] && [ "$(models "$T" 127.0.0.1)" = 200 ]'

# --- bad bodies: 400 naming the member --------------------------------------
bad() { # WHAT BODY PATTERN: 400 invalid_request, the message matching
	_body=$2 _pat=$3
	check "$1: 400" \
	    '[ "$(patch "$_body")" = 400 ] && [ "$(code)" = invalid_request ] && msg | grep -q -e "$_pat"'
}
check "no body: 400" \
    '[ "$(as "$K" PATCH "/api/apps/$AP")" = 400 ] && [ "$(code)" = invalid_request ]'
bad "an empty object" '{}' "nothing to change"
bad "not JSON" '{"name":' "JSON object"
bad "an array" '["name"]' "JSON object"
bad "an unknown member" '{"name":"x","colour":"red"}' 'unknown member "colour"'
bad "a member name with a NUL in it" '{"name\u0000x":"y"}' 'member name holds a NUL'
bad "a rate_limit member name with a NUL in it" '{"rate_limit":{"rate\u0000":1}}' '"rate_limit"'
bad "a name that is a number" '{"name":5}' '"name"'
bad "an empty name" '{"name":""}' '"name"'
bad "a 64-byte name" "{\"name\":\"$(printf 'n%.0s' $(seq 64))\"}" '"name"'
bad "scopes as a string" '{"scopes":"inference"}' '"scopes"'
bad "a scope with a blank" '{"scopes":["a b"]}' '"scopes"'
bad "expires_in_days as a string" '{"expires_in_days":"30"}' '"expires_in_days"'
bad "expires_in_days 366" '{"expires_in_days":366}' '"expires_in_days"'
bad "expires_in_days 0" '{"expires_in_days":0}' '"expires_in_days"'
bad "expires_in_days 1.5" '{"expires_in_days":1.5}' '"expires_in_days"'
bad "cidrs as a string" '{"cidrs":"10.0.0.0/8"}' '"cidrs"'
bad "host bits set" '{"cidrs":["10.0.0.1/8"]}' '"cidrs"'
bad "prefix 33" '{"cidrs":["10.0.0.0/33"]}' '"cidrs"'
bad "no prefix" '{"cidrs":["10.0.0.0"]}' '"cidrs"'
bad "two networks in one item" '{"cidrs":["10.0.0.0/8,10.1.0.0/16"]}' '"cidrs"'
bad "nine networks" '{"cidrs":["10.1.0.0/16","10.2.0.0/16","10.3.0.0/16","10.4.0.0/16","10.5.0.0/16","10.6.0.0/16","10.7.0.0/16","10.8.0.0/16","10.9.0.0/16"]}' '"cidrs"'
bad "rate_limit with another member" '{"rate_limit":{"rate":1,"per":"s"}}' '"rate_limit"'
bad "a negative rate" '{"rate_limit":{"rate":-1}}' '"rate_limit"'
check "nothing of the refused bodies was stored" \
    '[ "$(as "$K" GET "/api/apps/$AP")" = 200 ] && [ "$(j "$(last)" "[\"name\"]")" = upd-renamed ] && [ "$(jd "$(last)" "[\"attributes\"][\"scopes\"]")" = "[\"inference\"]" ]'
check "create refuses the same: an unknown member, host bits set (400)" \
    '[ "$(as "$K" POST /api/apps "{\"name\":\"c1\",\"colour\":1}")" = 400 ] && [ "$(as "$K" POST /api/apps "{\"name\":\"c2\",\"cidrs\":[\"10.0.0.1/8\"]}")" = 400 ] && msg | grep -q "\"cidrs\""'

# --- names, ids, states --------------------------------------------------------
as "$K" POST /api/apps '{"name":"other"}' >/dev/null
OT=$(j "$(last)" '["id"]')
check "a name another app has: 409 conflict" \
    '[ "$(patch "{\"name\":\"other\"}")" = 409 ] && [ "$(code)" = conflict ]'
check "the app's own name again: 200" \
    '[ "$(patch "{\"name\":\"upd-renamed\"}")" = 200 ]'
check "an unknown app: 404" \
    '[ "$(as "$K" PATCH /api/apps/zzzzzzzzzzzz "{\"name\":\"x\"}")" = 404 ] && [ "$(code)" = not_found ]'
as "$K" POST /api/users '{"name":"dave","roles":["developer"]}' >/dev/null
DV=$(j "$(last)" '["id"]')
check "a user's id under /api/apps: 404" \
    '[ "$(as "$K" PATCH "/api/apps/$DV" "{\"name\":\"x\"}")" = 404 ]'
check "PATCH on /api/apps itself: 405" \
    '[ "$(as "$K" PATCH /api/apps "{\"name\":\"x\"}")" = 405 ]'
as "$K" DELETE "/api/apps/$OT" >/dev/null
check "a deleted app: 404, and its name stays taken" \
    '[ "$(as "$K" PATCH "/api/apps/$OT" "{\"name\":\"y\"}")" = 404 ] && [ "$(patch "{\"name\":\"other\"}")" = 409 ]'
as "$K" POST "/api/apps/$AP/disable" >/dev/null
check "a disabled app is updated and stays disabled" \
    '[ "$(patch "{\"scopes\":[\"inference\",\"audit\"]}")" = 200 ] && [ "$(j "$(last)" "[\"state\"]")" = suspended ] && [ "$(models "$PK" 127.0.0.1)" = 401 ]'

# --- who may: developers only on their own apps --------------------------------
$C -H "Authorization: Bearer $K" -X POST "$U/api/users/$DV/keys" >"$TMP/devkey"
DK=$(j "$TMP/devkey" '["key"]')
check "a developer on an app not theirs: 403 forbidden, nothing changed" \
    '[ "$(as "$DK" PATCH "/api/apps/$AP" "{\"name\":\"mine\"}")" = 403 ] && [ "$(code)" = forbidden ] && [ "$(as "$K" GET "/api/apps/$AP")" = 200 ] && [ "$(j "$(last)" "[\"name\"]")" = upd-renamed ]'
as "$DK" POST /api/apps '{"name":"daves"}' >/dev/null
DA=$(j "$(last)" '["id"]')
check "a developer on their own app: 200" \
    '[ "$(as "$DK" PATCH "/api/apps/$DA" "{\"name\":\"daves-2\"}")" = 200 ] && [ "$(j "$(last)" "[\"owner\"]")" = "$DV" ]'
check "sr-policy: apps.update has apps.create's roles (admin; developer, owner)" \
    '"$BUILD/bin/sr-policy" matrix | grep " PATCH /api/apps/" >"$TMP/m" && [ "$(grep -c " allow$" "$TMP/m")" = 1 ] && grep -q "^admin PATCH .* apps.update allow$" "$TMP/m" && "$BUILD/bin/sr-policy" decide appliance/policy.default developer apps.update /api/apps/x owner | grep -q "^allow"'

stop
AUD="$TMP/state/audit"
audited() { # STATUS...: an apps.update line with each status
	for s in "$@"; do
		grep "\"action\":\"apps.update\"" "$AUD"/audit-*.jsonl |
		    grep -q "\"status\":\"$s\"" || return 1
	done
}
check "every update is audited with its status" \
    'audited 200 400 403 404 409 && [ $(cat "$AUD"/audit-*.jsonl | grep -c "\"action\":\"apps.update\"") -ge 35 ]'
check "the audit log verifies" '"$BUILD/bin/sr-audit" verify --dir "$AUD" >/dev/null'
check "no key or token in the daemon's output, the audit log or any answer" \
    '! grep -l -F -e "$K" -e "$PK" -e "$T" -e "$DK" "$TMP/out" "$TMP/err" "$AUD"/* "$TMP"/seen/*'
exit $status
