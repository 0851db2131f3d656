package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
)

// TestApplyWithOpenStack applies a fleet of two nodes end to end: one
// whose VMs OpenStack manages (fixture Keystone, Nova, Glance and Cyborg,
// a real Placement), one a simulated node. The core changes the simulated
// node, the OpenStack side the other; a closed window holds the server
// replacement in the plan and in apply alike; once it opens, apply asks,
// replaces the server and waits until it is ACTIVE; the next plan is
// empty.
func TestApplyWithOpenStack(t *testing.T) {
	ctx := context.Background()
	const (
		ifID  = "9926ab6d-6c92-5a68-aabc-a7d84c545738"
		afuID = "d8424dc4-a4a3-c413-f89e-433683f9040b"
	)
	cloud, vnfA := newOpenStackLab(t, afuID)
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(cloud.CloudsYAML("lab")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", clouds)
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", "")

	// The simulated node agents answer on a loopback port chosen first,
	// since the fleet names it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/nodes/"
	repo := filepath.Join(dir, "fleet")
	data := gbs(t, ifID, afuID, "PAYLOAD")
	sum := sha256hex(data)
	closed := "windows:\n  - kind: deny\n    schedule: \"* * * * *\"\n    duration: 1h\n"
	writeFleet := func(windows string) {
		t.Helper()
		files := map[string]string{
			"bitstreams/gzip.gbs": string(data),
			"fleet.yaml":          openStackFleet(base, sum, windows),
		}
		for name, body := range files {
			p := filepath.Join(repo, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeFleet(closed)
	fleet, err := spec.Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := sim.New(fleet, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	srv := httptest.NewUnstartedServer(fs.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		root := newRootCommand(streams{in: strings.NewReader(stdin), out: &out, err: &errb})
		root.SetArgs(append(args, "--repo", repo, "--os-cloud", "lab", "--insecure", "--state-dir", filepath.Join(dir, "state")))
		code := exitCode(&errb, root.ExecuteContext(ctx))
		return out.String(), errb.String(), code
	}
	profile := "fpgaops-gzip-pac-a10-" + sum[:8]
	flavor := "fpgaops-2c4096m40g-gzip-pac-a10-" + sum[:8]

	// The deny window is open: the plan shows the replacement held.
	out, errs, code := run("", "plan", "--detailed-exitcode")
	if code != 2 || !strings.Contains(out, "fpgaops will perform") {
		t.Fatalf("plan exited %d, want 2:\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"node compute-02", "node/compute-02/fpga/pac0:program", "node/compute-02/fpga/pac0/pf/vm/vnf-b:attach",
		"OpenStack changes:", "  + image/gzip", "  + device-profile/" + profile, "  + flavor/" + flavor,
		"  ~ deployable/compute-01/pac1",
		"-/+ server/compute-01/vnf-a (blocked: outside the maintenance windows: ",
		"OpenStack manages the cards of 1 node(s) (compute-01)",
		"Plan: 1 to program, 1 to attach, 0 to detach, 0 to set VFs, 0 to report, 0 held back. OpenStack: 3 to create, 0 to replace (0 disruptive), 1 to update, 1 blocked, 0 drift.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "node/compute-01/") {
		t.Errorf("the core plans changes for the OpenStack node:\n%s", out)
	}

	// Not approved: nothing changes.
	out, errs, code = run("no\n", "apply")
	if code != 1 || !strings.Contains(errs, "apply cancelled") || !strings.Contains(out, "Do you want to perform these actions?") {
		t.Fatalf("apply answered no: exit %d\n%s\n%s", code, out, errs)
	}
	if len(cloud.Images()) != 0 || fs.Stats().Programs != 0 {
		t.Fatal("a cancelled apply changed something")
	}

	// Approved in JSON: both sides apply, the replacement stays held.
	out, errs, code = run("", "apply", "--auto-approve", "-o", "json")
	if code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errs)
	}
	var rep struct {
		Apply struct {
			Applied int `json:"applied"`
			Failed  int `json:"failed"`
		} `json:"apply"`
		OpenStack []openstack.Result `json:"openstack"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, out)
	}
	got := map[string]openstack.Outcome{}
	for _, r := range rep.OpenStack {
		got[r.ID] = r.Outcome
	}
	want := map[string]openstack.Outcome{
		"image/gzip": openstack.Applied, "device-profile/" + profile: openstack.Applied, "flavor/" + flavor: openstack.Applied,
		"deployable/compute-01/pac1": openstack.Applied, "server/compute-01/vnf-a": openstack.Skipped,
	}
	for id, o := range want {
		if got[id] != o {
			t.Errorf("%s: %q, want %s (report %+v)", id, got[id], o, rep.OpenStack)
		}
	}
	if rep.Apply.Applied != 2 || rep.Apply.Failed != 0 {
		t.Errorf("core apply: %+v, want program and attach applied", rep.Apply)
	}
	if s := cloud.Servers(); len(s) != 1 || s[0].ID != vnfA {
		t.Fatalf("vnf-a was replaced inside a deny window: %+v", s)
	}

	// The window closes: asked and approved, the server is replaced and
	// waited for.
	writeFleet("")
	out, errs, code = run("yes\n", "apply")
	if code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"-/+ server/compute-01/vnf-a (disruptive)", "server/compute-01/vnf-a: applied", "Apply complete: ", "OpenStack: 1 applied, 0 skipped, 0 failed."} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	servers := cloud.Servers()
	if len(servers) != 1 || servers[0].ID == vnfA || servers[0].Status != "ACTIVE" || servers[0].Flavor.Name != flavor {
		t.Fatalf("vnf-a after apply: %+v", servers)
	}
	reads := 0
	for _, r := range cloud.Requests() {
		if r == "GET /compute/v2.1/servers/"+servers[0].ID {
			reads++
		}
	}
	if reads < cloud.BootPolls+1 {
		t.Errorf("apply read the new server %d times: it did not wait through BUILD", reads)
	}
	if testing.Verbose() {
		t.Logf("apply:\n%s", out)
	}

	// Converged: the next plan is empty, on both sides.
	out, errs, code = run("", "plan", "--detailed-exitcode")
	if code != 0 || !strings.Contains(out, "No changes.") {
		t.Fatalf("plan after apply exited %d, want 0 and no changes:\n%s\n%s", code, out, errs)
	}
	if st := fs.Stats(); st.Programs != 1 || st.Violations != 0 {
		t.Errorf("sim stats %+v: want one program (compute-02) and no violation", st)
	}
	if strings.Contains(out+errs, cloud.Password) {
		t.Error("the password shows in the output")
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
