package openstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
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
	s = strings.ReplaceAll(s, e.vmA, "<server vm-a>")
	s = strings.ReplaceAll(s, e.tenDB, "<server db-1>")
	for k, v := range e.deps {
		s = strings.ReplaceAll(s, v, "<deployable "+k+">")
	}
	return s
}

// backend is the e2e cloud's backend; its nodes are the fleet's.
func (e *e2e) backend(opts Options) *Backend {
	opts.Cloud, opts.CloudsFile = "lab", e.clouds
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Millisecond
	}
	return NewBackend(opts, nil)
}

// plan observes the cloud and plans, as the engine does.
func (e *e2e) plan(t *testing.T, b *Backend) []plans.Change {
	t.Helper()
	data, err := b.ObservePlatform(context.Background(), e.fleet, owned(e.fleet))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := b.Plan(e.fleet, owned(e.fleet), data)
	if err != nil {
		t.Fatal(err)
	}
	return changes
}

// applyAll checks and applies every change that runs, in dependency
// order, skipping the held ones and those whose dependencies did not
// succeed, and those skip() refuses: a small executor for the backend's
// own tests (reconcile/execute is the real one). It returns each
// change's error, "skipped" for what did not run.
func applyAll(t *testing.T, b *Backend, fleet *spec.Fleet, changes []plans.Change, skip func(*plans.Change) bool) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	done := map[string]bool{}
	pending := slices.Clone(changes)
	for len(pending) > 0 {
		var next []plans.Change
		for _, c := range pending {
			if c.Action == plans.ActionReport || c.Held != nil || skip != nil && skip(&c) {
				out[c.ID] = "skipped"
				continue
			}
			ready, failed := true, false
			for _, d := range c.DependsOn {
				if r, ok := out[d]; ok && r != "" {
					failed = true
				}
				ready = ready && done[d]
			}
			switch {
			case failed:
				out[c.ID] = "skipped"
			case !ready:
				next = append(next, c)
			default:
				err := b.Check(ctx, fleet, &c)
				if err == nil {
					err = b.Apply(ctx, fleet, &c)
				}
				out[c.ID] = ""
				if err != nil {
					out[c.ID] = err.Error()
				}
				done[c.ID] = err == nil
			}
		}
		if len(next) == len(pending) {
			t.Fatalf("changes wait for what is not in the plan: %v", next)
		}
		pending = next
	}
	return out
}

// golden compares got with testdata/name.
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

// listing is the changes one a line, with what each makes and waits for.
func listing(changes []plans.Change) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(line(c) + "\n")
		for _, v := range []*plans.Value{c.Before, c.After} {
			if v == nil {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(v.Attrs)) {
				fmt.Fprintf(&b, "    %s: %s\n", k, v.Attrs[k])
			}
		}
		for _, d := range c.DependsOn {
			b.WriteString("    after " + d + "\n")
		}
		if c.Reason != "" {
			b.WriteString("    # " + c.Reason + "\n")
		}
	}
	return b.String()
}

