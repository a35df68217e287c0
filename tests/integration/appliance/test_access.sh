#!/bin/sh
# tests/integration/appliance/test_access.sh: identity and access through
# curl over real TLS against one real strongroomd (real keystore, real
# SoftHSM2): users with roles, passwords and TOTP (codes from oathtool),
# console login with a replayed code refused, back-off with Retry-After
# (which holds the failing address, not the account elsewhere), session
# cookies with CSRF and logout, key rotation with a grace period, the
# one-call leak response, the audit query route, per-key rate limits, CIDR
# binding from 127.0.0.2 and 127.0.0.3, revocation within a second, the
# expiry watch (listing, gauge, one audit event per key per day, also
# across a restart), no secret left in the running daemon's memory, and
# last a scan proving no secret the test made appears anywhere but in the
# one response that created it.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/access-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
pid=
. "$(dirname "$0")/../tap.sh"

mkdir -p "$TMP/made" "$TMP/seen"
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
printf 'expiry_check_s = 1\n' >"$TMP/conf"
"$D" --config "$TMP/conf" --state-dir "$TMP/state" --listen 127.0.0.1:0 \
    >"$TMP/out" 2>"$TMP/err" &
pid=$!
port=$(daemon_port "$TMP/out")
C="curl -sS --cacert $TMP/state/tls/cert.pem"
U="https://localhost:$port"
K=$(cat "$TMP/state/admin.key" 2>/dev/null)
. "$(dirname "$0")/apicalls.sh"
# made NAME KEY METHOD PATH [BODY]: a response that shows a secret once.
made() {
	$C -o "$TMP/made/$1" -w '%{http_code}' -H "Authorization: Bearer $2" \
	    -X "$3" ${5:+-d "$5"} "$U$4"
}

# --- users -------------------------------------------------------------
s=$(as "$K" POST /api/users '{"name":"alice","roles":["developer"]}')
AL=$(j "$(last)" '["id"]')
check "admin creates a developer user (201)" '[ "$s" = 201 ] && [ ${#AL} -eq 12 ]'
# The first key check ran on a pool thread. Such a thread, running the
# expiry watch (every second here) a moment later, once spilled vector
# registers still holding the admin key onto its stack (the dynamic
# linker's lazy binding) where nothing overwrote them. The daemon now
# binds its symbols at start, and every pool job and every loop wipes the
# stack it used.
for n in 1 2 3 4; do as "$K" GET /api/users >/dev/null; sleep 0.3; done
printf '%s\n' "$K" | no_secret_in_memory \
    "the admin key is on no thread's stack after its first uses and an expiry watch"
check "a taken name: 409 conflict" \
    '[ "$(as "$K" POST /api/users "{\"name\":\"alice\",\"roles\":[\"auditor\"]}")" = 409 ]'
check "an unknown role: 400" \
    '[ "$(as "$K" POST /api/users "{\"name\":\"x\",\"roles\":[\"root\"]}")" = 400 ]'
as "$K" POST /api/users '{"name":"audrey","roles":["auditor"]}' >/dev/null
AU=$(j "$(last)" '["id"]')
as "$K" POST /api/users '{"name":"bob","roles":["developer"]}' >/dev/null
BO=$(j "$(last)" '["id"]')
check "the user list pages users with their roles" \
    '[ "$(as "$K" GET /api/users)" = 200 ] && grep -q "\"name\":\"alice\"" "$(last)" && grep -q "\"roles\":\[\"auditor\"\]" "$(last)"'
check "GET /api/users/{id} of an unknown id: 404" \
    '[ "$(as "$K" GET /api/users/zzzzzzzzzzzz)" = 404 ]'
PW="correct horse battery staple"
check "a 5-byte password: 400 invalid_password" \
    '[ "$(as "$K" POST "/api/users/$AL/password" "{\"password\":\"short\"}")" = 400 ] && [ "$(code)" = invalid_password ]'
check "admin sets alice's password (Argon2id)" \
    '[ "$(as "$K" POST "/api/users/$AL/password" "{\"password\":\"$PW\"}")" = 200 ]'
