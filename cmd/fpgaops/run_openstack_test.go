package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/traits"
)

// newOpenStackLab starts a real Placement holding host cmp-01 and its two
// cards (FPGA inventory and the traits Cyborg's driver reports, the
// function trait of afuID included) and a fixture cloud over it with
// server vnf-a on cmp-01; it returns the cloud and vnf-a's ID.
func newOpenStackLab(t *testing.T, afuID string) (*openstacktest.Cloud, string) {
	t.Helper()
	pl, err := openstacktest.StartPlacement()
	if err != nil {
		t.Fatal(err) // a missing Placement fails: .ci/run installs it
	}
	t.Cleanup(pl.Stop)
	ctx := context.Background()

	const (
		rp0 = "5e0e5b1a-0000-4000-8000-0000000000a0"
		rp1 = "5e0e5b1a-0000-4000-8000-0000000000a1"
	)
	// Placement: the host and its two cards with FPGA inventory and the
	// traits Cyborg's driver reports, the function trait included.
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{}}
	pc.SetToken(openstacktest.PlacementToken)
	sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: pl.URL + "/", Type: "placement", Microversion: "1.39"}
	root, err := resourceproviders.Create(ctx, sc, resourceproviders.CreateOpts{Name: "cmp-01"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	cardTraits := []string{openstack.TraitIntel, openstack.BoardTrait(spec.BoardPACA10), openstack.FunctionTrait(strings.ReplaceAll(afuID, "-", "")), openstack.RegionTrait("9926ab6d6c925a68aabca7d84c545738")}
	for _, tr := range cardTraits {
		if err := traits.Create(ctx, sc, tr).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ uuid, bdf string }{{rp0, "0000:5e:00.0"}, {rp1, "0000:be:00.0"}} {
		rp, err := resourceproviders.Create(ctx, sc, resourceproviders.CreateOpts{Name: "cmp-01_" + c.bdf, UUID: c.uuid, ParentProviderUUID: root.UUID}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		inv, err := resourceproviders.UpdateInventories(ctx, sc, rp.UUID, resourceproviders.UpdateInventoriesOpts{
			ResourceProviderGeneration: rp.Generation,
			Inventories:                map[string]resourceproviders.Inventory{openstack.ResourceClassFPGA: {Total: 1, MaxUnit: 1, MinUnit: 1, StepSize: 1, AllocationRatio: 1}},
		}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resourceproviders.UpdateTraits(ctx, sc, rp.UUID, resourceproviders.UpdateTraitsOpts{ResourceProviderGeneration: inv.ResourceProviderGeneration, Traits: cardTraits}).Extract(); err != nil {
			t.Fatal(err)
		}
	}

	cloud := openstacktest.NewCloud(t, pl.URL)
	cloud.Token = openstacktest.PlacementToken
	cloud.BootPolls = 2 // the new server builds for a while
	cloud.AddDevice("cmp-01", "0000:5e:00.0", "0x09c4", rp0, "")
	cloud.AddDevice("cmp-01", "0000:be:00.0", "0x09c4", rp1, "")
	cloud.AddFlavor(openstacktest.Flavor{Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40})
	vnfA := cloud.AddServer(openstacktest.Server{Name: "vnf-a", Host: "cmp-01", ImageID: "6b0c5b5e-0000-4000-8000-00000000cafe", Networks: []string{"net-1"}}, "m1.medium")
	return cloud, vnfA
}

// openStackFleet is a fleet of two nodes: compute-01, whose VMs OpenStack
// manages (hostname cmp-01), with server vnf-a and a pool card, and
// compute-02, a node agent's, with VM vnf-b; both on bitstream gzip.
func openStackFleet(base, sum, windows string) string {
	return `apiVersion: fpgaops/v1
kind: Node
name: compute-01
hostname: cmp-01
endpoint: ` + base + `compute-01
fpgas:
  - {slot: pac0, pci: "0000:5e:00.0", board: pac-a10, vfs: 0}
  - {slot: pac1, pci: "0000:be:00.0", board: pac-a10, vfs: 0}
---
apiVersion: fpgaops/v1
kind: Node
name: compute-02
endpoint: ` + base + `compute-02
fpgas:
  - {slot: pac0, pci: "0000:5e:00.0", board: pac-a10, vfs: 0}
---
apiVersion: fpgaops/v1
kind: Bitstream
name: gzip
file: bitstreams/gzip.gbs
sha256: ` + sum + `
---
apiVersion: fpgaops/v1
kind: Binding
name: vnf-a
node: compute-01
fpga: pac0
function: pf
vm: vnf-a
bitstream: gzip
---
apiVersion: fpgaops/v1
kind: Binding
name: pool-gzip
node: compute-01
fpga: pac1
function: pf
bitstream: gzip
---
apiVersion: fpgaops/v1
kind: Binding
name: vnf-b
node: compute-02
fpga: pac0
function: pf
vm: vnf-b
bitstream: gzip
---
apiVersion: fpgaops/v1
kind: Policy
name: lab
` + windows + `drift: report
`
}

// TestRunWithOpenStack runs the controller (run --once) against the same
// two nodes as TestApplyWithOpenStack: each run plans the fleet and the
// cloud as one, with the policy's gates, and applies what they allow (a
// deny window holds the server's replacement; once lifted, the server is
// replaced and waited for), and records every change in the history and
// the status. A last run finds nothing to change.
func TestRunWithOpenStack(t *testing.T) {
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

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String() + "/nodes/"
	data := gbs(t, ifID, afuID, "PAYLOAD")
	sum := sha256hex(data)
	remote := gittest.NewRemote(t, "fleet")
	closed := "windows:\n  - kind: deny\n    schedule: \"* * * * *\"\n    duration: 1h\n"
	remote.Commit("vnf-a and vnf-b on gzip, in a freeze", map[string][]byte{
		"fleet.yaml":          []byte(openStackFleet(base, sum, closed)),
		"bitstreams/gzip.gbs": data,
	}, nil)
	fleet, err := spec.Load(remote.Work)
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

	stateDir := filepath.Join(dir, "state")
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errb syncbuf.Buffer
		root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &errb})
		root.SetArgs(args)
		code := exitCode(&errb, root.ExecuteContext(context.Background()))
		return out.String(), errb.String(), code
	}
	runOnce := func() (string, string, int) {
		t.Helper()
		return cli("run", "--once", "--git", remote.FileURL(), "--state-dir", stateDir, "--os-cloud", "lab", "--insecure")
	}
	flavor := "fpgaops-2c4096m40g-gzip-pac-a10-" + sum[:8]

	// The freeze holds the server's replacement, as in apply: the rest of
	// the cloud's changes and the fleet's apply, the replacement is left
	// as a violation.
	out, errs, code := runOnce()
	if code != 0 {
		t.Fatalf("run --once in the freeze exited %d:\n%s\n%s", code, out, errs)
	}
	if want := "6 change(s), 1 violation(s)."; !strings.Contains(out, want) {
		t.Errorf("run --once in the freeze printed:\n%s\nwant %q", out, want)
	}
	if s := cloud.Servers(); len(s) != 1 || s[0].ID != vnfA {
		t.Fatalf("vnf-a was replaced inside a deny window: %+v", s)
	}

	// The freeze is lifted: the next run replaces the server.
	commit := remote.Commit("lift the freeze", map[string][]byte{"fleet.yaml": []byte(openStackFleet(base, sum, ""))}, nil)
	out, errs, code = runOnce()
	if code != 0 {
		t.Fatalf("run --once exited %d:\n%s\n%s", code, out, errs)
	}
	if want := "Applied revision " + commit + ": 1 change(s), 0 violation(s)."; !strings.Contains(out, want) {
		t.Errorf("run --once printed:\n%s\nwant %q", out, want)
	}
	servers := cloud.Servers()
	if len(servers) != 1 || servers[0].ID == vnfA || servers[0].Status != "ACTIVE" || servers[0].Flavor.Name != flavor {
		t.Fatalf("vnf-a after the run: %+v", servers)
	}
	if len(cloud.Images()) != 1 {
		t.Errorf("images after the run: %+v", cloud.Images())
	}
	if st := fs.Stats(); st.Programs != 1 || st.Violations != 0 {
		t.Errorf("sim stats %+v: want one program (compute-02) and no violation", st)
	}

	history := func() []state.Run {
		t.Helper()
		out, errs, code := cli("history", "--state-dir", stateDir, "-o", "json")
		if code != 0 {
			t.Fatalf("history exited %d:\n%s\n%s", code, out, errs)
		}
		var runs []state.Run
		if err := json.Unmarshal([]byte(out), &runs); err != nil {
			t.Fatalf("history -o json: %v\n%s", err, out)
		}
		return runs
	}
	runs := history()
	if len(runs) != 2 {
		t.Fatalf("history after two runs: %+v", runs)
	}
	// Newest first: the frozen run made the cloud's objects, programmed
	// the pool card and compute-02's card; the lifted one replaced vnf-a.
	frozen, lifted := runs[1], runs[0]
	if want := (plans.ByAction{Program: 2, Attach: 1, Create: 3}); frozen.Applied != want || frozen.Plan.Held != 1 || frozen.Results.Held != 1 || frozen.Violations != 1 {
		t.Errorf("history: the frozen run applied %+v (want %+v), plan %+v, results %+v, %d violation(s)", frozen.Applied, want, frozen.Plan, frozen.Results, frozen.Violations)
	}
	if want := (plans.ByAction{Replace: 1}); lifted.Applied != want || lifted.Results.Failed != 0 || lifted.Outcome != state.OutcomeApplied {
		t.Errorf("history: the lifted run %+v", lifted)
	}

	// The text history's CHANGED column: 6, then 1.
	out, errs, code = cli("history", "--state-dir", stateDir)
	if code != 0 {
		t.Fatalf("history exited %d:\n%s\n%s", code, out, errs)
	}
	var changed []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 8 {
			changed = append(changed, f[6])
		}
	}
	if !slices.Equal(changed, []string{"1", "6"}) {
		t.Errorf("history's CHANGED column = %v, want [1 6]:\n%s", changed, out)
	}

	out, errs, code = cli("status", "--state-dir", stateDir, "-o", "json")
	if code != 0 {
		t.Fatalf("status exited %d:\n%s\n%s", code, out, errs)
	}
	var status struct {
		LastRun *state.Run `json:"lastRun"`
	}
	if err := json.Unmarshal([]byte(out), &status); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if status.LastRun == nil || status.LastRun.Applied.Replace != 1 {
		t.Errorf("status does not record the replacement:\n%s", out)
	}

	// Converged: the second run changes nothing on either side.
	before := len(cloud.Requests())
	out, errs, code = runOnce()
	if code != 0 {
		t.Fatalf("second run --once exited %d:\n%s\n%s", code, out, errs)
	}
	if want := "0 change(s), 0 violation(s)."; !strings.Contains(out, want) {
		t.Errorf("second run printed:\n%s\nwant %q", out, want)
	}
	for _, r := range cloud.Requests()[before:] {
		// Reads, and the Keystone login every run makes.
		if !strings.HasPrefix(r, "GET ") && !strings.HasSuffix(r, "/auth/tokens") {
			t.Errorf("the second run changed the cloud: %s", r)
		}
	}
	if s := cloud.Servers(); len(s) != 1 || s[0].ID != servers[0].ID {
		t.Errorf("the second run touched vnf-a: %+v", s)
	}
	runs = history()
	if len(runs) != 3 {
		t.Fatalf("history after three runs: %d runs", len(runs))
	}
	if second := runs[0]; second.Applied.Total() != 0 || second.Results.Applied != 0 {
		t.Errorf("history: the second run %+v", second)
	}
	if strings.Contains(out+errs, cloud.Password) {
		t.Error("the password shows in the output")
	}
}