func TestPlanEndToEnd(t *testing.T) {
	e := newE2E(t, "a")
	var logs bytes.Buffer
	b := NewBackend(Options{Cloud: "lab", CloudsFile: e.clouds}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	changes := e.plan(t, b)
	out := listing(changes)
	golden(t, "plan_e2e.golden", e.stable(out))
	for _, secret := range []string{e.cloud.Password} {
		if strings.Contains(out, secret) || strings.Contains(logs.String(), secret) {
			t.Error("the password shows in the plan or the logs")
		}
	}
}

func TestApplyEndToEnd(t *testing.T) {
	ctx := context.Background()
	e := newE2E(t, "b")
	b := e.backend(Options{})
	const replace = "node/compute-01/vm/vm-a:replace"

	// Without the replacement (as outside a window), the rest goes ahead;
	// what it made is found again by the next run, not remembered.
	res := applyAll(t, b, e.fleet, e.plan(t, b), func(c *plans.Change) bool { return c.Disruptive })
	for id, r := range res {
		if r != "" && r != "skipped" {
			t.Errorf("%s: %s", id, r)
		}
	}
	if res[replace] != "skipped" {
		t.Errorf("vm-a's replacement: %q, want skipped", res[replace])
	}
	if s := e.cloud.Servers(); s[0].ID != e.vmA {
		t.Errorf("vm-a was replaced")
	}

	b = e.backend(Options{})
	changes := e.plan(t, b)
	res = applyAll(t, b, e.fleet, changes, nil)
	if r, ok := res[replace]; !ok || r != "" {
		t.Fatalf("vm-a not replaced: %q in %v", r, res)
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

	// Converged: what is left is held or drift.
	var left []string
	for _, ch := range e.plan(t, b) {
		left = append(left, line(ch))
	}
	want := []string{
		"report node/compute-01/fpga/pac0:report drift",
		"report node/compute-01/fpga/pac1:report drift",
		"report node/compute-02/fpga/pac0:report drift",
		"program node/compute-02/fpga/pac1:program held=in-use: held by running server db-1",
	}
	if !slices.Equal(left, want) {
		t.Errorf("after apply:\n  %s\nwant:\n  %s", strings.Join(left, "\n  "), strings.Join(want, "\n  "))
	}

	// In drift mode "correct", the traits are set in Placement.
	e.fleet.Policy.Drift = spec.DriftCorrect
	for id, r := range applyAll(t, b, e.fleet, e.plan(t, b), nil) {
		if r != "" && r != "skipped" {
			t.Errorf("%s: %s", id, r)
		}
	}
	left = nil
	for _, ch := range e.plan(t, b) {
		left = append(left, line(ch))
	}
	if !slices.Equal(left, want[3:]) {
		t.Errorf("after correcting traits:\n  %s\nwant only the held program", strings.Join(left, "\n  "))
	}
	var st State
	data, err := b.ObservePlatform(ctx, e.fleet, owned(e.fleet))
	if err != nil || json.Unmarshal(data, &st) != nil {
		t.Fatal(err)
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
	b := NewBackend(Options{Cloud: "lab", CloudsFile: clouds, HTTPClient: srv.Client()}, nil)
	image := func(name, file, url, sum string) *plans.Change {
		attrs := map[string]string{attrName: "fpgaops-" + name, attrFile: file, attrURL: url}
		return &plans.Change{ID: objImage + name + ":create", Object: objImage + name, Action: plans.ActionCreate, Step: plans.StepCreate,
			Backend: Name, After: &plans.Value{Bitstream: name, SHA256: sum, Attrs: attrs}}
	}
	tests := []struct {
		name    string
		image   *plans.Change
		wantErr string
	}{
		{"file whose digest differs", image("a", "a.gbs", "", sha(data)), "not the declared"},
		{"file outside the repository", image("b", "../a.gbs", "", sha(data)), "outside the repository"},
		{"url whose digest differs", image("c", "", srv.URL, sha([]byte("other"))), "digest mismatch"},
		{"url with the declared digest", image("d", "", srv.URL, sha(data)), ""},
	}
	fleet := &spec.Fleet{Root: repo}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(cloud.Images())
			// The dry run catches it first; Apply checks again.
			checkErr := b.Check(ctx, fleet, tc.image)
			err := b.Apply(ctx, fleet, tc.image)
			if tc.wantErr == "" {
				if err != nil || checkErr != nil {
					t.Fatalf("check: %v, apply: %v", checkErr, err)
				}
				imgs := cloud.Images()
				if len(imgs) != before+1 || !bytes.Equal(cloud.ImageData(imgs[len(imgs)-1].ID), data) {
					t.Errorf("image not uploaded with the fetched bytes")
				}
				return
			}
			for _, e := range []error{checkErr, err} {
				if e == nil || !strings.Contains(e.Error(), tc.wantErr) {
					t.Errorf("error %v: want %q", e, tc.wantErr)
				}
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
	b := NewBackend(Options{}, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	fleet := &spec.Fleet{Bitstreams: []spec.Bitstream{{Name: "gzip", SHA256: shaGzip}}}
	data, err := b.ObservePlatform(context.Background(), fleet, nil)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := b.Plan(fleet, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(changes)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cloud.Password, cloud.Token} {
		if strings.Contains(logs.String(), s) || strings.Contains(string(out), s) || strings.Contains(string(data), s) {
			t.Errorf("a secret shows in logs, observation or plan")
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
