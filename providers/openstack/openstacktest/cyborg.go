package openstacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Profile is a Cyborg device profile in the fixture.
type Profile struct {
	UUID        string
	Name        string
	Description string
	Groups      []map[string]string
}

// Deployable is a Cyborg deployable (an FPGA's PR region) in the fixture.
// Name is "<hostname>_<bdf>", as Cyborg's Intel driver names it.
type Deployable struct {
	UUID            string
	Name            string
	RPUUID          string
	DeviceID        int
	NumAccelerators int
	// BitstreamID is what the last bind programmed: Cyborg's program
	// action leaves it alone.
	BitstreamID string
	Programmed  []string // image UUIDs programmed through the API, in order
	// Handles are the functions servers are given.
	Handles []AttachHandle

	// live is the card behind it, for the deployables AddCard made.
	live *card
}

// AttachHandle is a function of a card that a bound ARQ hands to Nova.
type AttachHandle struct {
	Type, PCI string
}

// Device is a Cyborg device in the fixture.
type Device struct {
	UUID, Type, Vendor, Model, Hostname string
	ProductID                           string
}

// ARQ is an accelerator request in the fixture.
type ARQ struct {
	UUID, State, DeviceProfileName, Hostname, DeviceRPUUID, InstanceUUID string
	AttachType, PCI                                                      string
}

// AddProfile seeds a device profile and returns its UUID.
func (c *Cloud) AddProfile(p Profile) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.UUID == "" {
		p.UUID = newUUID()
	}
	c.profiles = append(c.profiles, &p)
	return p.UUID
}

// AddDevice seeds a card: a device and its deployable, with the resource
// provider rpUUID, on host at bdf. It returns the deployable's UUID.
func (c *Cloud) AddDevice(host, bdf, productID, rpUUID, bitstreamID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.next()
	c.devices = append(c.devices, &Device{UUID: newUUID(), Type: "FPGA", Vendor: "0x8086", Model: "miss_model_info", Hostname: host, ProductID: productID})
	d := &Deployable{UUID: newUUID(), Name: host + "_" + bdf, RPUUID: rpUUID, DeviceID: id, BitstreamID: bitstreamID,
		NumAccelerators: 1, Handles: []AttachHandle{{Type: "PCI", PCI: strings.ToLower(bdf)}}}
	c.deployables = append(c.deployables, d)
	return d.UUID
}

// BindARQ seeds a Bound ARQ of server on the deployable's RP, holding its
// first free attach handle. A deployable AddCard made gets the allocation
// Nova would have made in Placement.
func (c *Cloud) BindARQ(serverID, deployableUUID, profile string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.serverByID(serverID)
	d := c.deployableByUUID(deployableUUID)
	if s == nil || d == nil {
		c.t.Fatalf("openstacktest: BindARQ: no server %s or deployable %s", serverID, deployableUUID)
	}
	h := c.freeHandle(d)
	if h == nil {
		c.t.Fatalf("openstacktest: BindARQ: deployable %s has no free attach handle", d.Name)
	}
	if d.live != nil {
		if err := c.allocate(s, d.RPUUID); err != nil {
			c.t.Fatalf("openstacktest: BindARQ: %v", err)
		}
	}
	c.arqs = append(c.arqs, &ARQ{UUID: newUUID(), State: "Bound", DeviceProfileName: profile, Hostname: s.Host, DeviceRPUUID: d.RPUUID, InstanceUUID: s.ID, AttachType: h.Type, PCI: h.PCI})
}

// freeHandle is an attach handle of the deployable no bound ARQ holds.
func (c *Cloud) freeHandle(d *Deployable) *AttachHandle {
	for i := range d.Handles {
		busy := false
		for _, a := range c.arqs {
			busy = busy || a.DeviceRPUUID == d.RPUUID && a.State == "Bound" && a.PCI == d.Handles[i].PCI
		}
		if !busy {
			return &d.Handles[i]
		}
	}
	return nil
}

// Profiles returns a copy of the device profiles.
func (c *Cloud) Profiles() []Profile {
	c.mu.Lock()
	defer c.mu.Unlock()
	return values(c.profiles)
}

// Deployables returns a copy of the deployables.
func (c *Cloud) Deployables() []Deployable {
	c.mu.Lock()
	defer c.mu.Unlock()
	return values(c.deployables)
}

// ARQs returns a copy of the accelerator requests.
func (c *Cloud) ARQs() []ARQ {
	c.mu.Lock()
	defer c.mu.Unlock()
	return values(c.arqs)
}

