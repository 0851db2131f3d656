package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/traits"
)

// PlacementMicroversion is the Placement API microversion fpgaops speaks.
const PlacementMicroversion = "1.39"

// ResourceClassFPGA is the resource class Cyborg reports FPGAs under.
const ResourceClassFPGA = "FPGA"

// maxConflictRetries bounds the retries of a write that loses a race with
// another writer of the same resource provider.
const maxConflictRetries = 5

// observeCards lists the FPGA resource providers under a compute node's
// provider (named root): the children Cyborg names "<deviceHost>_<bdf>",
// with their inventories and traits.
func observeCards(ctx context.Context, pc *gophercloud.ServiceClient, root, deviceHost string) ([]Card, error) {
	roots, err := listProviders(ctx, pc, resourceproviders.ListOpts{Name: root})
	if err != nil {
		return nil, fmt.Errorf("placement: find provider %s: %w", root, err)
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("placement: no resource provider named %s", root)
	}
	tree, err := listProviders(ctx, pc, resourceproviders.ListOpts{InTree: roots[0].UUID})
	if err != nil {
		return nil, fmt.Errorf("placement: providers in tree %s: %w", root, err)
	}
	var cards []Card
	for _, rp := range tree {
		pci, ok := strings.CutPrefix(rp.Name, deviceHost+"_")
		if !ok || rp.UUID == roots[0].UUID {
			continue
		}
		inv, err := resourceproviders.GetInventories(ctx, pc, rp.UUID).Extract()
		if err != nil {
			return nil, fmt.Errorf("placement: inventories of %s: %w", rp.Name, err)
		}
		tr, err := resourceproviders.GetTraits(ctx, pc, rp.UUID).Extract()
		if err != nil {
			return nil, fmt.Errorf("placement: traits of %s: %w", rp.Name, err)
		}
		c := Card{PCI: strings.ToLower(pci), RPName: rp.Name, RPUUID: rp.UUID, Generation: tr.ResourceProviderGeneration, Traits: tr.Traits}
		if c.Traits == nil {
			c.Traits = []string{}
		}
		if i, ok := inv.Inventories[ResourceClassFPGA]; ok {
			c.FPGATotal = i.Total - i.Reserved
		}
		cards = append(cards, c)
	}
	return cards, nil
}

func listProviders(ctx context.Context, pc *gophercloud.ServiceClient, opts resourceproviders.ListOpts) ([]resourceproviders.ResourceProvider, error) {
	pages, err := resourceproviders.List(pc, opts).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return resourceproviders.ExtractResourceProviders(pages)
}

// IsConcurrentUpdate reports whether err is Placement's 409
// placement.concurrent_update: the generation sent was stale.
func IsConcurrentUpdate(err error) bool {
	var e gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &e) || e.Actual != 409 {
		return false
	}
	var body struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(e.Body, &body) != nil {
		return false
	}
	for _, x := range body.Errors {
		if x.Code == "placement.concurrent_update" {
			return true
		}
	}
	return false
}

// ModifyTraits sets the traits of a resource provider to mutate(current),
// starting from what the caller last saw (generation and current). When
// another writer got there first, Placement answers 409
// placement.concurrent_update; ModifyTraits then reads the provider's
// traits and generation again and re-applies mutate, a few times at most.
// Custom traits that do not exist yet are created. It returns the new
// generation.
func ModifyTraits(ctx context.Context, pc *gophercloud.ServiceClient, rpUUID string, generation int, current []string, mutate func([]string) []string) (int, error) {
	for attempt := 0; ; attempt++ {
		want := mutate(slices.Clone(current))
		for _, t := range want {
			if strings.HasPrefix(t, "CUSTOM_") && !slices.Contains(current, t) {
				if err := traits.Create(ctx, pc, t).ExtractErr(); err != nil {
					return 0, fmt.Errorf("placement: create trait %s: %w", t, err)
				}
			}
		}
		res, err := resourceproviders.UpdateTraits(ctx, pc, rpUUID, resourceproviders.UpdateTraitsOpts{
			ResourceProviderGeneration: generation,
			Traits:                     want,
		}).Extract()
		if err == nil {
			return res.ResourceProviderGeneration, nil
		}
		if !IsConcurrentUpdate(err) || attempt+1 >= maxConflictRetries {
			return 0, fmt.Errorf("placement: set traits of %s: %w", rpUUID, err)
		}
		fresh, gerr := resourceproviders.GetTraits(ctx, pc, rpUUID).Extract()
		if gerr != nil {
			return 0, fmt.Errorf("placement: re-read traits of %s after a conflict: %w", rpUUID, gerr)
		}
		generation, current = fresh.ResourceProviderGeneration, fresh.Traits
	}
}
