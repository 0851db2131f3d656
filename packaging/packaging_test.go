package packaging_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestInstallAndDeb runs scripts/check-packaging.sh: make install into a
// staging directory, make deb, the package's metadata and contents, and
// systemd-analyze verify on its units.
func TestInstallAndDeb(t *testing.T) {
	out, err := exec.Command("../scripts/check-packaging.sh").CombinedOutput()
	t.Logf("scripts/check-packaging.sh:\n%s", out)
	if err != nil {
		t.Fatalf("scripts/check-packaging.sh: %v", err)
	}
	if !strings.Contains(string(out), "check-packaging: 3 passed, 0 failed") {
		t.Fatal("scripts/check-packaging.sh did not finish its checks")
	}
}

// One list of the Debian packages the tests need: .ci/run and make test
// both go through scripts/deps.sh, which keeps what CI installed before.
func TestDepsOneList(t *testing.T) {
	list, err := exec.Command("../scripts/deps.sh", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	pkgs := strings.Fields(string(list))
	for _, want := range []string{"git", "openssh-server", "libvirt-daemon", "libvirt-clients", "placement-api", "util-linux", "systemd", "make"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("scripts/deps.sh --list lacks %s: %v", want, pkgs)
		}
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "\nscripts/deps.sh\n") || strings.Contains(string(ci), "apt-get install") {
		t.Errorf(".ci/run does not install through scripts/deps.sh alone:\n%s", ci)
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "\ntest: deps\n") || !strings.Contains(string(mk), "\t./scripts/deps.sh\n") {
		t.Error("make test does not run scripts/deps.sh first")
	}
}

// Not root and packages missing: deps.sh names each and how to install
// them, and fails, so that make test stops before tests that need them.
func TestDepsNamesWhatIsMissing(t *testing.T) {
	bin := t.TempDir()
	for name, body := range map[string]string{
		"dpkg-query": "#!/bin/sh\nexit 1\n", // nothing is installed
		"id":         "#!/bin/sh\necho 1000\n",
		"apt-get":    "#!/bin/sh\necho apt-get must not run >&2; exit 3\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("../scripts/deps.sh")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("deps.sh without root: %v, want exit 1\n%s", err, out)
	}
	want := "deps: as root: apt-get install --no-install-recommends git openssh-server libvirt-daemon libvirt-clients placement-api util-linux make systemd ca-certificates"
	if !strings.Contains(string(out), want) || strings.Contains(string(out), "must not run") {
		t.Errorf("deps.sh said:\n%s\nwant %q", out, want)
	}
}
