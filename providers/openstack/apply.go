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
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fpgaops/fpgaops/providers/openstack/cyborg"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// maxBitstreamSize caps a bitstream fetched from a URL.
const maxBitstreamSize = 1 << 30

// ApplyOptions govern Apply.
type ApplyOptions struct {
	// Fleet is the desired fleet the plan was made from; bitstream files
	// are read below Fleet.Root.
	Fleet *spec.Fleet
	// AllowDisruptive lets Apply replace servers. The caller decides it
	// from the policy's maintenance windows; without it disruptive
	// changes are skipped.
	AllowDisruptive bool
	// HTTPClient fetches bitstreams that have a URL; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// PollInterval is how often Apply checks that a deleted server is
	// gone and that its replacement is up; zero means one second.
	PollInterval time.Duration
	// BootTimeout bounds the wait for a replaced server to go and for its
	// replacement to become ACTIVE; zero means DefaultBootTimeout.
	BootTimeout time.Duration
}

// DefaultBootTimeout is how long Apply waits for a replaced server by
// default: Nova schedules, binds the accelerator requests (Cyborg
// programs the card) and boots within a few minutes.
const DefaultBootTimeout = 10 * time.Minute

// Outcome says what Apply did with one change.
type Outcome string

const (
	Applied Outcome = "applied"
	Skipped Outcome = "skipped"
	Failed  Outcome = "failed"
)

// Result is what became of one change.
type Result struct {
	ID      string  `json:"id"`
	Action  Action  `json:"action"`
	Outcome Outcome `json:"outcome"`
	Detail  string  `json:"detail,omitempty"`
}

// Apply carries out the changes in order against the cloud st was
// observed from. Blocked changes and drift are skipped, and so are
// disruptive changes unless opts.AllowDisruptive. A failure stops only the
// changes that depend on it (a profile on its image, a flavor on its
// profile, a server on its flavor); the others go on. The error joins
// every failure.
func (p *Provider) Apply(ctx context.Context, st *State, changes []Change, opts ApplyOptions) ([]Result, error) {
	a := applier{p: p, st: st, opts: opts,
		images: map[string]string{}, failedImage: map[string]bool{}, failedProfile: map[string]bool{},
		flavors: map[string]string{}, failedFlavor: map[string]bool{}}
	for _, f := range st.Flavors {
		a.flavors[f.Name] = f.ID
	}
	if a.opts.PollInterval == 0 {
		a.opts.PollInterval = time.Second
	}
	if a.opts.BootTimeout == 0 {
		a.opts.BootTimeout = DefaultBootTimeout
	}
	var (
		results []Result
		errs    []error
	)
	for _, c := range changes {
		r := Result{ID: c.ID, Action: c.Action}
		switch {
		case c.Action == Drift:
			r.Outcome, r.Detail = Skipped, "drift is reported, not changed"
		case c.Blocked != "":
			r.Outcome, r.Detail = Skipped, "blocked: "+c.Blocked
		case c.Disruptive && !opts.AllowDisruptive:
			r.Outcome, r.Detail = Skipped, "disruptive changes are not allowed now"
		default:
			p.log.Info("openstack: apply", "id", c.ID, "action", string(c.Action))
			if err := a.apply(ctx, c); err != nil {
				err = fmt.Errorf("%s: %s: %w", c.ID, c.Action, err)
				p.log.Error("openstack: apply failed", "id", c.ID, "action", string(c.Action), "err", err)
				r.Outcome, r.Detail = Failed, err.Error()
				errs = append(errs, err)
			} else {
				r.Outcome = Applied
			}
		}
		results = append(results, r)
	}
	return results, errors.Join(errs...)
}

type applier struct {
	p             *Provider
	st            *State
	opts          ApplyOptions
	images        map[string]string // bitstream -> image ID created here
	failedImage   map[string]bool
	failedProfile map[string]bool
	flavors       map[string]string // flavor name -> ID
	failedFlavor  map[string]bool
}