as "$K" POST "/api/users/$BO/password" "{\"password\":\"$PW\"}" >/dev/null
s=$(made totp "$K" POST "/api/users/$AL/totp")
URI=$(j "$TMP/made/totp" '["otpauth_uri"]')
SEC=$(echo "$URI" | sed -n 's/.*[?&]secret=\([A-Z2-7]*\).*/\1/p')
check "TOTP enrolment answers an otpauth:// URI once (201)" \
    '[ "$s" = 201 ] && echo "$URI" | grep -q "^otpauth://totp/Strongroom:alice?secret=" && [ ${#SEC} -eq 32 ]'

# --- console login -------------------------------------------------------
login() { # NAME PASSWORD CODE [curl args]: saves headers and body
	f=$(next) ln=$1 lp=$2 lc=$3
	shift 3
	$C -o "$f" -D "$f.h" -w '%{http_code}' "$@" \
	    -d "{\"name\":\"$ln\",\"password\":\"$lp\",\"totp\":\"$lc\"}" \
	    "$U/api/login" 2>/dev/null
}
# the next 30-second step's code would be accepted too; use the current
T1=$(oathtool --totp -b "$SEC")
check "a wrong password: 401 invalid_credentials" \
    '[ "$(login alice wrong-password-x "$T1")" = 401 ] && [ "$(code)" = invalid_credentials ]'
s=$(login alice "$PW" "$T1")
cp "$(last)" "$TMP/made/login"
rm -f "$(last)"
SID=$(sed -n 's/^set-cookie: sr_session=\([^;]*\);.*/\1/ip' "$(last).h" | tr -d '\r')
CSRF=$(j "$TMP/made/login" '["csrf_token"]')
check "login with password and an oathtool code: session cookie and CSRF token" \
    '[ "$s" = 200 ] && [ ${#SID} -eq 43 ] && [ ${#CSRF} -eq 43 ]'
check "the cookie is HttpOnly; Secure; SameSite=Strict" \
    'grep -qi "^set-cookie: sr_session=.*; HttpOnly; Secure; SameSite=Strict" "$(last).h"'
rm -f "$(last).h"
check "the same code again: 401 totp_replayed" \
    '[ "$(login alice "$PW" "$T1")" = 401 ] && [ "$(code)" = totp_replayed ]'
rm -f "$(last).h"
S="-b sr_session=$SID"
check "the session reads alice's own record" \
    '[ "$($C -o /dev/null -w "%{http_code}" $S "$U/api/users/$AL")" = 200 ]'
check "the session may not list users (developer): 403" \
    '[ "$($C -o /dev/null -w "%{http_code}" $S "$U/api/users")" = 403 ]'
check "a state-changing call without X-CSRF-Token: 403 csrf_required" \
    '$C $S -X POST "$U/api/users/$AL/keys" | grep -q "\"code\":\"csrf_required\""'
check "a wrong X-CSRF-Token: 403 csrf_required" \
    '$C $S -H "X-CSRF-Token: $SID" -X POST "$U/api/users/$AL/keys" | grep -q "\"code\":\"csrf_required\""'
s=$($C -o "$TMP/made/alicekey" -w '%{http_code}' $S -H "X-CSRF-Token: $CSRF" -X POST "$U/api/users/$AL/keys")
AK=$(j "$TMP/made/alicekey" '["key"]')
AKID=$(j "$TMP/made/alicekey" '["id"]')
check "with the CSRF header alice makes her own API key (201)" \
    '[ "$s" = 201 ] && [ ${#AK} -eq 64 ]'
check "logout ends the session (200, cookie cleared)" \
    '$C -D - $S -H "X-CSRF-Token: $CSRF" -X POST "$U/api/logout" | grep -qi "^set-cookie: sr_session=; .*Max-Age=0"'
check "the old cookie afterwards: 401 invalid_session" \
    '$C $S "$U/api/users/$AL" | grep -q "\"code\":\"invalid_session\""'
