#!/bin/sh
# tests/integration/appliance/test_serve.sh: inference served by strongroomd
# over real TLS on the tiny-qwen2 model that ships with the source: the
# official `openai` npm client (installed into $BUILD/node_modules on first
# use) with an app's API key (serve_openai.cjs), curl's view of the SSE
# stream, abandoned streams cancelled (metrics and audit lines), the
# per-app response cache (hits counted, never crossing apps), loading a
# second model and switching the default under load with no request lost,
# a model replaced under its name answering itself (never from the cache),
# OpenAI's forms of n, best_of, stream_options and model, an empty prompt,
# a second daemon with a queue of one answering 429 with Retry-After, and
# a third whose KV budget holds less than the model's context serving
# requests without max_tokens.
# Every expectation comes from the engine alone (sr-generate).
set -u
BUILD=${BUILD:-build}
TMP=${SR_TEST_TMP:-/tmp}/serve-$$
D=${SR_DAEMON:-$BUILD/bin/strongroomd}
GEN="$BUILD/bin/sr-generate --model tests/fixtures/tiny-qwen2 --json --temperature 0"
pid=
pid2=
. "$(dirname "$0")/../tap.sh"

stop() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$pid2" ] && kill "$pid2" 2>/dev/null && wait "$pid2" 2>/dev/null
	pid=
	pid2=
}
mkdir -p "$TMP"
trap 'stop; rm -rf "$TMP"' EXIT
trap 'exit 1' INT TERM

# The official client, from the npm registry, once per build folder.
if [ ! -f "$BUILD/node_modules/openai/package.json" ]; then
	npm install --prefix "$BUILD" --no-audit --no-fund --no-save openai \
	    >"$TMP/npm.log" 2>&1 || cat "$TMP/npm.log"
fi

"$D" --state-dir "$TMP/state" --listen 127.0.0.1:0 >"$TMP/out" 2>"$TMP/err" &
pid=$!
port=$(daemon_port "$TMP/out")
CA="$TMP/state/tls/cert.pem"
C="curl -sS --cacert $CA"
U="https://localhost:$port"
K=$(cat "$TMP/state/admin.key" 2>/dev/null)
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
metric() {
	$C "$U/metrics" | sed -n "s/^strongroom_inference_$1 //p" | head -n 1
}
app_key() { # NAME: an app allowed inference from here, and its key
	a=$($C -H "Authorization: Bearer $K" -d "{\"name\":\"$1\",\"scopes\":[\"inference\"],\"cidrs\":[\"127.0.0.1/32\"]}" "$U/api/apps" | json '["id"]')
	$C -H "Authorization: Bearer $K" -X POST "$U/api/apps/$a/keys" | json '["key"]'
}

check "the daemon serves the embedded model and /ready says so" \
    '$C "$U/ready" | grep -q "\"models\":\"ready\""'
AK=$(app_key svc-a)
BK=$(app_key svc-b)

# The engine's own answers: one chat, one completion, 64 distinct prompts.
python3 - "$TMP/expect.json" $GEN <<'PY'
import json, subprocess, sys
out, gen = sys.argv[1], sys.argv[2:]
def run(kind, text, n):
    r = json.loads(subprocess.check_output(gen + ["--" + kind, text, "--max-tokens", str(n)]))
    r.update(input=text, max_tokens=n, chat=(kind == "chat"))
    return r
e = {"chat": run("chat", "What does the strongroom keep?", 24),
     "comp": run("prompt", "The appliance keeps", 16),
     "many": [run("chat" if i % 2 else "prompt", "Request %d: tell me about key %d" % (i, i * 7), 6 + i % 11) for i in range(64)]}
json.dump(e, open(out, "w"))
PY
check "the engine computed the expectations (sr-generate)" \
    '[ "$(json "[\"many\"].__len__()" <"$TMP/expect.json")" = 64 ]'

NODE_EXTRA_CA_CERTS="$CA" SR_OPENAI_MODULE="$BUILD/node_modules/openai" \
    SR_URL="$U" SR_KEY="$AK" SR_EXPECT="$TMP/expect.json" \
    node "$(dirname "$0")/serve_openai.cjs" >"$TMP/node.log" 2>&1
