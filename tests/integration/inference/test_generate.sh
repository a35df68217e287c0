#!/bin/sh
# tests/integration/inference/test_generate.sh: sr-generate against both
# fixtures' references: greedy text for every prompt equals reference.json's
# greedy_24_text byte for byte (read from the file, never written here), the
# ids equal greedy_24, the chat turn renders as chat.rendered and encodes as
# chat.ids, a seed makes sampling reproducible, and bad input (a missing or
# broken folder, a parameter out of range, a missing prompt) exits non-zero
# with a message naming the problem. Works in a fresh temp folder.
. tests/integration/tap.sh
BUILD=${BUILD:-build}
GEN="$BUILD/bin/sr-generate"
T=$(mktemp -d "${SR_TEST_TMP:-/tmp}/generate-XXXXXX")
trap 'rm -rf "$T"' EXIT

check "--help exits 0 and lists the options" \
	'"$GEN" --help >"$T/help" && grep -q -- "--top-p P" "$T/help" &&
	 grep -q -- "--chat TEXT" "$T/help"'

for fx in tiny-qwen2 tiny-llama; do
	F=tests/fixtures/$fx
	R=$F/reference.json
	np=$(jq '.prompts | length' "$R")
	i=0
	while [ "$i" -lt "$np" ]; do
		jq -j ".prompts[$i].text" "$R" >"$T/prompt"
		jq -j ".prompts[$i].greedy_24_text" "$R" >"$T/want"
		"$GEN" --model "$F" --prompt-file "$T/prompt" --max-tokens 24 \
		    --temperature 0 --ignore-eos --threads 2 \
		    >"$T/got" 2>"$T/err"
		rc=$?
		check "$fx prompt $i: greedy text equals greedy_24_text" \
			'[ $rc -eq 0 ] && cmp -s "$T/got" "$T/want"'
		i=$((i + 1))
	done

	jq -j '.prompts[1].text' "$R" >"$T/prompt"
	"$GEN" --model "$F" --prompt-file "$T/prompt" --max-tokens 24 \
	    --temperature 0 --ignore-eos --ids >"$T/got" 2>"$T/err"
	want_p="prompt: $(jq -r '.prompts[1].input_ids_with_bos | join(" ")' "$R")"
	want_o="output: $(jq -r '.prompts[1].greedy_24 | join(" ")' "$R")"
	check "$fx --ids: the prompt is input_ids_with_bos" \
		'[ "$(sed -n 1p "$T/got")" = "$want_p" ]'
	check "$fx --ids: the output is greedy_24" \
		'[ "$(sed -n 2p "$T/got")" = "$want_o" ]'
	check "$fx: prefill and decode tokens/s on stderr" \
		'grep -q "prefill .* tokens/s; 23 tokens decoded in .* tokens/s" \
		     "$T/err"'

	sys=$(jq -r '.chat.messages[] | select(.role == "system") | .content' \
	    "$R")
	user=$(jq -r '.chat.messages[] | select(.role == "user") | .content' \
	    "$R")
	jq -j '.chat.rendered' "$R" >"$T/want"
	"$GEN" --model "$F" --chat "$user" --system "$sys" --render \
	    >"$T/got" 2>"$T/err"
	check "$fx chat: --render equals chat.rendered" \
		'cmp -s "$T/got" "$T/want"'
	"$GEN" --model "$F" --chat "$user" --system "$sys" --ids \
	    --max-tokens 1 >"$T/got" 2>"$T/err"
	want_p="prompt: $(jq -r '.chat.ids | join(" ")' "$R")"
	check "$fx chat: the prompt's ids are chat.ids" \
		'[ "$(sed -n 1p "$T/got")" = "$want_p" ]'
done

F=tests/fixtures/tiny-qwen2
"$GEN" --model "$F" --chat "<｜Assistant｜>hi" --render >"$T/got" 2>&1
"$GEN" --model "$F" --chat "<｜Assistant｜>hi" --ids --max-tokens 1 \
    >"$T/ids" 2>&1
