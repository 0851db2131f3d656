// Package cyborg is a small client for the OpenStack Cyborg v2 API (service
// type "accelerator") on gophercloud's ServiceClient: device profiles
// (list, get, create, delete), deployables (list, program), devices (list)
// and accelerator requests (list only: binding ARQs is Nova's job, and
// Cyborg refuses it without a service token).
package cyborg

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// Microversion is the API microversion the client asks for.
const Microversion = "2.0"

// ServiceType is the catalog type of Cyborg.
const ServiceType = "accelerator"

// NewAcceleratorV2 finds Cyborg in the provider's catalog and returns a
// client for its v2 API that sends "OpenStack-API-Version: accelerator 2.0".
func NewAcceleratorV2(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts) (*gophercloud.ServiceClient, error) {
	eo.ApplyDefaults(ServiceType)
	eo.Version = 2
	endpoint, err := pc.EndpointLocator(eo)
	if err != nil {
		return nil, fmt.Errorf("cyborg: find endpoint: %w", err)
	}
	sc := &gophercloud.ServiceClient{
		ProviderClient: pc,
		Endpoint:       endpoint,
		Type:           ServiceType,
		Microversion:   Microversion,
	}
	sc.ResourceBase = endpoint
	if !strings.HasSuffix(strings.TrimSuffix(endpoint, "/"), "/v2") {
		sc.ResourceBase = endpoint + "v2/"
	}
	return sc, nil
}

// Link is a self or bookmark link in a Cyborg answer.
type Link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// DeviceProfile is a named set of accelerator requirements, a "flavor for
// devices". Each group maps keys ("resources:FPGA", "trait:CUSTOM_X",
// "accel:bitstream_id") to values.
type DeviceProfile struct {
	UUID        string              `json:"uuid,omitempty"`
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	Groups      []map[string]string `json:"groups"`
	CreatedAt   string              `json:"created_at,omitempty"`
	UpdatedAt   *string             `json:"updated_at,omitempty"`
	Links       []Link              `json:"links,omitempty"`
}

// NamePattern is what Cyborg accepts as a device profile name.
var NamePattern = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)

// Validate checks a profile the way Cyborg's POST handler does, so that a
// bad profile is refused before any request is made.
func (p *DeviceProfile) Validate() error {
	if p.Name == "" {
		return fmt.Errorf("device profile: name is required")
	}
	if !NamePattern.MatchString(p.Name) {
		return fmt.Errorf("device profile %q: name must match %s", p.Name, NamePattern)
	}
	if len(p.Groups) == 0 {
		return fmt.Errorf("device profile %s: at least one group is required", p.Name)
	}
	for i, g := range p.Groups {
		if g["accel:bitstream_id"] != "" && g["accel:function_id"] != "" {
			return fmt.Errorf("device profile %s: group %d: accel:bitstream_id and accel:function_id exclude each other", p.Name, i)
		}
		for k, v := range g {
			switch {
			case strings.HasPrefix(k, "trait:"):
				if !strings.HasPrefix(strings.TrimPrefix(k, "trait:"), "CUSTOM_") {
					return fmt.Errorf("device profile %s: group %d: trait %q: want CUSTOM_*", p.Name, i, k)
				}
				if v != "required" && v != "forbidden" {
					return fmt.Errorf("device profile %s: group %d: trait %q: value %q: want required or forbidden", p.Name, i, k, v)
				}
			case strings.HasPrefix(k, "resources:"), strings.HasPrefix(k, "accel:"):
			default:
				return fmt.Errorf("device profile %s: group %d: key %q: want resources:, trait: or accel:", p.Name, i, k)
			}
		}
	}
	return nil
}

