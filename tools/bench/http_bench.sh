#!/bin/sh
# tools/bench/http_bench.sh: strongroomd against nginx on this machine, in
# the same run, with the same certificate, TLS 1.3 only, answering the same
# small JSON body: keep-alive requests per second (goal >= 1.0x nginx) and
# new TLS 1.3 handshakes per second (goal >= 0.9x), with p50/p99 latency,
# on 1 and 2 loops (nginx: 1 and 2 workers). The client is h2load --h1.
# It reports figures; it fails only when a measurement could not be made.
# SR_HTTP_PART=tls or =auth runs only that half (both by default);
# SR_HTTP_PART=cpu prints, instead, the server's CPU per request by thread
# (loops, workers, audit writer) for /health, an API-key route and
# /oauth/token: where a figure's time goes. SR_HTTP_CONF adds lines to
# strongroomd's configuration.
set -u
PART=${SR_HTTP_PART:-all}

BUILD=${BUILD:-build}
DIR=$(pwd)/$BUILD/bench-http
D="$BUILD/bin/strongroomd"
REQS=${SR_HTTP_REQUESTS:-200000}
CONNS=${SR_HTTP_CONNS:-32}
NEWCONN=${SR_HTTP_NEWCONN:-500}
for tool in h2load nginx; do
	if ! command -v $tool >/dev/null 2>&1; then
		echo "http_bench: $tool missing (make deps installs it)" >&2
		exit 1
	fi
done
rm -rf "$DIR"
mkdir -p "$DIR"
spid=
npid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	[ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
	spid=
	npid=
}
trap 'cleanup; rm -rf "$DIR"' EXIT

start_strongroom() {
	printf 'loops = %s\nrate_global = 10000000\nrate_global_burst = 10000000\nrate_per_addr = 10000000\nrate_per_addr_burst = 10000000\nrate_per_key = 10000000\nrate_per_key_burst = 10000000\nmax_conns_per_addr = 10000\n' \
	    "$1" >"$DIR/strongroom.conf"
	# SR_HTTP_CONF: more configuration lines, e.g. "loop_spin_us = 0"
	# to compare a setting (docs/operations.md) against its default.
	printf '%s\n' "${SR_HTTP_CONF:-}" >>"$DIR/strongroom.conf"
	"$D" --config "$DIR/strongroom.conf" --state-dir "$DIR/state" \
	    --listen 127.0.0.1:0 >"$DIR/out" 2>"$DIR/err" &
	spid=$!
	i=0
	while [ $i -lt 100 ] && ! grep -qs '^strongroomd: try:' "$DIR/out"; do
		sleep 0.1
		i=$((i + 1))
	done
	sport=$(sed -n 's|^strongroomd: serving https://localhost:\([0-9]*\)/$|\1|p' "$DIR/out")
	[ -n "$sport" ] || { cat "$DIR/err" >&2; exit 1; }
}

# nginx with the same certificate and the same answer (body and the
# security headers strongroomd sends), TLS 1.3 only, access log off.
start_nginx_on() {
	nport=$2
	mkdir -p "$DIR/nginx/logs"
	cat >"$DIR/nginx/nginx.conf" <<EOF
worker_processes $1;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/logs/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	server_tokens off;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$nport ssl;
		ssl_certificate $DIR/state/tls/cert.pem;
		ssl_certificate_key $DIR/state/tls/key.pem;
		ssl_protocols TLSv1.3;
		location /health {
			default_type application/json;
			add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
			add_header X-Content-Type-Options nosniff always;
			add_header X-Frame-Options DENY always;
			add_header Referrer-Policy no-referrer always;
			add_header Cache-Control no-store always;
			add_header Content-Security-Policy "default-src 'none'" always;
			return 200 '{"status":"ok"}';
		}
	}
}
EOF
	nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -g 'daemon off;' \
	    2>"$DIR/nginx/logs/stderr" &
	npid=$!
	i=0
	while [ $i -lt 50 ] && kill -0 "$npid" 2>/dev/null &&
	    ! curl -sk "https://127.0.0.1:$nport/health" >/dev/null 2>&1; do
		sleep 0.1
		i=$((i + 1))
	done
}

