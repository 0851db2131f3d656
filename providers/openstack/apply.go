package openstack

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/openstack/cyborg"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/placement/v1/resourceproviders"
)

// maxBitstreamSize caps a bitstream fetched from a URL.
const maxBitstreamSize = 1 << 30

// DefaultBootTimeout is how long a server replacement waits by default:
// Nova schedules, binds the accelerator requests (Cyborg programs the
// card) and boots within a few minutes.
const DefaultBootTimeout = 10 * time.Minute

// Check is the dry run of a change: an image to upload must be readable
// with its declared digest; every change must carry what Apply reads.
func (b *Backend) Check(ctx context.Context, desired *spec.Fleet, c *plans.Change) error {
	switch kind(c) {
	case objImage:
		if c.Action == plans.ActionUpdate {
			if c.After == nil || c.After.Attrs[attrUUID] == "" || c.After.Attrs[attrFunctionID] == "" {
				return errors.New("names no image or function ID")
			}
			return nil
		}
		_, err := b.readBitstream(ctx, desired, c.After)
		return err
	case objProfile, objFlavor:
		if c.After == nil || c.After.Attrs[attrName] == "" {
			return errors.New("names no object")
		}
	case "server":
		if c.Before == nil || c.Before.Attrs[attrServer] == "" || c.After == nil || c.After.Attrs[attrFlavor] == "" {
			return errors.New("names no server or flavor")
		}
	case "card":
		if c.After == nil || c.After.Attrs[attrRP] == "" {
			return errors.New("names no resource provider")
		}
	default:
		return fmt.Errorf("object %s is not OpenStack's", c.Object)
	}
	return nil
}

// kind is what sort of object a change is about.
func kind(c *plans.Change) string {
	for _, k := range []string{objImage, objProfile, objFlavor} {
		if strings.HasPrefix(c.Object, k) {
			return k
		}
	}
	switch {
	case strings.Contains(c.Object, "/vm/"):
		return "server"
	case strings.Contains(c.Object, "/fpga/"):
		return "card"
	}
	return ""
}

// Apply carries out one change. What the changes it depends on made (an
// image, a profile, a flavor) is found again in the cloud, so a change
// runs the same whether they ran in this run or an earlier one.
func (b *Backend) Apply(ctx context.Context, desired *spec.Fleet, c *plans.Change) error {
	cl, err := b.connect(ctx)
	if err != nil {
		return err
	}
	b.log.Info("openstack: apply", "change", c.ID)
	switch k := kind(c); {
	case k == objImage && c.Action == plans.ActionCreate:
		return b.createImage(ctx, cl, desired, c.After)
	case k == objImage && c.Action == plans.ActionUpdate:
		return b.updateImage(ctx, cl, c.After)
	case k == objProfile && (c.Action == plans.ActionCreate || c.Action == plans.ActionReplace):
		return b.makeProfile(ctx, cl, c)
	case k == objFlavor && c.Action == plans.ActionCreate:
		return b.createFlavor(ctx, cl, c.After.Attrs)
	case k == "card" && c.Action == plans.ActionProgram:
		return b.program(ctx, cl, c.After)
	case k == "card" && c.Action == plans.ActionUpdate:
		return b.updateTraits(ctx, cl, c.Before, c.After)
	case k == "server" && c.Action == plans.ActionReplace:
		return b.replaceServer(ctx, cl, c.Before, c.After)
	}
	return fmt.Errorf("action %s on %s is not OpenStack's", c.Action, c.Object)
}

// imageOf finds the active Glance image of a bitstream by name and
// digest: the one an earlier change uploaded.
func (b *Backend) imageOf(ctx context.Context, cl *Clients, bitstream, sum string) (string, error) {
	imgs, err := listImages(ctx, cl, ImageName(spec.Bitstream{Name: bitstream}))
	if err != nil {
		return "", err
	}
	for _, im := range imgs {
		if im.SHA256 == sum && im.Status == "active" {
			return im.ID, nil
		}
	}
	return "", fmt.Errorf("no active Glance image of bitstream %s with sha256 %s", bitstream, short(sum))
}