for i in 1 2 3; do login bob wrong-password-x 000000 --interface 127.0.0.3 >/dev/null; done
s=$(login bob "$PW" 000000 --interface 127.0.0.3)
check "three failures, then 429 too_many_attempts with Retry-After" \
    '[ "$s" = 429 ] && [ "$(code)" = too_many_attempts ] && grep -qi "^retry-after: [1-9]" "$(last).h"'
check "that address's back-off does not hold bob's account elsewhere (401, not 429)" \
    '[ "$(login bob wrong-password-x 000000 --interface 127.0.0.2)" = 401 ] && [ "$(code)" = invalid_credentials ]'

# --- rotation, leak, audit query -----------------------------------------
check "alice's key reads her record" \
    '[ "$(as "$AK" GET "/api/users/$AL")" = 200 ]'
s=$(made rot "$K" POST "/api/keys/$AKID/rotate" '{"grace_seconds":6}')
AK2=$(j "$TMP/made/rot" '["replacement"]["key"]')
AK2ID=$(j "$TMP/made/rot" '["replacement"]["id"]')
check "rotate: the replacement shown once, the old key retired in 6 s" \
    '[ "$s" = 201 ] && [ ${#AK2} -eq 64 ] && [ "$(j "$TMP/made/rot" "[\"grace_seconds\"]")" = 6 ]'
check "a grace over 7 days: 400" \
    '[ "$(as "$K" POST "/api/keys/$AK2ID/rotate" "{\"grace_seconds\":999999}")" = 400 ]'
check "during the grace period both keys work" \
    '[ "$(as "$AK" GET "/api/users/$AL")" = 200 ] && [ "$(as "$AK2" GET "/api/users/$AL")" = 200 ]'
sleep 6
check "after it the old key: 401 key_expired; the new one works" \
    '[ "$(as "$AK" GET "/api/users/$AL")" = 401 ] && [ "$(code)" = key_expired ] && [ "$(as "$AK2" GET "/api/users/$AL")" = 200 ]'
as "$AK2" GET /api/users >/dev/null
s=$(made leak "$K" POST "/api/keys/$AK2ID/leak")
AK3=$(j "$TMP/made/leak" '["replacement"]["key"]')
check "leak: revoked as compromised, replaced, and its requests answered" \
    '[ "$s" = 201 ] && [ ${#AK3} -eq 64 ] && python3 - "$TMP/made/leak" "$AK2ID" <<PY
import json, sys
d = json.load(open(sys.argv[1]))
assert d["revoked"]["state"] == "revoked" and d["revoked"]["reason"] == "compromised"
req = d["requests"]
assert d["count"] == len(req) >= 3, d["count"]
assert all(l["key"] == sys.argv[2] or l.get("resource", "").find(sys.argv[2]) >= 0 for l in req)
assert {"200", "403"} <= {l["status"] for l in req}
PY'
check "the leaked key at once: 401 key_revoked" \
    '[ "$(as "$AK2" GET "/api/users/$AL")" = 401 ] && [ "$(code)" = key_revoked ]'
made audkey "$K" POST "/api/users/$AU/keys" >/dev/null
AUK=$(j "$TMP/made/audkey" '["key"]')
check "an auditor queries the log by key and action" \
    '[ "$(as "$AUK" GET "/api/audit?key=$AK2ID&action=users.read")" = 200 ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"count\"] >= 2 and all(l[\"action\"] == \"users.read\" for l in d[\"requests\"])" "$(last)"'
check "a time window that ends before today: nothing" \
    '[ "$(as "$AUK" GET "/api/audit?key=$AK2ID&to=2000-01-01")" = 200 ] && grep -q "\"count\":0" "$(last)"'
check "a malformed time: 400" \
    '[ "$(as "$AUK" GET "/api/audit?from=yesterday")" = 400 ]'
check "a time as Unix seconds is the same window; one past 9999-12-31: 400" \
    '[ "$(as "$AUK" GET "/api/audit?key=$AK2ID&to=946684800")" = 200 ] && grep -q "\"count\":0" "$(last)" && [ "$(as "$AUK" GET "/api/audit?from=253402300800")" = 400 ]'
