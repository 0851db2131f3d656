#!/usr/bin/env bash
# Runs fpgaops's benchmarks and prints their figures (docs/benchmarks.md
# records them). The end-to-end benchmarks against the simulated fleet run
# last: they build 1,000 nodes of fake sysfs trees and take minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || export PATH=/usr/local/go/bin:$PATH

status=0
bench() {
	local out
	out=$(mktemp)
	if ! go test -run '^$' -benchmem -benchtime 1x -timeout 60m "$@" >"$out" 2>&1; then
		status=1
		cat "$out"
	else
		grep -E '^(Benchmark|ok|FAIL|---)' "$out" || true
	fi
	rm -f "$out"
}

echo "# package benchmarks"
mapfile -t pkgs < <(go list ./... | grep -v '/e2e$')
bench -bench . "${pkgs[@]}"

echo
echo "# end to end: observe 1,000 simulated nodes at 50 ms each (x-floor: time over"
echo "# the floor of 50 ms per round of concurrent nodes); apply 1,000"
echo "# reprograms with their detaches, VF changes and attaches"
bench -bench Observe1000 -benchtime 3x ./e2e
bench -bench Apply1000 ./e2e
exit "$status"
