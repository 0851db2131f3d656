#!/usr/bin/env bash
# fuzz.sh TARGET PACKAGE DURATION [go test flags...] fuzzes one target for
# DURATION. A failure is a finding: go test writes the input that caused
# it under PACKAGE/testdata/fuzz/TARGET, and fuzz.sh fails with it. The one
# exception is the toolchain's own race at the end of a duration
# (go.dev/issue/75804, fixed in Go 1.27): a bare "context deadline
# exceeded" with no input written is reported and not counted.
set -euo pipefail
target=$1 pkg=$2 time=$3
shift 3
GO="${GO:-go}"
corpus="$pkg/testdata/fuzz/$target"

inputs() {
	if [ -d "$corpus" ]; then
		find "$corpus" -type f | sort
	fi
}

before=$(inputs)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if "$GO" test -run '^$' -fuzz "^$target\$" -fuzztime "$time" "$@" "$pkg" 2>&1 | tee "$out"; then
	exit 0
fi
after=$(inputs)
if [ "$before" = "$after" ] && grep -q '^    context deadline exceeded$' "$out" &&
	[ "$(grep -c '^--- FAIL' "$out")" = 1 ]; then
	echo "fuzz.sh: $target: the fuzzing coordinator's deadline race (go.dev/issue/75804), no input written: not a finding"
	exit 0
fi
exit 1
