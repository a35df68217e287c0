# tests/integration/tap.sh: what the shell integration tests share. Sourced,
# never run: `check WHAT EXPR` prints a TAP line ("ok N - WHAT" or
# "not ok N - WHAT") for a shell expression and remembers a failure in
# $status, which the test exits with. daemon_port OUT waits for strongroomd's
# banner in the file OUT and prints the port it serves on ("" if it never
# came). start [flags] runs the daemon $D with state in $TMP/state on a free
# loopback port (output in $TMP/out and $TMP/err; sets $pid and $port), and
# stop ends it with SIGTERM and waits. no_secret_in_memory WHAT < SECRETS
# checks that none of SECRETS is in the running daemon's memory.
n=0
status=0

# skip WHAT WHY: a check this machine cannot make, as TAP's "# SKIP";
# tests/run.sh shows it and does not count it as passed.
skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

check() {
	n=$((n + 1))
	if eval "$2"; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		status=1
	fi
}

daemon_port() {
	_i=0
	# Up to 60 s (a first start under ASan on a loaded 2-core machine
	# takes more than 10), and not a moment longer than the daemon lives.
	while [ $_i -lt 600 ] && ! grep -q '^strongroomd: try:' "$1" 2>/dev/null
	do
		if [ -n "${pid:-}" ] && ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	sed -n 's|^strongroomd: serving https://localhost:\([0-9]*\)/$|\1|p' "$1"
}

stop() {
	[ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	pid=
}

start() {
	"$D" --state-dir "$TMP/state" --listen 127.0.0.1:0 "$@" \
	    >"$TMP/out" 2>"$TMP/err" &
	pid=$!
	port=$(daemon_port "$TMP/out")
}

# no_secret_in_memory WHAT < SECRETS: the check WHAT, that none of the
# secrets (one a line) is anywhere in the writable memory of the daemon
# $pid (tests/integration/memscan.py reads /proc/PID/mem: root, as make
# test runs; skipped, visibly, where it cannot). Its findings, secrets
# masked, are printed when it fails.
no_secret_in_memory() {
	python3 "$(dirname "$0")/../memscan.py" "$pid" >"$TMP/memscan" 2>&1
	memscan_rc=$?
	if [ $memscan_rc -eq 2 ]; then
		skip "$1" "its memory cannot be read here ($(grep -v "^memscan: skipped" "$TMP/memscan" | head -n 1))"
	else
		check "$1" '[ $memscan_rc -eq 0 ] || { cat "$TMP/memscan"; false; }'
	fi
}
