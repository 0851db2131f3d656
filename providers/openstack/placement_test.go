package openstack

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
)

func TestObserveCardsFromRealPlacement(t *testing.T) {
	pc := placementClient(t, http.DefaultTransport)
	seedHost(t, pc, "obs-01",
		seedCard{uuid: "7b1f0c55-0001-4c1e-9d2a-000000000001", bdf: "0000:5e:00.0", fpga: 1, traits: []string{"CUSTOM_FPGA_INTEL", "CUSTOM_FPGA_INTEL_PAC_ARRIA10"}},
		seedCard{uuid: "7b1f0c55-0001-4c1e-9d2a-000000000002", bdf: "0000:be:00.0", fpga: 2},
		seedCard{uuid: "7b1f0c55-0001-4c1e-9d2a-000000000003", bdf: "0000:af:00.0"},
	)
	// Another host's cards must not show up.
	seedHost(t, pc, "obs-02", seedCard{uuid: "7b1f0c55-0002-4c1e-9d2a-000000000001", bdf: "0000:5e:00.0", fpga: 1})

	cards, err := observeCards(context.Background(), pc, "obs-01", "obs-01")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(cards, func(a, b Card) int { return compare(a.PCI, b.PCI) })
	got := map[string]Card{}
	for _, c := range cards {
		got[c.PCI] = c
	}
	if len(cards) != 3 {
		t.Fatalf("got %d cards, want 3: %+v", len(cards), cards)
	}
	tests := []struct {
		pci    string
		rp     string
		fpga   int
		traits []string
	}{
		{"0000:5e:00.0", "7b1f0c55-0001-4c1e-9d2a-000000000001", 1, []string{"CUSTOM_FPGA_INTEL", "CUSTOM_FPGA_INTEL_PAC_ARRIA10"}},
		{"0000:be:00.0", "7b1f0c55-0001-4c1e-9d2a-000000000002", 2, []string{}},
		{"0000:af:00.0", "7b1f0c55-0001-4c1e-9d2a-000000000003", 0, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.pci, func(t *testing.T) {
			c, ok := got[tc.pci]
			if !ok {
				t.Fatalf("card %s not observed", tc.pci)
			}
			slices.Sort(c.Traits)
			if c.RPUUID != tc.rp || c.FPGATotal != tc.fpga || !slices.Equal(c.Traits, tc.traits) || c.RPName != "obs-01_"+tc.pci {
				t.Errorf("got %+v, want rp %s fpga %d traits %v", c, tc.rp, tc.fpga, tc.traits)
			}
		})
	}

	if _, err := observeCards(context.Background(), pc, "obs-missing", "obs-missing"); err == nil {
		t.Error("a host Placement does not know: got no error")
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestModifyTraitsRetriesConcurrentUpdate(t *testing.T) {
	ctx := context.Background()
	counter := &statusCounter{next: http.DefaultTransport}
	pc := placementClient(t, counter)
	const rp = "7b1f0c55-0003-4c1e-9d2a-000000000001"
	seedHost(t, pc, "race-01", seedCard{uuid: rp, bdf: "0000:5e:00.0", fpga: 1, traits: []string{"CUSTOM_FPGA_INTEL"}})

	// What fpgaops saw when it observed.
	seen, err := resourceproviders.GetTraits(ctx, pc, rp).Extract()
	if err != nil {
		t.Fatal(err)
	}
	// Another writer (Cyborg's agent) changes the provider in between,
	// which bumps its generation.
	seedOther := append(slices.Clone(seen.Traits), "CUSTOM_FPGA_REGION_INTEL_0123456789ABCDEF0123456789ABCDEF")
	if _, err := ModifyTraits(ctx, pc, rp, seen.ResourceProviderGeneration, seen.Traits, func([]string) []string { return seedOther }); err != nil {
		t.Fatalf("the other writer: %v", err)
	}
	before409 := counter.counts[409].Load()

	const fn = "CUSTOM_FPGA_FUNCTION_ID_INTEL_D8424DC4A4A3C413F89E433683F9040B"
	gen, err := ModifyTraits(ctx, pc, rp, seen.ResourceProviderGeneration, seen.Traits, func(cur []string) []string {
		return append(cur, fn)
	})
	if err != nil {
		t.Fatalf("ModifyTraits with a stale generation: %v", err)
	}
	if n := counter.counts[409].Load() - before409; n != 1 {
		t.Errorf("Placement answered 409 %d times, want exactly 1 (the stale generation)", n)
	}
	final, err := resourceproviders.GetTraits(ctx, pc, rp).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if final.ResourceProviderGeneration != gen {
		t.Errorf("generation %d, ModifyTraits returned %d", final.ResourceProviderGeneration, gen)
	}
	want := []string{"CUSTOM_FPGA_FUNCTION_ID_INTEL_D8424DC4A4A3C413F89E433683F9040B", "CUSTOM_FPGA_INTEL", "CUSTOM_FPGA_REGION_INTEL_0123456789ABCDEF0123456789ABCDEF"}
	slices.Sort(final.Traits)
	if !slices.Equal(final.Traits, want) {
		t.Errorf("traits %v, want %v: the retry must keep the other writer's trait", final.Traits, want)
	}
}

func TestModifyTraitsDoesNotRetryOtherErrors(t *testing.T) {
	counter := &statusCounter{next: http.DefaultTransport}
	pc := placementClient(t, counter)
	_, err := ModifyTraits(context.Background(), pc, "7b1f0c55-0004-4c1e-9d2a-00000000dead", 0, nil, func([]string) []string { return []string{} })
	if err == nil {
		t.Fatal("no error for a provider that does not exist")
	}
	if IsConcurrentUpdate(err) {
		t.Errorf("a 404 taken for a concurrent update: %v", err)
	}
	if n := counter.counts[404].Load(); n != 1 {
		t.Errorf("%d requests answered 404, want 1 (no retry)", n)
	}
}
