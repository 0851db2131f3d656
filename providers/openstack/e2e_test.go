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

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
)

// e2e is a small fleet on two OpenStack nodes, the fixture cloud it runs
// on and the real Placement behind it, the cards reported to it as
// Cyborg's agent and conductor do.
type e2e struct {
	cloud      *openstacktest.Cloud
	fleet      *spec.Fleet
	clouds     string // clouds.yaml path
	gzipData   []byte
	nlbImage   string
	deps       map[string]string // "node/slot" -> deployable UUID
	vmA, tenDB string            // server IDs
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gbs is a GBS image of an AFU built for a PR interface.
func gbs(t *testing.T, iface, afu, payload string) []byte {
	t.Helper()
	data, err := bitstream.Build(bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{InterfaceUUID: iface,
		AcceleratorClusters: []bitstream.Cluster{{Name: payload, TotalContexts: 1, AcceleratorTypeUUID: afu}}}}, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// newE2E builds the scene. tag, one hex digit, goes into host names, so
// that tests sharing the package's Placement do not see each other's
// providers. compute-01 has an empty card for server vm-a and one a bind
// left running nlb; compute-02 two cards for the nlb pool, one of them
// held by a tenant's server db-1. Glance has an nlb image without
// accel:function_id.
func newE2E(t *testing.T, tag string) *e2e {
	t.Helper()
	h1 := openstacktest.Host{Nova: "e2e-cmp-01-" + tag}
	h2 := openstacktest.Host{Nova: "e2e-cmp-02-" + tag}
	e := &e2e{deps: map[string]string{}}
	e.cloud = openstacktest.NewCloud(t, placementURL)
	// With noauth2, Placement takes the token "admin"; Keystone issues it.
	e.cloud.Token = openstacktest.PlacementToken

	repo := t.TempDir()
	e.gzipData = gbs(t, ifA10, afuGzip, "gzip")
	if err := os.MkdirAll(filepath.Join(repo, "bitstreams"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "bitstreams", "gzip.gbs"), e.gzipData, 0o644); err != nil {
		t.Fatal(err)
	}
	nlbData := gbs(t, ifA10, afuNLB, "nlb0")
	e.fleet = &spec.Fleet{
		Root: repo,
		Nodes: []spec.Node{
			{Name: "compute-01", Hostname: h1.Nova, FPGAs: []spec.FPGA{
				{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10, InterfaceID: ifA10},
				{Slot: "pac1", PCI: "0000:be:00.0", Board: spec.BoardPACA10},
			}},
			{Name: "compute-02", Hostname: h2.Nova, FPGAs: []spec.FPGA{
				{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10},
				{Slot: "pac1", PCI: "0000:af:00.0", Board: spec.BoardPACA10},
			}},
		},
		Bitstreams: []spec.Bitstream{
			{Name: "gzip", File: "bitstreams/gzip.gbs", SHA256: sha(e.gzipData), InterfaceID: ifA10, AFUID: afuGzip, Size: int64(len(e.gzipData))},
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
	c.AddHost(h1)
	c.AddHost(h2)
	pac := openstacktest.ProductPACA10
	e.deps["compute-01/pac0"] = c.AddCard(h1, openstacktest.Card{PCI: "0000:5e:00.0", Product: pac, InterfaceID: ifA10})
	e.deps["compute-01/pac1"] = c.AddCard(h1, openstacktest.Card{PCI: "0000:be:00.0", Product: pac, AFUID: afuNLB, BitstreamID: e.nlbImage})
	e.deps["compute-02/pac0"] = c.AddCard(h2, openstacktest.Card{PCI: "0000:5e:00.0", Product: pac})
	e.deps["compute-02/pac1"] = c.AddCard(h2, openstacktest.Card{PCI: "0000:af:00.0", Product: pac, AFUID: afuGzip})
	c.AddFlavor(openstacktest.Flavor{ID: "3", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40})
	c.AddProfile(openstacktest.Profile{Name: "tenant-nlb", Groups: []map[string]string{{"resources:FPGA": "1"}}})
	c.AddFlavor(openstacktest.Flavor{ID: "7", Name: "db.fpga", VCPUs: 4, RAM: 8192, Disk: 80, ExtraSpecs: map[string]string{"accel:device_profile": "tenant-nlb"}})
	e.vmA = c.AddServer(openstacktest.Server{Name: "vm-a", Host: h1.Nova, ImageID: "6b0c5b5e-0000-4000-8000-00000000cafe", Networks: []string{"net-1"}, KeyName: "ops"}, "m1.medium")
	e.tenDB = c.AddServer(openstacktest.Server{Name: "db-1", Host: h2.Nova, ImageID: "6b0c5b5e-0000-4000-8000-00000000beef", Networks: []string{"net-2"}}, "db.fpga")
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

// lines is the compact form of the changes Plan makes now.
func (e *e2e) lines(t *testing.T, b *Backend) []string {
	t.Helper()
	var out []string
	for _, ch := range e.plan(t, b) {
		out = append(out, line(ch))
	}
	return out
}

// applyClean applies the changes and fails on any error.
func (e *e2e) applyClean(t *testing.T, b *Backend, changes []plans.Change) {
	t.Helper()
	for id, r := range applyAll(t, b, e.fleet, changes, nil) {
		if r != "" && r != "skipped" {
			t.Errorf("%s: %s", id, r)
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

	// Glance holds the repository's bytes under the bitstream's name, with
	// the function ID a bind reads; the nlb image got its function ID.
	var gzipImage string
	for _, im := range e.cloud.Images() {
		switch im.Name {
		case "fpgaops-gzip":
			gzipImage = im.ID
			if im.Properties[PropertySHA256] != sha(e.gzipData) || !bytes.Equal(e.cloud.ImageData(im.ID), e.gzipData) || im.Status != "active" {
				t.Errorf("gzip image %+v does not hold the bitstream", im)
			}
			if im.Properties["accel:function_id"] != afuGzip {
				t.Errorf("gzip image: accel:function_id %q, want %s", im.Properties["accel:function_id"], afuGzip)
			}
		case "fpgaops-nlb":
			if im.Properties["accel:function_id"] != afuNLB {
				t.Errorf("nlb image: accel:function_id %q, want %s", im.Properties["accel:function_id"], afuNLB)
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
		if s.ID == e.vmA || s.Status != "ACTIVE" || s.Flavor.Name != flavor || s.Flavor.ExtraSpecs["accel:device_profile"] != profile ||
			s.Host != e.fleet.Nodes[0].Hostname || !slices.Equal(s.Networks, []string{"net-1"}) || s.KeyName != "ops" || s.ImageID != "6b0c5b5e-0000-4000-8000-00000000cafe" {
			t.Errorf("vm-a after replace: %+v", s)
		}
	}
	for _, d := range e.cloud.Deployables() {
		switch d.UUID {
		case e.deps["compute-02/pac0"]:
			// Programmed through the API: Cyborg leaves bitstream_id alone.
			if !slices.Equal(d.Programmed, []string{e.nlbImage}) || d.BitstreamID != "" || e.cloud.AFU(d.UUID) != afuNLB {
				t.Errorf("pool card: programmed with %v, bitstream_id %q, runs %s; want nlb, none, %s", d.Programmed, d.BitstreamID, e.cloud.AFU(d.UUID), afuNLB)
			}
		case e.deps["compute-02/pac1"]:
			if len(d.Programmed) != 0 {
				t.Errorf("the card db-1 holds was programmed: %v", d.Programmed)
			}
		case e.deps["compute-01/pac0"]:
			// Programmed by the bind of vm-a's new server.
			if d.BitstreamID != gzipImage || e.cloud.AFU(d.UUID) != afuGzip {
				t.Errorf("vm-a's card: bitstream_id %s, runs %s; want the gzip image and AFU", d.BitstreamID, e.cloud.AFU(d.UUID))
			}
		}
	}

	// Converged: what is left is held, before and after the agents report.
	held := "program node/compute-02/fpga/pac1:program held=in-use: held by running server db-1"
	if got := e.lines(t, b); !slices.Equal(got, []string{held}) {
		t.Errorf("after apply:\n  %s\nwant only the held program", strings.Join(got, "\n  "))
	}
	e.cloud.ReportAgents()
	if got := e.lines(t, b); !slices.Equal(got, []string{held}) {
		t.Errorf("after the agents reported:\n  %s\nwant only the held program", strings.Join(got, "\n  "))
	}

	// Someone programs the pool card behind fpgaops's back; Cyborg's agent
	// reads the other AFU from it: drift, reported, corrected in
	// drift mode "correct".
	e.cloud.Reprogram(e.deps["compute-02/pac0"], afuGzip)
	e.cloud.ReportAgents()
	if got := e.lines(t, b); !slices.Equal(got, []string{"report node/compute-02/fpga/pac0:report drift", held}) {
		t.Errorf("after a reprogram behind fpgaops's back:\n  %s", strings.Join(got, "\n  "))
	}
	e.fleet.Policy.Drift = spec.DriftCorrect
	changes = e.plan(t, b)
	if got := lines(changes); !slices.Equal(got, []string{"program node/compute-02/fpga/pac0:program drift", held}) {
		t.Errorf("drift mode correct:\n  %s", strings.Join(got, "\n  "))
	}
	e.applyClean(t, b, changes)
	e.cloud.ReportAgents()
	if got := e.lines(t, b); !slices.Equal(got, []string{held}) || e.cloud.AFU(e.deps["compute-02/pac0"]) != afuNLB {
		t.Errorf("after correcting the pool card:\n  %s", strings.Join(got, "\n  "))
	}

	// A function ID trait beside the one of what a card runs is drift too;
	// "correct" removes it from Placement.
	a1 := e.deps["compute-01/pac1"]
	var rp string
	for _, d := range e.cloud.Deployables() {
		if d.UUID == a1 {
			rp = d.RPUUID
		}
	}
	pc := placementClient(t, http.DefaultTransport)
	now := traitsOf(t, pc, rp)
	if _, err := ModifyTraits(ctx, pc, rp, now.ResourceProviderGeneration, now.Traits, func(cur []string) []string { return append(cur, FunctionTrait(afuGzip)) }); err != nil {
		t.Fatal(err)
	}
	changes = e.plan(t, b)
	if got := lines(changes); !slices.Equal(got, []string{"update node/compute-01/fpga/pac1:update drift", held}) {
		t.Errorf("with a stale function trait:\n  %s", strings.Join(got, "\n  "))
	}
	e.applyClean(t, b, changes)
	if got := e.lines(t, b); !slices.Equal(got, []string{held}) {
		t.Errorf("after correcting the traits:\n  %s", strings.Join(got, "\n  "))
	}
	if tr := traitsOf(t, pc, rp).Traits; slices.Contains(tr, FunctionTrait(afuGzip)) || !slices.Contains(tr, FunctionTrait(afuNLB)) {
		t.Errorf("traits of compute-01/pac1: %v", tr)
	}
}

func lines(changes []plans.Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, line(c))
	}
	return out
}

// traitsOf reads a provider's traits from the real Placement.
func traitsOf(t *testing.T, pc *gophercloud.ServiceClient, rp string) *resourceproviders.ResourceProviderTraits {
	t.Helper()
	tr, err := resourceproviders.GetTraits(context.Background(), pc, rp).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return tr
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
