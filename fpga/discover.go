package fpga

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/spec"
)

// Names the two driver stacks give their sysfs entries and device nodes.
const (
	dflFME       = "dfl-fme."
	dflPort      = "dfl-port."
	intelFME     = "intel-fpga-fme."
	intelPort    = "intel-fpga-port."
	classAccel   = 0x120000 // PCI class of processing accelerators
	driverDFL    = "dfl-pci"
	driverIntel  = "intel-fpga-pci"
	driverVFIO   = "vfio-pci"
	problemCrash = "firmware crashed"
)

// HostDriver is the PCI driver of a stack, the one that makes a function's
// FME and ports visible to the host.
func HostDriver(s Stack) string {
	switch s {
	case StackDFL:
		return driverDFL
	case StackIntelFPGA:
		return driverIntel
	}
	return ""
}

func stackOfDriver(drv string) Stack {
	switch drv {
	case driverDFL:
		return StackDFL
	case driverIntel:
		return StackIntelFPGA
	}
	return ""
}

// function is a PCI function met while scanning, with the feature
// containers (DFL base regions, intel-fpga-dev.N) found below it.
type function struct {
	bdf      string
	dir      string
	features []container
}

type container struct {
	dir   string
	stack Stack
}

// card is a discovered card with the paths Program and SetVFs need.
type card struct {
	dev    Device
	pfDir  string
	fmeDev string         // absolute; "" when no FME is visible
	mgr    string         // DFL fpga_manager status file, if any
	ports  map[int]string // device nodes of visible ports
	// dirs and errs are the sysfs directory and logged errors of the
	// ports the PF holds.
	dirs map[int]string
	errs map[int]uint64
	// portsNum is what the FME's ports_num reads; -1 when no FME is read.
	portsNum int
}

// Discover reads every FPGA card below the root. A card that cannot be
// read completely is still reported, with what went wrong in its Health;
// only a root without sysfs is an error.
func (h *SysfsHost) Discover(ctx context.Context) ([]Device, error) {
	cards, err := h.scan(ctx)
	if err != nil {
		return nil, err
	}
	devs := make([]Device, len(cards))
	for i, c := range cards {
		devs[i] = c.dev
	}
	return devs, nil
}

