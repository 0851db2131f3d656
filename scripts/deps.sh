#!/usr/bin/env bash
# The Debian packages fpgaops's tests start or call, in one list that
# .ci/run and `make test` both use. Run as root, it installs those that
# are missing; otherwise it names them and exits 1, since the tests need
# them (none is skipped for a missing tool). --list prints the list.
# Go itself (go.mod's version) is expected on PATH.
set -euo pipefail

# package          what the tests use from it
pkgs=(
	git              # git daemon, git http-backend and the test remotes (spec/source)
	openssh-server   # sshd serving an ssh:// remote (spec/source)
	libvirt-daemon   # libvirtd with its test driver (providers/libvirt, cmd/fpgaops)
	libvirt-clients  # virsh in the libvirt scripts (cmd/fpgaops/testdata/libvirt)
	placement-api    # the OpenStack Placement API (providers/openstack)
	util-linux       # flock, which CI runs under
	make             # make test, make install, make deb (packaging)
	systemd          # systemd-analyze verify on the units (packaging)
	ca-certificates  # go mod download and go run of nfpm over https
	prometheus       # a real Prometheus answering a rollout's checks (reconcile/engine)
	curl             # scripts that read the simulated fleet's counters (cmd/fpgaops)
	etcd-server      # real etcd members for high availability (reconcile/ha/etcdtest, e2e), and under the kube-apiserver (providers/kubernetes)
	chromium         # the dashboard in a real headless browser (reconcile/dashboard)
)

if [ "${1:-}" = --list ]; then
	printf '%s\n' "${pkgs[@]}"
	exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: the ${#pkgs[@]} Debian packages the tests need are installed"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: the tests need these Debian packages, missing here: ${missing[*]}" >&2
	echo "deps: as root: apt-get install --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: installed ${missing[*]}"
