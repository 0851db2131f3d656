package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A fleet converged by other means (here an apply whose bindings are then
// lost) is adopted by import: a plan right after shows no changes. Import
// never replaces its files without --force, and an AFU no Bitstream names
// gets a stub that validate refuses, saying what to fill in.
func TestImportAdoptsARunningFleet(t *testing.T) {
	f := newSimFleet(t)
	if code, out, errOut := f.run("", f.flags("apply", "--auto-approve")...); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := os.Remove(filepath.Join(f.repo, "bindings.yaml")); err != nil {
		t.Fatal(err)
	}
	fresh := func() []string { return []string{"--repo", f.repo, "--insecure", "--state-dir", t.TempDir()} }
	if code, out, _ := f.run("", append([]string{"plan", "--detailed-exitcode"}, fresh()...)...); code != 2 {
		t.Fatalf("plan without bindings: exit %d, want 2 (the VMs' functions are leftovers)\n%s", code, out)
	}

	code, out, errOut := f.run("", "import", "--repo", f.repo, "--insecure")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"Imported 4 binding(s) into bindings/imported.yaml.\n",
		f.repo + ": valid: 2 nodes, 4 FPGAs, 2 bitstreams, 4 bindings\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	imported := filepath.Join(f.repo, "bindings", "imported.yaml")
	first, err := os.ReadFile(imported)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(first), "name: compute-01-pac0-vf0\nnode: compute-01\nfpga: pac0\nfunction: vf0\nvm: vm-01-pac0\nbitstream: nfv-fw-v1\n") {
		t.Errorf("imported bindings:\n%s", first)
	}
	if code, out, _ := f.run("", append([]string{"plan", "--detailed-exitcode"}, fresh()...)...); code != 0 {
		t.Fatalf("plan right after import: exit %d, want 0\n%s", code, out)
	}

	// Again: refused without --force, the same file with it.
	code, _, errOut = f.run("", "import", "--repo", f.repo, "--insecure")
	if code != 1 || !strings.Contains(errOut, imported+" exists: pass --force to replace it") {
		t.Fatalf("second import: exit %d, stderr %q", code, errOut)
	}
	if code, out, errOut := f.run("", "import", "--repo", f.repo, "--insecure", "--force"); code != 0 {
		t.Fatalf("import --force: exit %d\n%s\n%s", code, out, errOut)
	}
	if again, _ := os.ReadFile(imported); string(again) != string(first) {
		t.Errorf("import --force wrote other bindings:\n%s", again)
	}

	// No Bitstream names the AFU the cards run: a stub, and validate
	// says what to fill in.
	if err := os.Remove(filepath.Join(f.repo, "bitstreams", "nfv-fw-v1.yaml")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = f.run("", "import", "--repo", f.repo, "--insecure", "--force")
	if code != 1 {
		t.Fatalf("import with an unknown AFU: exit %d, want 1\n%s\n%s", code, out, errOut)
	}
	stub := "fill-in-afu-aa11b2c3d4e5f60718293a4b5c6d7e01"
	if !strings.Contains(out, "1 stub Bitstream(s) to fill in, in bitstreams/imported.yaml") {
		t.Errorf("import output:\n%s", out)
	}
	for _, want := range []string{
		"bitstreams/imported.yaml:", "bitstream " + stub + ": sha256: want a SHA-256 digest of 64 hex digits, got \"FILL-IN-the-sha256-of-that-gbs-file\"",
		"does not validate yet: fill in what the errors above name",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("import's validation lacks %q:\n%s", want, errOut)
		}
	}
	code, _, errOut = f.run("", "validate", f.repo)
	if code != 1 || !strings.Contains(errOut, stub) {
		t.Errorf("validate after a stub: exit %d\n%s", code, errOut)
	}
}