func (h *SysfsHost) find(ctx context.Context, pci string) (*card, error) {
	cards, err := h.scan(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range cards {
		if c.dev.PCI == pci {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w at %s", ErrNoCard, pci)
}

func (h *SysfsHost) scan(ctx context.Context) ([]*card, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sys := filepath.Join(h.root, "sys")
	if _, err := os.Stat(sys); err != nil {
		return nil, fmt.Errorf("fpga: no sysfs below %s: %w", h.root, err)
	}
	fns := map[string]*function{}
	get := func(dir, bdf string) *function {
		f := fns[bdf]
		if f == nil {
			f = &function{bdf: bdf, dir: dir}
			fns[bdf] = f
		}
		return f
	}

	// FPGA functions on the PCI bus, found by board or class so that a PF
	// handed to vfio-pci (no FPGA driver, no regions) is still seen.
	bus := filepath.Join(sys, "bus/pci/devices")
	ents, _ := os.ReadDir(bus)
	for _, e := range ents {
		if !IsPCIAddress(e.Name()) {
			continue
		}
		dir, err := h.resolve(filepath.Join(bus, e.Name()))
		if err != nil {
			continue
		}
		if isFPGA(dir) {
			get(dir, e.Name())
		}
	}

	// Feature containers of both stacks, through their class links.
	h.scanClass(filepath.Join(sys, "class/fpga_region"), StackDFL, dflFME, dflPort, get)
	h.scanClass(filepath.Join(sys, "class/fpga"), StackIntelFPGA, intelFME, intelPort, get)

	bdfs := make([]string, 0, len(fns))
	for b, f := range fns {
		if _, err := os.Lstat(filepath.Join(f.dir, "physfn")); err == nil {
			continue // a VF: read with its PF
		}
		bdfs = append(bdfs, b)
	}
	sort.Strings(bdfs)
	cards := make([]*card, 0, len(bdfs))
	for _, b := range bdfs {
		cards = append(cards, h.readCard(fns[b], fns))
	}
	return cards, nil
}

func isFPGA(dir string) bool {
	v, err1 := readUint(filepath.Join(dir, "vendor"), 16, 16)
	d, err2 := readUint(filepath.Join(dir, "device"), 16, 16)
	if err1 == nil && err2 == nil {
		if _, ok := spec.BoardByDevice(uint16(v), uint16(d)); ok {
			return true
		}
	}
	c, err := readUint(filepath.Join(dir, "class"), 16, 32)
	return err == nil && c&0xffff00 == classAccel
}

func (h *SysfsHost) scanClass(class string, stack Stack, fme, port string, get func(dir, bdf string) *function) {
	ents, _ := os.ReadDir(class)
	for _, e := range ents {
		dir, err := h.resolve(filepath.Join(class, e.Name()))
		if err != nil {
			continue
		}
		kids, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		// Only base regions hold an FME or ports; the FME's own PR region
		// is an fpga_region too and is skipped here.
		feature := false
		for _, k := range kids {
			if strings.HasPrefix(k.Name(), fme) || strings.HasPrefix(k.Name(), port) {
				feature = true
				break
			}
		}
		if !feature {
			continue
		}
		if pd, bdf, ok := pciDir(dir); ok {
			f := get(pd, bdf)
			f.features = append(f.features, container{dir: dir, stack: stack})
		}
	}
}

// readErr words a read error with the path as the host sees it.
func (h *SysfsHost) readErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		verb := "read"
		if pe.Op == "parse" {
			verb = "parse"
		}
		return fmt.Sprintf("cannot %s /%s: %v", verb, h.rel(pe.Path), pe.Err)
	}
	return err.Error()
}

func (h *SysfsHost) readCard(f *function, fns map[string]*function) *card {
	c := &card{pfDir: f.dir, ports: map[int]string{}, dirs: map[int]string{}, errs: map[int]uint64{}, portsNum: -1}
	d := &c.dev
	d.PCI = f.bdf
	d.NUMANode = -1
	r := &report{}

	if v, err := readUint(filepath.Join(f.dir, "vendor"), 16, 16); err != nil {
		r.problem("%s", h.readErr(err))
	} else {
		d.Vendor = uint16(v)
	}
	if v, err := readUint(filepath.Join(f.dir, "device"), 16, 16); err != nil {
		r.problem("%s", h.readErr(err))
	} else {
		d.DeviceID = uint16(v)
	}
	if b, ok := spec.BoardByDevice(d.Vendor, d.DeviceID); ok && b.PFDevice == d.DeviceID {
		d.Board = string(b.Board)
	}
	if n, err := readInt(filepath.Join(f.dir, "numa_node")); err == nil {
		d.NUMANode = n
	}
	d.Driver, _ = linkBase(filepath.Join(f.dir, "driver"))
	for _, a := range []struct {
		name string
		dst  *int
	}{{"sriov_numvfs", &d.NumVFs}, {"sriov_totalvfs", &d.TotalVFs}} {
		n, err := readInt(filepath.Join(f.dir, a.name))
		switch {
		case err == nil:
			*a.dst = n
		case !errors.Is(err, fs.ErrNotExist):
			r.problem("%s", h.readErr(err))
		}
	}
	vfFns := h.readVFs(f.dir, d, fns, r)

	// The FME and the ports the PF holds.
	var onPF []Port
	for _, ct := range f.features {
		d.Stack = ct.stack
		fme, ports := h.features(ct)
		if fme != "" {
			h.readFME(c, ct.stack, fme, r)
		}
		for _, p := range ports {
			onPF = append(onPF, h.readPort(c, p, false, r))
		}
	}
	if d.Stack == "" {
		d.Stack = stackOfDriver(d.Driver)
	}
	switch {
	case d.Driver == "":
		r.problem("no driver bound to the PF")
	case c.fmeDev == "" && d.Driver != driverVFIO:
		r.problem("no FME found below /%s", h.rel(f.dir))
	}

	// Ports released to VFs: visible when the host holds the VF with its
	// FPGA driver, unknown when a VM (vfio-pci) or nobody does.
	used := map[int]bool{}
	for _, p := range onPF {
		used[p.ID] = true
	}
	var onVF []Port
	for _, vf := range vfFns {
		var seen bool
		if vf != nil {
			for _, ct := range vf.features {
				_, ports := h.features(ct)
				for _, p := range ports {
					port := h.readPort(c, p, true, r)
					used[port.ID] = true
					onVF = append(onVF, port)
					seen = true
				}
			}
		}
		if !seen {
			onVF = append(onVF, Port{ID: -1, OnVF: true})
		}
	}
	next := 0
	for i := range onVF {
		if onVF[i].ID >= 0 {
			continue
		}
		for used[next] {
			next++
		}
		onVF[i].ID = next
		used[next] = true
	}
	d.Ports = append(onPF, onVF...)
	sort.SliceStable(d.Ports, func(i, j int) bool { return d.Ports[i].ID < d.Ports[j].ID })
	if d.Ports == nil {
		d.Ports = []Port{}
	}
	checkPorts(d, c.portsNum, r)
	d.Health = r.h
	return c
}

// readVFs fills d.VFs and returns each VF's scanned function (nil when
// the VF has no FPGA features the host can see), in VF order.
func (h *SysfsHost) readVFs(pf string, d *Device, fns map[string]*function, r *report) []*function {
	ents, err := os.ReadDir(pf)
	if err != nil {
		r.problem("%s", h.readErr(err))
		return nil
	}
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "virtfn")
		if !ok {
			continue
		}
		idx, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		dir, err := h.resolve(filepath.Join(pf, e.Name()))
		if err != nil {
			r.problem("vf%d: %s", idx, h.readErr(err))
			continue
		}
		drv, _ := linkBase(filepath.Join(dir, "driver"))
		d.VFs = append(d.VFs, Function{Index: idx, PCI: filepath.Base(dir), Driver: drv})
	}
	sort.Slice(d.VFs, func(i, j int) bool { return d.VFs[i].Index < d.VFs[j].Index })
	out := make([]*function, len(d.VFs))
	for i, vf := range d.VFs {
		out[i] = fns[vf.PCI]
	}
	return out
}

