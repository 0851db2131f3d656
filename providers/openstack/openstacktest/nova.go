package openstacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// NovaMicroversion is the least compute microversion with accelerator
// support (device profiles in flavors).
const NovaMicroversion = "2.82"

// Flavor is a Nova flavor in the fixture.
type Flavor struct {
	ID         string
	Name       string
	VCPUs      int
	RAM        int
	Disk       int
	ExtraSpecs map[string]string
}

// Server is a Nova server in the fixture. Flavor is the copy Nova embeds
// in the server (microversion 2.47 and later).
type Server struct {
	ID       string
	Name     string
	Host     string
	Status   string
	ImageID  string
	Flavor   Flavor
	Networks []string
	KeyName  string
	Metadata map[string]string
	// Fault is the fault message of a server in ERROR.
	Fault string

	// building counts the reads left before a new server settles;
	// bindFault, when set, is why its accelerators could not be bound:
	// it settles in ERROR with it.
	building  int
	bindFault string
}

// settle moves a server that is being built on by one read: BUILD until
// the fixture's BootPolls are used up, then ACTIVE, or ERROR with
// BootFault.
func (c *Cloud) settle(s *Server) {
	if s.Status != "BUILD" {
		return
	}
	if s.building > 0 {
		s.building--
		return
	}
	if s.bindFault != "" || c.BootFault != "" {
		s.Status, s.Fault = "ERROR", c.BootFault
		if s.bindFault != "" {
			s.Fault = s.bindFault
		}
		return
	}
	s.Status = "ACTIVE"
}

// AddFlavor seeds a flavor and returns its ID.
func (c *Cloud) AddFlavor(f Flavor) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.ID == "" {
		f.ID = strconv.Itoa(100 + c.next())
	}
	c.flavors = append(c.flavors, &f)
	return f.ID
}

// AddServer seeds a running server and returns its ID. The flavor is
// looked up by name and embedded.
func (c *Cloud) AddServer(s Server, flavorName string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.flavorByName(flavorName)
	if f == nil {
		c.t.Fatalf("openstacktest: AddServer %s: no flavor %s", s.Name, flavorName)
	}
	s.Flavor = *f
	if s.ID == "" {
		s.ID = newUUID()
	}
	if s.Status == "" {
		s.Status = "ACTIVE"
	}
	c.servers = append(c.servers, &s)
	return s.ID
}

// Servers returns a copy of the servers.
func (c *Cloud) Servers() []Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return values(c.servers)
}

// Flavors returns a copy of the flavors.
func (c *Cloud) Flavors() []Flavor {
	c.mu.Lock()
	defer c.mu.Unlock()
	return values(c.flavors)
}

