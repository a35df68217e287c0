#!/bin/sh
# tools/bench/serve_bench.sh: inference served over HTTPS against the
# engine alone, in the same run, on the tiny CPU model: requests/s,
# generated tokens/s and TTFT p50/p99 at concurrency 1, 8 and 32, first
# through strongroomd (TLS 1.3, API key, policy, audit, SSE; the response
# cache off so every request runs), then the scheduler in-process with the
# same request mix (serve-bench). The ratio of the tokens/s is what the
# server path costs. It fails only when a measurement could not be made.
set -u

BUILD=${BUILD:-build}
DIR=$(pwd)/$BUILD/bench-serve
MAXTOK=${SR_SERVE_MAX_TOKENS:-64}
rm -rf "$DIR"
mkdir -p "$DIR"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$DIR"' EXIT
printf 'serve_cache_ttl_s = 0\nrate_per_addr = 100000\nrate_per_addr_burst = 100000\nserve_key_tokens_per_s = 10000000\nserve_key_tokens_burst = 10000000\n' \
    >"$DIR/conf"
"$BUILD/bin/strongroomd" --config "$DIR/conf" --state-dir "$DIR/state" \
    --listen 127.0.0.1:0 >"$DIR/out" 2>"$DIR/err" &
pid=$!
i=0
while [ $i -lt 100 ] && ! grep -q '^strongroomd: try:' "$DIR/out"; do
	sleep 0.1
	i=$((i + 1))
done
port=$(sed -n 's|^strongroomd: serving https://localhost:\([0-9]*\)/$|\1|p' "$DIR/out")
if [ -z "$port" ]; then
	echo "serve_bench: the daemon did not start" >&2
	cat "$DIR/err" >&2
	exit 1
fi
NODE_EXTRA_CA_CERTS="$DIR/state/tls/cert.pem" SR_URL="https://localhost:$port" \
    SR_KEY=$(cat "$DIR/state/admin.key") \
    node tools/bench/serve_bench.cjs "$MAXTOK" || exit 1
kill "$pid" && wait "$pid" 2>/dev/null
pid=
"$BUILD/bin/serve-bench" tests/fixtures/tiny-qwen2 "$MAXTOK" || exit 1
