package openstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/fpgaops/fpgaops/spec"
)

// e2e is a small fleet on two OpenStack nodes, the fixture cloud it runs
// on and the real Placement behind it.
type e2e struct {
	cloud      *openstacktest.Cloud
	fleet      *spec.Fleet
	clouds     string // clouds.yaml path
	gzipData   []byte
	nlbImage   string
	deps       map[string]string // "node/slot" -> deployable UUID
	vmA, tenDB string            // server IDs
}

const (
	e2eRPA0 = "3c0e5b1a-0000-4000-8000-0000000001a0"
	e2eRPA1 = "3c0e5b1a-0000-4000-8000-0000000001a1"
	e2eRPB0 = "3c0e5b1a-0000-4000-8000-0000000002b0"
	e2eRPB1 = "3c0e5b1a-0000-4000-8000-0000000002b1"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newE2E builds the scene. tag, one hex digit, goes into host names and
// provider UUIDs, so that tests sharing the package's Placement do not
// see each other's providers.
func newE2E(t *testing.T, tag string) *e2e {
	t.Helper()
	h1, h2 := "e2e-cmp-01-"+tag, "e2e-cmp-02-"+tag
	rp := func(u string) string { return tag + u[1:] }
	pc := placementClient(t, http.DefaultTransport)
	seedHost(t, pc, h1,
		seedCard{uuid: rp(e2eRPA0), bdf: "0000:5e:00.0", fpga: 1, traits: []string{TraitIntel, "CUSTOM_FPGA_INTEL_PAC_ARRIA10", RegionTrait(ifA10)}},
		seedCard{uuid: rp(e2eRPA1), bdf: "0000:be:00.0", fpga: 1, traits: []string{TraitIntel, "CUSTOM_FPGA_INTEL_PAC_ARRIA10"}})
	seedHost(t, pc, h2,
		seedCard{uuid: rp(e2eRPB0), bdf: "0000:5e:00.0", fpga: 1, traits: []string{TraitIntel, "CUSTOM_FPGA_INTEL_PAC_N3000"}},
		seedCard{uuid: rp(e2eRPB1), bdf: "0000:af:00.0", fpga: 1, traits: []string{TraitIntel, "CUSTOM_FPGA_INTEL_PAC_N3000", FunctionTrait(afuGzip)}})

	e := &e2e{deps: map[string]string{}}
	e.cloud = openstacktest.NewCloud(t, placementURL)
	// With noauth2, Placement takes the token "admin"; Keystone issues it.
	e.cloud.Token = openstacktest.PlacementToken

	repo := t.TempDir()
	e.gzipData = append([]byte("XeonFPGA\xb7GBSv001"), bytes.Repeat([]byte("gzip"), 64)...)
	if err := os.MkdirAll(filepath.Join(repo, "bitstreams"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "bitstreams", "gzip.gbs"), e.gzipData, 0o644); err != nil {
		t.Fatal(err)
	}
	nlbData := append([]byte("XeonFPGA\xb7GBSv001"), bytes.Repeat([]byte("nlb0"), 64)...)
	e.fleet = &spec.Fleet{
		Root: repo,
		Nodes: []spec.Node{
			{Name: "compute-01", Hostname: h1, FPGAs: []spec.FPGA{
				{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10, InterfaceID: ifA10},
				{Slot: "pac1", PCI: "0000:be:00.0", Board: spec.BoardPACA10},
			}},
			{Name: "compute-02", Hostname: h2, FPGAs: []spec.FPGA{
				{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000},
				{Slot: "pac1", PCI: "0000:af:00.0", Board: spec.BoardN3000},
			}},
		},
		Bitstreams: []spec.Bitstream{
			{Name: "gzip", File: "bitstreams/gzip.gbs", SHA256: sha(e.gzipData), InterfaceID: ifA10, AFUID: afuGzip},
			{Name: "nlb", URL: "https://bitstreams.example.com/nlb.gbs", SHA256: sha(nlbData), AFUID: afuNLB},
		},
		Bindings: []spec.Binding{
			{Name: "pool-nlb", Node: "compute-02", FPGA: "pac0", Function: spec.PF, Bitstream: "nlb"},
			{Name: "pool-nlb-2", Node: "compute-02", FPGA: "pac1", Function: spec.PF, Bitstream: "nlb"},
			{Name: "vm-a-gzip", Node: "compute-01", FPGA: "pac0", Function: spec.PF, VM: "vm-a", Bitstream: "gzip"},
		},
		Policy: spec.Policy{Drift: spec.DriftReport},
	}

	c := e.cloud
	e.nlbImage = c.AddImage("fpgaops-nlb", nlbData, map[string]string{PropertySHA256: sha(nlbData), PropertyBitstream: "nlb"})
	e.deps["compute-01/pac0"] = c.AddDevice(h1, "0000:5e:00.0", "0x09c4", rp(e2eRPA0), "")
	e.deps["compute-01/pac1"] = c.AddDevice(h1, "0000:be:00.0", "0x09c4", rp(e2eRPA1), e.nlbImage)
	e.deps["compute-02/pac0"] = c.AddDevice(h2, "0000:5e:00.0", "0x0b30", rp(e2eRPB0), "")
	e.deps["compute-02/pac1"] = c.AddDevice(h2, "0000:af:00.0", "0x0b30", rp(e2eRPB1), "")
	c.AddFlavor(openstacktest.Flavor{ID: "3", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40})
	c.AddProfile(openstacktest.Profile{Name: "tenant-nlb", Groups: []map[string]string{{"resources:FPGA": "1"}}})
	c.AddFlavor(openstacktest.Flavor{ID: "7", Name: "db.fpga", VCPUs: 4, RAM: 8192, Disk: 80, ExtraSpecs: map[string]string{"accel:device_profile": "tenant-nlb"}})
	e.vmA = c.AddServer(openstacktest.Server{Name: "vm-a", Host: h1, ImageID: "6b0c5b5e-0000-4000-8000-00000000cafe", Networks: []string{"net-1"}, KeyName: "ops"}, "m1.medium")
	e.tenDB = c.AddServer(openstacktest.Server{Name: "db-1", Host: h2, ImageID: "6b0c5b5e-0000-4000-8000-00000000beef", Networks: []string{"net-2"}}, "db.fpga")
	c.BindARQ(e.tenDB, e.deps["compute-02/pac1"], "tenant-nlb")

	e.clouds = filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(e.clouds, []byte(c.CloudsYAML("lab")), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// stable replaces the IDs that differ between runs with names.
func (e *e2e) stable(s string) string {
	s = strings.ReplaceAll(s, e.nlbImage, "<image nlb>")
	for k, v := range e.deps {
		s = strings.ReplaceAll(s, v, "<deployable "+k+">")
	}
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestPlanEndToEnd(t *testing.T) {
	e := newE2E(t, "a")
	var out, logs bytes.Buffer
	changes, err := RunPlan(context.Background(), PlanRequest{
		Options: Options{Cloud: "lab", CloudsFile: e.clouds},
		Fleet:   e.fleet, Out: &out,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plan_e2e.golden", e.stable(out.String()))
	if !Summarize(changes).Actionable() {
		t.Error("plan has nothing to do")
	}
	for _, secret := range []string{e.cloud.Password} {
		if strings.Contains(out.String(), secret) || strings.Contains(logs.String(), secret) {
			t.Error("the password shows in the plan or the logs")
		}
	}

	var js bytes.Buffer
	if _, err := RunPlan(context.Background(), PlanRequest{Options: Options{Cloud: "lab", CloudsFile: e.clouds}, Fleet: e.fleet, Out: &js, Output: "json"}); err != nil {
		t.Fatal(err)
	}
	var jp JSONPlan
	if err := json.Unmarshal(js.Bytes(), &jp); err != nil {
		t.Fatalf("json plan: %v\n%s", err, js.String())
	}
	if !slices.EqualFunc(jp.Changes, changes, func(a, b Change) bool { return a.ID == b.ID && a.Action == b.Action }) || jp.Summary != Summarize(changes) {
		t.Errorf("json plan differs from the text plan's changes: %+v", jp.Summary)
	}
}

func TestApplyEndToEnd(t *testing.T) {
	ctx := context.Background()
	e := newE2E(t, "b")
	c, err := Connect(ctx, Options{Cloud: "lab", CloudsFile: e.clouds})
	if err != nil {
		t.Fatal(err)
	}
	p := New(c, nil)
	st, err := p.Observe(ctx, e.fleet)
	if err != nil {
		t.Fatal(err)
	}
	changes := Plan(e.fleet, st)

	// Without leave to disrupt, the server stays and the rest goes ahead.
	res, err := p.Apply(ctx, st, changes, ApplyOptions{Fleet: e.fleet, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	for _, r := range res {
		if r.Action == ReplaceServer && r.Outcome != Skipped {
			t.Errorf("server replaced without leave: %+v", r)
		}
	}
	if s := e.cloud.Servers(); s[0].ID != e.vmA {
		t.Errorf("vm-a was replaced")
	}

	st, err = p.Observe(ctx, e.fleet)
	if err != nil {
		t.Fatal(err)
	}
	changes = Plan(e.fleet, st)
	res, err = p.Apply(ctx, st, changes, ApplyOptions{Fleet: e.fleet, AllowDisruptive: true, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	var replaced bool
	for _, r := range res {
		replaced = replaced || r.Action == ReplaceServer && r.Outcome == Applied
	}
	if !replaced {
		t.Fatalf("vm-a not replaced: %+v", res)
	}

	// Glance holds the repository's bytes under the bitstream's name.
	var gzipImage string
	for _, im := range e.cloud.Images() {
		if im.Name == "fpgaops-gzip" {
			gzipImage = im.ID
			if im.Properties[PropertySHA256] != sha(e.gzipData) || !bytes.Equal(e.cloud.ImageData(im.ID), e.gzipData) || im.Status != "active" {
				t.Errorf("gzip image %+v does not hold the bitstream", im)
			}
		}
	}
	if gzipImage == "" {
		t.Fatal("no gzip image in Glance")
	}
	profile := ProfileName(e.fleet.Bitstreams[0], spec.BoardPACA10)
	var found bool
	for _, pr := range e.cloud.Profiles() {
		if pr.Name == profile {
			found = true
			if pr.Groups[0]["accel:bitstream_id"] != gzipImage || pr.Groups[0]["trait:"+RegionTrait(ifA10)] != "required" {
				t.Errorf("profile groups %v", pr.Groups)
			}
		}
	}
	if !found {
		t.Errorf("no device profile %s", profile)
	}
	flavor := FlavorName(2, 4096, 40, profile)
	for _, s := range e.cloud.Servers() {
		if s.Name != "vm-a" {
			continue
		}
		if s.ID == e.vmA || s.Flavor.Name != flavor || s.Flavor.ExtraSpecs["accel:device_profile"] != profile ||
			s.Host != e.fleet.Nodes[0].Hostname || !slices.Equal(s.Networks, []string{"net-1"}) || s.KeyName != "ops" || s.ImageID != "6b0c5b5e-0000-4000-8000-00000000cafe" {
			t.Errorf("vm-a after replace: %+v", s)
		}
	}
	for _, d := range e.cloud.Deployables() {
		switch d.UUID {
		case e.deps["compute-02/pac0"]:
			if !slices.Equal(d.Programmed, []string{e.nlbImage}) {
				t.Errorf("pool card programmed with %v, want nlb", d.Programmed)
			}
		case e.deps["compute-02/pac1"]:
			if len(d.Programmed) != 0 {
				t.Errorf("the card db-1 holds was programmed: %v", d.Programmed)
			}
		case e.deps["compute-01/pac0"]:
			if d.BitstreamID != gzipImage {
				t.Errorf("vm-a's card runs %s, want the gzip image", d.BitstreamID)
			}
		}
	}

	// Converged: what is left is blocked or drift.
	st, err = p.Observe(ctx, e.fleet)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, ch := range Plan(e.fleet, st) {
		left = append(left, line(ch))
	}
	want := []string{
		"program-deployable deployable/compute-02/pac1 blocked=held by running server db-1",
		"drift card/compute-01/pac0",
		"drift card/compute-01/pac1",
		"drift card/compute-02/pac0",
	}
	if !slices.Equal(left, want) {
		t.Errorf("after apply:\n  %s\nwant:\n  %s", strings.Join(left, "\n  "), strings.Join(want, "\n  "))
	}

	// In drift mode "correct", the traits are set in Placement.
	e.fleet.Policy.Drift = spec.DriftCorrect
	changes = Plan(e.fleet, st)
	if _, err := p.Apply(ctx, st, changes, ApplyOptions{Fleet: e.fleet}); err != nil {
		t.Fatalf("apply trait corrections: %v", err)
	}
	st, err = p.Observe(ctx, e.fleet)
	if err != nil {
		t.Fatal(err)
	}
	left = nil
	for _, ch := range Plan(e.fleet, st) {
		left = append(left, line(ch))
	}
	if !slices.Equal(left, want[:1]) {
		t.Errorf("after correcting traits:\n  %s\nwant only the blocked program", strings.Join(left, "\n  "))
	}
	a0 := st.node("compute-01").card("0000:5e:00.0")
	if !slices.Contains(a0.Traits, FunctionTrait(afuGzip)) || !slices.Contains(a0.Traits, RegionTrait(ifA10)) {
		t.Errorf("traits of vm-a's card: %v", a0.Traits)
	}
}

func TestCreateImageChecksTheDigest(t *testing.T) {
	ctx := context.Background()
	cloud := openstacktest.NewCloud(t, placementURL)
	data := []byte("XeonFPGA\xb7GBSv001 served")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	t.Cleanup(srv.Close)
	repo := t.TempDir()
	if err := os.WriteFile(filepath.Join(repo, "a.gbs"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(cloud.CloudsYAML("lab")), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Connect(ctx, Options{Cloud: "lab", CloudsFile: clouds})
	if err != nil {
		t.Fatal(err)
	}
	p := New(c, nil)
	tests := []struct {
		name    string
		image   ImageChange
		wantErr string
	}{
		{"file whose digest differs", ImageChange{Bitstream: "a", Name: "fpgaops-a", File: "a.gbs", SHA256: sha(data)}, "digest mismatch"},
		{"file outside the repository", ImageChange{Bitstream: "b", Name: "fpgaops-b", File: "../a.gbs", SHA256: sha(data)}, "not inside the repository"},
		{"url whose digest differs", ImageChange{Bitstream: "c", Name: "fpgaops-c", URL: srv.URL, SHA256: sha([]byte("other"))}, "digest mismatch"},
		{"url with the declared digest", ImageChange{Bitstream: "d", Name: "fpgaops-d", URL: srv.URL, SHA256: sha(data)}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(cloud.Images())
			ic := tc.image
			res, err := p.Apply(ctx, &State{}, []Change{{Action: CreateImage, ID: "image/" + ic.Bitstream, Image: &ic}}, ApplyOptions{Fleet: &spec.Fleet{Root: repo}, HTTPClient: srv.Client()})
			if tc.wantErr == "" {
				if err != nil || res[0].Outcome != Applied {
					t.Fatalf("apply: %v %+v", err, res)
				}
				imgs := cloud.Images()
				if len(imgs) != before+1 || !bytes.Equal(cloud.ImageData(imgs[len(imgs)-1].ID), data) {
					t.Errorf("image not uploaded with the fetched bytes")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || res[0].Outcome != Failed {
				t.Errorf("error %v, outcome %s: want %q", err, res[0].Outcome, tc.wantErr)
			}
			if len(cloud.Images()) != before {
				t.Error("an image was created for a bitstream that failed its check")
			}
		})
	}
}

func TestConnectFromEnvironmentKeepsSecrets(t *testing.T) {
	cloud := openstacktest.NewCloud(t, placementURL)
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", cloud.AuthURL())
	t.Setenv("OS_USERNAME", cloud.Username)
	t.Setenv("OS_PASSWORD", cloud.Password)
	t.Setenv("OS_PROJECT_NAME", cloud.Project)
	t.Setenv("OS_DOMAIN_NAME", cloud.Domain)
	t.Setenv("OS_REGION_NAME", cloud.Region)
	var logs bytes.Buffer
	c, err := Connect(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := New(c, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	st, err := p.Observe(context.Background(), &spec.Fleet{Bitstreams: []spec.Bitstream{{Name: "gzip", SHA256: shaGzip}}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := RenderJSON(&out, Plan(&spec.Fleet{}, st)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cloud.Password, cloud.Token} {
		if strings.Contains(logs.String(), s) || strings.Contains(out.String(), s) {
			t.Errorf("a secret shows in logs or plan")
		}
	}

	t.Setenv("OS_PASSWORD", "wrong-"+cloud.Password)
	_, err = Connect(context.Background(), Options{})
	if err == nil {
		t.Fatal("a wrong password: no error")
	}
	if strings.Contains(err.Error(), cloud.Password) {
		t.Error("the error shows the password")
	}
}

func TestApplyStopsOnlyWhatDependsOnAFailure(t *testing.T) {
	ctx := context.Background()
	e := newE2E(t, "c")
	// The repository's file no longer has the declared digest.
	if err := os.WriteFile(filepath.Join(e.fleet.Root, "bitstreams", "gzip.gbs"), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Connect(ctx, Options{Cloud: "lab", CloudsFile: e.clouds})
	if err != nil {
		t.Fatal(err)
	}
	p := New(c, nil)
	st, err := p.Observe(ctx, e.fleet)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Apply(ctx, st, Plan(e.fleet, st), ApplyOptions{Fleet: e.fleet, AllowDisruptive: true, PollInterval: time.Millisecond})
	if err == nil {
		t.Fatal("no error for a tampered bitstream")
	}
	got := map[string]Outcome{}
	for _, r := range res {
		got[r.ID] = r.Outcome
	}
	profile := ProfileName(e.fleet.Bitstreams[0], spec.BoardPACA10)
	want := map[string]Outcome{
		"image/gzip":                                 Failed,
		"device-profile/" + profile:                  Failed,
		"flavor/" + FlavorName(2, 4096, 40, profile): Failed,
		"server/compute-01/vm-a":                     Failed,
		"deployable/compute-02/pac0":                 Applied,
		"deployable/compute-02/pac1":                 Skipped,
		"card/compute-01/pac1":                       Skipped,
	}
	for id, o := range want {
		if got[id] != o {
			t.Errorf("%s: %s, want %s", id, got[id], o)
		}
	}
	if n := len(e.cloud.Images()); n != 1 {
		t.Errorf("%d images in Glance, want only the nlb one", n)
	}
	if s := e.cloud.Servers(); s[0].ID != e.vmA && s[1].ID != e.vmA {
		t.Error("vm-a was deleted although its flavor was never made")
	}
	if len(e.cloud.Flavors()) != 2 || len(e.cloud.Profiles()) != 1 {
		t.Errorf("flavors %d, profiles %d: nothing should have been created", len(e.cloud.Flavors()), len(e.cloud.Profiles()))
	}
}
