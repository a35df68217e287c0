#!/bin/sh
# tests/integration/appliance/test_daemon.sh: strongroomd against real
# clients: curl and openssl s_client over real TLS 1.3 handshakes (ALPN
# http/1.1 and http/1.0, TLS 1.2 refused then allowed, ticket resumption),
# the security headers, /health /ready /metrics (promtool when installed),
# JSON errors, hostile requests answered with the right status while the
# daemon keeps serving, Connection: close read as a list of tokens,
# clients that leave while it writes (EPIPE, not SIGPIPE), the audit log
# failing closed when its file cannot grow (503 audit_unavailable, seen in
# /metrics) and recovering, SIGHUP, and a clean drain on SIGTERM.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/daemon-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
HERE=$(dirname "$0")
pid=
. "$(dirname "$0")/../tap.sh"

mkdir -p "$TMP"
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
start
CA="$TMP/state/tls/cert.pem"
URL="https://localhost:$port"
C="curl -sS --cacert $CA --tlsv1.3"

check "the daemon starts and prints its URL" '[ -n "$port" ]'
check "the printed curl line works as printed" \
    'sh -c "$(sed -n "s/^strongroomd: try: //p" "$TMP/out") -sS" | grep -q "\"status\":\"ok\""'
check "the printed fingerprint is the certificate's" \
    '[ "$(sed -n "s/^strongroomd: certificate //p" "$TMP/out")" = "$(openssl x509 -in "$CA" -noout -fingerprint -sha256 | sed "s/^sha256 /SHA256 /")" ]'
# --tlsv1.3 makes TLS 1.3 curl's minimum: a 200 is a TLS 1.3 answer.
check "GET /health: 200 over TLS 1.3" \
    '[ "$($C -o /dev/null -w "%{http_code}" "$URL/health")" = 200 ]'
$C -D "$TMP/h" -o "$TMP/b" "$URL/health"
check "HSTS and the security headers" \
    'grep -qi "^strict-transport-security: max-age=" "$TMP/h" && grep -qi "^x-content-type-options: nosniff" "$TMP/h" && grep -qi "^x-frame-options: DENY" "$TMP/h"'
check "GET /ready: HSM and keystore ready" \
    '$C "$URL/ready" | grep -q "\"hsm\":\"ready\",\"keystore\":\"ready\""'
check "unknown route: JSON 404" \
    '[ "$($C -o "$TMP/b" -w "%{http_code}" "$URL/nope")" = 404 ] && grep -q "{\"error\":{\"code\":\"not_found\"" "$TMP/b"'
check "wrong method: 405 with Allow" \
    '$C -X POST -d x -D - -o /dev/null "$URL/health" | grep -qi "^allow: GET, HEAD"'
$C "$URL/metrics" >"$TMP/metrics"
check "GET /metrics: Prometheus text with request counters" \
    'grep -q "^strongroom_http_requests_total{" "$TMP/metrics"'
check "... and the HSM operations' latencies (the keystore's start made some)" \
    'grep -q "^strongroom_hsm_operation_duration_seconds_count [1-9]" "$TMP/metrics"'
if command -v promtool >/dev/null 2>&1; then
	check "promtool check metrics accepts /metrics" \
	    'promtool check metrics <"$TMP/metrics"'
else
	echo "# promtool not installed: metrics lint skipped"
fi

# loop_spin_us (docs/operations.md): after a read a loop polls on for a
# few microseconds instead of sleeping, and never longer: after a burst,
# an idle daemon uses (almost) no CPU. utime + stime in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
burst=$(i=0; while [ $i -lt 200 ]; do printf '%s/health ' "$URL"; i=$((i + 1)); done)
$C $burst >/dev/null
sleep 0.5
t0=$(cpu_ticks)
sleep 2
t1=$(cpu_ticks)
check "idle for 2 s after 200 keep-alive requests: under 10 % of a core ($((t1 - t0)) ticks)" \
    '[ $((t1 - t0)) -le 20 ]'