// Deployable is a reconfigurable unit of a device, such as the PR region of
// an FPGA card. RPUUID is its resource provider in Placement; BitstreamID
// is what Cyborg last programmed into it (a Glance image UUID), if any.
type Deployable struct {
	UUID            string  `json:"uuid"`
	ParentID        *int    `json:"parent_id"`
	RootID          *int    `json:"root_id"`
	Name            string  `json:"name"`
	NumAccelerators int     `json:"num_accelerators"`
	DeviceID        int     `json:"device_id"`
	AttributesList  string  `json:"attributes_list,omitempty"`
	RPUUID          string  `json:"rp_uuid"`
	DriverName      string  `json:"driver_name"`
	BitstreamID     *string `json:"bitstream_id"`
	CreatedAt       string  `json:"created_at,omitempty"`
	UpdatedAt       *string `json:"updated_at,omitempty"`
	Links           []Link  `json:"links,omitempty"`
}

// Bitstream returns the deployable's bitstream ID, or "".
func (d *Deployable) Bitstream() string {
	if d.BitstreamID == nil {
		return ""
	}
	return *d.BitstreamID
}

// Device is an accelerator card as Cyborg knows it.
type Device struct {
	UUID            string  `json:"uuid"`
	Type            string  `json:"type"`
	Vendor          string  `json:"vendor"`
	Model           string  `json:"model"`
	StdBoardInfo    string  `json:"std_board_info"`
	VendorBoardInfo string  `json:"vendor_board_info"`
	Hostname        string  `json:"hostname"`
	CreatedAt       string  `json:"created_at,omitempty"`
	UpdatedAt       *string `json:"updated_at,omitempty"`
	Links           []Link  `json:"links,omitempty"`
}

// ARQ states.
const (
	ARQInitial      = "Initial"
	ARQBindStarted  = "BindStarted"
	ARQBound        = "Bound"
	ARQUnbound      = "Unbound"
	ARQBindFailed   = "BindFailed"
	ARQUnbindFailed = "UnbindFailed"
	ARQDeleting     = "Deleting"
)