// readBitstream returns the bitstream's bytes, from the repository or its
// URL, and refuses them unless their sha256 is the declared one.
func (b *Backend) readBitstream(ctx context.Context, desired *spec.Fleet, v *plans.Value) ([]byte, error) {
	if v == nil {
		return nil, errors.New("names no bitstream")
	}
	var data []byte
	switch file, url := v.Attrs[attrFile], v.Attrs[attrURL]; {
	case file != "":
		// Through the repository's reader: never out of it, never past
		// the fleet's size limit, and only with the declared digest.
		if desired == nil {
			return nil, fmt.Errorf("bitstream file %q: no repository", file)
		}
		repo, err := spec.OpenRepo(desired.Root)
		if err != nil {
			return nil, err
		}
		defer repo.Close()
		d, err := repo.ReadBitstream(spec.Bitstream{Name: v.Bitstream, File: file, SHA256: v.SHA256}, desired.Policy.MaxBitstreamBytes())
		if err != nil {
			return nil, err
		}
		data = d
	case url != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := b.http().Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch bitstream: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch bitstream: %s", resp.Status)
		}
		d, err := io.ReadAll(io.LimitReader(resp.Body, maxBitstreamSize+1))
		if err != nil {
			return nil, fmt.Errorf("fetch bitstream: %w", err)
		}
		if len(d) > maxBitstreamSize {
			return nil, fmt.Errorf("fetch bitstream: larger than %d bytes", maxBitstreamSize)
		}
		data = d
	default:
		return nil, errors.New("bitstream has neither a file nor a URL")
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != v.SHA256 {
		return nil, fmt.Errorf("digest mismatch: sha256 %s, declared %s: not uploading", got, v.SHA256)
	}
	return data, nil
}

func (b *Backend) http() *http.Client {
	if b.opts.HTTPClient != nil {
		return b.opts.HTTPClient
	}
	return http.DefaultClient
}

func (b *Backend) createImage(ctx context.Context, cl *Clients, desired *spec.Fleet, v *plans.Value) error {
	data, err := b.readBitstream(ctx, desired, v)
	if err != nil {
		return err
	}
	props := map[string]string{PropertySHA256: v.SHA256, PropertyBitstream: v.Bitstream}
	if v.AFUID != "" {
		props[attrFunctionID] = v.AFUID
	}
	img, err := images.Create(ctx, cl.Image, images.CreateOpts{
		Name: v.Attrs[attrName], DiskFormat: "raw", ContainerFormat: "bare", Properties: props,
	}).Extract()
	if err != nil {
		return fmt.Errorf("glance: create image: %w", err)
	}
	if err := imagedata.Upload(ctx, cl.Image, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		return fmt.Errorf("glance: upload image %s: %w", img.ID, err)
	}
	got, err := images.Get(ctx, cl.Image, img.ID).Extract()
	if err != nil {
		return fmt.Errorf("glance: read image %s back: %w", img.ID, err)
	}
	md := md5.Sum(data)
	if got.Status != images.ImageStatusActive || got.Checksum != hex.EncodeToString(md[:]) {
		return fmt.Errorf("glance: image %s is %s with checksum %s after upload: want active with %x", img.ID, got.Status, got.Checksum, md)
	}
	return nil
}

// updateImage sets the accel:function_id of an image fpgaops uploaded,
// after checking it still holds the bitstream the plan names.
func (b *Backend) updateImage(ctx context.Context, cl *Clients, v *plans.Value) error {
	id := v.Attrs[attrUUID]
	im, err := images.Get(ctx, cl.Image, id).Extract()
	if err != nil {
		return fmt.Errorf("glance: read image %s: %w", id, err)
	}
	if sum, _ := im.Properties[PropertySHA256].(string); sum != v.SHA256 {
		return fmt.Errorf("glance: image %s holds sha256 %s, not bitstream %s's %s: not updating", id, short(sum), v.Bitstream, short(v.SHA256))
	}
	op := images.AddOp
	if _, ok := im.Properties[attrFunctionID]; ok {
		op = images.ReplaceOp
	}
	_, err = images.Update(ctx, cl.Image, id, images.UpdateOpts{
		images.UpdateImageProperty{Op: op, Name: attrFunctionID, Value: v.Attrs[attrFunctionID]},
	}).Extract()
	if err != nil {
		return fmt.Errorf("glance: set accel:function_id of image %s: %w", id, err)
	}
	return nil
}

// makeProfile creates a device profile, deleting the old one first when
// it replaces it (Cyborg has no update).
func (b *Backend) makeProfile(ctx context.Context, cl *Clients, c *plans.Change) error {
	a := c.After.Attrs
	group := map[string]string{}
	for k, v := range a {
		if strings.HasPrefix(k, "resources:") || strings.HasPrefix(k, "trait:") || strings.HasPrefix(k, "accel:") {
			group[k] = v
		}
	}
	if group[attrBitstreamID] == "" {
		img, err := b.imageOf(ctx, cl, c.After.Bitstream, c.After.SHA256)
		if err != nil {
			return err
		}
		group[attrBitstreamID] = img
	}
	if c.Action == plans.ActionReplace {
		if err := cyborg.DeleteDeviceProfile(ctx, cl.Accelerator, c.Before.Attrs[attrUUID]); err != nil {
			return err
		}
	}
	_, err := cyborg.CreateDeviceProfile(ctx, cl.Accelerator, cyborg.DeviceProfile{
		Name: a[attrName], Description: "fpgaops: bitstream " + c.After.Bitstream + " on " + a[attrBoard],
		Groups: []map[string]string{group},
	})
	return err
}

