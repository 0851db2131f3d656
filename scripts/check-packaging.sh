#!/usr/bin/env bash
# Checks what `make install` and `make deb` produce: the files, their
# modes, the units' ExecStart, the version the binary reports, the
# package's metadata and contents, and the systemd units as systemd reads
# them (systemd-analyze verify against the unpacked package). Prints the
# units' exposure scores (systemd-analyze security). Exits 1 on the first
# problem, naming it. Run from anywhere; it builds in a temporary
# directory and leaves the checkout as it was.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-packaging: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null || fail "$1 is missing: scripts/deps.sh installs it"; }
have dpkg-deb
have systemd-analyze

# make install, staged, for another prefix.
stage=$tmp/stage
make -s install DESTDIR="$stage" PREFIX=/opt/fpgaops BIN="$tmp/fpgaops" >/dev/null
for f in opt/fpgaops/bin/fpgaops opt/fpgaops/lib/systemd/system/fpgaops.service \
	opt/fpgaops/lib/systemd/system/fpgaops-agent.service opt/fpgaops/lib/sysusers.d/fpgaops.conf \
	etc/default/fpgaops etc/default/fpgaops-agent opt/fpgaops/share/doc/fpgaops/agent.md; do
	[ -f "$stage/$f" ] || fail "make install: no $f"
done
[ "$(stat -c %a "$stage/opt/fpgaops/bin/fpgaops")" = 755 ] || fail "make install: fpgaops is not mode 755"
grep -q '^ExecStart=/opt/fpgaops/bin/fpgaops run ' "$stage/opt/fpgaops/lib/systemd/system/fpgaops.service" ||
	fail "make install: fpgaops.service does not run /opt/fpgaops/bin/fpgaops"
grep -q '^ExecStart=/opt/fpgaops/bin/fpgaops agent ' "$stage/opt/fpgaops/lib/systemd/system/fpgaops-agent.service" ||
	fail "make install: fpgaops-agent.service does not run /opt/fpgaops/bin/fpgaops"
# An operator's flags survive a second install.
echo 'FPGAOPS_RUN_FLAGS="--git mine"' >"$stage/etc/default/fpgaops"
make -s install DESTDIR="$stage" PREFIX=/opt/fpgaops BIN="$tmp/fpgaops" >/dev/null
grep -q 'mine' "$stage/etc/default/fpgaops" || fail "make install replaced /etc/default/fpgaops"
version=$("$stage/opt/fpgaops/bin/fpgaops" version)
case $version in
"fpgaops devel"*) fail "make install: the binary says devel: the Makefile's -ldflags did not reach main.version" ;;
esac
echo "make install: ok ($(head -1 <<<"$version"))"

# make deb.
make -s deb DEBDIR="$tmp/deb" BIN="$tmp/fpgaops-deb" >/dev/null
debs=("$tmp"/deb/fpgaops_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "make deb: want one fpgaops_*.deb, got: ${debs[*]}"
deb=${debs[0]}
info=$(dpkg-deb -I "$deb")
for want in 'Package: fpgaops' "Architecture: $(go env GOARCH)" 'Section: admin'; do
	grep -q "^ $want\$" <<<"$info" || fail "dpkg-deb -I: no '$want'"
done
[ "$(dpkg-deb -f "$deb" Version)" != "" ] || fail "dpkg-deb -I: no version"
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
for want in /etc/default/fpgaops /etc/default/fpgaops-agent; do
	grep -qx "$want" <<<"$conffiles" || fail "conffiles: no $want"
done
contents=$(dpkg-deb -c "$deb")
for want in '-rwxr-xr-x root/root .* ./usr/bin/fpgaops' \
	'-rw-r--r-- root/root .* ./lib/systemd/system/fpgaops.service' \
	'-rw-r--r-- root/root .* ./lib/systemd/system/fpgaops-agent.service' \
	'-rw-r--r-- root/root .* ./usr/lib/sysusers.d/fpgaops.conf' \
	'-rw-r--r-- root/root .* ./usr/share/doc/fpgaops/agent.md'; do
	grep -q -- "^$want\$" <<<"$contents" || fail "dpkg-deb -c: nothing like '$want'"
done
echo "make deb: ok ($(basename "$deb"), $(du -k "$deb" | cut -f1) KiB)"

# The units as systemd reads them: unpacked into a root beside the
# system's own units (the targets they name), so that ExecStart resolves
# to the packaged binary. Any warning fails.
root=$tmp/root
dpkg-deb -x "$deb" "$root"
mkdir -p "$root/usr/lib/systemd"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$root"/lib/systemd/system/fpgaops*.service "$root/usr/lib/systemd/system/"
"$root/usr/bin/fpgaops" version >/dev/null || fail "the packaged binary does not run"
out=$(systemd-analyze verify --root="$root" fpgaops.service fpgaops-agent.service 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
echo "systemd-analyze verify: ok"
for u in fpgaops.service fpgaops-agent.service; do
	score=$(systemd-analyze security --offline=yes --root="$root" "$u" 2>/dev/null | tail -1 || true)
	echo "systemd-analyze security $u: ${score#→ }"
done
echo "check-packaging: 3 passed, 0 failed"
