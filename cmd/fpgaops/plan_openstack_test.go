package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
)

// gbs builds a GBS file: GUID, metadata length, metadata, payload.
func gbs(t *testing.T, ifID, afuID, payload string) []byte {
	t.Helper()
	md, err := json.Marshal(map[string]any{"version": 1, "platform-name": "pac_a10", "afu-image": map[string]any{
		"magic-no": bitstream.MagicNo, "interface-uuid": ifID,
		"accelerator-clusters": []map[string]any{{"name": "x", "total-contexts": 1, "accelerator-type-uuid": afuID}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte(nil), bitstream.GUID[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(md)))
	b = append(b, md...)
	return append(b, payload...)
}

func TestPlanWithOpenStack(t *testing.T) {
	pl, err := openstacktest.StartPlacement()
	if err != nil {
		t.Fatal(err) // a missing Placement fails: .ci/run installs it
	}
	t.Cleanup(pl.Stop)

	// Placement: the host and its card, as Nova and Cyborg report them.
	ctx := context.Background()
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{}}
	pc.SetToken(openstacktest.PlacementToken)
	sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: pl.URL + "/", Type: "placement", Microversion: "1.39"}
	root, err := resourceproviders.Create(ctx, sc, resourceproviders.CreateOpts{Name: "cmp-01"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	const rp = "5e0e5b1a-0000-4000-8000-000000000001"
	if _, err := resourceproviders.Create(ctx, sc, resourceproviders.CreateOpts{Name: "cmp-01_0000:5e:00.0", UUID: rp, ParentProviderUUID: root.UUID}).Extract(); err != nil {
		t.Fatal(err)
	}

	cloud := openstacktest.NewCloud(t, pl.URL)
	cloud.Token = openstacktest.PlacementToken
	cloud.AddDevice("cmp-01", "0000:5e:00.0", "0x09c4", rp, "")
	cloud.AddFlavor(openstacktest.Flavor{Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40})
	cloud.AddServer(openstacktest.Server{Name: "vnf-a", Host: "cmp-01", Networks: []string{"net-1"}}, "m1.medium")
	dir := t.TempDir()
	clouds := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(cloud.CloudsYAML("lab")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", clouds)

	repo := filepath.Join(dir, "fleet")
	data := gbs(t, "9926ab6d-6c92-5a68-aabc-a7d84c545738", "d8424dc4-a4a3-c413-f89e-433683f9040b", "PAYLOAD")
	sum := sha256.Sum256(data)
	files := map[string]string{
		"bitstreams/gzip.gbs": string(data),
		"fleet.yaml": `apiVersion: fpgaops/v1
kind: Node
name: compute-01
hostname: cmp-01
endpoint: http://127.0.0.1:9/nodes/compute-01
fpgas:
  - slot: pac0
    pci: "0000:5e:00.0"
    board: pac-a10
    vfs: 0
---
apiVersion: fpgaops/v1
kind: Bitstream
name: gzip
file: bitstreams/gzip.gbs
sha256: ` + hex.EncodeToString(sum[:]) + `
---
apiVersion: fpgaops/v1
kind: Binding
name: vnf-a
node: compute-01
fpga: pac0
function: pf
vm: vnf-a
bitstream: gzip
`,
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
	obs := filepath.Join(dir, "observed.json")
	if err := os.WriteFile(obs, []byte(`{"version": 1, "nodes": [{"name": "compute-01", "state": "ok",
  "fpgas": [{"pci": "0000:5e:00.0", "vendor": 32902, "device": 2500, "board": "pac-a10", "numaNode": 0, "stack": "dfl",
             "interfaceID": "9926ab6d6c925a68aabca7d84c545738", "bitstreamID": 0, "numVFs": 0, "totalVFs": 1,
             "ports": [{"id": 0}], "health": {}}],
  "vms": [{"name": "vnf-a", "running": true}]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &errb})
		root.SetArgs(args)
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}

	out, err := run("plan", "--repo", repo, "--observed", obs, "--os-cloud", "lab", "--detailed-exitcode")
	if !errors.Is(err, errChanges) {
		t.Fatalf("plan: %v, want exit 2 for changes\n%s", err, out)
	}
	for _, want := range []string{
		"fpgaops will perform the following actions:",
		"OpenStack changes:",
		"  + image/gzip",
		"  + device-profile/fpgaops-gzip-pac-a10-" + hex.EncodeToString(sum[:4]),
		"  + flavor/fpgaops-2c4096m40g-gzip-pac-a10-" + hex.EncodeToString(sum[:4]),
		"-/+ server/compute-01/vnf-a (disruptive)",
		// The card is OpenStack's: the core plans nothing for it, and one
		// summary line covers both.
		"OpenStack manages the cards of 1 node(s) (compute-01)",
		"\nPlan: 0 to program, 0 to attach, 0 to detach, 0 to set VFs, 0 to report, 0 held back. OpenStack: 3 to create, 1 to replace (1 disruptive), 0 to update, 0 blocked, 1 drift.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "Plan:") != 1 || strings.Contains(out, "node/compute-01/fpga/pac0") {
		t.Errorf("want one plan with one summary and no core change for the OpenStack node:\n%s", out)
	}
	if strings.Contains(out, cloud.Password) {
		t.Error("the password shows in the plan")
	}

	out, err = run("plan", "--repo", repo, "--observed", obs, "--os-cloud", "lab", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Plan      map[string]any `json:"plan"`
		OpenStack struct {
			Changes []struct {
				Action string `json:"action"`
				ID     string `json:"id"`
			} `json:"changes"`
		} `json:"openstack"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	// The card's provider has no FPGA inventory yet: drift, last.
	if doc.Plan["formatVersion"] == nil || len(doc.OpenStack.Changes) != 5 || doc.OpenStack.Changes[3].Action != "replace-server" || doc.OpenStack.Changes[4].ID != "card/compute-01/pac0" {
		t.Errorf("json document: %+v", doc)
	}

	if _, err := run("plan", "--repo", repo, "--observed", obs, "--os-cloud", "nosuchcloud"); err == nil || !strings.Contains(err.Error(), "nosuchcloud") {
		t.Errorf("an unknown cloud: %v", err)
	}
}
