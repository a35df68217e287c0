#!/bin/sh
# tests/integration/appliance/test_daemon_ops.sh: what operators do to a
# running strongroomd, with real clients: SIGHUP re-reading the
# configuration file (new limits for new connections, restart-only keys
# kept with a warning, a broken file changing nothing), the body deadline
# apart from the header deadline, SIGTERM's drain deadline and a second
# signal, a second daemon refused on a taken port, running out of file
# descriptors (no busy loop, served again after), certificate files that
# do not exist refused, the descriptor limit raised for max_conns, no core
# file from a crash unless core_dumps = yes, and an operator's RSA
# certificate with TLS 1.2.
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/daemon-ops-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
pid=
. "$(dirname "$0")/../tap.sh"

# gone_within TENTHS: the daemon has exited within that many 0.1 s.
gone_within() {
	_i=0
	while [ $_i -lt "$1" ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		_i=$((_i + 1))
	done
	! kill -0 "$pid" 2>/dev/null
}

mkdir -p "$TMP"
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM
CA="$TMP/state/tls/cert.pem"

# --- SIGHUP re-reads the file -------------------------------------------
printf 'max_url_bytes = 8192\n' >"$TMP/conf"
start --config "$TMP/conf"
C="curl -sS --cacert $CA --tlsv1.3"
URL="https://localhost:$port"
long=$(head -c 2000 /dev/zero | tr '\0' a)
check "before SIGHUP a 2 kB URL is served (404)" \
    '[ "$($C -o /dev/null -w "%{http_code}" "$URL/$long")" = 404 ]'
printf 'max_url_bytes = 1024\nloops = 3\n' >"$TMP/conf"
kill -HUP "$pid"
sleep 0.3
check "after SIGHUP the same URL is refused with 414" \
    '[ "$($C -o /dev/null -w "%{http_code}" "$URL/$long")" = 414 ]'
check "a changed number of loops is kept and named in a warning" \
    'grep -q "loops changed; it takes effect at the next restart" "$TMP/err" && [ "$($C -o /dev/null -w "%{http_code}" "$URL/health")" = 200 ]'
printf 'max_url_bytes = 1024\nnonsense here\n' >"$TMP/conf"
kill -HUP "$pid"
sleep 0.3
check "a broken file on SIGHUP is reported and changes nothing" \
    'grep -q "SIGHUP: nothing reloaded: .*conf:2:" "$TMP/err" && [ "$($C -o /dev/null -w "%{http_code}" "$URL/$long")" = 414 ]'
stop

# --- body deadline ------------------------------------------------------
printf 'header_timeout_ms = 1000\nbody_timeout_ms = 4000\n' >"$TMP/conf"
start --config "$TMP/conf"
S="openssl s_client -connect 127.0.0.1:$port -servername localhost -CAfile $CA -quiet -ign_eof"
# The head arrives at once, the 10-byte body over 2 s: past the header
# deadline, within the body's; the answer is a 405 (POST /health).
{
	printf 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n'
	for b in 1 2 3 4 5; do sleep 0.4; printf 'ab'; done
	sleep 1
} | $S 2>/dev/null | head -n 1 | tr -d '\r' >"$TMP/slowbody"
check "a body slower than the header deadline but within its own is served" \
    'grep -q "^HTTP/1.1 405" "$TMP/slowbody"'
t0=$(date +%s%N)
{
	printf 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab'
	sleep 6
} | $S 2>/dev/null | head -n 1 | tr -d '\r' >"$TMP/nobody"
t1=$(date +%s%N)
check "a body that never completes gets 408 at the body deadline" \
    'grep -q "^HTTP/1.1 408" "$TMP/nobody" && [ $(( (t1 - t0) / 1000000 )) -ge 3500 ]'
stop

# --- drain deadline and a second signal -----------------------------------
printf 'drain_timeout_ms = 500\n' >"$TMP/conf"
start --config "$TMP/conf"
S="openssl s_client -connect 127.0.0.1:$port -servername localhost -CAfile $CA -quiet -ign_eof"
{ printf 'GET /health HTTP/1.1\r\n'; sleep 8; } | $S >/dev/null 2>&1 &
held=$!
sleep 0.5
kill -TERM "$pid"
check "SIGTERM with a request half sent: forced at the drain deadline" \
    'gone_within 30 && grep -q "drain deadline reached: closing 1 connection" "$TMP/err"'
wait "$pid"
check "... and the exit status is still 0" '[ $? -eq 0 ]'
pid=
kill "$held" 2>/dev/null
start
S="openssl s_client -connect 127.0.0.1:$port -servername localhost -CAfile $CA -quiet -ign_eof"
{ printf 'GET /health HTTP/1.1\r\n'; sleep 8; } | $S >/dev/null 2>&1 &
held=$!
sleep 0.5
kill -TERM "$pid"
sleep 0.2
check "one SIGTERM drains: the half-sent request is waited for" \
    'kill -0 "$pid"'
kill -TERM "$pid"
check "a second SIGTERM closes everything and exits at once" \
    'gone_within 10 && grep -q "second signal while draining" "$TMP/err"'
wait "$pid"
check "... with status 0" '[ $? -eq 0 ]'
pid=
kill "$held" 2>/dev/null

# --- a taken port -------------------------------------------------------
start
"$D" --state-dir "$TMP/state2" --listen "127.0.0.1:$port" >"$TMP/out2" \
    2>"$TMP/err2"
rc2=$?
check "a second daemon on the same port is refused, naming the cause" \
    '[ $rc2 -ne 0 ] && grep -q "Address already in use (another server" "$TMP/err2" || { echo "rc=$rc2"; cat "$TMP/err2"; false; }'
stop

# --- out of file descriptors ----------------------------------------------
# A descriptor limit 20 above what the daemon holds, and 100 idle
# connections: accept() fails with EMFILE. libuv retries at once, so a
# loop spun at 100 % (every time under ASan) until the loop began pausing
# its listener (listen.c); it must serve again once they are gone.
start
C="curl -sS --cacert $CA --tlsv1.3"
URL="https://localhost:$port"
nofile=$(prlimit --pid "$pid" --nofile --noheadings --output SOFT)
prlimit --pid "$pid" --nofile="$(($(ls "/proc/$pid/fd" | wc -l) + 20)):"
cat >"$TMP/hold.py" <<'EOF_PY'
import socket, sys, time
held = []
for _ in range(100):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        break
time.sleep(2)
EOF_PY
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
python3 "$TMP/hold.py" "$port" &
holder=$!
sleep 0.5
t0=$(cpu)
sleep 1.2
t1=$(cpu)
wait "$holder"
prlimit --pid "$pid" --nofile="$nofile:"
check "out of descriptors with 100 connections held: no busy loop (<0.6 s CPU in 1.2 s)" \
    '[ $((t1 - t0)) -lt 60 ] || { echo "ticks=$((t1 - t0))"; false; }'
check "... and once they are gone the daemon serves again" \
    '[ "$($C -o /dev/null -w "%{http_code}" "$URL/health")" = 200 ]'
stop

# --- the descriptor limit ---------------------------------------------------
# Shells and systemd start processes with a soft limit of 1024; max_conns
# defaults to 10000. The daemon raises the soft limit as far as max_conns
# needs, within the hard limit, and names what to raise when that is short.
nofile_start() {
	_lim=$1
	shift
	prlimit --nofile="$_lim" "$D" --state-dir "$TMP/state" \
	    --listen 127.0.0.1:0 "$@" >"$TMP/out" 2>"$TMP/err" &
	pid=$!
	port=$(daemon_port "$TMP/out")
}
soft() { prlimit --pid "$pid" --nofile --noheadings --output SOFT | tr -d ' '; }
nofile_start 512:2048
soft_now=$(soft)
check "a soft descriptor limit below max_conns is raised to the hard limit" \
    '[ "$soft_now" = 2048 ] || { echo "soft=$soft_now"; cat "$TMP/err"; false; }'
check "... and the shortfall is logged with what to raise" \
    'grep -q "the limit is 2048 but max_conns 10000 needs 10256.*raise LimitNOFILE" "$TMP/err"'
stop
printf 'max_conns = 500\nmax_conns_per_addr = 100\n' >"$TMP/conf"
nofile_start 512:2048 --config "$TMP/conf"
soft_now=$(soft)
check "with room in the hard limit it is raised only as far as max_conns needs" \
    '[ "$soft_now" = 756 ] && ! grep -q "raise LimitNOFILE" "$TMP/err" || { echo "soft=$soft_now"; cat "$TMP/err"; false; }'
stop

# --- core dumps -------------------------------------------------------------
# A crash must leave no copy of the daemon's memory (TLS keys, unwrapped
# keys, prompts) on disk: by default its core file size limit is 0 and it is
# not dumpable. The crash is real (SIGABRT, whose default is a core) where
# the kernel writes cores into the working folder (core_pattern without a
# pipe or a path); elsewhere that half is skipped, visibly. core_dumps = yes
# brings the system's behaviour back: the same crash then leaves a core,
# which shows the check can fail.
DABS=$(cd "$(dirname "$D")" && pwd)/$(basename "$D")
pattern=$(cat /proc/sys/kernel/core_pattern 2>/dev/null)
# AddressSanitizer never lets a process dump (disable_coredump, for its
# terabytes of shadow): under an ASan daemon only the limit is checked.
asan=
ldd "$DABS" 2>/dev/null | grep -q libasan && asan=1
core_start() {
	rm -rf "$TMP/cwd"
	mkdir -p "$TMP/cwd"
	(cd "$TMP/cwd" && ulimit -c "$(ulimit -Hc)" && exec "$DABS" \
	    --state-dir "$TMP/state" --listen 127.0.0.1:0 "$@") \
	    >"$TMP/out" 2>"$TMP/err" &
	pid=$!
	port=$(daemon_port "$TMP/out")
}
crash() {
	kill -ABRT "$pid"
	wait "$pid" 2>/dev/null
	pid=
}
core_limit() { sed -n 's/^Max core file size *\([^ ]*\) *\([^ ]*\).*/\1 \2/p' "/proc/$pid/limits"; }
core_start
code=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $(cat "$TMP/state/admin.key")" \
    "https://localhost:$port/api/hsm")
check "started from a folder without the sources, the daemon decides with its built-in policy" \
    '[ "$code" = 200 ] || { echo "code $code"; cat "$TMP/err"; false; }'
lim=$(core_limit)
check "by default the daemon's core file size limit is 0, soft and hard" \
    '[ "$lim" = "0 0" ] || { echo "limits: $lim"; false; }'
if [ -z "$asan" ] && [ "$(ulimit -Hc)" != 0 ] && [ -n "$pattern" ] &&
    [ "${pattern#|}" = "$pattern" ] && [ "${pattern#*/}" = "$pattern" ]; then
	crash
	check "... and a crash (SIGABRT) leaves no core file" \
	    '[ -z "$(ls "$TMP/cwd")" ] || { ls -l "$TMP/cwd"; false; }'
	printf 'core_dumps = yes\n' >"$TMP/conf"
	core_start --config "$TMP/conf"
	lim=$(core_limit)
	crash
	check "with core_dumps = yes the limit is left alone, a warning says what a core holds, and the same crash leaves one" \
	    '[ "$lim" != "0 0" ] && grep -q "core_dumps = yes: a crash writes" "$TMP/err" && ls "$TMP/cwd" | grep -q "^core" || { echo "limits: $lim"; ls -l "$TMP/cwd"; cat "$TMP/err"; false; }'
	rm -rf "$TMP/cwd"
else
	crash
	skip "a crash leaves no core file" \
	    "${asan:+an ASan build never dumps; }core_pattern '$pattern', hard core limit $(ulimit -Hc): no core this test can look for"
	skip "with core_dumps = yes a crash leaves a core" "as above"
fi

# --- certificates ---------------------------------------------------------
printf 'cert_file = %s/nope.pem\nkey_file = %s/nope.key\n' "$TMP" "$TMP" \
    >"$TMP/conf"
"$D" --state-dir "$TMP/state" --listen 127.0.0.1:0 --config "$TMP/conf" \
    >"$TMP/out3" 2>"$TMP/err3"
rc3=$?
check "named certificate files that do not exist: refused, none made" \
    '[ $rc3 -ne 0 ] && grep -q "nope.pem and key .*do not exist" "$TMP/err3" && [ ! -e "$TMP/nope.pem" ]'
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/rsa.key" \
    -out "$TMP/rsa.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost >/dev/null 2>&1
printf 'cert_file = %s/rsa.pem\nkey_file = %s/rsa.key\ntls12 = yes\n' \
    "$TMP" "$TMP" >"$TMP/conf"
start --config "$TMP/conf"
S="openssl s_client -connect 127.0.0.1:$port -servername localhost -CAfile $TMP/rsa.pem"
echo | $S -tls1_2 >"$TMP/s12" 2>&1
check "an RSA certificate serves TLS 1.2 with ECDHE-RSA AEAD" \
    'grep -q "^New, TLSv1.2, Cipher is ECDHE-RSA-.*\(GCM\|CHACHA20\)" "$TMP/s12" || { cat "$TMP/s12" "$TMP/err"; false; }'
check "... and TLS 1.3" \
    '[ "$(curl -sS --cacert "$TMP/rsa.pem" --tlsv1.3 -o /dev/null -w "%{http_code}" "https://localhost:$port/health")" = 200 ]'
stop
exit $status
