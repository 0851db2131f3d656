#!/usr/bin/env bash
# kube-binaries.sh builds the real kube-apiserver and kube-scheduler the
# Kubernetes tests start, from the module in test/kube, into a cache outside
# the repository keyed by the Kubernetes version, and prints that folder.
# A second run finds them there and builds nothing.
#
# The cache is $FPGAOPS_KUBE_BIN if set, else
# ${XDG_CACHE_HOME:-$HOME/.cache}/fpgaops/kube/VERSION; the tests look in the
# same place (providers/kubernetes/kubetest).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mod="$root/test/kube"
GO="${GO:-go}"

version="$(cd "$mod" && "$GO" list -m -f '{{.Version}}' k8s.io/kubernetes)"
case "$version" in
v1.*) ;;
*)
	echo "kube-binaries: test/kube/go.mod requires no k8s.io/kubernetes v1.x (got '$version')" >&2
	exit 1
	;;
esac
dir="${FPGAOPS_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/fpgaops/kube/$version}"
bins=(kube-apiserver kube-scheduler)

have() {
	for b in "${bins[@]}"; do
		[ -x "$dir/$b" ] || return 1
	done
}

if have; then
	echo "$dir"
	exit 0
fi

mkdir -p "$dir"
# One build at a time per cache folder: two make runs share the result.
exec 9>"$dir/.lock"
flock 9
if have; then
	echo "$dir"
	exit 0
fi

echo "kube-binaries: building kube-apiserver and kube-scheduler $version into $dir (several minutes, once)" >&2
tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
pkgs=()
for b in "${bins[@]}"; do
	pkgs+=("k8s.io/kubernetes/cmd/$b")
done
minor="${version#v1.}"
minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
(cd "$mod" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
for b in "${bins[@]}"; do
	mv "$tmp/$b" "$dir/$b"
done
echo "$dir"
