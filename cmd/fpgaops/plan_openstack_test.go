package main

import (
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/plans"
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

// TestPlanWithOpenStack: the cloud's changes are changes of the one plan,
// in text (one summary line), in JSON (one document, each change naming
// its backend) and in a saved plan, which applies them exactly; a cloud
// that is not configured is an error, not an unknown node.
func TestPlanWithOpenStack(t *testing.T) {
	sc := newOpenStackScene(t)
	profile := "fpgaops-gzip-pac-a10-" + sc.sum[:8]
	flavor := "fpgaops-2c4096m40g-gzip-pac-a10-" + sc.sum[:8]
	out, errs, code := sc.run(t, "", "plan", "--repo", sc.repo, "--os-cloud", "lab", "--detailed-exitcode")
	if code != 2 {
		t.Fatalf("plan exited %d, want 2 for changes\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"fpgaops will perform the following actions:",
		"\nshared objects\n",
		"  + create   image/gzip:create (wave 1)\n      file: bitstreams/gzip.gbs\n      name: fpgaops-gzip\n",
		"  + create   device-profile/" + profile + ":create (wave 1)",
		"  + create   flavor/" + flavor + ":create (wave 1)",
		"      after: device-profile/" + profile + ":create",
		"  ± replace  node/compute-01/vm/vnf-a:replace (wave 2, disruptive)\n      vnf-a (running) is deleted and booted again\n",
		"      flavor: m1.medium -> " + flavor,
		"Backend openstack attaches and programs the cards of 1 node(s) (compute-01) itself",
		"\nPlan: 2 to program, 1 to attach, 0 to detach, 0 to set VFs, 3 to create, 1 to replace, 0 to update, 0 to report, 0 held back. Rolls out in 2 waves",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "Plan:") != 1 || strings.Contains(out, "node/compute-01/fpga/pac0:program") {
		t.Errorf("want one plan with one summary and no card chain for the OpenStack node:\n%s", out)
	}
	if strings.Contains(out+errs, sc.cloud.Password) {
		t.Error("the password shows in the plan")
	}

	out, errs, code = sc.run(t, "", "plan", "--repo", sc.repo, "--os-cloud", "lab", "-o", "json")
	if code != 0 {
		t.Fatalf("plan -o json exited %d\n%s", code, errs)
	}
	var doc plans.Plan
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	backends := map[string]string{}
	for _, c := range doc.Changes {
		backends[c.ID] = c.Backend
	}
	if doc.FormatVersion != 2 || !slices.Equal(doc.Owned["openstack"], []string{"compute-01"}) || backends["image/gzip:create"] != "openstack" ||
		backends["node/compute-01/vm/vnf-a:replace"] != "openstack" || backends["node/compute-02/fpga/pac0:program"] != "" {
		t.Errorf("json document: version %d, owned %v, backends %v", doc.FormatVersion, doc.Owned, backends)
	}

	// A saved plan holds the cloud's changes, and applies exactly them.
	saved := filepath.Join(t.TempDir(), "p.plan")
	if out, errs, code = sc.run(t, "", "plan", "--repo", sc.repo, "--os-cloud", "lab", "--out", saved); code != 0 {
		t.Fatalf("plan --out exited %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = sc.run(t, "", "apply", saved, "--os-cloud", "lab")
	if code != 0 || !strings.Contains(out, "Apply complete: 7 applied") {
		t.Fatalf("apply of the saved plan exited %d\n%s\n%s", code, out, errs)
	}
	if s := sc.cloud.Servers(); len(s) != 1 || s[0].ID == sc.vnfA || s[0].Flavor.Name != flavor {
		t.Errorf("vnf-a after applying the saved plan: %+v", s)
	}

	_, errs, code = sc.run(t, "", "plan", "--repo", sc.repo, "--os-cloud", "nosuchcloud")
	if code != 1 || !strings.Contains(errs, "nosuchcloud") {
		t.Errorf("an unknown cloud: exit %d, %s", code, errs)
	}
}
