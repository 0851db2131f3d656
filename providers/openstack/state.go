package openstack

import (
	"sort"

	"github.com/fpgaops/fpgaops/observed"
)

// State is one observation of the cloud as far as the fleet is concerned.
// It is plain data; slices are sorted, so equal clouds give equal States.
type State struct {
	// Images are the Glance images named after the fleet's bitstreams.
	Images   []Image   `json:"images"`
	Profiles []Profile `json:"deviceProfiles"`
	Flavors  []Flavor  `json:"flavors"`
	Nodes    []Node    `json:"nodes"`
}

// Image is a Glance image. SHA256 is the digest fpgaops recorded as an
// image property when it uploaded the image; FunctionID its
// accel:function_id property, which Cyborg's bind reads.
type Image struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Checksum   string `json:"checksum,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	FunctionID string `json:"functionID,omitempty"`
	Size       int64  `json:"size,omitempty"`
}

// Profile is a Cyborg device profile.
type Profile struct {
	UUID   string              `json:"uuid"`
	Name   string              `json:"name"`
	Groups []map[string]string `json:"groups"`
}

// Flavor is a Nova flavor; DeviceProfile is its accel:device_profile.
type Flavor struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	VCPUs         int    `json:"vcpus"`
	RAM           int    `json:"ram"`
	Disk          int    `json:"disk"`
	DeviceProfile string `json:"deviceProfile,omitempty"`
}

// Node is what one fleet node runs in OpenStack. When State is
// observed.NodeUnknown, Reason says why and nothing else is meaningful.
type Node struct {
	Name     string             `json:"name"`
	Hostname string             `json:"hostname"`
	State    observed.NodeState `json:"state"`
	Reason   string             `json:"reason,omitempty"`
	Cards    []Card             `json:"cards,omitempty"`
	Servers  []Server           `json:"servers,omitempty"`
}

// Card is an FPGA as Placement and Cyborg see it: a resource provider
// named "<device hostname>_<bdf>" and the Cyborg deployable on it. PCI is
// the bdf of the name: the card's PF, or with SR-IOV on one of its VFs.
type Card struct {
	PCI        string `json:"pci"`
	RPName     string `json:"rpName"`
	RPUUID     string `json:"rpUUID"`
	Generation int    `json:"generation"`
	// FPGATotal is the RP's inventory of resource class FPGA.
	FPGATotal int      `json:"fpgaTotal"`
	Traits    []string `json:"traits"`
	// Deployable is the Cyborg deployable's UUID, "" if Cyborg does not
	// know the card; Bitstream its bitstream_id: the Glance image the last
	// bind programmed (Cyborg's program action leaves it alone).
	Deployable string `json:"deployable,omitempty"`
	Bitstream  string `json:"bitstream,omitempty"`
}

// Server is a Nova server on the node, with the flavor Nova embeds in it.
type Server struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Status        string `json:"status"`
	ImageID       string `json:"imageID,omitempty"`
	KeyName       string `json:"keyName,omitempty"`
	FlavorName    string `json:"flavorName"`
	VCPUs         int    `json:"vcpus"`
	RAM           int    `json:"ram"`
	Disk          int    `json:"disk"`
	DeviceProfile string `json:"deviceProfile,omitempty"`
	ARQs          []ARQ  `json:"arqs,omitempty"`
}

// ARQ is an accelerator request of a server.
type ARQ struct {
	UUID          string `json:"uuid"`
	State         string `json:"state"`
	DeviceProfile string `json:"deviceProfile"`
	RPUUID        string `json:"rpUUID,omitempty"`
}

// Sort puts every list in a stable order.
func (s *State) Sort() {
	sort.Slice(s.Images, func(i, j int) bool {
		if s.Images[i].Name != s.Images[j].Name {
			return s.Images[i].Name < s.Images[j].Name
		}
		return s.Images[i].ID < s.Images[j].ID
	})
	sort.Slice(s.Profiles, func(i, j int) bool { return s.Profiles[i].Name < s.Profiles[j].Name })
	sort.Slice(s.Flavors, func(i, j int) bool { return s.Flavors[i].Name < s.Flavors[j].Name })
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })
	for i := range s.Nodes {
		n := &s.Nodes[i]
		sort.Slice(n.Cards, func(a, b int) bool { return n.Cards[a].PCI < n.Cards[b].PCI })
		sort.Slice(n.Servers, func(a, b int) bool { return n.Servers[a].Name < n.Servers[b].Name })
		for j := range n.Cards {
			sort.Strings(n.Cards[j].Traits)
		}
		for j := range n.Servers {
			a := n.Servers[j].ARQs
			sort.Slice(a, func(x, y int) bool { return a[x].UUID < a[y].UUID })
		}
	}
}

func (s *State) node(name string) *Node {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

func (s *State) profile(name string) *Profile {
	for i := range s.Profiles {
		if s.Profiles[i].Name == name {
			return &s.Profiles[i]
		}
	}
	return nil
}

func (s *State) flavor(name string) *Flavor {
	for i := range s.Flavors {
		if s.Flavors[i].Name == name {
			return &s.Flavors[i]
		}
	}
	return nil
}

func (n *Node) server(name string) *Server {
	for i := range n.Servers {
		if n.Servers[i].Name == name {
			return &n.Servers[i]
		}
	}
	return nil
}

// holder returns the server holding the card through a bound ARQ.
func (n *Node) holder(rp string) *Server {
	for i := range n.Servers {
		for _, a := range n.Servers[i].ARQs {
			if a.RPUUID == rp && a.State == "Bound" {
				return &n.Servers[i]
			}
		}
	}
	return nil
}
