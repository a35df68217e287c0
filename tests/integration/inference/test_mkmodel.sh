#!/bin/sh
# tests/integration/inference/test_mkmodel.sh: sr-mkmodel writes model
# folders the loader accepts (one file, and shards with an index when above
# --shard-mb), with the shapes it was asked for, refuses bad arguments and
# a non-empty folder, and cpu-bench runs a forward pass over what it wrote.
# Works in a fresh temp folder and removes it.
. tests/integration/tap.sh
BUILD=${BUILD:-build}
MK="$BUILD/bin/sr-mkmodel"
BENCH="$BUILD/bin/cpu-bench"
T=$(mktemp -d "${SR_TEST_TMP:-/tmp}/mkmodel-XXXXXX")
trap 'rm -rf "$T"' EXIT

check "--help exits 0 and lists the 1.5B shape" \
	'"$MK" --help | grep -q "qwen2-1.5b  DeepSeek-R1-Distill-Qwen-1.5B"'
"$MK" --shape nope --out "$T/x" 2>"$T/err"
rc=$?
check "an unknown shape is refused by name (exit 2)" \
	'[ $rc -eq 2 ] && grep -q "unknown shape \"nope\"" "$T/err"'
"$MK" --shape tiny-qwen2 --out "$T/x" --layers 0 2>"$T/err"
rc=$?
check "--layers 0 is refused with its range" \
	'[ $rc -eq 2 ] && grep -q "\-\-layers \"0\": want a number from 1" "$T/err"'

check "tiny-qwen2 shape: one model.safetensors" \
	'"$MK" --shape tiny-qwen2 --out "$T/q" >/dev/null &&
	 [ -f "$T/q/model.safetensors" ] && [ -f "$T/q/config.json" ] &&
	 [ ! -f "$T/q/model.safetensors.index.json" ]'
check "its size is the fixture's tensors (weights and header)" \
	'[ $(stat -c %s "$T/q/model.safetensors") -gt 1990000 ] &&
	 [ $(stat -c %s "$T/q/model.safetensors") -lt 2020000 ]'
check "the loader accepts it and cpu-bench decodes" \
	'"$BENCH" "$T/q" 2 4 2 >"$T/out" 2>&1 && grep -q "decode, batch 1" "$T/out"'
"$MK" --shape tiny-qwen2 --out "$T/q" 2>"$T/err"
rc=$?
check "a non-empty folder is refused without --force" \
	'[ $rc -eq 1 ] && grep -q "not empty (use --force)" "$T/err"'
check "--force writes over it" \
	'"$MK" --shape tiny-qwen2 --out "$T/q" --force --seed 5 >/dev/null'

check "tiny-llama shape, 6 layers, --shard-mb 1: two shards and an index" \
	'"$MK" --shape tiny-llama --out "$T/l" --layers 6 --shard-mb 1 \
	     >/dev/null &&
	 [ -f "$T/l/model.safetensors.index.json" ] &&
	 [ -f "$T/l/model-00001-of-00002.safetensors" ] &&
	 [ -f "$T/l/model-00002-of-00002.safetensors" ]'
check "the newer config layout (rope_parameters, dtype)" \
	'grep -q "\"rope_parameters\"" "$T/l/config.json" &&
	 grep -q "\"dtype\": \"bfloat16\"" "$T/l/config.json"'
check "the sharded folder loads and decodes" \
	'"$BENCH" "$T/l" 2 4 1 >"$T/out" 2>&1 && grep -q "LlamaForCausalLM" "$T/out"'
rm "$T/l/model-00002-of-00002.safetensors"
"$BENCH" "$T/l" 2 4 1 >"$T/out" 2>&1
rc=$?
check "a missing shard is named" \
	'[ $rc -ne 0 ] && grep -q "shard \"model-00002-of-00002.safetensors\" is missing" "$T/out"'
exit $status
