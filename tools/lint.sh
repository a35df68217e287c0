#!/bin/sh
# tools/lint.sh: what `make lint` checks: clang-format over every tracked C
# source, and the module boundaries (no file includes another module's
# internal.h (a module's own tests under tests/*/<module>/ may); only
# pkcs11/ calls C_* functions and only keystore/ includes lmdb.h, with the two named
# exceptions that exist to stand beside it: the fault-injection module and
# the raw-PKCS#11 benchmark anchor).
set -u
status=0
files=$(git ls-files '*.c' '*.h')
if ! clang-format --dry-run --Werror $files; then
	echo "lint: clang-format differs (run 'make format')"
	status=1
fi
for f in $files; do
	mod=${f%%/*}
	# A module's own tests may reach its internals (style.md 7.8), and so
	# may fuzz targets, which drive one module's internals each.
	case $f in tests/unit/*/* | tests/integration/*/*)
		mod=${f#tests/*/}
		mod=${mod%%/*} ;;
	tests/fuzz/*)
		continue ;;
	esac
	for inc in $(sed -n 's/^#include "\([a-z0-9_]*\)\/internal\.h".*/\1/p' "$f"); do
		if [ "$inc" != "$mod" ]; then
			echo "lint: $f includes $inc/internal.h"
			status=1
		fi
	done
done
for f in $(grep -l -E '(->|\b)C_[A-Z][A-Za-z]+\(' $files); do
	case $f in
	pkcs11/* | tests/fault/p11fault.c | tools/bench/p11_raw.c) ;;
	*)
		echo "lint: $f calls PKCS#11 directly; go through pkcs11/p11.h"
		status=1
		;;
	esac
done
for f in $(grep -l -E '#include <lmdb\.h>' $files); do
	case $f in
	keystore/*) ;;
	*)
		echo "lint: $f includes lmdb.h; only keystore/ may"
		status=1
		;;
	esac
done
[ $status -eq 0 ] && echo "lint: ok"
exit $status
