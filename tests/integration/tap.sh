# tests/integration/tap.sh: what the shell integration tests share. Sourced,
# never run: `check WHAT EXPR` prints a TAP line ("ok N - WHAT" or
# "not ok N - WHAT") for a shell expression and remembers a failure in
# $status, which the test exits with. daemon_port OUT waits for strongroomd's
# banner in the file OUT and prints the port it serves on ("" if it never
# came). start [flags] runs the daemon $D with state in $TMP/state on a free
# loopback port (output in $TMP/out and $TMP/err; sets $pid and $port), and
# stop ends it with SIGTERM and waits.
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
