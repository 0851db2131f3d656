package openstack

import (
	"context"
	"fmt"
	"strings"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers/openstack/cyborg"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"golang.org/x/sync/errgroup"
)

// PropertySHA256 is the Glance image property that records the sha256 of
// a bitstream fpgaops uploaded.
const PropertySHA256 = "fpgaops_sha256"

// PropertyBitstream records the fleet bitstream an image holds.
const PropertyBitstream = "fpgaops_bitstream"

// observeConcurrency bounds the nodes observed at once.
const observeConcurrency = 8

// Observe reads what the cloud runs for the nodes OpenStack owns:
// Glance images of the fleet's bitstreams, Cyborg device profiles and
// deployables and ARQs, Nova flavors and the servers on each node, and
// each node's FPGA resource providers in Placement with their inventories
// and traits. A node that cannot be read is marked unknown; an error in
// what every node shares (Cyborg, Nova flavors, Glance) fails the whole
// observation, since no plan could be trusted without it.
func (b *Backend) Observe(ctx context.Context, fleet *spec.Fleet, nodes []*spec.Node) (*State, error) {
	c, err := b.connect(ctx)
	if err != nil {
		return nil, err
	}
	st := &State{Images: []Image{}, Profiles: []Profile{}, Flavors: []Flavor{}, Nodes: []Node{}}
	var (
		deployables []cyborg.Deployable
		arqs        []cyborg.ARQ
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		deployables, err = cyborg.ListDeployables(gctx, c.Accelerator)
		return err
	})
	g.Go(func() error {
		var err error
		arqs, err = cyborg.ListARQs(gctx, c.Accelerator, "")
		return err
	})
	g.Go(func() error {
		dps, err := cyborg.ListDeviceProfiles(gctx, c.Accelerator)
		for _, d := range dps {
			st.Profiles = append(st.Profiles, Profile{UUID: d.UUID, Name: d.Name, Groups: d.Groups})
		}
		return err
	})
	g.Go(func() error {
		pages, err := flavors.ListDetail(c.Compute, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(gctx)
		if err != nil {
			return fmt.Errorf("nova: list flavors: %w", err)
		}
		fl, err := flavors.ExtractFlavors(pages)
		if err != nil {
			return fmt.Errorf("nova: list flavors: %w", err)
		}
		for _, f := range fl {
			st.Flavors = append(st.Flavors, Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAM: f.RAM, Disk: f.Disk, DeviceProfile: f.ExtraSpecs["accel:device_profile"]})
		}
		return nil
	})
	g.Go(func() error {
		for _, bs := range fleet.Bitstreams {
			imgs, err := listImages(gctx, c, ImageName(bs))
			if err != nil {
				return err
			}
			st.Images = append(st.Images, imgs...)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	st.Nodes = make([]Node, len(nodes))
	ng, nctx := errgroup.WithContext(ctx)
	ng.SetLimit(observeConcurrency)
	for i, n := range nodes {
		ng.Go(func() error {
			st.Nodes[i] = b.observeNode(nctx, c, n, deployables, arqs)
			return nil
		})
	}
	_ = ng.Wait()
	st.Sort()
	return st, nil
}

func listImages(ctx context.Context, c *Clients, name string) ([]Image, error) {
	pages, err := images.List(c.Image, images.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("glance: list images %s: %w", name, err)
	}
	list, err := images.ExtractImages(pages)
	if err != nil {
		return nil, fmt.Errorf("glance: list images %s: %w", name, err)
	}
	var out []Image
	for _, im := range list {
		sum, _ := im.Properties[PropertySHA256].(string)
		fn, _ := im.Properties[attrFunctionID].(string)
		out = append(out, Image{ID: im.ID, Name: im.Name, Status: string(im.Status), Checksum: im.Checksum, SHA256: sum, FunctionID: fn, Size: im.SizeBytes})
	}
	return out, nil
}

// observeNode reads one node; its failures make the node unknown.
func (b *Backend) observeNode(ctx context.Context, c *Clients, n *spec.Node, deployables []cyborg.Deployable, arqs []cyborg.ARQ) Node {
	out := Node{Name: n.Name, Hostname: n.Hostname, State: observed.NodeOK, Cards: []Card{}, Servers: []Server{}}
	unknown := func(err error) Node {
		b.log.Warn("openstack: node unknown", "node", n.Name, "hostname", n.Hostname, "err", err)
		return Node{Name: n.Name, Hostname: n.Hostname, State: observed.NodeUnknown, Reason: err.Error()}
	}
	cards, err := observeCards(ctx, c.Placement, RootProvider(n), DeviceHostname(n))
	if err != nil {
		return unknown(err)
	}
	// The conductor names a card's provider as its deployable and records
	// the provider on it.
	for i := range cards {
		for _, d := range deployables {
			if d.RPUUID == cards[i].RPUUID || d.RPUUID == "" && d.Name == cards[i].RPName {
				cards[i].Deployable = d.UUID
				cards[i].Bitstream = d.Bitstream()
			}
		}
	}
	out.Cards = cards
	pages, err := servers.List(c.Compute, servers.ListOpts{AllTenants: true, Host: n.Hostname}).AllPages(ctx)
	if err != nil {
		return unknown(fmt.Errorf("nova: servers on %s: %w", n.Hostname, err))
	}
	list, err := servers.ExtractServers(pages)
	if err != nil {
		return unknown(fmt.Errorf("nova: servers on %s: %w", n.Hostname, err))
	}
	for _, s := range list {
		if s.Host != n.Hostname {
			continue
		}
		sv := Server{ID: s.ID, Name: s.Name, Status: s.Status, KeyName: s.KeyName}
		if id, ok := s.Image["id"].(string); ok {
			sv.ImageID = id
		}
		// From microversion 2.47 Nova embeds the flavor, extra specs too.
		sv.FlavorName, _ = s.Flavor["original_name"].(string)
		sv.VCPUs = intOf(s.Flavor["vcpus"])
		sv.RAM = intOf(s.Flavor["ram"])
		sv.Disk = intOf(s.Flavor["disk"])
		if es, ok := s.Flavor["extra_specs"].(map[string]any); ok {
			sv.DeviceProfile, _ = es["accel:device_profile"].(string)
		}
		for _, a := range arqs {
			if a.Instance() == s.ID {
				sv.ARQs = append(sv.ARQs, ARQ{UUID: a.UUID, State: a.State, DeviceProfile: a.DeviceProfileName, RPUUID: a.DeviceRP()})
			}
		}
		out.Servers = append(out.Servers, sv)
	}
	return out
}

func intOf(v any) int {
	if f, ok := v.(float64); ok {
		return int(f)
	}
	return 0
}

// ImageName is the Glance image name of a bitstream.
func ImageName(b spec.Bitstream) string { return "fpgaops-" + b.Name }

// ProfileName is the deterministic device profile name for a bitstream on
// a board. The digest's first 8 hex digits make a changed bitstream a new
// profile (and a new flavor), so servers on the old one are replaced
// rather than changed under them. It matches ^[a-zA-Z0-9-_]+$.
func ProfileName(b spec.Bitstream, board spec.Board) string {
	sum := b.SHA256
	if len(sum) > 8 {
		sum = sum[:8]
	}
	return "fpgaops-" + sanitize(b.Name) + "-" + sanitize(string(board)) + "-" + sum
}

// FlavorName is the deterministic name of the flavor giving a server of
// this size the profile's accelerator.
func FlavorName(vcpus, ram, disk int, profile string) string {
	return fmt.Sprintf("fpgaops-%dc%dm%dg-%s", vcpus, ram, disk, strings.TrimPrefix(profile, "fpgaops-"))
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, s)
}