func (c *Cloud) profileByName(name string) *Profile {
	for _, p := range c.profiles {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func (c *Cloud) deployableByUUID(id string) *Deployable {
	for _, d := range c.deployables {
		if d.UUID == id {
			return d
		}
	}
	return nil
}

// bindAccelerator does what Nova and Cyborg do when a server boots with a
// flavor naming a device profile. Placement picks a card on the server's
// host whose provider has the group's resources and traits (Nova asks for
// allocation candidates and claims one); Cyborg binds an ARQ to the
// card's deployable and, when the group names a bitstream the deployable
// did not last bind, programs it, reads accel:function_id from the image
// (a bind without it fails), moves the card's function ID trait to it and
// records the image as the deployable's bitstream_id
// (cyborg/objects/extarq/fpga_ext_arq.py bind).
func (c *Cloud) bindAccelerator(s *Server, profile string) error {
	p := c.profileByName(profile)
	if p == nil {
		return fmt.Errorf("Device profile name %s not found", profile)
	}
	g := p.Groups[0]
	h, ok := c.hosts[s.Host]
	if !ok {
		h = Host{Nova: s.Host}
	}
	rp, err := c.candidate(h, g)
	if err != nil {
		return err
	}
	var d *Deployable
	for _, x := range c.deployables {
		if x.RPUUID == rp {
			d = x
		}
	}
	if d == nil {
		return fmt.Errorf("No valid host was found. There are not enough hosts available.")
	}
	handle := c.freeHandle(d)
	if err := c.allocate(s, rp); err != nil {
		return err
	}
	if err := c.bindProgram(d, g); err != nil {
		_ = c.placement(http.MethodDelete, "/allocations/"+s.ID, nil, nil)
		return fmt.Errorf("Failed to bind accelerator requests: %v", err)
	}
	c.arqs = append(c.arqs, &ARQ{UUID: newUUID(), State: "Bound", DeviceProfileName: profile, Hostname: s.Host, DeviceRPUUID: d.RPUUID, InstanceUUID: s.ID, AttachType: handle.Type, PCI: handle.PCI})
	return nil
}

// candidate asks the real Placement for a provider in the host's tree
// with the group's resources and traits, and picks the first in the
// cloud's order of deployables.
func (c *Cloud) candidate(h Host, g map[string]string) (string, error) {
	root := c.rootProvider(h.provider())
	if root == "" {
		return "", fmt.Errorf("No valid host was found. There are not enough hosts available.")
	}
	q := url.Values{"in_tree": {root}}
	var res, traits []string
	for k, v := range g {
		switch {
		case strings.HasPrefix(k, "resources:"):
			res = append(res, strings.TrimPrefix(k, "resources:")+":"+v)
		case strings.HasPrefix(k, "trait:") && v == "required":
			traits = append(traits, strings.TrimPrefix(k, "trait:"))
		case strings.HasPrefix(k, "trait:") && v == "forbidden":
			traits = append(traits, "!"+strings.TrimPrefix(k, "trait:"))
		}
	}
	slices.Sort(res)
	slices.Sort(traits)
	q.Set("resources", strings.Join(res, ","))
	if len(traits) > 0 {
		q.Set("required", strings.Join(traits, ","))
	}
	var out struct {
		Requests []struct {
			Allocations map[string]any `json:"allocations"`
		} `json:"allocation_requests"`
	}
	if err := c.placement(http.MethodGet, "/allocation_candidates?"+q.Encode(), nil, &out); err != nil {
		// Placement refuses a trait nobody has: nothing fits.
		return "", fmt.Errorf("No valid host was found. There are not enough hosts available.")
	}
	for _, d := range c.deployables {
		for _, r := range out.Requests {
			if _, ok := r.Allocations[d.RPUUID]; ok && len(r.Allocations) == 1 && c.freeHandle(d) != nil {
				return d.RPUUID, nil
			}
		}
	}
	return "", fmt.Errorf("No valid host was found. There are not enough hosts available.")
}

// allocate claims one FPGA of the provider for the server, besides what
// it holds, as Nova's scheduler does (a consumer of type INSTANCE).
func (c *Cloud) allocate(s *Server, rp string) error {
	var have struct {
		Allocations map[string]struct {
			Resources map[string]int `json:"resources"`
		} `json:"allocations"`
		Generation *int `json:"consumer_generation"`
	}
	if err := c.placement(http.MethodGet, "/allocations/"+s.ID, nil, &have); err != nil {
		return err
	}
	allocs := map[string]any{rp: map[string]any{"resources": map[string]int{"FPGA": 1}}}
	for k, v := range have.Allocations {
		if k != rp {
			allocs[k] = map[string]any{"resources": v.Resources}
		}
	}
	return c.placement(http.MethodPut, "/allocations/"+s.ID, map[string]any{
		"allocations": allocs, "consumer_generation": have.Generation, "consumer_type": "INSTANCE",
		"project_id": "a6944d763bf64ee6a275f1263fae0352", "user_id": "ee4dfb6e5540447cb3741905149d9b6e",
	}, nil)
}

// bindProgram is the programming half of a bind: nothing when the group
// names no bitstream or the deployable already has it; else the card is
// flashed, and the image must name its function.
func (c *Cloud) bindProgram(d *Deployable, g map[string]string) error {
	bs, fn := g["accel:bitstream_id"], g["accel:function_id"]
	if bs == "" && fn == "" || bs != "" && d.BitstreamID == bs {
		return nil
	}
	var im *Image
	if bs != "" {
		im = c.imageByID(bs)
	} else {
		// A function ID names the one image that has it.
		var found []*Image
		for _, x := range c.images {
			if x.Properties["accel:function_id"] == fn {
				found = append(found, x)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("Expected one object of type image but got %d.", len(found))
		}
		im = found[0]
	}
	if im == nil {
		return fmt.Errorf("Can not get bitstream metadata from image registry")
	}
	if err := c.flash(d, im.ID); err != nil {
		return err
	}
	if fn == "" {
		var ok bool
		if fn, ok = im.Properties["accel:function_id"]; !ok {
			return fmt.Errorf("image %s has no property 'accel:function_id'", im.ID)
		}
	}
	if err := c.removeTraits(d.RPUUID, func(t string) bool { return strings.HasPrefix(t, "CUSTOM_FPGA_FUNCTION_ID") }); err != nil {
		return err
	}
	if err := c.addTraits(d.RPUUID, functionTrait(strings.ReplaceAll(fn, "-", "_-"))); err != nil {
		return err
	}
	d.BitstreamID = im.ID
	return nil
}

func links(kind, id string) []map[string]string {
	return []map[string]string{{"href": "http://openstack.example.com/accelerator/v2/" + kind + "/" + id, "rel": "self"}}
}

func profileJSON(p *Profile) map[string]any {
	return map[string]any{"name": p.Name, "uuid": p.UUID, "description": p.Description, "groups": p.Groups,
		"created_at": "2026-01-15 10:00:00+00:00", "updated_at": nil, "links": links("device_profiles", p.UUID)}
}

func deployableJSON(d *Deployable) map[string]any {
	var bs any
	if d.BitstreamID != "" {
		bs = d.BitstreamID
	}
	return map[string]any{
		"uuid": d.UUID, "parent_id": nil, "root_id": nil, "name": d.Name, "num_accelerators": d.NumAccelerators,
		"device_id": d.DeviceID, "attributes_list": `[{"rc": "FPGA"}, {"trait0": "CUSTOM_FPGA_INTEL"}]`,
		"rp_uuid": d.RPUUID, "driver_name": "intel", "bitstream_id": bs,
		"created_at": stamp, "updated_at": stamp, "links": links("deployables", d.UUID),
	}
}

var (
	profileName = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)
	groupKey    = regexp.MustCompile(`^(resources:|trait:|accel:)`)
)

func (c *Cloud) serveCyborg(w http.ResponseWriter, r *http.Request, p string) {
	if p == "/" {
		writeJSON(w, http.StatusOK, map[string]any{
			"name": "OpenStack Cyborg API", "description": "Cyborg is the OpenStack project for lifecycle management of hardware accelerators.",
			"versions": []map[string]any{{"id": "v2.0", "status": "CURRENT", "min_version": "2.0", "max_version": "2.3",
				"links": []map[string]string{{"href": c.srv.URL + "/accelerator/v2/", "rel": "self"}}}},
			"default_version": map[string]any{"id": "v2.0", "status": "CURRENT", "min_version": "2.0", "max_version": "2.3"},
		})
		return
	}
	if v := r.Header.Get("OpenStack-API-Version"); v != "accelerator 2.0" && v != "accelerator 2.1" && v != "accelerator 2.2" && v != "accelerator 2.3" {
		c.violation(w, http.StatusNotAcceptable, "cyborg: %s %s: OpenStack-API-Version %q: want accelerator 2.0 to 2.3", r.Method, p, v)
		return
	}
	parts := strings.Split(strings.TrimPrefix(p, "/v2/"), "/")
	if !strings.HasPrefix(p, "/v2/") {
		c.violation(w, http.StatusNotFound, "cyborg: %s: not under /v2", p)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case parts[0] == "device_profiles" && len(parts) == 1:
		switch r.Method {
		case http.MethodGet:
			if !c.checkQuery(w, r, "name") {
				return
			}
			var names []string
			if n := r.URL.Query().Get("name"); n != "" {
				names = strings.Split(n, ",")
			}
			list := []map[string]any{}
			for _, p := range c.profiles {
				if names == nil || slices.Contains(names, p.Name) {
					list = append(list, profileJSON(p))
				}
			}
			writeJSON(w, http.StatusOK, map[string]any{"device_profiles": list})
		case http.MethodPost:
			c.createProfile(w, r)
		default:
			c.notAllowed(w, r)
		}
	case parts[0] == "device_profiles" && len(parts) == 2:
		var p *Profile
		for _, x := range c.profiles {
			if x.UUID == parts[1] {
				p = x
			}
		}
		if p == nil {
			refuse(w, http.StatusNotFound, "error_message", "Device profile with uuid "+parts[1]+" could not be found.")
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"device_profile": profileJSON(p)})
		case http.MethodDelete:
			for _, a := range c.arqs {
				if a.DeviceProfileName == p.Name {
					refuse(w, http.StatusConflict, "error_message", "Device profile "+p.Name+" is in use by ARQ "+a.UUID)
					return
				}
			}
			out := c.profiles[:0]
			for _, x := range c.profiles {
				if x != p {
					out = append(out, x)
				}
			}
			c.profiles = out
			w.WriteHeader(http.StatusNoContent)
		default:
			c.notAllowed(w, r)
		}
	case parts[0] == "deployables" && len(parts) == 1:
		if r.Method != http.MethodGet {
			c.notAllowed(w, r)
			return
		}
		list := []map[string]any{}
		for _, d := range c.deployables {
			list = append(list, deployableJSON(d))
		}
		writeJSON(w, http.StatusOK, map[string]any{"deployables": list})
	case parts[0] == "deployables" && len(parts) == 3 && parts[2] == "program":
		if r.Method != http.MethodPatch {
			c.notAllowed(w, r)
			return
		}
		c.program(w, r, parts[1])
	case parts[0] == "devices" && len(parts) == 1:
		if r.Method != http.MethodGet {
			c.notAllowed(w, r)
			return
		}
		if !c.checkQuery(w, r, "type", "vendor", "hostname") {
			return
		}
		q := r.URL.Query()
		list := []map[string]any{}
		for _, d := range c.devices {
			if q.Has("hostname") && d.Hostname != q.Get("hostname") || q.Has("type") && d.Type != q.Get("type") || q.Has("vendor") && d.Vendor != q.Get("vendor") {
				continue
			}
			list = append(list, map[string]any{
				"uuid": d.UUID, "type": d.Type, "vendor": d.Vendor, "model": d.Model,
				"std_board_info": fmt.Sprintf(`{"product_id": "%s"}`, d.ProductID), "vendor_board_info": "miss_vb_info",
				"hostname": d.Hostname, "created_at": stamp, "updated_at": nil, "links": links("devices", d.UUID),
			})
		}
		writeJSON(w, http.StatusOK, map[string]any{"devices": list})
	case parts[0] == "accelerator_requests" && len(parts) == 1:
		if r.Method != http.MethodGet {
			// Binding is Nova's job: a reconciler only reads ARQs.
			c.violation(w, http.StatusForbidden, "cyborg: %s accelerator_requests: fpgaops must only read ARQs", r.Method)
			return
		}
		if !c.checkQuery(w, r, "instance", "bind_state") {
			return
		}
		inst := r.URL.Query().Get("instance")
		list := []map[string]any{}
		for _, a := range c.arqs {
			if inst != "" && a.InstanceUUID != inst {
				continue
			}
			dom, rest, _ := strings.Cut(a.PCI, ":")
			bus, df, _ := strings.Cut(rest, ":")
			dev, fn, _ := strings.Cut(df, ".")
			list = append(list, map[string]any{
				"uuid": a.UUID, "state": a.State, "device_profile_name": a.DeviceProfileName, "device_profile_group_id": 0,
				"hostname": a.Hostname, "device_rp_uuid": a.DeviceRPUUID, "instance_uuid": a.InstanceUUID,
				"attach_handle_type": a.AttachType, "attach_handle_info": map[string]string{"domain": dom, "bus": bus, "device": dev, "function": fn},
				"created_at": stamp, "updated_at": stamp, "links": links("accelerator_requests", a.UUID),
			})
		}
		writeJSON(w, http.StatusOK, map[string]any{"arqs": list})
	default:
		c.violation(w, http.StatusNotFound, "cyborg: %s %s: not a path this fixture knows", r.Method, p)
	}
}

