#!/bin/sh
# tools/bench/run.sh: what `make bench` runs. Prints what is measured and on
# which machine, then runs the benchmarks, which report ratios against their
# anchors. It must never fail because a ratio misses its goal: only a
# benchmark that could not measure (an operation error) fails the run.
set -eu

BUILD=${BUILD:-build}
if [ ! -x "$BUILD/bin/p11-bench" || exit 1

echo
echo "== keystore: durable creations, API-key verification, device keys"
"$BUILD/bin/ks-bench" 2>/dev/null || exit 1

rounds=${SR_CRASH_ROUNDS:-1000}
echo
echo "== keystore: kill -9 at random moments, $rounds rounds; every" \
	"acknowledged key must survive"
mkdir -p "$BUILD/bench-tmp"
SR_TEST_TMP="$(pwd)/$BUILD/bench-tmp" SR_CRASH_ROUNDS=$rounds \
    "$BUILD/test/integration/keystore/test_crash" 2>&1 |
	grep -E '^#|PASSED|FAILED|checker' || exit 1 ]; then
	echo "run.sh: $BUILD/bin/p11-bench is missing; run make first" >&2
	exit 1
fi

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo |
	head -n 1)
hsm=$(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo unknown)

echo "== pkcs11 layer vs raw PKCS#11 (same SoftHSM2 module, same token):" \
	"ops/s and ratio layer/raw"
echo "== machine: $(nproc) CPU(s), ${cpu:-unknown CPU}; SoftHSM2 $hsm;" \
	"SR_BENCH_SECONDS=${SR_BENCH_SECONDS:-1.2} per side per cell"
"$BUILD/bin/p11-bench" || exit 1

echo
echo "== keystore: durable creations, API-key verification, device keys"
"$BUILD/bin/ks-bench" 2>/dev/null || exit 1

rounds=${SR_CRASH_ROUNDS:-1000}
echo
echo "== keystore: kill -9 at random moments, $rounds rounds; every" \
	"acknowledged key must survive"
mkdir -p "$BUILD/bench-tmp"
SR_TEST_TMP="$(pwd)/$BUILD/bench-tmp" SR_CRASH_ROUNDS=$rounds \
    "$BUILD/test/integration/keystore/test_crash" 2>&1 |
	grep -E '^#|PASSED|FAILED|checker' || exit 1