func (a *applier) apply(ctx context.Context, c Change) error {
	cl := a.p.clients
	switch c.Action {
	case CreateImage:
		id, err := a.createImage(ctx, c.Image)
		if err != nil {
			a.failedImage[c.Image.Bitstream] = true
			return err
		}
		a.images[c.Image.Bitstream] = id
		return nil
	case CreateDeviceProfile, ReplaceDeviceProfile:
		pc := c.Profile
		img, err := a.image(pc.Bitstream, pc.ImageID)
		if err != nil {
			a.failedProfile[pc.Name] = true
			return err
		}
		if c.Action == ReplaceDeviceProfile {
			if err := cyborg.DeleteDeviceProfile(ctx, cl.Accelerator, pc.OldUUID); err != nil {
				a.failedProfile[pc.Name] = true
				return err
			}
		}
		_, err = cyborg.CreateDeviceProfile(ctx, cl.Accelerator, cyborg.DeviceProfile{
			Name: pc.Name, Description: "fpgaops: bitstream " + pc.Bitstream + " on " + string(pc.Board),
			Groups: []map[string]string{withImage(pc.Group, img)},
		})
		if err != nil {
			a.failedProfile[pc.Name] = true
		}
		return err
	case CreateFlavor:
		fc := c.Flavor
		if a.failedProfile[fc.DeviceProfile] {
			a.failedFlavor[fc.Name] = true
			return fmt.Errorf("device profile %s was not created", fc.DeviceProfile)
		}
		disk := fc.Disk
		f, err := flavors.Create(ctx, cl.Compute, flavors.CreateOpts{Name: fc.Name, VCPUs: fc.VCPUs, RAM: fc.RAM, Disk: &disk,
			Description: "fpgaops: accelerator " + fc.DeviceProfile}).Extract()
		if err != nil {
			a.failedFlavor[fc.Name] = true
			return fmt.Errorf("nova: create flavor: %w", err)
		}
		a.flavors[fc.Name] = f.ID
		if _, err := flavors.CreateExtraSpecs(ctx, cl.Compute, f.ID, flavors.ExtraSpecsOpts{"accel:device_profile": fc.DeviceProfile}).Extract(); err != nil {
			a.failedFlavor[fc.Name] = true
			return fmt.Errorf("nova: set accel:device_profile on flavor %s: %w", f.ID, err)
		}
		return nil
	case ProgramDeployable:
		pr := c.Program
		img, err := a.image(pr.Bitstream, pr.ImageID)
		if err != nil {
			return err
		}
		// The plan saw the card free; check again right before, since a
		// server may have been given it since.
		arqs, err := cyborg.ListARQs(ctx, cl.Accelerator, "")
		if err != nil {
			return err
		}
		for _, q := range arqs {
			if q.DeviceRP() == pr.RPUUID && q.State == cyborg.ARQBound {
				return fmt.Errorf("refusing to program: instance %s holds the card", q.Instance())
			}
		}
		_, err = cyborg.ProgramDeployable(ctx, cl.Accelerator, pr.Deployable, img)
		return err
	case ReplaceServer:
		return a.replaceServer(ctx, c.Server)
	case UpdateTraits:
		tc := c.Traits
		_, err := ModifyTraits(ctx, cl.Placement, tc.RPUUID, tc.Generation, tc.Current, func(cur []string) []string {
			out := slices.DeleteFunc(cur, func(t string) bool { return slices.Contains(tc.Remove, t) })
			for _, t := range tc.Add {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
			}
			return out
		})
		return err
	}
	return fmt.Errorf("unknown action %q", c.Action)
}

// image resolves a bitstream's image: planned ID, or created here.
func (a *applier) image(bitstream, planned string) (string, error) {
	if planned != "" {
		return planned, nil
	}
	if id := a.images[bitstream]; id != "" {
		return id, nil
	}
	if a.failedImage[bitstream] {
		return "", fmt.Errorf("the image of bitstream %s was not created", bitstream)
	}
	return "", fmt.Errorf("bitstream %s has no image and the plan creates none", bitstream)
}