func (c *Cloud) createProfile(w http.ResponseWriter, r *http.Request) {
	var req []struct {
		Name        string              `json:"name"`
		Description string              `json:"description,omitempty"`
		Groups      []map[string]string `json:"groups"`
	}
	if err := decodeStrict(r, &req); err != nil {
		c.violation(w, http.StatusBadRequest, "cyborg: create device profile: want a JSON list: %v", err)
		return
	}
	if len(req) != 1 {
		c.violation(w, http.StatusBadRequest, "cyborg: create device profile: Only one device profile allowed per POST request for now (got %d)", len(req))
		return
	}
	p := req[0]
	if !profileName.MatchString(p.Name) {
		c.violation(w, http.StatusBadRequest, "cyborg: device profile name %q must be of the form %s", p.Name, profileName)
		return
	}
	if len(p.Groups) == 0 {
		c.violation(w, http.StatusBadRequest, "cyborg: device profile %s: groups expected", p.Name)
		return
	}
	for _, g := range p.Groups {
		for k, v := range g {
			if !groupKey.MatchString(k) {
				c.violation(w, http.StatusBadRequest, "cyborg: device profile %s: group key %q", p.Name, k)
				return
			}
			if t, ok := strings.CutPrefix(k, "trait:"); ok && (!strings.HasPrefix(t, "CUSTOM_") || v != "required" && v != "forbidden") {
				c.violation(w, http.StatusBadRequest, "cyborg: device profile %s: trait %q=%q", p.Name, t, v)
				return
			}
		}
		if g["accel:bitstream_id"] != "" && g["accel:function_id"] != "" {
			c.violation(w, http.StatusBadRequest, "cyborg: device profile %s: accel:bitstream_id and accel:function_id exclude each other", p.Name)
			return
		}
		if b := g["accel:bitstream_id"]; b != "" && c.imageByID(b) == nil {
			c.violation(w, http.StatusBadRequest, "cyborg: device profile %s: accel:bitstream_id %s is no Glance image", p.Name, b)
			return
		}
	}
	if c.profileByName(p.Name) != nil {
		refuse(w, http.StatusConflict, "error_message", "Device profile with name "+p.Name+" already exists.")
		return
	}
	np := &Profile{UUID: newUUID(), Name: p.Name, Description: p.Description, Groups: p.Groups}
	c.profiles = append(c.profiles, np)
	writeJSON(w, http.StatusCreated, profileJSON(np))
}

