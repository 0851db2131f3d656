package openstacktest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/spec"
)

// What Cyborg's agent and conductor do with a node's cards, where the
// provider's behaviour depends on it. Each rule names the upstream file
// (openstack/cyborg, openstack/nova) it follows.

// Host is a compute node as each service names it. Nova knows it by its
// compute service host (a server's OS-EXT-SRV-ATTR:host). nova-compute
// creates the compute node's resource provider under Provider (the
// hypervisor host name), which Cyborg's conductor finds by the agent's
// configured host (CONF.host, or [agent] resource_provider_name in recent
// agents: cyborg/agent/manager.py, cyborg/conductor/manager.py
// _get_root_provider). Cyborg's Intel driver names the node's cards
// "<Hostname>_<bdf>", Hostname being socket.gethostname() on the node
// (cyborg/accelerator/drivers/fpga/intel/sysinfo.py). Empty names are
// Nova's.
type Host struct {
	Nova, Provider, Hostname string
}

func (h Host) provider() string {
	if h.Provider != "" {
		return h.Provider
	}
	return h.Nova
}

func (h Host) hostname() string {
	if h.Hostname != "" {
		return h.Hostname
	}
	return h.Nova
}

// Card is an FPGA card on a host as Cyborg's Intel driver discovers it:
// the PF's address and PCI device ID, how many VFs are on, the FME's PR
// interface ID and the AFU its port runs.
type Card struct {
	PCI, Product       string
	VFs                int
	InterfaceID, AFUID string
	// AttachType is the attach handles' type: "" for PCI; Cyborg's fake
	// driver hands out "TEST_PCI".
	AttachType string
	// BitstreamID is the deployable's bitstream_id, as a bind left it.
	BitstreamID string
}

// card is what a card runs, and the function the agent last reported.
type card struct {
	afu, reported string
}

// ProductPACA10 is the one PCI device ID Cyborg's Intel driver knows
// (KNOWN_FPGAS in sysinfo.py).
const ProductPACA10 = "0x09c4"

// AddHost registers a compute node and creates its provider in the real
// Placement, as nova-compute does. It returns the provider's UUID.
func (c *Cloud) AddHost(h Host) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts == nil {
		c.hosts = map[string]Host{}
	}
	c.hosts[h.Nova] = h
	var rp struct {
		UUID string `json:"uuid"`
	}
	if err := c.placement(http.MethodPost, "/resource_providers", map[string]any{"name": h.provider()}, &rp); err != nil {
		c.t.Fatalf("openstacktest: AddHost %s: %v", h.Nova, err)
	}
	if len(c.providers) == 0 {
		c.t.Cleanup(c.cleanPlacement)
	}
	c.providers = append(c.providers, rp.UUID)
	return rp.UUID
}

// cleanPlacement removes what the cloud made in Placement, so that tests
// sharing one Placement run again and in any order: the servers'
// allocations, then the providers, children first.
func (c *Cloud) cleanPlacement() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.servers {
		_ = c.placement(http.MethodDelete, "/allocations/"+s.ID, nil, nil) // 404: it had none
	}
	for i := len(c.providers) - 1; i >= 0; i-- {
		if err := c.placement(http.MethodDelete, "/resource_providers/"+c.providers[i], nil, nil); err != nil {
			c.t.Errorf("openstacktest: delete provider %s: %v", c.providers[i], err)
		}
	}
}