func (b *Backend) createFlavor(ctx context.Context, cl *Clients, a map[string]string) error {
	vcpus, err1 := strconv.Atoi(a[attrVCPUs])
	ram, err2 := strconv.Atoi(a[attrRAM])
	disk, err3 := strconv.Atoi(a[attrDisk])
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("flavor %s: size: %w", a[attrName], err)
	}
	f, err := flavors.Create(ctx, cl.Compute, flavors.CreateOpts{Name: a[attrName], VCPUs: vcpus, RAM: ram, Disk: &disk,
		Description: "fpgaops: accelerator " + a[attrDeviceProfile]}).Extract()
	if err != nil {
		return fmt.Errorf("nova: create flavor: %w", err)
	}
	if _, err := flavors.CreateExtraSpecs(ctx, cl.Compute, f.ID, flavors.ExtraSpecsOpts{attrDeviceProfile: a[attrDeviceProfile]}).Extract(); err != nil {
		return fmt.Errorf("nova: set accel:device_profile on flavor %s: %w", f.ID, err)
	}
	return nil
}

// flavorID finds a flavor by name.
func flavorID(ctx context.Context, cl *Clients, name string) (string, error) {
	pages, err := flavors.ListDetail(cl.Compute, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("nova: list flavors: %w", err)
	}
	list, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return "", fmt.Errorf("nova: list flavors: %w", err)
	}
	for _, f := range list {
		if f.Name == name {
			return f.ID, nil
		}
	}
	return "", fmt.Errorf("no flavor %s", name)
}

// program programs a pool card through its deployable, after checking
// again that no server holds it: one may have been given it since the
// plan.
func (b *Backend) program(ctx context.Context, cl *Clients, v *plans.Value) error {
	img := v.Attrs[attrImage]
	if img == "" {
		var err error
		if img, err = b.imageOf(ctx, cl, v.Bitstream, v.SHA256); err != nil {
			return err
		}
	}
	arqs, err := cyborg.ListARQs(ctx, cl.Accelerator, "")
	if err != nil {
		return err
	}
	for _, q := range arqs {
		if q.DeviceRP() == v.Attrs[attrRP] && q.State == cyborg.ARQBound {
			return fmt.Errorf("refusing to program: instance %s holds the card", q.Instance())
		}
	}
	if _, err = cyborg.ProgramDeployable(ctx, cl.Accelerator, v.Attrs[attrDeployable], img); err != nil {
		return err
	}
	return b.record(ctx, cl, v)
}

// record notes on the card's resource provider what fpgaops programmed:
// its own trait with the bitstream's digest in place of any earlier one,
// and the function ID trait of its AFU in place of the others, as
// Cyborg's bind does after programming (see MarkTrait). Cyborg's agent
// reads the function from the card later and agrees.
func (b *Backend) record(ctx context.Context, cl *Clients, v *plans.Value) error {
	rp := v.Attrs[attrRP]
	now, err := resourceproviders.GetTraits(ctx, cl.Placement, rp).Extract()
	if err != nil {
		return fmt.Errorf("placement: traits of %s: %w", rp, err)
	}
	_, err = ModifyTraits(ctx, cl.Placement, rp, now.ResourceProviderGeneration, now.Traits, func(cur []string) []string {
		out := slices.DeleteFunc(cur, func(t string) bool {
			return strings.HasPrefix(t, traitMarkPrefix) || v.AFUID != "" && strings.HasPrefix(t, traitFunctionAny)
		})
		out = append(out, MarkTrait(v.SHA256))
		if v.AFUID != "" {
			out = append(out, FunctionTrait(v.AFUID))
		}
		return out
	})
	if err != nil {
		return fmt.Errorf("programmed, but not recorded: %w", err)
	}
	return nil
}