// features lists a container's FME directory and port directories.
func (h *SysfsHost) features(ct container) (fme string, ports []string) {
	fmeP, portP := dflFME, dflPort
	if ct.stack == StackIntelFPGA {
		fmeP, portP = intelFME, intelPort
	}
	kids, _ := os.ReadDir(ct.dir)
	for _, k := range kids {
		switch n := k.Name(); {
		case strings.HasPrefix(n, fmeP):
			fme = filepath.Join(ct.dir, n)
		case strings.HasPrefix(n, portP):
			ports = append(ports, filepath.Join(ct.dir, n))
		}
	}
	return fme, ports
}

// readFME fills the card's FME fields.
func (h *SysfsHost) readFME(c *card, stack Stack, dir string, r *report) {
	d := &c.dev
	c.fmeDev = filepath.Join(h.root, "dev", filepath.Base(dir))
	if id, err := readUint(filepath.Join(dir, "bitstream_id"), 16, 64); err != nil {
		r.problem("%s", h.readErr(err))
	} else {
		d.BitstreamID = id
		d.BBSVersion = BBSVersion(id)
		if id == ^uint64(0) {
			r.problem("FME bitstream ID reads all f: %s", problemCrash)
		}
	}
	if n, err := readInt(filepath.Join(dir, "ports_num")); err != nil {
		r.problem("%s", h.readErr(err))
	} else {
		c.portsNum = n
	}
	var ifPath string
	if stack == StackDFL {
		m, _ := filepath.Glob(filepath.Join(dir, "dfl-fme-region.*", "fpga_region", "region*", "compat_id"))
		if len(m) > 0 {
			ifPath = m[0]
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "dfl-fme-mgr.*", "fpga_manager", "fpga*", "status")); len(m) > 0 {
			c.mgr = m[0]
		}
	} else {
		ifPath = filepath.Join(dir, "pr", "interface_id")
	}
	if ifPath == "" {
		r.problem("no PR region with a compat_id below /%s", h.rel(dir))
	} else if s, err := readString(ifPath); err != nil {
		r.problem("%s", h.readErr(err))
	} else {
		d.InterfaceID = bitstream.NormalizeID(s)
		if allF(d.InterfaceID) {
			r.problem("PR interface ID reads all f: %s", problemCrash)
		}
	}
	fmeErrors := dflFMEErrors
	if stack == StackIntelFPGA {
		fmeErrors = intelFMEErrors
	}
	h.readRegisters(dir, "fme", fmeErrors, r)
	h.readSensors(stack, dir, r)
}

func (h *SysfsHost) readPort(c *card, dir string, onVF bool, r *report) Port {
	p := Port{ID: -1, OnVF: onVF}
	if id, err := readInt(filepath.Join(dir, "id")); err != nil {
		r.problem("%s", h.readErr(err))
	} else {
		p.ID = id
	}
	name := "port"
	if p.ID >= 0 {
		name = "port " + strconv.Itoa(p.ID)
	}
	if s, err := readString(filepath.Join(dir, "afu_id")); err != nil {
		r.problem("%s", h.readErr(err))
	} else {
		p.AFUID = bitstream.NormalizeID(s)
		if allF(p.AFUID) {
			r.problem("%s AFU ID reads all f: %s", name, problemCrash)
		}
	}
	if e, err := readUint(filepath.Join(dir, "errors", "errors"), 16, 64); err == nil && e != 0 && !onVF && p.ID >= 0 {
		c.errs[p.ID] = e
	}
	h.readRegisters(dir, name, portErrors, r)
	h.readPortStatus(dir, name, r)
	if !onVF && p.ID >= 0 {
		c.dirs[p.ID] = dir
	}
	dev := filepath.Join(h.root, "dev", filepath.Base(dir))
	if _, err := os.Stat(dev); err == nil {
		p.Dev = h.rel(dev)
		if p.ID >= 0 {
			c.ports[p.ID] = dev
		}
	}
	return p
}

// BBSVersion is the blue bitstream (FIM) version encoded in an FME
// bitstream_id: major, minor and patch in bits 56, 52 and 48.
func BBSVersion(id uint64) string {
	return fmt.Sprintf("%d.%d.%d", (id>>56)&0xf, (id>>52)&0xf, (id>>48)&0xf)
}