S="openssl s_client -connect 127.0.0.1:$port -servername localhost -CAfile $CA"
check "openssl s_client: TLS 1.3 with ALPN http/1.1" \
    'echo | $S -tls1_3 -alpn http/1.1 2>&1 | grep -q "ALPN protocol: http/1.1" && echo | $S -tls1_3 2>&1 | grep -q "TLSv1.3"'
check "curl --http1.0 (ALPN http/1.0 only): 200 from /health" \
    '[ "$($C --http1.0 -o /dev/null -w "%{http_code}" "$URL/health")" = 200 ]'
check "openssl s_client: ALPN http/1.0 alone is chosen; with http/1.1, http/1.1" \
    'echo | $S -tls1_3 -alpn http/1.0 2>&1 | grep -q "ALPN protocol: http/1.0" && echo | $S -tls1_3 -alpn http/1.0,http/1.1 2>&1 | grep -q "ALPN protocol: http/1.1"'
check "ALPN h2 alone: refused with no_application_protocol" \
    'echo | $S -tls1_3 -alpn h2 2>&1 | grep -q "alert no application protocol"'
# A refused handshake leaves "New, (NONE)"; an accepted one names the
# protocol (s_client prints a "Protocol : TLSv1.2" line either way).
check "TLS 1.2 refused by default" \
    'echo | $S -tls1_2 2>&1 | grep -q "^New, (NONE), Cipher is (NONE)"'
# TLS 1.3 tickets arrive after the handshake: give s_client time to read.
sleep 1 | $S -tls1_3 -sess_out "$TMP/sess" >/dev/null 2>&1
check "a returning client resumes with its session ticket" \
    'sleep 1 | $S -tls1_3 -sess_in "$TMP/sess" 2>&1 | grep -q "^Reused, TLSv1.3"'

# Hostile HTTP over a real TLS connection: the status line that comes back.
raw() {
	printf "$1" | $S -quiet -ign_eof 2>/dev/null | head -n 1 | tr -d '\r'
}
check "Content-Length and chunked together: 400" \
    '[ "$(raw "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")" = "HTTP/1.1 400 Bad Request" ]'
check "an invalid chunk size: 400" \
    '[ "$(raw "POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")" = "HTTP/1.1 400 Bad Request" ]'
long=$(head -c 10000 /dev/zero | tr '\0' a)
check "a 10 kB URL: 414" \
    '[ "$(raw "GET /$long HTTP/1.1\r\nHost: x\r\n\r\n")" = "HTTP/1.1 414 URI Too Long" ]'
check "20 kB of headers: 431" \
    '[ "$(raw "GET /health HTTP/1.1\r\nHost: x\r\nX-A: $long\r\nX-B: $long\r\n\r\n")" = "HTTP/1.1 431 Request Header Fields Too Large" ]'
# ends REQUEST: the daemon answers 200 and closes the connection (s_client
# -quiet leaves only when the server closes); stays REQUEST: it answers 200
# and keeps the connection open (still open after 2 s).
ends() {
	printf "$1" | timeout 5 $S -quiet >"$TMP/raw" 2>/dev/null
	[ $? -ne 124 ] && head -n 1 "$TMP/raw" | grep -q "^HTTP/1.1 200 "
}
stays() {
	printf "$1" | timeout 2 $S -quiet >"$TMP/raw" 2>/dev/null
	[ $? -eq 124 ] && head -n 1 "$TMP/raw" | grep -q "^HTTP/1.1 200 "
}
check "Connection: close with trailing OWS (tab, spaces): closed" \
    'ends "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\t\r\n\r\n" && ends "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close  \r\n\r\n"'
check "Connection: keep-alive, close: closed" \
    'ends "GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n"'
check "HTTP/1.0: closed; with Connection: keep-alive, kept open" \
    'ends "GET /health HTTP/1.0\r\n\r\n" && stays "GET /health HTTP/1.0\r\nConnection: keep-alive\t\r\n\r\n"'
check "a request line of garbage: 400" \
    '[ "$(raw "\001\002\003 nonsense\r\n\r\n")" = "HTTP/1.1 400 Bad Request" ]'
