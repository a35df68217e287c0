#!/bin/sh
# tests/run.sh: what `make test` runs. Builds the tree, runs the unit tests
# (cmocka), the integration tests (cmocka programs and shell scripts against
# the real SoftHSM2, OpenSC and friends), then the unit tests and the
# fault-injection test again under AddressSanitizer + UndefinedBehaviorSanitizer,
# then the fuzz targets (HTTP request path, safetensors, tokenizer, JWT)
# for a bounded time.
# Its last line is "N passed, N failed". It never skips a phase silently.
set -u

BUILD=${BUILD:-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
TIMEOUT=${SR_TEST_TIMEOUT:-600}
export SR_TEST_TMP="$(pwd)/$BUILD/test-tmp"
export SR_P11FAULT_SO="$(pwd)/$BUILD/lib/libsr_p11fault.so"
export BUILD
LOG="$BUILD/test-logs"
rm -rf "$SR_TEST_TMP" "$LOG"
mkdir -p "$SR_TEST_TMP" "$LOG"

passed=0
failed=0
skipped=0
skips=""
failures=""

note_fail() {
	failed=$((failed + $2))
	failures="$failures
  $1"
}

# Run one cmocka program; add its counts. A program that dies before its
# summary counts as one failure.
run_cmocka() {
	name=$1
	shift
	out="$LOG/$(echo "$name" | tr '/' '_').log"
	timeout "$TIMEOUT" "$@" >"$out" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:.*/\1/p' "$out" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test(s), listed below:.*/\1/p' "$out" | tail -n 1)
	p=${p:-0}
	f=${f:-0}
	s=${s:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	if [ "$s" -gt 0 ]; then
		# skipped tests are shown, never counted as passed
		skipped=$((skipped + s))
		why=$(grep -m 1 '^SKIPPED: ' "$out")
		skips="$skips
  $name: $s (${why:-see $out})"
		echo "skip $name: $s skipped: ${why:-see $out}"
	fi
	if [ "$f" -gt 0 ]; then
		note_fail "$name (see $out)" "$f"
		echo "FAIL $name: $p passed, $f failed"
		sed 's/^/    /' "$out" | grep -v '^    \[ RUN\|^    \[       OK' | tail -n 40
	elif [ "$p" -gt 0 ] || [ "$s" -eq 0 ]; then
		echo "ok   $name: $p passed"
	fi
}

# Run one shell test: it prints "ok N - what" / "not ok N - what" lines
# (TAP) and exits non-zero on failure.
run_script() {
	name=$1
	out="$LOG/${2:+$2_}$(echo "$name" | tr '/' '_').log"
	timeout "$TIMEOUT" sh "$name" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	# "ok N - what # SKIP why" (tap.sh's skip): shown, never passed
	s=$(grep -c '^ok .* # SKIP ' "$out")
	p=$((p - s))
	if [ "$s" -gt 0 ]; then
		skipped=$((skipped + s))
		skips="$skips
  ${2:+$2/}$name: $(grep -m 1 '^ok .* # SKIP ' "$out" | sed 's/^ok [0-9]* - //')"
		echo "skip ${2:+$2/}$name: $s skipped"
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	if [ "$f" -gt 0 ]; then
		note_fail "${2:+$2/}$name (see $out)" "$f"
		echo "FAIL ${2:+$2/}$name: $p passed, $f failed"
		sed 's/^/    /' "$out" | tail -n 40
	else
		echo "ok   ${2:+$2/}$name: $p passed"
	fi
}

echo "== build"
# Relink test programs every run, so a test deleted from the tree is not
# run from an old binary.
rm -rf "$BUILD/test" "$BUILD/asan/test"
if ! make -s -j"$JOBS" all >"$LOG/build.log" 2>&1; then
	cat "$LOG/build.log"
	echo "0 passed, 1 failed"
	exit 1
fi

echo "== unit tests"
for t in $(find "$BUILD/test/unit" -type f -name 'test_*' | sort); do
	run_cmocka "unit/${t#$BUILD/test/unit/}" "$t"
done

echo "== integration tests"
for t in $(find "$BUILD/test/integration" -type f -name 'test_*' | sort); do
	run_cmocka "integration/${t#$BUILD/test/integration/}" "$t"
done
for t in $(find tests/integration -type f -name 'test_*.sh' | sort); do
	run_script "$t"
done

echo "== unit and fault-injection tests under ASan+UBSan"
if ! make -s -j"$JOBS" tests-san >"$LOG/build-asan.log" 2>&1; then
	cat "$LOG/build-asan.log"
	note_fail "ASan build" 1
else
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
	for t in $(find "$BUILD/asan/test" -type f -name 'test_*' | sort); do
		run_cmocka "asan/${t#$BUILD/asan/test/}" "$t"
	done
	# The daemon itself under ASan, driven by the real-client test: its
	# clean exit after SIGTERM proves no leak and no handle left open.
	if make -s -j"$JOBS" "$BUILD/asan/bin/strongroomd" \
	    >>"$LOG/build-asan.log" 2>&1; then
		for t in test_daemon.sh test_daemon_ops.sh; do
			SR_DAEMON="$BUILD/asan/bin/strongroomd" run_script \
			    "tests/integration/appliance/$t" asan
		done
	else
		note_fail "ASan daemon build" 1
	fi
fi

# run_fuzz NAME WHAT SECONDS: build $BUILD/fuzz/fuzz_NAME (libFuzzer) and
# run it for SECONDS over its corpus in tests/fuzz/corpus/NAME.
run_fuzz() {
	echo "== fuzz: $2 (libFuzzer, $3 s)"
	if ! make -s "$BUILD/fuzz/fuzz_$1" >"$LOG/build-fuzz-$1.log" 2>&1; then
		cat "$LOG/build-fuzz-$1.log"
		note_fail "fuzz build ($1)" 1
		return
	fi
	mkdir -p "$BUILD/fuzz/corpus-$1"
	if "$BUILD/fuzz/fuzz_$1" -max_total_time="$3" \
	    "$BUILD/fuzz/corpus-$1" "tests/fuzz/corpus/$1" \
	    >"$LOG/fuzz_$1.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok   fuzz/$1: $(grep -o 'cov: [0-9]*' "$LOG/fuzz_$1.log" | tail -n 1), no crash"
	else
		note_fail "fuzz/$1 (see $LOG/fuzz_$1.log)" 1
		tail -n 30 "$LOG/fuzz_$1.log"
	fi
}

run_fuzz http "the HTTP request path" "${SR_FUZZ_SECONDS:-20}"
run_fuzz safetensors "the safetensors header parser" "${SR_FUZZ_ST_SECONDS:-10}"
run_fuzz tokenizer "the tokenizer" "${SR_FUZZ_TOK_SECONDS:-10}"
run_fuzz jwt "bearer tokens (JWT, base64url)" "${SR_FUZZ_JWT_SECONDS:-10}"
run_fuzz form "form and query decoding" "${SR_FUZZ_FORM_SECONDS:-5}"

if [ "$skipped" -gt 0 ]; then
	echo "Skipped ($skipped, not counted as passed):$skips"
fi
if [ "$failed" -gt 0 ]; then
	echo "Failed:$failures"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