node_rc=$?
cat "$TMP/node.log"
n=$((n + $(grep -c '^ok \|^not ok ' "$TMP/node.log")))
check "the openai client's run ended cleanly" '[ $node_rc -eq 0 ]'

# curl sees the raw SSE: chunk objects, a finish_reason, [DONE].
$C -N -H "Authorization: Bearer $AK" -d '{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0.5,"stream":true}' \
    "$U/v1/chat/completions" -D "$TMP/sse.head" >"$TMP/sse"
check "curl: text/event-stream of chat.completion.chunk ending in [DONE]" \
    'grep -qi "^content-type: text/event-stream" "$TMP/sse.head" &&
     grep -q "^data: {.*\"object\":\"chat.completion.chunk\"" "$TMP/sse" &&
     grep -q "\"finish_reason\":\"length\"" "$TMP/sse" &&
     [ "$(grep "^data: " "$TMP/sse" | tail -n 1)" = "data: [DONE]" ]'

# HTTP/1.0 has no chunked coding: the stream is sent bare and ends with
# the close, even when the client asks for keep-alive; a greedy request
# twice, so the second comes from the answer cache.
hb=$(metric 'response_cache_hits_total{model="tiny-qwen2"}')
for i in 1 2; do
	$C -N --http1.0 -H "Connection: keep-alive" -H "Authorization: Bearer $AK" \
	    -d '{"messages":[{"role":"user","content":"one point oh"}],"max_tokens":4,"temperature":0,"stream":true}' \
	    "$U/v1/chat/completions" -D "$TMP/sse10.head$i" >"$TMP/sse10.$i"
