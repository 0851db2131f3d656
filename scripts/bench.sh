#!/usr/bin/env bash
# Runs fpgaops's benchmarks and prints their figures (docs/benchmarks.md
# records them): the packages' Go benchmarks, the end-to-end ones against
# the simulated fleet, then the simulated fleet from the command line at
# 10,000 and 100,000 nodes, and `fpgaops validate` beside `cue vet`. The
# whole run takes about a quarter of an hour on two cores and needs about
# 3 GB of memory and 1 GB of disk at its peak.
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

echo "# load: $(uptime)"
echo
echo "# package benchmarks"
mapfile -t pkgs < <(go list ./... | grep -v '/e2e$')
bench -bench . "${pkgs[@]}"

echo
echo "# end to end: observe 1,000 simulated nodes at 50 ms each (x-floor: time over"
echo "# the floor of 50 ms per round of concurrent nodes); apply 1,000 reprograms"
echo "# with their detaches, VF changes and attaches, without and with the time"
echo "# hardware takes (x-critical: time over the critical path); the first plan"
echo "# of 10,000 untouched nodes"
bench -bench Observe1000 -benchtime 3x ./e2e
bench -bench 'Apply1000|FirstPlan10k' ./e2e
echo
echo "# the controller on a converged 10,000-node sim: a signed push webhook for a"
echo "# one-binding commit to the card's program (median of 5; x-full: over a run"
echo "# that observes the whole fleet)"
bench -bench 'CommitToFirstProgram' -benchtime 5x ./e2e

# The command line: a sim of N generated nodes of 4 cards, two plans
# against it, its memory, and how fast it stops.
work=$(mktemp -d)
sim_pid=
cleanup() {
	if [ -n "$sim_pid" ]; then
		kill "$sim_pid" 2>/dev/null || true
		wait "$sim_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/fpgaops" ./cmd/fpgaops
fpgaops=$work/fpgaops
ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }
mem() { awk -v k="$1:" '$1 == k { printf "%.0f MB", $2 / 1024 }' "/proc/$2/status"; }

sim_cli() {
	local n=$1 repo=$work/fleet-$1 t0 url i
	"$fpgaops" sim gen --nodes "$n" --out "$repo" >/dev/null
	t0=$(ms)
	"$fpgaops" sim serve --repo "$repo" --listen 127.0.0.1:0 >"$work/sim.out" 2>"$work/sim.log" &
	sim_pid=$!
	url=
	for i in $(seq 6000); do
		url=$(sed -n 's/.* at \(http:\/\/127\.0\.0\.1:[0-9]*\) .*/\1/p' "$work/sim.out")
		[ -n "$url" ] && break
		kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log"; exit 1; }
		sleep 0.1
	done
	echo "sim serve of $n nodes: serving after $(secs $(($(ms) - t0))) (loading the repository)"
	"$fpgaops" sim gen --nodes "$n" --endpoint "$url/nodes/{node}" --out "$repo" >/dev/null
	for i in first second; do
		t0=$(ms)
		"$fpgaops" plan --repo "$repo" --insecure --vms endpoint --state-dir "$work/controller" >"$work/plan.txt" ||
			{ status=1; tail "$work/plan.txt"; }
		echo "  $i plan: $(secs $(($(ms) - t0))): $(grep '^Plan:' "$work/plan.txt")"
		echo "  sim memory after it: $(mem VmRSS "$sim_pid") resident, peak $(mem VmHWM "$sim_pid")"
	done
	rm -f "$work/plan.txt"
	t0=$(ms)
	kill -TERM "$sim_pid"
	i=0
	wait "$sim_pid" || i=$?
	sim_pid=
	echo "  SIGTERM: exited $i after $(secs $(($(ms) - t0)))"
}

echo
echo "# the simulated fleet from the command line (plans observe 64 nodes at once)"
sim_cli 10000
sim_cli 100000
rm -rf "$work/fleet-100000"

echo
echo "# validate 10,000 nodes: fpgaops validate, and cue vet of the same files"
t0=$(ms)
"$fpgaops" validate "$work/fleet-10000" >/dev/null
validate=$(($(ms) - t0))
echo "fpgaops validate: $(secs "$validate")"
cue=$(command -v cue || true)
[ -z "$cue" ] && [ -x "$(go env GOPATH)/bin/cue" ] && cue=$(go env GOPATH)/bin/cue
if [ -z "$cue" ]; then
	echo "cue vet: skipped, cue is not installed (go install cuelang.org/go/cmd/cue@v0.17.1)"
else
	printf 'package fleet\n\n#Document: #Node | #Bitstream | #Binding | #Policy\n' >"$work/document.cue"
	mapfile -d '' files < <(find "$work/fleet-10000" -name '*.yaml' -print0 | sort -z)
	t0=$(ms)
	"$cue" vet -d '#Document' schema/fleet.cue "$work/document.cue" "${files[@]}" || status=1
	vet=$(($(ms) - t0))
	echo "cue vet ($("$cue" version | head -1)): $(secs "$vet"), $(awk -v a="$vet" -v b="$validate" 'BEGIN { printf "%.1f", a / b }') times fpgaops validate"
fi
exit "$status"