// AddCard does what Cyborg's agent and conductor do when a card shows up
// on a host: a device, one deployable with its attach handles, and a
// resource provider under the host's with FPGA inventory and the traits
// the driver reports. It returns the deployable's UUID, or "" for a card
// the driver does not discover: it matches 8086:09c4 and devices under
// /sys/class/fpga, where the DFL driver of the D5005 and the N3000 puts
// nothing (sysinfo.py).
func (c *Cloud) AddCard(h Host, cd Card) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cd.Product != ProductPACA10 {
		return ""
	}
	// With SR-IOV on, the deployable (and so its provider) is named after
	// the last VF, the VFs are the attach handles, and there is one
	// accelerator per VF (sysinfo.py _generate_dep_list).
	fns := []string{cd.PCI}
	if cd.VFs > 0 {
		fns = nil
		for i := range cd.VFs {
			fns = append(fns, vfAddress(c.t, cd.PCI, i))
		}
	}
	kind := cd.AttachType
	if kind == "" {
		kind = "PCI"
	}
	name := h.hostname() + "_" + fns[len(fns)-1]
	id := c.next()
	c.devices = append(c.devices, &Device{UUID: newUUID(), Type: "FPGA", Vendor: "0x8086", Model: "miss_model_info", Hostname: h.provider(), ProductID: cd.Product})
	d := &Deployable{UUID: newUUID(), Name: name, RPUUID: providerUUID(name), DeviceID: id, BitstreamID: cd.BitstreamID,
		NumAccelerators: len(fns), live: &card{afu: bitstream.NormalizeID(cd.AFUID)}}
	for _, f := range fns {
		d.Handles = append(d.Handles, AttachHandle{Type: kind, PCI: f})
	}
	c.deployables = append(c.deployables, d)

	// The conductor reports it: the provider, named as the deployable,
	// under the one found by the host's name (cyborg/conductor/manager.py
	// provider_report).
	root := c.rootProvider(h.provider())
	if root == "" {
		// The conductor gives up: PlacementResourceProviderNotFound.
		c.t.Fatalf("openstacktest: AddCard %s: no resource provider named %s (AddHost first)", name, h.provider())
	}
	traits := []string{"CUSTOM_FPGA_INTEL", "CUSTOM_FPGA_INTEL_PAC_ARRIA10"}
	if cd.InterfaceID != "" {
		traits = append(traits, "CUSTOM_FPGA_REGION_INTEL_"+strings.ToUpper(bitstream.NormalizeID(cd.InterfaceID)))
	}
	if d.live.afu != "" {
		traits = append(traits, functionTrait(d.live.afu))
	}
	d.live.reported = d.live.afu
	var rp struct {
		Generation int `json:"generation"`
	}
	if err := c.placement(http.MethodPost, "/resource_providers", map[string]any{"name": name, "uuid": d.RPUUID, "parent_provider_uuid": root}, &rp); err != nil {
		c.t.Fatalf("openstacktest: AddCard %s: %v", name, err)
	}
	c.providers = append(c.providers, d.RPUUID)
	inv := map[string]any{"resource_provider_generation": rp.Generation,
		"inventories": map[string]any{"FPGA": map[string]any{"total": len(fns), "max_unit": len(fns)}}}
	if err := c.placement(http.MethodPut, "/resource_providers/"+d.RPUUID+"/inventories", inv, nil); err != nil {
		c.t.Fatalf("openstacktest: AddCard %s: inventory: %v", name, err)
	}
	if err := c.addTraits(d.RPUUID, traits...); err != nil {
		c.t.Fatalf("openstacktest: AddCard %s: %v", name, err)
	}
	return d.UUID
}

// ReportAgents runs the agents' periodic update: each reports the function
// its card's port now runs, and the conductor replaces the function ID
// trait it reported before with it (drv_attr_make_diff in
// cyborg/conductor/manager.py).
func (c *Cloud) ReportAgents() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.deployables {
		if d.live == nil || d.live.afu == d.live.reported {
			continue
		}
		var err error
		if d.live.reported != "" {
			err = c.removeTraits(d.RPUUID, func(t string) bool { return t == functionTrait(d.live.reported) })
		}
		if err == nil && d.live.afu != "" {
			err = c.addTraits(d.RPUUID, functionTrait(d.live.afu))
		}
		if err != nil {
			c.t.Fatalf("openstacktest: report %s: %v", d.Name, err)
		}
		d.live.reported = d.live.afu
	}
}

// Reprogram changes what a card runs behind every service's back, as
// fpgaconf on the node would: Cyborg notices at its next report.
func (c *Cloud) Reprogram(deployable, afu string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.deployableByUUID(deployable)
	if d == nil || d.live == nil {
		c.t.Fatalf("openstacktest: Reprogram: no card of deployable %s", deployable)
	}
	d.live.afu = bitstream.NormalizeID(afu)
}

// AFU is what the card of a deployable runs now.
func (c *Cloud) AFU(deployable string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.deployableByUUID(deployable); d != nil && d.live != nil {
		return d.live.afu
	}
	return ""
}

