#!/usr/bin/env bash
# The fpgaops demo: a simulated fleet for examples/fleet, then the loop an
# operator runs: plan, apply, plan again (no changes), a reviewed git commit
# that changes one binding's bitstream, its plan and its apply.
# Run it with `make demo`; it cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
fpgaops=$PWD/bin/fpgaops
[ -x "$fpgaops" ] || { echo "build first: make build" >&2; exit 1; }
command -v git >/dev/null || { echo "the demo keeps the fleet in git: install git (apt-get install git)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fpgaops-demo.XXXXXX")
sim_pid=
cleanup() {
	if [ -n "$sim_pid" ]; then
		kill "$sim_pid" 2>/dev/null || true
		wait "$sim_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' off=$'\033[0m'; else bold= off=; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$off"; }
say() { printf '    %s\n' "$@"; }
run() { printf '%s$ %s%s\n' "$bold" "$*" "$off"; "$@"; }

# git needs an identity for the demo's commits, and must not sign them.
export GIT_AUTHOR_NAME="fpgaops demo" GIT_AUTHOR_EMAIL="demo@fleet.example"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
git() { command git -C "$work/fleet" -c commit.gpgsign=false -c init.defaultBranch=main "$@"; }

step "The desired state: examples/fleet, checked before anything else"
run "$fpgaops" validate examples/fleet

step "Make a git repository of it, as an operator's fleet repository would be"
cp -R examples/fleet "$work/fleet"
git init -q
git add -A
git commit -q -m "Import the example fleet"
say "$work/fleet: $(git log --oneline | head -1)"

step "Start a simulated fleet serving every node of it"
say "Each node gets fake FPGA cards that behave like hardware (factory image,"
say "VFs off) and the VMs its bindings name, running, holding no FPGA yet."
"$fpgaops" sim serve --repo "$work/fleet" --listen 127.0.0.1:0 --state-dir "$work/sim" >"$work/sim.out" 2>"$work/sim.log" &
sim_pid=$!
sim=
for _ in $(seq 100); do
	sim=$(sed -n 's/.* at \(http:\/\/127\.0\.0\.1:[0-9]*\) .*/\1/p' "$work/sim.out" 2>/dev/null | head -1)
	[ -n "$sim" ] && break
	kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log" >&2; exit 1; }
	sleep 0.1
done
[ -n "$sim" ] || { echo "the simulated fleet did not start" >&2; cat "$work/sim.log" >&2; exit 1; }
say "Simulated fleet at $sim; node NAME answers at $sim/nodes/NAME."

step "Point each node's endpoint at the simulated fleet (a commit, like any change)"
for f in "$work"/fleet/nodes/*.yaml; do
	awk -v sim="$sim" '
		/^---/ { name = "" }
		/^name: / { name = $2 }
		/^endpoint: / && name != "" { print "endpoint: " sim "/nodes/" name; next }
		{ print }
	' "$f" >"$f.new" && mv "$f.new" "$f"
done
git commit -q -am "Point the nodes at the simulated fleet"
say "$(git log --oneline | head -1)"
say "The nodes' VMs live in the simulated fleet too, so fpgaops manages them"
say "through the node endpoints (--vms endpoint) instead of libvirt or OpenStack."
ctl=(--repo "$work/fleet" --insecure --vms endpoint --state-dir "$work/controller")

stats() {
	local body
	exec 3<>"/dev/tcp/127.0.0.1/${sim##*:}"
	printf 'GET /sim/stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	body=$(sed '1,/^\r$/d' <&3)
	exec 3<&-
	say "Simulated fleet counters: $body"
}

step "Plan: what fpgaops would change (exit code 2: there are changes)"
set +e
run "$fpgaops" plan --detailed-exitcode "${ctl[@]}"
code=$?
set -e
[ "$code" = 2 ] || { echo "plan exited $code, want 2" >&2; exit 1; }

step "Apply it: program every card, turn VFs on, give each VM its function"
run "$fpgaops" apply --auto-approve "${ctl[@]}"
stats

step "Plan again: the fleet now matches the repository (exit code 0)"
run "$fpgaops" plan --detailed-exitcode "${ctl[@]}"

# in_quarter_end_freeze reports whether now lies in examples/fleet's deny
# window: 96 hours from 00:00 Berlin time on the 28th of Mar, Jun, Sep, Dec.
in_quarter_end_freeze() {
	local now year m start
	now=$(date -u +%s)
	year=$(date -u +%Y)
	for y in $((year - 1)) "$year"; do
		for m in 03 06 09 12; do
			start=$(TZ=Europe/Berlin date -d "$y-$m-28 00:00" +%s)
			if [ "$now" -ge "$start" ] && [ "$now" -lt $((start + 96 * 3600)) ]; then
				return 0
			fi
		done
	done
	return 1
}

step "A reviewed change: the genomics VM's D5005 runs the nlb-mode-0 loopback image"
say "The card belongs to the running VM genomics-01, so the change disrupts it."
say "The policy allows that only in a maintenance window; this commit opens one"
say "now, for an hour (UTC), next to the weekly Saturday window."
sed -i 's/^bitstream: smith-waterman$/bitstream: nlb-mode-0/' "$work/fleet/bindings/genomics.yaml"
now_cron=$(date -u +'%-M %-H %-d %-m *')
awk -v now="$now_cron" '
	{ print }
	/^windows:/ {
		print "  # Ad-hoc window for the D5005 acceptance test."
		print "  - kind: allow"
		print "    schedule: \"" now "\""
		print "    duration: 1h"
		print "    timezone: UTC"
	}
' "$work/fleet/policy.yaml" >"$work/policy.new" && mv "$work/policy.new" "$work/fleet/policy.yaml"
if in_quarter_end_freeze; then
	say "Today falls in the policy's quarter-end freeze (a deny window), which"
	say "would hold the change back; the demo's copy of the fleet lifts it."
	awk '/# Never during the last days of a quarter./ { skip = 5 } skip > 0 { skip--; next } { print }' \
		"$work/fleet/policy.yaml" >"$work/policy.new" && mv "$work/policy.new" "$work/fleet/policy.yaml"
fi
run git --no-pager diff
git commit -q -am "compute-02: run the nlb-mode-0 acceptance image on the D5005"
say "$(git log --oneline | head -1)"

step "Plan the commit: detach the card from genomics-01, program it, attach it again"
set +e
run "$fpgaops" plan --detailed-exitcode "${ctl[@]}"
code=$?
set -e
[ "$code" = 2 ] || { echo "plan exited $code, want 2" >&2; exit 1; }

step "Apply it, in that safe order"
run "$fpgaops" apply --auto-approve "${ctl[@]}"
stats

step "Plan once more: nothing left to do"
run "$fpgaops" plan --detailed-exitcode "${ctl[@]}"

step "Done. The simulated fleet stops and $work is removed."