check "a mistyped or repeated filter is refused, not dropped: 400 naming it" \
    '[ "$(as "$AUK" GET "/api/audit?kye=$AK2ID")" = 400 ] && grep -q "unknown parameter ..kye..; this route takes key, actor, action, from, to" "$(last)" && [ "$(as "$AUK" GET "/api/audit?key=$AK2ID&key=x")" = 400 ] && grep -q "key given more than once" "$(last)" && [ "$(as "$K" GET "/api/apps?limit=5")" = 400 ] && [ "$(code)" = invalid_request ]'
check "a developer may not read the audit log: 403" \
    '[ "$(as "$AK3" GET "/api/audit?key=$AK2ID")" = 403 ]'

# --- revocation, CIDR binding, rate limits, disable ------------------------
as "$K" POST /api/apps '{"name":"bound","cidrs":["127.0.0.2/32"],"rate_limit":{"rate":1,"burst":2}}' >/dev/null
AP=$(j "$(last)" '["id"]')
made appkey "$K" POST "/api/apps/$AP/keys" >/dev/null
PK=$(j "$TMP/made/appkey" '["key"]')
PKID=$(j "$TMP/made/appkey" '["id"]')
check "an app key bound to 127.0.0.2 from 127.0.0.2: authenticated (403 by policy)" \
    '$C --interface 127.0.0.2 -H "Authorization: Bearer $PK" "$U/api/apps" | grep -q "\"code\":\"forbidden\""'
check "the same key from 127.0.0.3: 401 address_not_allowed" \
    '$C --interface 127.0.0.3 -H "Authorization: Bearer $PK" "$U/api/apps" | grep -q "\"code\":\"address_not_allowed\""'
# One curl, one connection: four requests well inside a second.
$C --interface 127.0.0.2 -D "$TMP/rl.h" -H "Authorization: Bearer $PK" \
    "$U/api/apps" "$U/api/apps" "$U/api/apps" "$U/api/apps" >"$TMP/rl.out"
check "the app's own limit (1/s, burst 2): 429 rate_limited with Retry-After" \
    'grep -q "\"code\":\"rate_limited\"" "$TMP/rl.out" && grep -qi "^retry-after: [1-9]" "$TMP/rl.h"'
as "$K" POST "/api/keys/$AKID/revoke" '{"reason":"test"}' >/dev/null
as "$K" POST "/api/keys/$(j "$TMP/made/leak" '["replacement"]["id"]')/revoke" '{"reason":"test"}' >/dev/null
t0=$(date +%s%N)
# Refused by a request that started within a second of the revocation's
# answer (a loaded machine may take longer to answer it).
while :; do
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ "$(as "$AK3" GET "/api/users/$AL")" = 401 ] && break
	[ $ms -gt 1000 ] && ms=never && break
done
check "a revoked key is refused within one second (request sent at +${ms} ms)" \
    '[ "$(code)" = key_revoked ] && [ "$ms" != never ]'
made bobkey "$K" POST "/api/users/$BO/keys" >/dev/null
BK=$(j "$TMP/made/bobkey" '["key"]')
as "$K" POST "/api/users/$BO/disable" >/dev/null
check "a disabled user's key: 401 key_suspended" \
    '[ "$(as "$BK" GET "/api/users/$BO")" = 401 ] && [ "$(code)" = key_suspended ]'
check "a deleted user is revoked" \
    '[ "$(as "$K" DELETE "/api/users/$BO")" = 200 ] && grep -q "\"state\":\"revoked\"" "$(last)"'

# --- expiry watch ------------------------------------------------------------
as "$K" POST /api/apps '{"name":"short","expires_in_days":1}' >/dev/null
EX=$(j "$(last)" '["id"]')
sleep 2.5
check "an app 1 day from expiry is listed in /api/keys/expiring" \
    '[ "$(as "$K" GET /api/keys/expiring)" = 200 ] && grep -q "\"id\":\"$EX\"" "$(last)"'