# The daemon's next write to these connections fails with EPIPE; with
# SIGPIPE at its default the process died within a few clients.
check "100 clients that half-close and leave without reading: still serving" \
    'python3 "$HERE/halfclose.py" "$port" 100 >/dev/null && kill -0 "$pid"'
# Those 250 requests emptied this address's rate-limit bucket (burst 200,
# 100/s): let it refill before the checks that expect 200s.
sleep 2.5
check "after all that, the daemon still serves" \
    '[ "$($C -o /dev/null -w "%{http_code}" "$URL/health")" = 200 ]'
check "pipelined requests get answers in order" \
    '[ "$(printf "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | $S -quiet -ign_eof 2>/dev/null | grep -ao "HTTP/1.1 [0-9][0-9][0-9]" | tr "\n" ",")" = "HTTP/1.1 200,HTTP/1.1 404," ]'

# Fail-closed, end to end: a file size limit on the running daemon (as
# systemd's LimitFSIZE would set) at the audit day file's size makes its
# next append fail with EFBIG; the audited request is refused, /metrics
# says the log is not writable, and lifting the limit recovers.
AK=$(cat "$TMP/state/admin.key")
A="$C -H \"Authorization: Bearer $AK\""
check "an audited request: 200, and /metrics says the audit log is writable" \
    '[ "$(eval "$A -o /dev/null -w %{http_code} $URL/api/apps")" = 200 ] && $C "$URL/metrics" | grep -q "^strongroom_audit_writable 1" && $C "$URL/metrics" | grep -q "^strongroom_audit_lines_total [1-9]"'
day=$(ls "$TMP/state/audit/"audit-*.jsonl | tail -n 1)
prlimit --pid "$pid" --fsize="$(stat -c %s "$day"):"
check "the audit file cannot grow: 503 audit_unavailable with Retry-After, nothing answered unrecorded" \
    '[ "$(eval "$A -D $TMP/h -o $TMP/b -w %{http_code} $URL/api/apps")" = 503 ] && grep -q "\"code\":\"audit_unavailable\"" "$TMP/b" && grep -qi "^Retry-After: 1" "$TMP/h"'
# A change is recorded before it is made: refused here, it must not exist
# once the log works again.
printf '{"name":"unrecorded"}' >"$TMP/unrec.json"
check "... a state change refused 503: nothing was done" \
    '[ "$(eval "$A -o $TMP/b -w %{http_code} -d @$TMP/unrec.json $URL/api/apps")" = 503 ] && grep -q "nothing was done" "$TMP/b"'
check "... the token endpoint refused 503 in RFC 6749 5.2's format, with Retry-After" \
    '[ "$($C -D $TMP/h -o $TMP/b -w %{http_code} -d "grant_type=client_credentials&client_id=x&client_secret=y" $URL/oauth/token)" = 503 ] && grep -q "^{\"error\":\"audit_unavailable\",\"error_description\":" "$TMP/b" && grep -qi "^Retry-After: 1" "$TMP/h"'
$C "$URL/metrics" >"$TMP/metrics.failed"
check "... /metrics: not writable, the refusal counted" \
    'grep -q "^strongroom_audit_writable 0" "$TMP/metrics.failed" && grep -q "^strongroom_audit_refused_total [1-9]" "$TMP/metrics.failed"'
prlimit --pid "$pid" --fsize=unlimited:
check "the limit lifted: the next audited request is recorded and answered" \
    '[ "$(eval "$A -o /dev/null -w %{http_code} $URL/api/apps")" = 200 ] && $C "$URL/metrics" | grep -q "^strongroom_audit_writable 1"'
check "... the refused change was not made" \
    '! eval "$A $URL/api/apps" | grep -q "\"name\":\"unrecorded\""'
check "... the log records the recovery" \
    'cat "$TMP/state/audit/"audit-*.jsonl | grep -q "\"action\":\"audit.recovered\""'

