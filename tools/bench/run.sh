#!/bin/sh
# tools/bench/run.sh: what `make bench` runs. Every figure is measured side
# by side with its anchor in the same run, on this machine:
#   - the pkcs11 layer against raw PKCS#11 calls to the same SoftHSM2 token;
#   - the keystore: durable creations (group commit), API-key verification
#     (cache hit, and cache miss against the raw HMAC it rests on), device
#     keys against the raw C_Sign they rest on;
#   - the audit log: durable events per second and ack latency against
#     raw fdatasync'd appends of same-size lines in same-size batches;
#   - the tokenizer: encoding MB/s against its own pre-tokenizer regex run
#     alone on the same text (tools/bench/tok_bench.c);
#   - CPU inference at the DeepSeek-R1-Distill-Qwen-1.5B shape (random BF16
#     weights from sr-mkmodel, 3.5 GB, made once under $BUILD/models; or a
#     real folder named by SR_BENCH_MODEL): batch-1 decode tokens/s as a
#     percentage of the memory-bandwidth roofline measured in the same run
#     (a streaming read of 512 MB), prefill and batched decode tokens/s
#     (tools/bench/cpu_bench.c; SR_BENCH_DECODE / SR_BENCH_PREFILL tokens);
#   - strongroomd against nginx (h2load): keep-alive requests and new TLS
#     1.3 handshakes per second, with latency (tools/bench/http_bench.sh);
#   - inference over HTTPS against the scheduler in-process: requests and
#     tokens per second, TTFT p50/p99 at concurrency 1/8/32
#     (tools/bench/serve_bench.sh);
#   - the kill -9 loop of the keystore, 1000 rounds (SR_CRASH_ROUNDS).
# It reports figures; it fails only when a measurement could not be made.
set -u

BUILD=${BUILD:-build}
for b in p11-bench ks-bench audit-bench tok-bench sr-mkmodel cpu-bench; do
	if [ ! -x "$BUILD/bin/$b" ]; then
		echo "run.sh: $BUILD/bin/$b is missing; run make first" >&2
		exit 1
	fi
done

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo |
	head -n 1)
hsm=$(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo unknown)

echo "== machine: $(nproc) CPU(s), ${cpu:-unknown CPU}; SoftHSM2 $hsm;" \
	"SR_BENCH_SECONDS=${SR_BENCH_SECONDS:-1.2} per side per cell"
echo "== pkcs11 layer vs raw PKCS#11 (same SoftHSM2 module, same token):" \
	"ops/s and ratio layer/raw"
"$BUILD/bin/p11-bench" || exit 1

echo
echo "== keystore: durable creations, API-key verification, device keys"
"$BUILD/bin/ks-bench" 2>/dev/null || exit 1

echo
echo "== audit log: durable events (write + fdatasync before the ack)" \
	"against raw appends of the same lines in the same batches"
BUILD=$BUILD "$BUILD/bin/audit-bench" || exit 1
echo "== tokenizer: encoding against the bare pre-tokenizer regex, same text"
"$BUILD/bin/tok-bench" || exit 1

model=${SR_BENCH_MODEL:-$BUILD/models/qwen2-1.5b}
echo
echo "== CPU inference: decode against the memory-bandwidth roofline" \
	"measured in the same run; prefill; batched decode ($model)"
if [ -z "${SR_BENCH_MODEL:-}" ] && [ ! -f "$model/config.json" ]; then
	# written aside and renamed, so a cut-off run leaves no half model
	mkdir -p "$(dirname "$model")" && rm -rf "$model.part" || exit 1
	echo "   (writing the 1.5B shape once: 3.5 GB of random BF16 weights)"
	"$BUILD/bin/sr-mkmodel" --shape qwen2-1.5b --out "$model.part" \
	    >/dev/null && mv "$model.part" "$model" || exit 1
fi
"$BUILD/bin/cpu-bench" "$model" "${SR_BENCH_DECODE:-16}" \
    "${SR_BENCH_PREFILL:-64}" 4 || exit 1

echo
echo "== the daemon against nginx: same certificate, TLS 1.3, same answer"
BUILD=$BUILD sh tools/bench/http_bench.sh || exit 1

echo
echo "== inference served over HTTPS against the engine alone (tiny-qwen2," \
	"CPU): req/s, tok/s, TTFT"
BUILD=$BUILD sh tools/bench/serve_bench.sh || exit 1

rounds=${SR_CRASH_ROUNDS:-1000}
echo
echo "== keystore: kill -9 at random moments, $rounds rounds; every" \
	"acknowledged key must survive"
rm -rf "$BUILD/bench-tmp"
mkdir -p "$BUILD/bench-tmp"
SR_TEST_TMP="$(pwd)/$BUILD/bench-tmp" SR_CRASH_ROUNDS=$rounds \
    "$BUILD/test/integration/keystore/test_crash" >"$BUILD/bench-tmp/log" 2>&1
status=$?
grep -E '^#|PASSED|FAILED|checker' "$BUILD/bench-tmp/log"
rm -rf "$BUILD/bench-tmp"
exit $status