func (c *Cloud) flavorByName(name string) *Flavor {
	for _, f := range c.flavors {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func (c *Cloud) checkNovaVersion(w http.ResponseWriter, r *http.Request) bool {
	legacy := r.Header.Get("X-OpenStack-Nova-API-Version")
	modern := r.Header.Get("OpenStack-API-Version")
	if !atLeast(legacy, NovaMicroversion) || modern != "compute "+legacy {
		c.violation(w, http.StatusBadRequest, "nova: %s %s: microversion headers %q / %q: want compute >= %s in both", r.Method, r.URL.Path, legacy, modern, NovaMicroversion)
		return false
	}
	return true
}

// atLeast compares "2.82"-style microversions.
func atLeast(got, want string) bool {
	gm, gn, ok1 := strings.Cut(got, ".")
	wm, wn, ok2 := strings.Cut(want, ".")
	if !ok1 || !ok2 {
		return false
	}
	a, err1 := strconv.Atoi(gm)
	b, err2 := strconv.Atoi(gn)
	x, _ := strconv.Atoi(wm)
	y, _ := strconv.Atoi(wn)
	if err1 != nil || err2 != nil {
		return false
	}
	return a > x || a == x && b >= y
}

func (c *Cloud) checkQuery(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for k := range r.URL.Query() {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			c.violation(w, http.StatusBadRequest, "%s %s: query parameter %q not in the API reference", r.Method, r.URL.Path, k)
			return false
		}
	}
	return true
}

func (c *Cloud) serveNova(w http.ResponseWriter, r *http.Request, p string) {
	if !c.checkNovaVersion(w, r) {
		return
	}
	parts := strings.Split(strings.TrimPrefix(p, "/v2.1/"), "/")
	if !strings.HasPrefix(p, "/v2.1/") {
		c.violation(w, http.StatusNotFound, "nova: %s: not under /v2.1", p)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(parts) == 2 && parts[0] == "servers" && parts[1] == "detail":
		if r.Method != http.MethodGet {
			c.notAllowed(w, r)
			return
		}
		if !c.checkQuery(w, r, "all_tenants", "host", "name", "limit", "marker") {
			return
		}
		q := r.URL.Query()
		if q.Has("host") && q.Get("all_tenants") == "" {
			// Not an error in Nova, but a reconciler that forgets it
			// sees only its own project's servers.
			c.violation(w, http.StatusBadRequest, "nova: servers/detail?host without all_tenants sees one project only")
			return
		}
		list := []map[string]any{}
		for _, s := range c.servers {
			if q.Has("host") && s.Host != q.Get("host") {
				continue
			}
			if q.Has("name") && s.Name != q.Get("name") {
				continue
			}
			list = append(list, c.serverJSON(s))
		}
		writeJSON(w, http.StatusOK, map[string]any{"servers": list})
	case len(parts) == 1 && parts[0] == "servers":
		if r.Method != http.MethodPost {
			c.notAllowed(w, r)
			return
		}
		c.createServer(w, r)
	case len(parts) == 2 && parts[0] == "servers":
		s := c.serverByID(parts[1])
		if s == nil {
			refuse(w, http.StatusNotFound, "itemNotFound", "Instance "+parts[1]+" could not be found.")
			return
		}
		switch r.Method {
		case http.MethodGet:
			c.settle(s)
			writeJSON(w, http.StatusOK, map[string]any{"server": c.serverJSON(s)})
		case http.MethodDelete:
			c.deleteServer(s)
			w.WriteHeader(http.StatusNoContent)
		default:
			c.notAllowed(w, r)
		}
	case len(parts) == 3 && parts[0] == "servers" && parts[2] == "os-interface":
		if r.Method != http.MethodGet {
			c.notAllowed(w, r)
			return
		}
		s := c.serverByID(parts[1])
		if s == nil {
			refuse(w, http.StatusNotFound, "itemNotFound", "Instance "+parts[1]+" could not be found.")
			return
		}
		list := []map[string]any{}
		for i, n := range s.Networks {
			list = append(list, map[string]any{
				"port_id": fmt.Sprintf("%s-port%d", s.ID[:8], i), "net_id": n, "port_state": "ACTIVE",
				"mac_addr": fmt.Sprintf("fa:16:3e:00:00:%02x", i), "fixed_ips": []map[string]any{{"subnet_id": n + "-subnet", "ip_address": fmt.Sprintf("10.0.%d.10", i)}},
			})
		}
		writeJSON(w, http.StatusOK, map[string]any{"interfaceAttachments": list})
	case len(parts) == 2 && parts[0] == "flavors" && parts[1] == "detail":
		if r.Method != http.MethodGet {
			c.notAllowed(w, r)
			return
		}
		if !c.checkQuery(w, r, "is_public", "limit", "marker") {
			return
		}
		list := []map[string]any{}
		for _, f := range c.flavors {
			list = append(list, flavorJSON(f))
		}
		writeJSON(w, http.StatusOK, map[string]any{"flavors": list})
	case len(parts) == 1 && parts[0] == "flavors":
		if r.Method != http.MethodPost {
			c.notAllowed(w, r)
			return
		}
		c.createFlavor(w, r)
	case len(parts) == 3 && parts[0] == "flavors" && parts[2] == "os-extra_specs":
		var f *Flavor
		for _, x := range c.flavors {
			if x.ID == parts[1] {
				f = x
			}
		}
		if f == nil {
			refuse(w, http.StatusNotFound, "itemNotFound", "Flavor "+parts[1]+" could not be found.")
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"extra_specs": nonNil(f.ExtraSpecs)})
		case http.MethodPost:
			var req struct {
				ExtraSpecs map[string]string `json:"extra_specs"`
			}
			if err := decodeStrict(r, &req); err != nil || len(req.ExtraSpecs) == 0 {
				c.violation(w, http.StatusBadRequest, "nova: extra specs of flavor %s: want {\"extra_specs\": {...}}: %v", f.ID, err)
				return
			}
			if dp, ok := req.ExtraSpecs["accel:device_profile"]; ok && c.profileByName(dp) == nil {
				// Nova checks the profile with Cyborg when it boots, not
				// here; but a flavor naming a missing profile is a
				// reconciler bug worth failing on.
				c.violation(w, http.StatusBadRequest, "nova: flavor %s names device profile %q that Cyborg does not have", f.Name, dp)
				return
			}
			if f.ExtraSpecs == nil {
				f.ExtraSpecs = map[string]string{}
			}
			for k, v := range req.ExtraSpecs {
				f.ExtraSpecs[k] = v
			}
			writeJSON(w, http.StatusOK, map[string]any{"extra_specs": f.ExtraSpecs})
		default:
			c.notAllowed(w, r)
		}
	default:
		c.violation(w, http.StatusNotFound, "nova: %s %s: not a path this fixture knows", r.Method, p)
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func flavorJSON(f *Flavor) map[string]any {
	return map[string]any{
		"id": f.ID, "name": f.Name, "vcpus": f.VCPUs, "ram": f.RAM, "disk": f.Disk,
		"OS-FLV-EXT-DATA:ephemeral": 0, "swap": 0, "rxtx_factor": 1.0,
		"os-flavor-access:is_public": true, "OS-FLV-DISABLED:disabled": false,
		"description": nil, "extra_specs": nonNil(f.ExtraSpecs),
		"links": []map[string]string{{"href": "http://openstack.example.com/v2.1/flavors/" + f.ID, "rel": "self"}},
	}
}

func (c *Cloud) serverByID(id string) *Server {
	for _, s := range c.servers {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func (c *Cloud) serverJSON(s *Server) map[string]any {
	addrs := map[string]any{}
	for i, n := range s.Networks {
		addrs[n] = []map[string]any{{"addr": fmt.Sprintf("10.0.%d.10", i), "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": fmt.Sprintf("fa:16:3e:00:00:%02x", i)}}
	}
	var key any
	if s.KeyName != "" {
		key = s.KeyName
	}
	var taskState any
	vmState, power := "active", 1
	switch s.Status {
	case "BUILD":
		taskState, vmState, power = "spawning", "building", 0
	case "ERROR":
		vmState, power = "error", 0
	case "ACTIVE":
	default:
		vmState, power = "stopped", 4
	}
	out := map[string]any{
		"id": s.ID, "name": s.Name, "status": s.Status,
		"tenant_id": "a6944d763bf64ee6a275f1263fae0352", "user_id": "ee4dfb6e5540447cb3741905149d9b6e",
		"metadata": nonNil(s.Metadata), "hostId": "2091634baaccdc4c5a1d57069c833e402921df696b7f970791b12ec6",
		"image": map[string]any{"id": s.ImageID, "links": []map[string]string{{"href": "http://openstack.example.com/images/" + s.ImageID, "rel": "bookmark"}}},
		"flavor": map[string]any{
			"vcpus": s.Flavor.VCPUs, "ram": s.Flavor.RAM, "disk": s.Flavor.Disk, "ephemeral": 0, "swap": 0,
			"original_name": s.Flavor.Name, "extra_specs": nonNil(s.Flavor.ExtraSpecs),
		},
		"created": stamp, "updated": stamp, "addresses": addrs,
		"accessIPv4": "", "accessIPv6": "", "progress": 0, "OS-DCF:diskConfig": "MANUAL",
		"links":                       []map[string]string{{"href": "http://openstack.example.com/v2.1/servers/" + s.ID, "rel": "self"}},
		"OS-EXT-AZ:availability_zone": "nova", "config_drive": "", "key_name": key,
		"OS-SRV-USG:launched_at": "2026-01-15T10:00:05.000000", "OS-SRV-USG:terminated_at": nil,
		"OS-EXT-SRV-ATTR:host": s.Host, "OS-EXT-SRV-ATTR:hypervisor_hostname": s.Host,
		"OS-EXT-SRV-ATTR:instance_name": "instance-0000" + s.ID[:4],
		"OS-EXT-STS:task_state":         taskState, "OS-EXT-STS:vm_state": vmState,
		"OS-EXT-STS:power_state": power, "os-extended-volumes:volumes_attached": []any{},
		"locked": false, "description": nil, "tags": []string{}, "trusted_image_certificates": nil,
		"host_status": "UP", "security_groups": []map[string]string{{"name": "default"}},
	}
	if s.Status == "ERROR" {
		// Nova shows the fault of a server in ERROR.
		out["fault"] = map[string]any{"code": 500, "created": stamp, "message": s.Fault}
	}
	return out
}

func (c *Cloud) createFlavor(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Flavor struct {
			Name        string  `json:"name"`
			RAM         int     `json:"ram"`
			VCPUs       int     `json:"vcpus"`
			Disk        *int    `json:"disk"`
			ID          string  `json:"id,omitempty"`
			Swap        *int    `json:"swap,omitempty"`
			RxTxFactor  float64 `json:"rxtx_factor,omitempty"`
			IsPublic    *bool   `json:"os-flavor-access:is_public,omitempty"`
			Ephemeral   *int    `json:"OS-FLV-EXT-DATA:ephemeral,omitempty"`
			Description string  `json:"description,omitempty"`
		} `json:"flavor"`
	}
	if err := decodeStrict(r, &req); err != nil {
		c.violation(w, http.StatusBadRequest, "nova: create flavor: %v", err)
		return
	}
	f := req.Flavor
	if f.Name == "" || f.RAM < 1 || f.VCPUs < 1 || f.Disk == nil || *f.Disk < 0 {
		c.violation(w, http.StatusBadRequest, "nova: create flavor: name, ram >= 1, vcpus >= 1 and disk >= 0 are required")
		return
	}
	if c.flavorByName(f.Name) != nil {
		refuse(w, http.StatusConflict, "conflictingRequest", "Flavor with name "+f.Name+" already exists.")
		return
	}
	nf := &Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAM: f.RAM, Disk: *f.Disk}
	if nf.ID == "" {
		nf.ID = newUUID()
	}
	c.flavors = append(c.flavors, nf)
	writeJSON(w, http.StatusOK, map[string]any{"flavor": flavorJSON(nf)})
}

func (c *Cloud) createServer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Server struct {
			Name             string            `json:"name"`
			ImageRef         string            `json:"imageRef"`
			FlavorRef        string            `json:"flavorRef"`
			Networks         json.RawMessage   `json:"networks"`
			AvailabilityZone string            `json:"availability_zone,omitempty"`
			KeyName          string            `json:"key_name,omitempty"`
			Metadata         map[string]string `json:"metadata,omitempty"`
		} `json:"server"`
	}
	if err := decodeStrict(r, &req); err != nil {
		c.violation(w, http.StatusBadRequest, "nova: create server: %v", err)
		return
	}
	s := req.Server
	if s.Name == "" || s.FlavorRef == "" || s.ImageRef == "" {
		c.violation(w, http.StatusBadRequest, "nova: create server: name, imageRef and flavorRef are required")
		return
	}
	// Since 2.37 networks is required: "auto", "none" or a list.
	var nets []struct {
		UUID string `json:"uuid"`
	}
	var word string
	if json.Unmarshal(s.Networks, &word) == nil && (word == "auto" || word == "none") {
		nets = nil
	} else if err := json.Unmarshal(s.Networks, &nets); err != nil || len(nets) == 0 {
		c.violation(w, http.StatusBadRequest, "nova: create server %s: networks: want \"auto\", \"none\" or a list of {\"uuid\": ...}: %s", s.Name, s.Networks)
		return
	}
	var f *Flavor
	for _, x := range c.flavors {
		if x.ID == s.FlavorRef {
			f = x
		}
	}
	if f == nil {
		c.violation(w, http.StatusBadRequest, "nova: create server %s: flavor %s not found", s.Name, s.FlavorRef)
		return
	}
	zone, host, _ := strings.Cut(s.AvailabilityZone, ":")
	if zone != "nova" || host == "" {
		c.violation(w, http.StatusBadRequest, "nova: create server %s: availability_zone %q: want nova:<host> to keep it on its node", s.Name, s.AvailabilityZone)
		return
	}
	// A new server is BUILD until it is read (BootPolls more times).
	ns := &Server{ID: newUUID(), Name: s.Name, Host: host, Status: "BUILD", building: c.BootPolls, ImageID: s.ImageRef, Flavor: *f, KeyName: s.KeyName, Metadata: s.Metadata}
	for _, n := range nets {
		ns.Networks = append(ns.Networks, n.UUID)
	}
	// Nova accepts the boot and binds the accelerators while it builds
	// the server; a failed bind puts the server in ERROR
	// (nova/compute/manager.py, AcceleratorRequestBindingFailed).
	if dp := f.ExtraSpecs["accel:device_profile"]; dp != "" {
		if err := c.bindAccelerator(ns, dp); err != nil {
			ns.bindFault = err.Error()
		}
	}
	c.servers = append(c.servers, ns)
	w.Header().Set("Location", "http://openstack.example.com/v2.1/servers/"+ns.ID)
	writeJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": ns.ID, "OS-DCF:diskConfig": "MANUAL", "security_groups": []map[string]string{{"name": "default"}},
		"links": []map[string]string{{"href": "http://openstack.example.com/v2.1/servers/" + ns.ID, "rel": "self"}},
	}})
}

func (c *Cloud) deleteServer(s *Server) {
	out := c.servers[:0]
	for _, x := range c.servers {
		if x != s {
			out = append(out, x)
		}
	}
	c.servers = out
	// Nova deletes the server's ARQs and allocations with it.
	if c.PlacementURL != "" {
		_ = c.placement(http.MethodDelete, "/allocations/"+s.ID, nil, nil) // 404: it had none
	}
	arqs := c.arqs[:0]
	for _, a := range c.arqs {
		if a.InstanceUUID != s.ID {
			arqs = append(arqs, a)
		}
	}
	c.arqs = arqs
}