# HEAD (RFC 9110 9.3.2): the head only, wherever GET is answered, errors
# and the API included; the next answer on the connection follows the
# head at once (a body there would be read as the next status line).
head_then_get() {
	{
		printf 'HEAD %s HTTP/1.1\r\nHost: x\r\n' "$1"
		[ -z "${2:-}" ] || printf '%s\r\n' "$2"
		printf '\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	} | $S -quiet -ign_eof 2>/dev/null | python3 -c '
import sys
d = sys.stdin.buffer.read()
i = d.find(b"\r\n\r\n") + 4
ok = d[i:].startswith(b"HTTP/1.1 200 OK\r\n") and d.count(b"HTTP/1.1 ") == 2
print(d[:d.find(b"\r\n")].decode() if ok else "excess: %r" % d[i:i + 40])'
}
check "HEAD of an unknown route: a 404 head, no body" \
    '[ "$(head_then_get /nope)" = "HTTP/1.1 404 Not Found" ]'
check "HEAD /api/apps: answered as GET, the head only" \
    '[ "$(head_then_get /api/apps "Authorization: Bearer $AK")" = "HTTP/1.1 200 OK" ]'
check "HEAD /health: the head only" \
    '[ "$(head_then_get /health)" = "HTTP/1.1 200 OK" ]'
check "HEAD /.well-known/jwks.json: a 200 head, no body" \
    '[ "$(head_then_get /.well-known/jwks.json)" = "HTTP/1.1 200 OK" ]'
check "POST /.well-known/jwks.json: 405 with Allow: GET, HEAD" \
    '$C -X POST -d x -D - -o /dev/null "$URL/.well-known/jwks.json" | grep -qi "^allow: GET, HEAD"'
check "HEAD /v1/models: answered as GET, the head only" \
    '[ "$(head_then_get /v1/models "Authorization: Bearer $AK")" = "HTTP/1.1 200 OK" ]'
check "curl -I: no excess bytes after a HEAD's answer" \
    '$C -I -v "$URL/nope" "$URL/health" >"$TMP/hd" 2>&1 && ! grep -qi "excess" "$TMP/hd" && [ "$(grep -c "^HTTP/1.1 " "$TMP/hd")" = 2 ]'
check "an API route's 405 lists HEAD with GET" \
    'eval "$A -X DELETE -D - -o /dev/null $URL/api/apps" | grep -qi "^allow: .*GET, HEAD"'
check "an absolute-form target is routed on its path (RFC 9112 3.2.2)" \
    '[ "$(raw "GET https://localhost/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")" = "HTTP/1.1 200 OK" ]'
check "Expect: 100-continue is answered at once" \
    '$C -v --max-time 5 --expect100-timeout 10 -H "Expect: 100-continue" -d grant_type=client_credentials "$URL/oauth/token" 2>&1 | grep -q "^< HTTP/1.1 100 Continue"'
# A body over max_body_bytes, still being sent when the 413 is: the rest
# is read and dropped before the close, so a client that writes on (node,
# the openai npm client) reads the 413 instead of a reset.
if command -v node >/dev/null 2>&1; then
	check "node POSTs 3 MB (over max_body_bytes) three times: three 413s, no reset" \
	    '[ "$(for i in 1 2 3; do NODE_EXTRA_CA_CERTS="$CA" node "$HERE/bigbody.cjs" "$port" 3000000 /v1/chat/completions; done | tr "\n" ,)" = "413,413,413," ]'
else
	skip "node POSTs 3 MB (over max_body_bytes): 413, no reset" "node not installed"
fi
# mbedTLS 3.6 takes no post-handshake message (KeyUpdate): the client is
# told with an alert instead of a silent close.
check "a TLS 1.3 KeyUpdate: a fatal unexpected_message alert, then the close" \
    '(printf "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"; sleep 0.5; printf "k\n"; sleep 1) | $S -msg 2>&1 | grep -q "Alert.*fatal unexpected_message"'

kill -HUP "$pid"
sleep 0.3
check "SIGHUP: reloaded, still serving" \
    'grep -q "SIGHUP: configuration.*reloaded, certificate SHA256" "$TMP/err" && [ "$($C -o /dev/null -w "%{http_code}" "$URL/health")" = 200 ]'
kill -TERM "$pid"
i=0
while [ $i -lt 50 ] && kill -0 "$pid" 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
check "SIGTERM: drained and exited" '! kill -0 "$pid" 2>/dev/null'
wait "$pid"
check "... with status 0" '[ $? -eq 0 ]'
pid=
# The close signed a last checkpoint: the whole log, the refusal and the
# recovery included, verifies (before it, a log younger than the first
# checkpoint is under no signature and does not).
check "the closed log verifies, the recovery under its last signed checkpoint" \
    '"$BUILD/bin/sr-audit" verify --dir "$TMP/state/audit" >/dev/null'
# The auditor's trusted key: taken from the keystore (the daemon stopped),
# it is the key the daemon wrote beside the log, and every checkpoint of
# the log verifies with it.
check "sr-audit pubkey: the checkpoint key from the keystore verifies the log" \
    '"$BUILD/bin/sr-audit" pubkey --state-dir "$TMP/state" >"$TMP/ckpt.pem" 2>"$TMP/ckpt.err" && kid=$(sed -n "s/^checkpoint key \([A-Za-z0-9]*\.v[0-9]*\) .*/\1/p" "$TMP/ckpt.err") && [ -n "$kid" ] && cmp -s "$TMP/ckpt.pem" "$TMP/state/audit/checkpoint-key-$kid.pub" && grep -q "\"action\":\"audit.checkpoint\".*\"key_id\":\"$kid\"" "$TMP/state/audit/"audit-*.jsonl && "$BUILD/bin/sr-audit" verify --dir "$TMP/state/audit" --pubkey "$TMP/ckpt.pem" | grep -q "^intact:"'
# --pubkey more than once (a log across a replaced checkpoint key): a key
# that signed none of the checkpoints alone fails at the first one, naming
# its key_id; beside the right one, in any order, the log verifies.
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl ec -pubout -out "$TMP/other.pem" 2>/dev/null
check "sr-audit verify --pubkey twice: an untrusted checkpoint key is named; both keys verify" \
    'kid=$(sed -n "s/^checkpoint key \([A-Za-z0-9]*\.v[0-9]*\) .*/\1/p" "$TMP/ckpt.err") && [ -n "$kid" ] && { "$BUILD/bin/sr-audit" verify --dir "$TMP/state/audit" --pubkey "$TMP/other.pem" >"$TMP/v1.out"; [ $? -eq 1 ]; } && grep -q "^TAMPERED .*:[0-9]*: checkpoint signed by key \"$kid\", which is not among the trusted keys" "$TMP/v1.out" && "$BUILD/bin/sr-audit" verify --dir "$TMP/state/audit" --pubkey "$TMP/other.pem" --pubkey "$TMP/ckpt.pem" | grep -q "^intact:" && { "$BUILD/bin/sr-audit" verify --dir "$TMP/state/audit" $(for i in $(seq 17); do printf -- "--pubkey %s " "$TMP/other.pem"; done) 2>/dev/null; [ $? -eq 2 ]; }'

printf 'tls12 = yes\n' >"$TMP/conf"
start --config "$TMP/conf"
S="openssl s_client -connect 127.0.0.1:$port -servername localhost -CAfile $CA"
echo | $S -tls1_2 >"$TMP/s12" 2>&1
check "tls12 = yes: TLS 1.2 with an AEAD suite accepted" \
    'grep -q "^New, TLSv1.2, Cipher is .*\(GCM\|CHACHA20\)" "$TMP/s12" || { cat "$TMP/s12" "$TMP/err"; false; }'
stop
printf 'listen = 127.0.0.1:0\nbogus = 1\n' >"$TMP/bad.conf"
check "a bad configuration names file, line and problem" \
    '! "$D" --config "$TMP/bad.conf" 2>"$TMP/e2" && grep -q "bad.conf:2:" "$TMP/e2"'
exit $status
