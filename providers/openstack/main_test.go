package openstack

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/traits"
)

var update = flag.Bool("update", false, "rewrite golden files")

// placementURL is the real Placement API every test of this package
// shares; TestMain starts it.
var placementURL string

func TestMain(m *testing.M) {
	flag.Parse()
	p, err := openstacktest.StartPlacement()
	if err != nil {
		// A missing Placement is a failure, not a skip: .ci/run installs it.
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	placementURL = p.URL
	code := m.Run()
	p.Stop()
	os.Exit(code)
}

// statusCounter counts the answers of each HTTP status.
type statusCounter struct {
	next   http.RoundTripper
	counts [600]atomic.Int32
}

func (s *statusCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil && resp.StatusCode < len(s.counts) {
		s.counts[resp.StatusCode].Add(1)
	}
	return resp, err
}

// placementClient is a client of the real Placement as noauth2 wants it.
func placementClient(t *testing.T, rt http.RoundTripper) *gophercloud.ServiceClient {
	t.Helper()
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{Transport: rt}}
	pc.SetToken(openstacktest.PlacementToken)
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: placementURL + "/", Type: "placement", Microversion: PlacementMicroversion}
}

// seedCard is an FPGA resource provider to create under a host.
type seedCard struct {
	uuid, bdf string
	fpga      int // FPGA inventory; 0 for none
	traits    []string
}

// seedHost creates a compute host's provider and its card providers in
// the real Placement, through its API, as Nova and Cyborg would.
func seedHost(t *testing.T, pc *gophercloud.ServiceClient, hostname string, cards ...seedCard) {
	t.Helper()
	ctx := context.Background()
	root, err := resourceproviders.Create(ctx, pc, resourceproviders.CreateOpts{Name: hostname}).Extract()
	if err != nil {
		t.Fatalf("create provider %s: %v", hostname, err)
	}
	// The Placement server lives for the whole package: remove what the
	// test made, children before their parent, so that tests run again
	// (-count) and in any order.
	created := []string{root.UUID}
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			if err := resourceproviders.Delete(context.Background(), pc, created[i]).ExtractErr(); err != nil {
				t.Errorf("delete provider %s: %v", created[i], err)
			}
		}
	})
	for _, c := range cards {
		rp, err := resourceproviders.Create(ctx, pc, resourceproviders.CreateOpts{Name: hostname + "_" + c.bdf, UUID: c.uuid, ParentProviderUUID: root.UUID}).Extract()
		if err != nil {
			t.Fatalf("create provider %s_%s: %v", hostname, c.bdf, err)
		}
		created = append(created, rp.UUID)
		gen := rp.Generation
		if c.fpga > 0 {
			inv, err := resourceproviders.UpdateInventories(ctx, pc, rp.UUID, resourceproviders.UpdateInventoriesOpts{
				ResourceProviderGeneration: gen,
				Inventories:                map[string]resourceproviders.Inventory{ResourceClassFPGA: {Total: c.fpga, MaxUnit: c.fpga, MinUnit: 1, StepSize: 1, AllocationRatio: 1}},
			}).Extract()
			if err != nil {
				t.Fatalf("inventory of %s: %v", rp.Name, err)
			}
			gen = inv.ResourceProviderGeneration
		}
		if len(c.traits) > 0 {
			for _, tr := range c.traits {
				if err := traits.Create(ctx, pc, tr).ExtractErr(); err != nil {
					t.Fatalf("create trait %s: %v", tr, err)
				}
			}
			if _, err := resourceproviders.UpdateTraits(ctx, pc, rp.UUID, resourceproviders.UpdateTraitsOpts{ResourceProviderGeneration: gen, Traits: c.traits}).Extract(); err != nil {
				t.Fatalf("traits of %s: %v", rp.Name, err)
			}
		}
	}
}
