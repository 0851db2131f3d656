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

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
)

// openStackScene is TestApplyWithOpenStack's world: the lab cloud with a
// real Placement, a simulated node agent for both nodes' cards, and the
// fleet repository, whose policy's windows write sets.
type openStackScene struct {
	cloud *openstacktest.Cloud
	vnfA  string
	sim   *sim.Sim
	repo  string
	dir   string
	sum   string
	write func(windows string)
}

func newOpenStackScene(t *testing.T) *openStackScene {
	t.Helper()
	const (
		ifID  = "9926ab6d-6c92-5a68-aabc-a7d84c545738"
		afuID = "d8424dc4-a4a3-c413-f89e-433683f9040b"
	)
	sc := &openStackScene{dir: t.TempDir()}
	sc.cloud, sc.vnfA = newOpenStackLab(t, afuID)
	clouds := filepath.Join(sc.dir, "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(sc.cloud.CloudsYAML("lab")), 0o600); err != nil {
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
	sc.repo = filepath.Join(sc.dir, "fleet")
	data := gbs(t, ifID, afuID, "PAYLOAD")
	sc.sum = sha256hex(data)
	sc.write = func(windows string) {
		t.Helper()
		files := map[string]string{
			"bitstreams/gzip.gbs": string(data),
			"fleet.yaml":          openStackFleet(base, sc.sum, windows),
		}
		for name, body := range files {
			p := filepath.Join(sc.repo, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	sc.write("")
	fleet, err := spec.Load(sc.repo)
	if err != nil {
		t.Fatal(err)
	}
	if sc.sim, err = sim.New(fleet, sim.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.sim.Close() })
	srv := httptest.NewUnstartedServer(sc.sim.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return sc
}

// run runs fpgaops with the repository, the cloud and the state directory.
func (sc *openStackScene) run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(streams{in: strings.NewReader(stdin), out: &out, err: &errb})
	root.SetArgs(append(args, "--insecure", "--state-dir", filepath.Join(sc.dir, "state")))
	code := exitCode(&errb, root.ExecuteContext(context.Background()))
	return out.String(), errb.String(), code
}

const denyAll = "windows:\n  - kind: deny\n    schedule: \"* * * * *\"\n    duration: 1h\n"

// TestApplyWithOpenStack applies a fleet of two nodes end to end: one
// whose VMs OpenStack manages (fixture Keystone, Nova, Glance and Cyborg,
// a real Placement), one a simulated node. One plan holds both: the card
// chain of the simulated node, the cloud's objects and changes for the
// other, gated alike; a closed window holds the server replacement in the
// plan and in apply; once it opens, apply asks, replaces the server and
// waits until it is ACTIVE; the next plan is empty.
func TestApplyWithOpenStack(t *testing.T) {
	sc := newOpenStackScene(t)
	sc.write(denyAll)
	cloud, vnfA, fs, sum := sc.cloud, sc.vnfA, sc.sim, sc.sum
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return sc.run(t, stdin, append(args, "--repo", sc.repo, "--os-cloud", "lab")...)
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
		"shared objects\n", "  + create   image/gzip:create (wave 1)", "  + create   device-profile/" + profile + ":create (wave 1)",
		"  + create   flavor/" + flavor + ":create (wave 1)",
		"  ~ program  node/compute-01/fpga/pac1:program (wave 2)",
		"  ± replace  node/compute-01/vm/vnf-a:replace (disruptive, held)",
		"      held by window: ",
		"Backend openstack attaches and programs the cards of 1 node(s) (compute-01) itself",
		"Plan: 2 to program, 1 to attach, 0 to detach, 0 to set VFs, 3 to create, 0 to replace, 0 to update, 0 to report, 1 held back.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "node/compute-01/fpga/pac0/") {
		t.Errorf("the core plans a card chain for the OpenStack node:\n%s", out)
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
		Applied int            `json:"applied"`
		Failed  int            `json:"failed"`
		Held    int            `json:"held"`
		Results []plans.Result `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, out)
	}
	got := map[string]plans.Status{}
	for _, r := range rep.Results {
		got[r.ID] = r.Status
	}
	want := map[string]plans.Status{
		"image/gzip:create": plans.StatusApplied, "device-profile/" + profile + ":create": plans.StatusApplied,
		"flavor/" + flavor + ":create": plans.StatusApplied, "node/compute-01/fpga/pac1:program": plans.StatusApplied,
		"node/compute-01/vm/vnf-a:replace":  plans.StatusHeld,
		"node/compute-02/fpga/pac0:program": plans.StatusApplied, "node/compute-02/fpga/pac0/pf/vm/vnf-b:attach": plans.StatusApplied,
	}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("%s: %q, want %s (report %+v)", id, got[id], st, rep.Results)
		}
	}
	if rep.Applied != 6 || rep.Failed != 0 || rep.Held != 1 {
		t.Errorf("apply: %d applied, %d failed, %d held; want 6, 0, 1", rep.Applied, rep.Failed, rep.Held)
	}
	if s := cloud.Servers(); len(s) != 1 || s[0].ID != vnfA {
		t.Fatalf("vnf-a was replaced inside a deny window: %+v", s)
	}

	// The window closes: asked and approved, the server is replaced and
	// waited for.
	sc.write("")
	out, errs, code = run("yes\n", "apply")
	if code != 0 {
		t.Fatalf("apply exited %d:\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"± replace  node/compute-01/vm/vnf-a:replace (wave 1, disruptive)", "node/compute-01/vm/vnf-a:replace: applied",
		"Apply complete: 1 applied, 0 skipped (done before), 0 failed, 0 blocked, 0 held back."} {
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