# nginx on the first free port after strongroomd's (a port can be taken by
# another program, or by a client socket of an earlier run).
start_nginx() {
	for off in 1 2 3 4 5 6 7 8; do
		start_nginx_on "$1" $((sport + off))
		curl -sk "https://127.0.0.1:$nport/health" >/dev/null 2>&1 &&
		    return 0
		kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
		npid=
	done
	echo "http_bench: nginx did not start" >&2
	cat "$DIR/nginx/logs/stderr" "$DIR/nginx/logs/error.log" >&2
	return 1
}

# keepalive PORT [PATH [h2load options]]: "req/s p50_ms p99_ms"
keepalive() {
	_port=$1
	_path=${2:-/health}
	shift
	[ $# -gt 0 ] && shift
	: >"$DIR/lat" # h2load appends to its log file
	h2load --h1 -c "$CONNS" -n "$REQS" -t 1 --log-file="$DIR/lat" "$@" \
	    "https://127.0.0.1:$_port$_path" >"$DIR/h2" 2>&1 || return 1
	rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$DIR/h2")
	ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$DIR/h2")
	[ "${ok:-0}" -ge "$REQS" ] || { cat "$DIR/h2" >&2; return 1; }
	lat "$rps"
}

# p50 and p99 of the request durations h2load logged (microseconds).
lat() {
	cut -f3 "$DIR/lat" | sort -n | awk -v r="$1" '
	{ v[NR] = $1 }
	END { printf "%s %.2f %.2f\n", r, v[int(NR * 0.5)] / 1000,
	    v[int(NR * 0.99)] / 1000 }'
}

# newconn PORT: NEWCONN connections at once, one request each, three
# times: "handshakes/s p50_ms p99_ms" (h2load's req/s is connections/s here).
newconn() {
	: >"$DIR/lat.all"
	total=0
	for r in 1 2 3; do
		: >"$DIR/lat"
		h2load --h1 -c "$NEWCONN" -n "$NEWCONN" -t 1 \
		    --log-file="$DIR/lat" "https://127.0.0.1:$1/health" \
		    >"$DIR/h2" 2>&1 || return 1
		ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$DIR/h2")
		[ "${ok:-0}" -ge "$NEWCONN" ] || { cat "$DIR/h2" >&2; return 1; }
		rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$DIR/h2")
		total=$(echo "$total $rps" | awk '{ print $1 + $2 }')
		cat "$DIR/lat" >>"$DIR/lat.all"
	done
	mv "$DIR/lat.all" "$DIR/lat"
	lat "$(echo "$total" | awk '{ printf "%.0f", $1 / 3 }')"
}

# Keep-alive: three runs of each server, alternated; the pair whose ratio
# is the median (with three busy threads on a small machine, how the
# scheduler shares the cores moves a single pair by several per cent).
paired() {
	: >"$DIR/pairs"
	for _r in 1 2 3; do
		_s=$(keepalive "$sport") || return 1
		_n=$(keepalive "$nport") || return 1
		echo "$_s $_n" >>"$DIR/pairs"
	done
	awk '{ print $1 / $4, $0 }' "$DIR/pairs" | sort -n | sed -n 2p |
	    cut -d' ' -f2-
}

status=0
loops_list=
if [ "$PART" != cpu ]; then
	echo "client: h2load --h1 on this machine; keep-alive: $CONNS" \
	    "connections, $REQS requests, median of 3 alternated pairs; new" \
	    "connections: $NEWCONN at once, one request each, x3"
	printf '%-22s %5s %12s %8s %8s %12s %8s %8s %7s\n' test loops \
	    strongroom p50ms p99ms nginx p50ms p99ms ratio
	[ "$PART" = auth ] || loops_list="1 2"
fi
for loops in $loops_list; do
	start_strongroom $loops
	start_nginx $loops
	for t in keepalive newconn; do
		if [ $t = keepalive ]; then
			sn=$(paired) || { status=1; continue; }
		else
			s=$($t "$sport") || { status=1; continue; }
			n=$($t "$nport") || { status=1; continue; }
			sn="$s $n"
		fi
		echo "$t $loops $sn" | tee -a "$DIR/raw" | awk '{
		    printf "%-22s %5s %12.0f %8.2f %8.2f %12.0f %8.2f %8.2f %7.2f\n",
		    ($1 == "keepalive" ? "keep-alive req/s" : "new TLS 1.3 conn/s"),
		    $2, $3, $4, $5, $6, $7, $8, $3 / $6 }' | tee -a "$DIR/table"
	done
	cleanup