// ARQ is an accelerator request: one accelerator for one instance.
type ARQ struct {
	UUID                 string            `json:"uuid"`
	State                string            `json:"state"`
	DeviceProfileName    string            `json:"device_profile_name"`
	DeviceProfileGroupID int               `json:"device_profile_group_id"`
	Hostname             *string           `json:"hostname"`
	DeviceRPUUID         *string           `json:"device_rp_uuid"`
	InstanceUUID         *string           `json:"instance_uuid"`
	AttachHandleType     string            `json:"attach_handle_type"`
	AttachHandleInfo     map[string]string `json:"attach_handle_info"`
	CreatedAt            string            `json:"created_at,omitempty"`
	UpdatedAt            *string           `json:"updated_at,omitempty"`
	Links                []Link            `json:"links,omitempty"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Instance is the ARQ's instance UUID, or "".
func (a *ARQ) Instance() string { return deref(a.InstanceUUID) }

// DeviceRP is the resource provider the ARQ is bound to, or "".
func (a *ARQ) DeviceRP() string { return deref(a.DeviceRPUUID) }

// ListDeviceProfiles lists device profiles, only those with these names
// when names are given.
func ListDeviceProfiles(ctx context.Context, c *gophercloud.ServiceClient, names ...string) ([]DeviceProfile, error) {
	u := c.ServiceURL("device_profiles")
	if len(names) > 0 {
		u += "?" + url.Values{"name": {strings.Join(names, ",")}}.Encode()
	}
	var body struct {
		DeviceProfiles []DeviceProfile `json:"device_profiles"`
	}
	if _, err := c.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, fmt.Errorf("cyborg: list device profiles: %w", err)
	}
	return body.DeviceProfiles, nil
}

// GetDeviceProfile reads one device profile by UUID.
func GetDeviceProfile(ctx context.Context, c *gophercloud.ServiceClient, uuid string) (*DeviceProfile, error) {
	var body struct {
		DeviceProfile DeviceProfile `json:"device_profile"`
	}
	if _, err := c.Get(ctx, c.ServiceURL("device_profiles", uuid), &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, fmt.Errorf("cyborg: get device profile %s: %w", uuid, err)
	}
	return &body.DeviceProfile, nil
}

// createProfile is the POST body's element: only what a client may set.
type createProfile struct {
	Name        string              `json:"name"`
	Description string              `json:"description,omitempty"`
	Groups      []map[string]string `json:"groups"`
}

// CreateDeviceProfile creates a profile. Cyborg takes a JSON list holding
// exactly one profile and answers 201 with the profile.
func CreateDeviceProfile(ctx context.Context, c *gophercloud.ServiceClient, p DeviceProfile) (*DeviceProfile, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("cyborg: create %w", err)
	}
	req := []createProfile{{Name: p.Name, Description: p.Description, Groups: p.Groups}}
	var out DeviceProfile
	if _, err := c.Post(ctx, c.ServiceURL("device_profiles"), req, &out, &gophercloud.RequestOpts{OkCodes: []int{201}}); err != nil {
		return nil, fmt.Errorf("cyborg: create device profile %s: %w", p.Name, err)
	}
	return &out, nil
}

// DeleteDeviceProfile deletes a profile by UUID.
func DeleteDeviceProfile(ctx context.Context, c *gophercloud.ServiceClient, uuid string) error {
	if _, err := c.Delete(ctx, c.ServiceURL("device_profiles", uuid), &gophercloud.RequestOpts{OkCodes: []int{204}}); err != nil {
		return fmt.Errorf("cyborg: delete device profile %s: %w", uuid, err)
	}
	return nil
}

// ListDeployables lists every deployable.
func ListDeployables(ctx context.Context, c *gophercloud.ServiceClient) ([]Deployable, error) {
	var body struct {
		Deployables []Deployable `json:"deployables"`
	}
	if _, err := c.Get(ctx, c.ServiceURL("deployables"), &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, fmt.Errorf("cyborg: list deployables: %w", err)
	}
	return body.Deployables, nil
}

// patchOp is one JSON-patch operation.
type patchOp struct {
	Path  string `json:"path"`
	Op    string `json:"op"`
	Value any    `json:"value"`
}

// ProgramDeployable asks Cyborg to program the deployable with a Glance
// image: PATCH /v2/deployables/{uuid}/program with a JSON-patch body.
func ProgramDeployable(ctx context.Context, c *gophercloud.ServiceClient, uuid, imageUUID string) (*Deployable, error) {
	req := []patchOp{{Path: "/program", Op: "replace", Value: []map[string]string{{"image_uuid": imageUUID}}}}
	var out Deployable
	if _, err := c.Patch(ctx, c.ServiceURL("deployables", uuid, "program"), req, &out, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, fmt.Errorf("cyborg: program deployable %s: %w", uuid, err)
	}
	return &out, nil
}

// DeviceListOpts filters the device list; empty fields do not filter.
type DeviceListOpts struct {
	Type     string
	Vendor   string
	Hostname string
}

// ListDevices lists devices.
func ListDevices(ctx context.Context, c *gophercloud.ServiceClient, opts DeviceListOpts) ([]Device, error) {
	q := url.Values{}
	for k, v := range map[string]string{"type": opts.Type, "vendor": opts.Vendor, "hostname": opts.Hostname} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u := c.ServiceURL("devices")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body struct {
		Devices []Device `json:"devices"`
	}
	if _, err := c.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, fmt.Errorf("cyborg: list devices: %w", err)
	}
	return body.Devices, nil
}

// ListARQs lists accelerator requests, only those of one instance when
// instance is not "".
func ListARQs(ctx context.Context, c *gophercloud.ServiceClient, instance string) ([]ARQ, error) {
	u := c.ServiceURL("accelerator_requests")
	if instance != "" {
		u += "?" + url.Values{"instance": {instance}}.Encode()
	}
	var body struct {
		ARQs []ARQ `json:"arqs"`
	}
	if _, err := c.Get(ctx, u, &body, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return nil, fmt.Errorf("cyborg: list accelerator requests: %w", err)
	}
	return body.ARQs, nil
}