// readBitstream returns the bitstream's bytes, from the repository or its
// URL, and refuses them unless their sha256 is the declared one.
func (a *applier) readBitstream(ctx context.Context, ic *ImageChange) ([]byte, error) {
	var data []byte
	switch {
	case ic.File != "":
		if a.opts.Fleet == nil || !filepath.IsLocal(filepath.FromSlash(ic.File)) {
			return nil, fmt.Errorf("bitstream file %q is not inside the repository", ic.File)
		}
		b, err := os.ReadFile(filepath.Join(a.opts.Fleet.Root, filepath.FromSlash(ic.File)))
		if err != nil {
			return nil, err
		}
		data = b
	case ic.URL != "":
		hc := a.opts.HTTPClient
		if hc == nil {
			hc = http.DefaultClient
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ic.URL, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch bitstream: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch bitstream: %s", resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBitstreamSize+1))
		if err != nil {
			return nil, fmt.Errorf("fetch bitstream: %w", err)
		}
		if len(b) > maxBitstreamSize {
			return nil, fmt.Errorf("fetch bitstream: larger than %d bytes", maxBitstreamSize)
		}
		data = b
	default:
		return nil, errors.New("bitstream has neither a file nor a URL")
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != ic.SHA256 {
		return nil, fmt.Errorf("digest mismatch: sha256 %s, declared %s: not uploading", got, ic.SHA256)
	}
	return data, nil
}

func (a *applier) createImage(ctx context.Context, ic *ImageChange) (string, error) {
	data, err := a.readBitstream(ctx, ic)
	if err != nil {
		return "", err
	}
	cl := a.p.clients
	img, err := images.Create(ctx, cl.Image, images.CreateOpts{
		Name: ic.Name, DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{PropertySHA256: ic.SHA256, PropertyBitstream: ic.Bitstream},
	}).Extract()
	if err != nil {
		return "", fmt.Errorf("glance: create image: %w", err)
	}
	if err := imagedata.Upload(ctx, cl.Image, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		return "", fmt.Errorf("glance: upload image %s: %w", img.ID, err)
	}
	got, err := images.Get(ctx, cl.Image, img.ID).Extract()
	if err != nil {
		return "", fmt.Errorf("glance: read image %s back: %w", img.ID, err)
	}
	md := md5.Sum(data)
	if got.Status != images.ImageStatusActive || got.Checksum != hex.EncodeToString(md[:]) {
		return "", fmt.Errorf("glance: image %s is %s with checksum %s after upload: want active with %x", img.ID, got.Status, got.Checksum, md)
	}
	return img.ID, nil
}

func (a *applier) replaceServer(ctx context.Context, sc *ServerChange) error {
	cl := a.p.clients
	if a.failedFlavor[sc.Flavor] {
		return fmt.Errorf("flavor %s was not created", sc.Flavor)
	}
	flavorID := a.flavors[sc.Flavor]
	if flavorID == "" {
		return fmt.Errorf("no flavor %s", sc.Flavor)
	}
	pages, err := attachinterfaces.List(cl.Compute, sc.ServerID).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("nova: interfaces of %s: %w", sc.ServerID, err)
	}
	ifaces, err := attachinterfaces.ExtractInterfaces(pages)
	if err != nil {
		return fmt.Errorf("nova: interfaces of %s: %w", sc.ServerID, err)
	}
	var nets any = "none"
	if len(ifaces) > 0 {
		var list []servers.Network
		for _, i := range ifaces {
			list = append(list, servers.Network{UUID: i.NetID})
		}
		nets = list
	}
	if err := servers.Delete(ctx, cl.Compute, sc.ServerID).ExtractErr(); err != nil {
		return fmt.Errorf("nova: delete server %s: %w", sc.ServerID, err)
	}
	if err := a.waitGone(ctx, sc); err != nil {
		return err
	}
	opts := keypairs.CreateOptsExt{
		CreateOptsBuilder: servers.CreateOpts{
			Name: sc.Name, ImageRef: sc.ImageID, FlavorRef: flavorID, Networks: nets,
			// Admins may pin a server to a host this way; it keeps the VM
			// on the node its binding names.
			AvailabilityZone: "nova:" + sc.Host,
		},
		KeyName: sc.KeyName,
	}
	created, err := servers.Create(ctx, cl.Compute, opts, nil).Extract()
	if err != nil {
		return fmt.Errorf("nova: boot server %s again with flavor %s: %w", sc.Name, sc.Flavor, err)
	}
	return a.waitActive(ctx, sc, created.ID)
}

// waitGone waits, within the boot timeout, until Nova no longer knows the
// deleted server: its accelerator is only free then.
func (a *applier) waitGone(parent context.Context, sc *ServerChange) error {
	ctx, cancel := context.WithTimeout(parent, a.opts.BootTimeout)
	defer cancel()
	for {
		_, err := servers.Get(ctx, a.p.clients.Compute, sc.ServerID).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return nil
		}
		if err != nil && ctx.Err() != nil && parent.Err() == nil {
			return fmt.Errorf("nova: server %s (%s) is not gone after %s", sc.Name, sc.ServerID, a.opts.BootTimeout)
		}
		if err != nil {
			return fmt.Errorf("nova: wait for server %s (%s) to go: %w", sc.Name, sc.ServerID, err)
		}
		if err := a.pause(ctx); err != nil {
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("nova: server %s (%s) is not gone after %s", sc.Name, sc.ServerID, a.opts.BootTimeout)
		}
	}
}

// waitActive waits, within the boot timeout, until the new server is
// ACTIVE. ERROR is a failure that names the server and Nova's fault; a
// server still building when the time is up is one too. A replacement is
// only done when its VM runs again.
func (a *applier) waitActive(parent context.Context, sc *ServerChange, id string) error {
	ctx, cancel := context.WithTimeout(parent, a.opts.BootTimeout)
	defer cancel()
	status := "BUILD"
	for {
		s, err := servers.Get(ctx, a.p.clients.Compute, id).Extract()
		if err != nil && ctx.Err() != nil && parent.Err() == nil {
			return fmt.Errorf("nova: server %s (%s) is still %s after %s", sc.Name, id, status, a.opts.BootTimeout)
		}
		if err != nil {
			return fmt.Errorf("nova: wait for server %s (%s) to be ACTIVE: %w", sc.Name, id, err)
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
			return fmt.Errorf("nova: server %s (%s) went to ERROR after the replacement boot: %s", sc.Name, id, why)
		}
		if err := a.pause(ctx); err != nil {
			if parent.Err() != nil {
				return parent.Err()
			}
			return fmt.Errorf("nova: server %s (%s) is still %s after %s", sc.Name, id, status, a.opts.BootTimeout)
		}
	}
}

// pause waits one poll interval, or until ctx ends.
func (a *applier) pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(a.opts.PollInterval):
		return nil
	}
}