done
[ -z "$loops_list" ] ||
    echo "goals: keep-alive >= 1.00x nginx, new handshakes >= 0.90x nginx"

# Authenticated requests (the access issue's figures), 2 loops: an API key
# verified from the keystore's cache, the policy, and a durable audit line
# per request, against nginx's static answer; and JWTs issued by
# /oauth/token (client credentials, HSM-signed) against raw C_Sign ECDSA
# P-256 signatures on the same SoftHSM2 (p11-bench's anchor column).
# new_app NAME [SCOPES-JSON]: "id key" of a new app bound to 127.0.0.1
# and its first API key, made with the admin key.
new_app() {
	_id=$($CURL -H "Authorization: Bearer $AK" \
	    -d "{\"name\":\"$1\",\"cidrs\":[\"127.0.0.1/32\"],\"scopes\":${2:-[]}}" \
	    "https://localhost:$sport/api/apps" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
	[ -n "$_id" ] || return 1
	_key=$($CURL -H "Authorization: Bearer $AK" -X POST \
	    "https://localhost:$sport/api/apps/$_id/keys" |
	    sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
	echo "$_id $_key"
}

auth_figures() {
	start_strongroom 2
	start_nginx 2
	AK=$(cat "$DIR/state/admin.key")
	CURL="curl -sS --cacert $DIR/state/tls/cert.pem --resolve localhost:$sport:127.0.0.1"
	set -- $(new_app bench) "" ""
	app=$1 appkey=$2
	printf 'grant_type=client_credentials&client_id=%s&client_secret=%s' \
	    "$app" "$appkey" >"$DIR/token.form"
	if [ -z "$app" ] || [ -z "$appkey" ]; then
		echo "http_bench: could not make the benchmark's app" >&2
		status=1
	else
		s=$(keepalive "$sport" "/api/apps/$app" -H "Authorization: Bearer $AK") &&
		    n=$(keepalive "$nport") &&
		    echo "$s $n" | awk '{ printf "authenticated req/s (API key, cache hit, audit on): %.0f (p50 %.2f ms, p99 %.2f ms) vs nginx static %.0f: %.2fx (goal >= 1.00x)\n", $1, $2, $3, $4, $1 / $4 }' ||
		    status=1
		# A service's JWT on an inference route: its signature is
		# checked once, then remembered (docs/access.md).
		set -- $(new_app bench-svc '["inference"]') "" ""
		svc=$1 svckey=$2
		jwt=$($CURL -d "grant_type=client_credentials&client_id=$svc&client_secret=$svckey&scope=inference" \
		    "https://localhost:$sport/oauth/token" |
		    sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
		# Against the same route with the app's API key: what a
		# token costs beyond a key once its signature is remembered.
		s=$(keepalive "$sport" /v1/models -H "Authorization: Bearer $jwt") &&
		    k=$(keepalive "$sport" /v1/models -H "Authorization: Bearer $svckey") &&
		    echo "$s $k" | awk '{ printf "JWT-authenticated req/s (GET /v1/models, signature remembered, audit on): %.0f (p50 %.2f ms, p99 %.2f ms) vs the same route with an API key %.0f: %.2fx\n", $1, $2, $3, $4, $1 / $4 }' ||
		    status=1
		REQS_SAVED=$REQS
		REQS=${SR_JWT_REQUESTS:-5000}
		j=$(keepalive "$sport" /oauth/token -d "$DIR/token.form" \
		    -H "Content-Type: application/x-www-form-urlencoded") || status=1
		REQS=$REQS_SAVED
		raw=$(SR_BENCH_SECONDS=${SR_BENCH_SECONDS:-1.2} "$BUILD/bin/p11-bench" |
		    awk '$1 == "ecdsa-p256" && $2 == 2 { print $4 }')
		[ -n "${j:-}" ] && [ -n "$raw" ] && echo "$j $raw" | awk '{
		    printf "JWTs issued/s (POST /oauth/token, HSM ES256, audit on): %.0f (p50 %.2f ms, p99 %.2f ms) vs raw C_Sign ECDSA P-256 %d/s (2 threads): %.2fx (goal >= 0.90x)\n",
		    $1, $2, $3, $4, $1 / $4 }'
	fi
	cleanup
}
# thread_ticks: "kind user system" clock ticks of strongroomd's threads,
# summed by kind (sr-loop0 and sr-loop1 are both sr-loop).
thread_ticks() {
	for _t in /proc/"$spid"/task/*; do
		echo "$(cat "$_t/comm") $(cut -d')' -f2 "$_t/stat" |
		    awk '{ print $12, $13 }')"
	done | awk '{ sub(/[0-9]+$/, "", $1); u[$1] += $2; k[$1] += $3 }
	    END { for (t in u) print t, u[t], k[t] }' | sort
}

# cpu_of LABEL PATH [h2load options]: one keep-alive run; the CPU each
# kind of thread spent per request in it, in microseconds.
cpu_of() {
	_label=$1
	_path=$2
	shift 2
	thread_ticks >"$DIR/t0"
	_r=$(keepalive "$sport" "$_path" "$@") || return 1
	thread_ticks >"$DIR/t1"
	join "$DIR/t0" "$DIR/t1" | awk -v l="$_label" -v r="${_r%% *}" \
	    -v n="$REQS" -v hz="$(getconf CLK_TCK)" '
	    function us(t) { return t * 1e6 / hz / n }
	    { u = $4 - $2; k = $5 - $3; if (u + k == 0) next
	      printf "%-34s %-16s %7.1f %7.1f %7.1f\n", l, $1, us(u), us(k),
	          us(u + k); tu += u; tk += k }
	    END { printf "%-34s %-16s %7.1f %7.1f %7.1f   (%.0f req/s)\n", l,
	          "all", us(tu), us(tk), us(tu + tk), r }'
}

cpu_figures() {
	start_strongroom 2
	AK=$(cat "$DIR/state/admin.key")
	CURL="curl -sS --cacert $DIR/state/tls/cert.pem --resolve localhost:$sport:127.0.0.1"
	set -- $(new_app bench) "" ""
	[ -n "$1" ] && [ -n "$2" ] || {
		echo "http_bench: could not make the benchmark's app" >&2
		return 1
	}
	printf 'grant_type=client_credentials&client_id=%s&client_secret=%s' \
	    "$1" "$2" >"$DIR/token.form"
	echo "server CPU per request by thread, us ($REQS requests," \
	    "$CONNS connections, 2 loops; h2load not counted)"
	printf '%-34s %-16s %7s %7s %7s\n' request thread user kernel total
	cpu_of "GET /health" /health &&
	    cpu_of "GET /api/apps/ID (API key, audit)" "/api/apps/$1" \
	        -H "Authorization: Bearer $AK" || return 1
	REQS=${SR_JWT_REQUESTS:-20000}
	cpu_of "POST /oauth/token (audit)" /oauth/token -d "$DIR/token.form" \
	    -H "Content-Type: application/x-www-form-urlencoded"
}

if [ "$PART" = cpu ]; then
	cpu_figures || status=1
	cleanup
	exit $status
fi
[ "$PART" = tls ] || auth_figures
[ "$PART" = auth ] && exit $status
# The anchor DESIGN holds the handshake path to: what mbedTLS's own
# arithmetic allows (with the export strongroomd makes); the daemon signs
# with libcrypto (appliance/tls_ecdsa.c), so it can pass that ceiling.
"$BUILD/bin/tls-ceiling" | tee "$DIR/ceiling"
ceil=$(sed -n 's/^mbedTLS arithmetic: \([0-9]*\) .*/\1/p' "$DIR/ceiling")
for l in 1 2; do
	h=$(sed -n "s/^new TLS 1.3 conn\/s *$l *\([0-9]*\) .*/\1/p" "$DIR/table")
	[ -n "$h" ] && [ -n "$ceil" ] && echo "$h $ceil $l" | awk '{
	    printf "new handshakes on %d loop(s): %.2f of the mbedTLS ceiling (%d/s x %d; the client shares the cores)\n",
	    $3, $1 / ($2 * $3), $2, $3 }'
done
exit $status