// flash writes an image into the card of a deployable, as the agent's
// fpgaconf does: the port then runs the image's AFU. The bytes must be a
// bitstream (cyborg/accelerator/drivers/fpga/intel/driver.py program).
func (c *Cloud) flash(d *Deployable, image string) error {
	f, _, err := bitstream.ParseImage(c.imageData[image])
	if err != nil {
		return fmt.Errorf("FPGA programming failed with return False: %v", err)
	}
	if d.live != nil {
		d.live.afu = f.AFUID()
	}
	return nil
}

// functionTrait is the trait of a function ID: the driver's name and the
// ID in capitals (fpga_ext_arq.py _update_placement, sysinfo.py).
func functionTrait(afu string) string {
	return "CUSTOM_FPGA_FUNCTION_ID_INTEL_" + strings.ToUpper(afu)
}

// vfAddress is VF i's address: PAC cards place their VFs on the functions
// right after the PF's.
func vfAddress(t interface{ Fatalf(string, ...any) }, pf string, i int) string {
	a, err := spec.ParsePCIAddress(pf)
	if err != nil {
		t.Fatalf("openstacktest: %v", err)
	}
	r := a.Bus<<8 | a.Slot<<3 | a.Function + 1 + uint(i)
	return spec.PCIAddress{Domain: a.Domain, Bus: r >> 8, Slot: r >> 3 & 0x1f, Function: r & 7}.String()
}

// providerUUID is the UUID the conductor gives a card's provider:
// uuid3(NAMESPACE_DNS, name) (cyborg/conductor/manager.py
// get_rp_uuid_from_obj).
func providerUUID(name string) string {
	ns, _ := hex.DecodeString("6ba7b8109dad11d180b400c04fd430c8")
	sum := md5.Sum(append(ns, name...))
	sum[6] = sum[6]&0x0f | 0x30
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// rootProvider finds a compute node's provider by name, as the conductor
// does; "" when Placement has none.
func (c *Cloud) rootProvider(name string) string {
	var out struct {
		RPs []struct {
			UUID string `json:"uuid"`
		} `json:"resource_providers"`
	}
	if err := c.placement(http.MethodGet, "/resource_providers?"+url.Values{"name": {name}}.Encode(), nil, &out); err != nil || len(out.RPs) == 0 {
		return ""
	}
	return out.RPs[0].UUID
}

// addTraits adds traits to a provider, creating custom ones, as Cyborg's
// placement client does (cyborg/common/placement_client.py
// add_traits_to_rp): read, add, write with the generation read.
func (c *Cloud) addTraits(rp string, traits ...string) error {
	for _, t := range traits {
		if err := c.placement(http.MethodPut, "/traits/"+t, nil, nil); err != nil {
			return err
		}
	}
	return c.editTraits(rp, func(have []string) []string {
		for _, t := range traits {
			if !slices.Contains(have, t) {
				have = append(have, t)
			}
		}
		return have
	})
}

// removeTraits removes the provider's traits drop picks.
func (c *Cloud) removeTraits(rp string, drop func(string) bool) error {
	return c.editTraits(rp, func(have []string) []string { return slices.DeleteFunc(have, drop) })
}

func (c *Cloud) editTraits(rp string, edit func([]string) []string) error {
	var cur struct {
		Traits     []string `json:"traits"`
		Generation int      `json:"resource_provider_generation"`
	}
	if err := c.placement(http.MethodGet, "/resource_providers/"+rp+"/traits", nil, &cur); err != nil {
		return err
	}
	return c.placement(http.MethodPut, "/resource_providers/"+rp+"/traits",
		map[string]any{"traits": edit(cur.Traits), "resource_provider_generation": cur.Generation}, nil)
}

// placementError is an answer of Placement other than success.
type placementError struct {
	status int
	body   string
}

func (e *placementError) Error() string { return fmt.Sprintf("placement: %d %s", e.status, e.body) }

// placement calls the real Placement the cloud was given, as the services
// do (noauth2 takes the token "admin").
func (c *Cloud) placement(method, path string, body, out any) error {
	if c.PlacementURL == "" {
		return fmt.Errorf("placement: %s %s: the cloud has no Placement", method, path)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.PlacementURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", PlacementToken)
	req.Header.Set("OpenStack-API-Version", "placement 1.39")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &placementError{resp.StatusCode, string(b)}
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}