func (b *Backend) updateTraits(ctx context.Context, cl *Clients, before, after *plans.Value) error {
	a := after.Attrs
	gen, err := strconv.Atoi(a[attrGeneration])
	if err != nil {
		return fmt.Errorf("resource provider %s: generation: %w", a[attrRP], err)
	}
	current, remove := splitList(before.Attrs[attrTraits]), splitList(a[attrRemove])
	_, err = ModifyTraits(ctx, cl.Placement, a[attrRP], gen, current, func(cur []string) []string {
		return slices.DeleteFunc(cur, func(t string) bool { return slices.Contains(remove, t) })
	})
	return err
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// replaceServer deletes the server and boots it again, with the same
// name, image, key, networks and host, and the flavor that carries the
// accelerator; it is done when the new server is ACTIVE.
func (b *Backend) replaceServer(ctx context.Context, cl *Clients, before, after *plans.Value) error {
	old := before.Attrs
	flavor := after.Attrs[attrFlavor]
	fid, err := flavorID(ctx, cl, flavor)
	if err != nil {
		return err
	}
	id := old[attrServer]
	pages, err := attachinterfaces.List(cl.Compute, id).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("nova: interfaces of %s: %w", id, err)
	}
	ifaces, err := attachinterfaces.ExtractInterfaces(pages)
	if err != nil {
		return fmt.Errorf("nova: interfaces of %s: %w", id, err)
	}
	var nets any = "none"
	if len(ifaces) > 0 {
		var list []servers.Network
		for _, i := range ifaces {
			list = append(list, servers.Network{UUID: i.NetID})
		}
		nets = list
	}
	if err := servers.Delete(ctx, cl.Compute, id).ExtractErr(); err != nil {
		return fmt.Errorf("nova: delete server %s: %w", id, err)
	}
	if err := b.waitGone(ctx, cl, before.VM, id); err != nil {
		return err
	}
	opts := keypairs.CreateOptsExt{
		CreateOptsBuilder: servers.CreateOpts{
			Name: before.VM, ImageRef: old[attrImage], FlavorRef: fid, Networks: nets,
			// Admins may pin a server to a host this way; it keeps the VM
			// on the node its binding names.
			AvailabilityZone: "nova:" + old[attrHost],
		},
		KeyName: old[attrKeyName],
	}
	created, err := servers.Create(ctx, cl.Compute, opts, nil).Extract()
	if err != nil {
		return fmt.Errorf("nova: boot server %s again with flavor %s: %w", before.VM, flavor, err)
	}
	return b.waitActive(ctx, cl, before.VM, created.ID)
}

// waitGone waits, within the boot timeout, until Nova no longer knows the
// deleted server: its accelerator is only free then.
func (b *Backend) waitGone(parent context.Context, cl *Clients, name, id string) error {
	ctx, cancel := context.WithTimeout(parent, b.bootTimeout())
	defer cancel()
	for {
		_, err := servers.Get(ctx, cl.Compute, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return nil
		}
		if err != nil && ctx.Err() != nil && parent.Err() == nil {
			return fmt.Errorf("nova: server %s (%s) is not gone after %s", name, id, b.bootTimeout())
		}
		if err != nil {
			return fmt.Errorf("nova: wait for server %s (%s) to go: %w", name, id, err)
		}
		if err := b.pause(ctx); err != nil {
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("nova: server %s (%s) is not gone after %s", name, id, b.bootTimeout())
		}
	}
}

// waitActive waits, within the boot timeout, until the new server is
// ACTIVE. ERROR is a failure that names the server and Nova's fault; a
// server still building when the time is up is one too. A replacement is
// only done when its VM runs again.
func (b *Backend) waitActive(parent context.Context, cl *Clients, name, id string) error {
	ctx, cancel := context.WithTimeout(parent, b.bootTimeout())
	defer cancel()
	status := "BUILD"
	for {
		s, err := servers.Get(ctx, cl.Compute, id).Extract()
		if err != nil && ctx.Err() != nil && parent.Err() == nil {
			return fmt.Errorf("nova: server %s (%s) is still %s after %s", name, id, status, b.bootTimeout())
		}
		if err != nil {
			return fmt.Errorf("nova: wait for server %s (%s) to be ACTIVE: %w", name, id, err)
		}
		status = s.Status
		switch status {
		case "ACTIVE":
			return nil
		case "ERROR":
			why := s.Fault.Message
			if why == "" {
				why = "Nova gives no fault"
			}
			return fmt.Errorf("nova: server %s (%s) went to ERROR after the replacement boot: %s", name, id, why)
		}
		if err := b.pause(ctx); err != nil {
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("nova: server %s (%s) is still %s after %s", name, id, status, b.bootTimeout())
		}
	}
}

// pause waits one poll interval, or until ctx ends.
func (b *Backend) pause(ctx context.Context) error {
	d := b.opts.PollInterval
	if d <= 0 {
		d = time.Second
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (b *Backend) bootTimeout() time.Duration {
	if b.opts.BootTimeout > 0 {
		return b.opts.BootTimeout
	}
	return DefaultBootTimeout
}