func (c *Cloud) program(w http.ResponseWriter, r *http.Request, uuid string) {
	var req []struct {
		Path  string              `json:"path"`
		Op    string              `json:"op"`
		Value []map[string]string `json:"value"`
	}
	if err := decodeStrict(r, &req); err != nil {
		c.violation(w, http.StatusBadRequest, "cyborg: program %s: want a JSON-patch list: %v", uuid, err)
		return
	}
	if len(req) != 1 || req[0].Path != "/program" || req[0].Op != "replace" || len(req[0].Value) != 1 || req[0].Value[0]["image_uuid"] == "" {
		b, _ := json.Marshal(req)
		c.violation(w, http.StatusBadRequest, "cyborg: program %s: body %s: want [{\"path\":\"/program\",\"op\":\"replace\",\"value\":[{\"image_uuid\":...}]}]", uuid, b)
		return
	}
	d := c.deployableByUUID(uuid)
	if d == nil {
		refuse(w, http.StatusNotFound, "error_message", "Deployable "+uuid+" could not be found.")
		return
	}
	img := req[0].Value[0]["image_uuid"]
	if c.imageByID(img) == nil {
		c.violation(w, http.StatusBadRequest, "cyborg: program %s: image %s is no Glance image", uuid, img)
		return
	}
	for _, a := range c.arqs {
		if a.DeviceRPUUID == d.RPUUID && a.State == "Bound" {
			// Cyborg would program it: reprogramming a card under a
			// server is a reconciler bug.
			c.violation(w, http.StatusConflict, "cyborg: program %s: the card is bound to instance %s", uuid, a.InstanceUUID)
			return
		}
	}
	// The agent downloads the image and flashes the card; neither it nor
	// the API touches bitstream_id (cyborg/api/controllers/v2/
	// deployables.py program, cyborg/agent/manager.py fpga_program), and
	// the answer is the deployable as it was.
	if err := c.flash(d, img); err != nil {
		refuse(w, http.StatusInternalServerError, "error_message", err.Error())
		return
	}
	d.Programmed = append(d.Programmed, img)
	writeJSON(w, http.StatusOK, deployableJSON(d))
}
