#!/bin/sh
# tests/integration/appliance/test_authz_matrix.sh: the generated
# authorization matrix. `sr-policy matrix` computes, from the shipped
# policy file and the daemon's own route table, whether each of the seven
# roles may call each management route; one user per role then calls every
# route over real HTTPS (one curl per role, one connection) against one
# real strongroomd, and each answer must agree: a denied call is 403
# forbidden, an allowed one is anything but 401/403 (404 for the id that
# does not exist, 400 for the empty body, 200 for a listing). Nothing in
# the expectations is written by hand.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/authz-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
pid=
. "$(dirname "$0")/../tap.sh"

mkdir -p "$TMP"
trap 'stop; [ -n "${SR_KEEP:-}" ] || rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
# The matrix sends about 200 requests from one address in a few seconds.
printf 'rate_per_addr = 5000\nrate_per_addr_burst = 5000\n' >"$TMP/conf"
"$D" --config "$TMP/conf" --state-dir "$TMP/state" --listen 127.0.0.1:0 \
    >"$TMP/out" 2>"$TMP/err" &
pid=$!
port=$(daemon_port "$TMP/out")
C="curl -sS --cacert $TMP/state/tls/cert.pem"
U="https://localhost:$port"
K=$(cat "$TMP/state/admin.key" 2>/dev/null)

"$BUILD/bin/sr-policy" matrix >"$TMP/matrix"
roles=$(cut -d' ' -f1 "$TMP/matrix" | sort -u)
check "sr-policy computes a matrix of 7 roles over every route" \
    '[ "$(echo "$roles" | wc -l)" = 7 ] && [ $(wc -l <"$TMP/matrix") -ge 140 ] && grep -q " allow$" "$TMP/matrix" && grep -q " deny$" "$TMP/matrix"'

# One user and one API key per role.
for r in $roles; do
	$C -H "Authorization: Bearer $K" \
	    -d "{\"name\":\"m-$r\",\"roles\":[\"$r\"]}" "$U/api/users" >"$TMP/u.$r"
	id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$TMP/u.$r")
	$C -H "Authorization: Bearer $K" -X POST "$U/api/users/$id/keys" |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' >"$TMP/k.$r"
done
check "a user and a key for each role" \
    '[ "$(cat "$TMP"/k.* | grep -c "^srk_")" = 7 ]'

# Every route of the role in one curl: a config block per request ("next"
# resets every option, the CA file included).
for r in $roles; do
	grep "^$r " "$TMP/matrix" | while read -r _ method path _ _; do
		printf 'url = "%s%s"\nrequest = "%s"\n' "$U" "$path" "$method"
		printf 'cacert = "%s"\nsilent\n' "$TMP/state/tls/cert.pem"
		printf 'header = "Authorization: Bearer %s"\n' "$(cat "$TMP/k.$r")"
		printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\nnext\n'
	done >"$TMP/curl.$r"
	$C -K "$TMP/curl.$r" >"$TMP/got.$r" 2>"$TMP/curlerr.$r"
	rm -f "$TMP/curl.$r"
	grep "^$r " "$TMP/matrix" | paste -d' ' - "$TMP/got.$r" >"$TMP/cmp.$r"
done
bad=$(cat "$TMP"/cmp.* | awk '
	$5 == "deny" && $6 != 403 { print; next }
	$5 == "allow" && ($6 == 401 || $6 == 403 || $6 == "" || $6 == "000") { print }')
total=$(cat "$TMP"/cmp.* | wc -l)
allowed=$(cat "$TMP"/cmp.* | grep -c " allow ")
check "all $total role x route answers match the policy ($allowed allowed)" \
    '[ -z "$bad" ] && [ "$total" = $(wc -l <"$TMP/matrix") ]'
[ -n "$bad" ] && echo "$bad" | sed 's/^/# mismatch: /'
check "the admin role may do everything the table has but ceremonies" \
    '! grep "^admin " "$TMP/matrix" | grep -q " deny$"'
check "auditors only read (no allowed POST, PATCH or DELETE)" \
    '! grep "^auditor " "$TMP/matrix" | grep " allow$" | grep -q -e " POST " -e " PATCH " -e " DELETE "'
check "factory, service and device roles reach no management route" \
    '! grep -e "^factory " -e "^service " -e "^device " "$TMP/matrix" | grep -q " allow$"'
P=appliance/policy.default
check "sr-policy decide: a developer reads an app only as its owner" \
    '"$BUILD/bin/sr-policy" decide $P developer apps.read /api/apps/x owner | grep -q "^allow (.*policy.default:[0-9]*)$" && "$BUILD/bin/sr-policy" decide $P developer apps.read /api/apps/x | grep -q "^deny (default deny)$"'
check "sr-policy decide: a developer rotates, revokes and leak-reports a key only as its owner" \
    '( for a in "keys.rotate /api/keys/x/rotate" "keys.revoke /api/keys/x/revoke" "keys.revoke /api/keys/x/leak"; do "$BUILD/bin/sr-policy" decide $P developer $a owner | grep -q "^allow (" && "$BUILD/bin/sr-policy" decide $P developer $a | grep -q "^deny (default deny)$" || exit 1; done )'
printf 'version 1\nallow admin apps.creat /api/apps\n' >"$TMP/typo.policy"
check "sr-policy check: a misspelt action stops the load at its line" \
    '! "$BUILD/bin/sr-policy" check "$TMP/typo.policy" 2>"$TMP/typo.err" && grep -q "typo.policy:2:" "$TMP/typo.err" && "$BUILD/bin/sr-policy" check $P | grep -q "rules, loads"'
stop
check "every decision is audited and the log verifies" \
    '[ $(cat "$TMP"/state/audit/audit-*.jsonl | grep -c "\"status\":\"403\"") -ge $(grep -c " deny$" "$TMP/matrix") ] && "$BUILD/bin/sr-audit" verify --dir "$TMP/state/audit" >/dev/null'
check "no key in the daemon's output or the audit log" \
    '! grep -q -F -f "$(cat "$TMP"/k.* >"$TMP/keys"; echo "$TMP/keys")" "$TMP/out" "$TMP/err" "$TMP"/state/audit/*'
exit $status