done
sse10_ok() {
	grep -qi "^connection: close" "$TMP/sse10.head$1" &&
	    ! grep -qi "^transfer-encoding\|^content-length" "$TMP/sse10.head$1" &&
	    grep -q '^data: {.*"object":"chat.completion.chunk"' "$TMP/sse10.$1" &&
	    ! grep -qv '^data: \|^\r\?$' "$TMP/sse10.$1" &&
	    [ "$(grep '^data: ' "$TMP/sse10.$1" | tail -n 1)" = "data: [DONE]" ]
}
check "HTTP/1.0 stream and its cached replay: bare SSE, Connection: close, no chunk sizes" \
    'sse10_ok 1 && sse10_ok 2 &&
     [ "$(metric "response_cache_hits_total{model=\"tiny-qwen2\"}")" -gt "$hb" ]'

sleep 1
check "abandoned streams were cancelled (abort counted, none running)" \
    '[ "$(metric "requests_finished_total{model=\"tiny-qwen2\",reason=\"abort\"}")" -ge 1 ] &&
     [ "$(metric "requests_running{model=\"tiny-qwen2\"}")" = 0 ] &&
     [ "$(metric "kv_cache_used_bytes{model=\"tiny-qwen2\"}")" = 0 ]'
AUD="$TMP/state/audit"
check "a cancelled stream is audited as 499 with the tokens it made" \
    'grep "\"status\":\"499\"" "$AUD"/audit-*.jsonl | grep -q "\"input_tokens\":"'

# The response cache: same app again is a hit; the other app never is.
REQ='{"messages":[{"role":"user","content":"cache me"}],"max_tokens":12,"temperature":0}'
h0=$(metric 'response_cache_hits_total{model="tiny-qwen2"}')
$C -H "Authorization: Bearer $AK" -d "$REQ" "$U/v1/chat/completions" >"$TMP/c1"
$C -H "Authorization: Bearer $AK" -d "$REQ" "$U/v1/chat/completions" >"$TMP/c2"
h1=$(metric 'response_cache_hits_total{model="tiny-qwen2"}')
$C -H "Authorization: Bearer $BK" -d "$REQ" "$U/v1/chat/completions" >"$TMP/c3"
h2=$(metric 'response_cache_hits_total{model="tiny-qwen2"}')
check "temperature 0 again from the same app: a cache hit, same answer" \
    '[ $((h1 - h0)) -eq 1 ] && [ "$(json "[\"choices\"][0][\"message\"]" <"$TMP/c1")" = "$(json "[\"choices\"][0][\"message\"]" <"$TMP/c2")" ]'
check "the same request from another app is not served from the cache" \
    '[ "$h2" = "$h1" ] && [ "$(json "[\"choices\"][0][\"message\"]" <"$TMP/c3")" = "$(json "[\"choices\"][0][\"message\"]" <"$TMP/c1")" ]'
check "hits are audited (resource #cache, tokens), all of them app A's" \
    '[ "$(grep "\"resource\":\"/v1/chat/completions#cache\"" "$AUD"/audit-*.jsonl | grep -c "\"key\":\"$(echo "$AK" | cut -c5-16)\"")" -ge 1 ] &&
     ! grep "#cache" "$AUD"/audit-*.jsonl | grep -q "\"key\":\"$(echo "$BK" | cut -c5-16)\"" &&
     grep "#cache" "$AUD"/audit-*.jsonl | grep -q "\"output_tokens\":"'
# Two stop lists that once joined into one key are two entries.
SA='{"prompt":"The appliance keeps","max_tokens":8,"temperature":0,"stop":["zz","ts"]}'
SB='{"prompt":"The appliance keeps","max_tokens":8,"temperature":0,"stop":["zz\u0001ts"]}'
$C -H "Authorization: Bearer $AK" -d "$SA" -o /dev/null "$U/v1/completions"
h3=$(metric 'response_cache_hits_total{model="tiny-qwen2"}')
$C -H "Authorization: Bearer $AK" -d "$SB" -o /dev/null "$U/v1/completions"
h4=$(metric 'response_cache_hits_total{model="tiny-qwen2"}')
$C -H "Authorization: Bearer $AK" -d "$SB" -o /dev/null "$U/v1/completions"
h5=$(metric 'response_cache_hits_total{model="tiny-qwen2"}')
check "stop lists [zz, ts] and [zz\\u0001ts] do not share a cache entry" \
    '[ "$h4" = "$h3" ] && [ $((h5 - h4)) -eq 1 ]'
# OpenAI's forms: n and best_of 1.0 are 1; stream_options only with a
# stream; an empty prompt is refused by name.
code() { # BODY: the status of a completion; the body in $TMP/code.body
	$C -o "$TMP/code.body" -w "%{http_code}" \
	    -H "Authorization: Bearer $AK" -d "$1" "$U/v1/completions"
}
check "n 1.0 and best_of 1.0 are served (200)" \
    '[ "$(code "{\"prompt\":\"x\",\"max_tokens\":2,\"n\":1.0,\"best_of\":1.0}")" = 200 ]'
check "stream_options without stream: 400 naming stream_options" \
    '[ "$(code "{\"prompt\":\"x\",\"max_tokens\":2,\"stream_options\":{\"include_usage\":true}}")" = 400 ] &&
     grep -q "\"param\":\"stream_options\"" "$TMP/code.body"'
check "an empty prompt: 400 invalid_request naming prompt" \
    '[ "$(code "{\"prompt\":\"\",\"max_tokens\":2}")" = 400 ] &&
     grep -q "\"param\":\"prompt\"" "$TMP/code.body"'
check "every inference call has its usage line with tokens and duration" \
    'grep "\"action\":\"inference.chat\"" "$AUD"/audit-*.jsonl | grep "\"status\":\"200\"" | grep -q "\"input_tokens\":[0-9]*,\"output_tokens\":[0-9]*"'
# A completion's admission is on disk before its work starts; a listing
# only reads and gets its one usage line before the answer.
lm0=$(cat "$AUD"/audit-*.jsonl | grep -c "\"action\":\"inference.models\"")
$C -H "Authorization: Bearer $AK" -o /dev/null "$U/v1/models"
lm1=$(cat "$AUD"/audit-*.jsonl | grep -c "\"action\":\"inference.models\"")
check "a chat call has its admission line; GET /v1/models one line (200)" \
    'grep "\"action\":\"inference.chat\"" "$AUD"/audit-*.jsonl | grep -q "\"status\":\"allowed\"" &&
     [ $((lm1 - lm0)) -eq 1 ] &&
     tail -n 3 "$AUD"/audit-*.jsonl | grep "\"action\":\"inference.models\"" | grep -q "\"status\":\"200\"" &&
     ! grep "\"action\":\"inference.models\"" "$AUD"/audit-*.jsonl | grep -q "\"status\":\"allowed\""'

# Models: load a second one, switch the default and unload the first
# while requests run on it; none is lost.
check "admin loads tiny-llama (201) and both are listed" \
    '$C -H "Authorization: Bearer $K" -d "{\"name\":\"tiny-llama\",\"path\":\"tests/fixtures/tiny-llama\"}" "$U/api/models" | grep -q "\"name\":\"tiny-llama\"" &&
     [ "$($C -H "Authorization: Bearer $AK" "$U/v1/models" | json "[\"data\"].__len__()")" = 2 ]'
check "an app may not administer models (403)" \
    '[ "$($C -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $AK" -X DELETE "$U/api/models/tiny-qwen2")" = 403 ]'
for i in 1 2 3 4 5 6 7 8; do
	$C -H "Authorization: Bearer $AK" -o "$TMP/sw$i" -w "%{http_code}" \
	    -d '{"prompt":"switch '$i'","max_tokens":300,"temperature":0.8}' \
	    "$U/v1/completions" >"$TMP/sw$i.code" &
done
sleep 0.3
$C -H "Authorization: Bearer $K" -X POST "$U/api/models/tiny-llama/default" >/dev/null
$C -H "Authorization: Bearer $K" -X DELETE "$U/api/models/tiny-qwen2" >"$TMP/del"
wait_all() { for i in 1 2 3 4 5 6 7 8; do while [ ! -s "$TMP/sw$i.code" ]; do sleep 0.1; done; done; }
wait_all
check "switching and unloading under load loses no request (8 x 200)" \
    '[ "$(cat "$TMP"/sw*.code | tr -d "\n")" = 200200200200200200200200 ] &&
     [ "$(grep -l "\"finish_reason\"" "$TMP"/sw[0-9] | wc -l)" = 8 ]'
check "then only tiny-llama is listed, the default, and tiny-qwen2 is 404" \
    '[ "$($C -H "Authorization: Bearer $AK" "$U/v1/models" | json "[\"data\"][0][\"id\"]")" = tiny-llama ] &&
     $C -H "Authorization: Bearer $AK" -d "{\"prompt\":\"x\",\"max_tokens\":2}" "$U/v1/completions" | grep -q "\"model\":\"tiny-llama\"" &&
     [ "$($C -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $AK" -d "{\"model\":\"tiny-qwen2\",\"prompt\":\"x\"}" "$U/v1/completions")" = 404 ]'
$C "$U/metrics" >"$TMP/metrics"
if command -v promtool >/dev/null 2>&1; then
	check "promtool check metrics finds no problem" \
	    'promtool check metrics <"$TMP/metrics" >"$TMP/promtool" 2>&1'
	cat "$TMP/promtool"
fi
check "per-model metrics: TTFT, inter-token, e2e, batch size, tokens" \
    'grep -q "^strongroom_inference_time_to_first_token_seconds_bucket{model=\"tiny-llama\",le=\"+Inf\"}" "$TMP/metrics" &&
     grep -q "^strongroom_inference_batch_size_count" "$TMP/metrics" &&
     grep -q "^strongroom_inference_generation_tokens_total{model=\"tiny-llama\"} [1-9]" "$TMP/metrics"'

# A model replaced under its name (a copy of tiny-llama with another
# rope_theta) answers itself, never from its predecessor's cache entries.
cp -r tests/fixtures/tiny-llama "$TMP/rope"
python3 - "$TMP/rope/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.setdefault("rope_parameters", {})["rope_theta"] = 1000.0
c["rope_theta"] = 1000.0
json.dump(c, open(sys.argv[1], "w"))
PY
gen_text() { # MODEL: its greedy 12 tokens after "The appliance keeps"
	"$BUILD/bin/sr-generate" --model "$1" --json --temperature 0 \
	    --prompt "The appliance keeps" --max-tokens 12 2>/dev/null |
	    json '["text"]'
}
old=$(gen_text tests/fixtures/tiny-llama)
new=$(gen_text "$TMP/rope")
RP='{"model":"tiny-llama","prompt":"The appliance keeps","max_tokens":12,"temperature":0}'
$C -H "Authorization: Bearer $AK" -d "$RP" "$U/v1/completions" >"$TMP/rp1"
$C -H "Authorization: Bearer $AK" -d "$RP" "$U/v1/completions" >"$TMP/rp2"
$C -H "Authorization: Bearer $K" -X DELETE "$U/api/models/tiny-llama" >/dev/null
check "no model loaded: model \"\" is 503 model_not_ready, as when omitted" \
    '[ "$(code "{\"model\":\"\",\"prompt\":\"x\",\"max_tokens\":2}")" = 503 ] &&
     grep -q "\"code\":\"model_not_ready\"" "$TMP/code.body" &&
     [ "$(code "{\"prompt\":\"x\",\"max_tokens\":2}")" = 503 ]'
$C -H "Authorization: Bearer $K" -d "{\"name\":\"tiny-llama\",\"path\":\"$TMP/rope\"}" \
    "$U/api/models" >"$TMP/reload"
$C -H "Authorization: Bearer $AK" -d "$RP" "$U/v1/completions" >"$TMP/rp3"
check "a model replaced under its name answers itself, not from the cache" \
    '[ -n "$old" ] && [ -n "$new" ] && [ "$old" != "$new" ] &&
     [ "$(json "[\"choices\"][0][\"text\"]" <"$TMP/rp1")" = "$old" ] &&
     [ "$(json "[\"choices\"][0][\"text\"]" <"$TMP/rp2")" = "$old" ] &&
     grep -q "\"name\":\"tiny-llama\"" "$TMP/reload" &&
     [ "$(json "[\"choices\"][0][\"text\"]" <"$TMP/rp3")" = "$new" ]'
# What stays in memory: after these requests end, no prompt's text is
# left anywhere in the daemon's writable memory (the request's JSON, the
# joined messages, the tokenizer's cache and scratch, the sequence, the
# answer's documents are wiped when freed; docs/operations.md).
MEMQ='{"messages":[{"role":"user","content":"patient zebracanary quokkanote history"}],"max_tokens":8,"temperature":0.7}'
$C -H "Authorization: Bearer $AK" -d "$MEMQ" -o /dev/null "$U/v1/chat/completions"
$C -N -H "Authorization: Bearer $AK" -d '{"stream":true,"messages":[{"role":"user","content":"second walruscanary prompt"}],"max_tokens":8,"temperature":0.7}' -o /dev/null "$U/v1/chat/completions"
$C -H "Authorization: Bearer $AK" -d '{"prompt":"third ibexcanary text","max_tokens":4,"temperature":0.7}' -o /dev/null "$U/v1/completions"
sleep 0.5
printf '%s\n' zebracanary quokkanote walruscanary ibexcanary |
    no_secret_in_memory "no prompt text stays in the daemon's memory after the requests"
stop
check "the audit log with every inference line verifies" \
    '"$BUILD/bin/sr-audit" verify --dir "$AUD" >/dev/null'
check "no API key in the audit log or the daemon's output" \
    '! grep -q -e "$K" -e "$AK" -e "$BK" "$AUD"/* "$TMP/out" "$TMP/err"'

# A queue of one and one sequence at a time: the rest get 429.
cat >"$TMP/small.conf" <<EOF
serve_queue_max = 1
serve_max_batch = 1
serve_batch_wait_ms = 0
EOF
"$D" --config "$TMP/small.conf" --state-dir "$TMP/state2" \
    --listen 127.0.0.1:0 >"$TMP/out2" 2>"$TMP/err2" &
pid2=$!
port2=$(daemon_port "$TMP/out2")
K2=$(cat "$TMP/state2/admin.key" 2>/dev/null)
for i in 1 2 3 4 5 6 7 8 9 10; do
	curl -sS --cacert "$TMP/state2/tls/cert.pem" -D "$TMP/q$i.head" \
	    -o "$TMP/q$i" -H "Authorization: Bearer $K2" \
	    -d '{"prompt":"queue '$i'","max_tokens":400,"temperature":0.7}' \
	    "https://localhost:$port2/v1/completions" &
done
wait_q() { for i in 1 2 3 4 5 6 7 8 9 10; do while [ ! -s "$TMP/q$i" ]; do sleep 0.1; done; done; }
wait_q
check "queue full: 429 with Retry-After and an OpenAI error; the rest 200" \
    '[ "$(grep -l "^HTTP/1.1 429" "$TMP"/q*.head | wc -l)" -ge 1 ] &&
     grep -qi "^retry-after: [1-9]" $(grep -l "^HTTP/1.1 429" "$TMP"/q*.head | head -n 1) &&
     grep -q "\"code\":\"queue_full\"" "$TMP"/q[0-9]* &&
     [ "$(grep -l "^HTTP/1.1 200" "$TMP"/q*.head | wc -l)" -ge 1 ]'

# The backend: without a usable GPU, serve_backend = cuda refuses to
# start and says why; auto (the default) said it serves on the CPU.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
	echo "# skip: serve_backend = cuda refusal (this machine has a GPU)"
else
	printf 'serve_backend = cuda\n' >"$TMP/cuda.conf"
	timeout 60 "$D" --config "$TMP/cuda.conf" --state-dir "$TMP/state3" \
	    --listen 127.0.0.1:0 >"$TMP/out3" 2>"$TMP/err3"
	rc3=$?
	check "serve_backend = cuda without a GPU: refused, naming the reason" \
	    '[ $rc3 -ne 0 ] && grep -q "serve_backend = cuda: " "$TMP/err3"'
	check "serve_backend = auto without a GPU: the log says the CPU serves" \
	    'grep -q "serving on the CPU: " "$TMP/err"'
fi

# A model whose whole context (1024 tokens) does not fit the KV budget
# (1 MiB: 512 tokens of tiny-qwen2): a request without max_tokens gets
# what the budget leaves, and is charged that much against a bucket of
# 600 tokens; only one asking for more than fits is 413.
cp -r tests/fixtures/tiny-qwen2 "$TMP/ctx1k"
python3 - "$TMP/ctx1k/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["max_position_embeddings"] = 1024
json.dump(c, open(sys.argv[1], "w"))
PY
cat >"$TMP/kv.conf" <<EOF
models = ctx1k=$TMP/ctx1k
serve_kv_budget_mb = 1
serve_key_tokens_per_s = 1
serve_key_tokens_burst = 600
serve_cache_ttl_s = 0
EOF
"$D" --config "$TMP/kv.conf" --state-dir "$TMP/state4" \
    --listen 127.0.0.1:0 >"$TMP/out4" 2>"$TMP/err4" &
pid=$!
port4=$(daemon_port "$TMP/out4")
K4=$(cat "$TMP/state4/admin.key" 2>/dev/null)
kv() { # BODY: the status of a chat request; the body in $TMP/kv.body
	curl -sS --cacert "$TMP/state4/tls/cert.pem" -o "$TMP/kv.body" \
	    -w "%{http_code}" -H "Authorization: Bearer $K4" -d "$1" \
	    "https://localhost:$port4/v1/chat/completions"
}
KVQ='{"messages":[{"role":"user","content":"hello there"}],"temperature":0.7,"seed":3}'
check "no max_tokens and a context past the KV budget: served within it" \
    '[ "$(kv "$KVQ")" = 200 ] &&
     [ "$(json "[\"usage\"][\"total_tokens\"]" <"$TMP/kv.body")" -le 512 ]'
check "max_tokens past the KV budget: 413 context_length_exceeded" \
    '[ "$(kv "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":600}")" = 413 ] &&
     grep -q "\"code\":\"context_length_exceeded\"" "$TMP/kv.body"'
stop
exit $status