check "the strongroom_keys_expiring gauge counts it" \
    '$C "$U/metrics" | grep -q "^strongroom_keys_expiring [1-9]"'

# --- secrets in the daemon's memory --------------------------------------------
# Every secret above went through this daemon: keys made, shown once and
# used; a password set and logged in with; a TOTP secret enrolled and used;
# a session opened and closed. The keystore keeps keyed hashes and wrapped
# secrets, and requests, answers and parsed bodies are wiped, so none may
# be left anywhere in its writable memory once their connections are gone.
sleep 0.3
printf '%s\n' "$K" "$AK" "$AK2" "$AK3" "$PK" "$BK" "$AUK" "$SEC" "$SID" \
    "$CSRF" "$PW" | no_secret_in_memory \
    "no secret the test made is left in the running daemon's memory"
stop
AUD="$TMP/state/audit"
check "one key.expiring audit event for it, though the watch ran often" \
    '[ "$(cat "$AUD"/audit-*.jsonl | grep "\"action\":\"key.expiring\"" | grep -c "\"key\":\"$EX\"")" = 1 ]'
# A restart the same day: the watch learns from today's audit file what it
# already announced. (Across UTC midnight a second line is right: one a day.)
start --config "$TMP/conf"
U="https://localhost:$port"
# The watch's first run after a start: up to 15 s on a loaded machine.
n=0
while [ $n -lt 60 ] && ! $C "$U/metrics" 2>/dev/null |
    grep -q "^strongroom_keys_expiring [1-9]"; do
	sleep 0.25
	n=$((n + 1))
done
check "after a restart the watch runs again (the gauge counts the key)" \
    '$C "$U/metrics" | grep -q "^strongroom_keys_expiring [1-9]" ||
     { echo "# port \"$port\"; the daemon said:"; sed "s/^/# /" "$TMP/err" | tail -n 20; false; }'
stop
check "and writes no second key.expiring event for it on the same UTC day" \
    '[ -z "$(grep -h "\"action\":\"key.expiring\"" "$AUD"/audit-*.jsonl | grep "\"key\":\"$EX\"" | cut -c8-17 | sort | uniq -d)" ] && [ "$(cat "$AUD"/audit-*.jsonl | grep -c "\"action\":\"audit.start\"")" = 2 ]'
check "logins, rate limits and CSRF refusals are audited" \
    'grep -q "\"action\":\"session.login\",\"resource\":\"/api/login\",\"status\":\"200\"" "$AUD"/audit-*.jsonl && grep -q "\"key\":\"$PKID\",\"status\":\"429\"" "$AUD"/audit-*.jsonl && grep -q "\"actor\":\"anonymous\",\"action\":\"keys.create\".*\"status\":\"403\"" "$AUD"/audit-*.jsonl'
check "the audit log verifies" '"$BUILD/bin/sr-audit" verify --dir "$AUD" >/dev/null'

# --- secret scan -------------------------------------------------------------
secrets_in() { # FILES...: any secret this test made, found in them
	grep -l -F -e "$K" -e "$AK" -e "$AK2" -e "$AK3" -e "$PK" -e "$BK" \
	    -e "$AUK" -e "$SEC" -e "$SID" -e "$CSRF" -e "$PW" "$@"
}
check "no secret in the daemon's output, the audit log or any other answer" \
    '! secrets_in "$TMP/out" "$TMP/err" "$AUD"/* "$TMP"/seen/* "$TMP"/rl.out "$TMP"/rl.h'
# -e: a token may begin with '-' (base64url).
check "each secret is in exactly the one answer that made it" \
    '[ "$(grep -l -F -e "$AK2" "$TMP"/made/* | wc -l)" = 1 ] && [ "$(grep -l -F -e "$SEC" "$TMP"/made/* | wc -l)" = 1 ] && [ "$(grep -l -F -e "$CSRF" "$TMP"/made/* | wc -l)" = 1 ]'
exit $status