check "a marker typed in --chat stays text (not its control token)" \
	'[ "$(grep -o "<｜Assistant｜>" "$T/got" | wc -l)" -eq 2 ] &&
	 [ "$(sed -n 1p "$T/ids" | tr " " "\n" | grep -cx 4)" -eq 1 ]'

"$GEN" --model "$F" --prompt "Hello" --temperature 1 --top-p 0.9 \
    --top-k 50 --seed 7 --max-tokens 16 --ignore-eos --ids \
    >"$T/s1" 2>/dev/null
"$GEN" --model "$F" --prompt "Hello" --temperature 1 --top-p 0.9 \
    --top-k 50 --seed 7 --max-tokens 16 --ignore-eos --ids \
    >"$T/s2" 2>/dev/null
"$GEN" --model "$F" --prompt "Hello" --temperature 1 --top-p 0.9 \
    --top-k 50 --seed 8 --max-tokens 16 --ignore-eos --ids \
    >"$T/s3" 2>/dev/null
check "sampling: the same seed gives the same 16 tokens" \
	'[ "$(sed -n 2p "$T/s1" | wc -w)" -eq 17 ] && cmp -s "$T/s1" "$T/s2"'
check "sampling: another seed gives other tokens" '! cmp -s "$T/s1" "$T/s3"'

# expect_fail WHAT RC PATTERN ARGS...: exit status RC and PATTERN on stderr
expect_fail() {
	what=$1 want_rc=$2 pat=$3
	shift 3
	"$GEN" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	check "$what" '[ $rc -eq $want_rc ] && grep -q -- "$pat" "$T/err" &&
		 [ ! -s "$T/out" ]'
}

expect_fail "a missing folder is named (exit 1)" 1 \
	"model folder \"$T/nope\": No such file or directory" \
	--model "$T/nope" --prompt hi
expect_fail "no prompt: exit 2" 2 "give one of --prompt" --model "$F"
expect_fail "no --model: exit 2" 2 "--model DIR is required" --prompt hi
expect_fail "--top-p 1.5 is refused with its range" 2 \
	"top_p 1.5 is out of range (above 0, at most 1)" \
	--model "$F" --prompt hi --top-p 1.5
expect_fail "--temperature abc is not a number" 2 \
	"--temperature \"abc\": want a number" \
	--model "$F" --prompt hi --temperature abc
expect_fail "--max-tokens 0 is refused with its range" 2 \
	"--max-tokens \"0\": want a whole number from 1 to 1000000" \
	--model "$F" --prompt hi --max-tokens 0
expect_fail "--threads -1 is refused" 2 "--threads \"-1\"" \
	--model "$F" --prompt hi --threads -1
expect_fail "--seed -3 is refused" 2 "--seed \"-3\"" \
	--model "$F" --prompt hi --seed -3
expect_fail "an unknown option is named" 2 "unknown option \"--tmperature\"" \
	--model "$F" --prompt hi --tmperature 1
expect_fail "an unknown chat family is named" 2 "nope" \
	--model "$F" --chat hi --family nope
expect_fail "--system without --chat is refused" 2 "go with --chat" \
	--model "$F" --prompt hi --system x
expect_fail "a missing --prompt-file is named" 1 \
	"--prompt-file \"$T/none\": No such file" \
	--model "$F" --prompt-file "$T/none"

mkdir "$T/broken"
cp "$F"/* "$T/broken/"
chmod u+w "$T/broken"/*
head -c 100000 "$F/model.safetensors" >"$T/broken/model.safetensors"
expect_fail "a truncated safetensors file is refused by name" 1 \
	"model.safetensors" --model "$T/broken" --prompt hi
cp "$F/model.safetensors" "$T/broken/"
printf '{"architectures": ["MistralForCausalLM"]' >"$T/broken/config.json"
expect_fail "bad JSON in config.json is refused by name" 1 "config.json" \
	--model "$T/broken" --prompt hi
rm "$T/broken/tokenizer.json"
expect_fail "a missing tokenizer.json is named" 1 "tokenizer.json" \
	--model "$T/broken" --prompt hi
exit $status
