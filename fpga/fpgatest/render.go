package fpgatest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/spec"
)

var knownDrivers = []string{"dfl-pci", "intel-fpga-pci", "vfio-pci"}

func (c *cardState) hostDriver() string { return fpga.HostDriver(c.Stack) }

func (c *cardState) pfDriver() string {
	switch c.PFDriver {
	case "":
		return c.hostDriver()
	case "none":
		return ""
	}
	return c.PFDriver
}

func (c *cardState) vfDriver(i int) string {
	d := ""
	if i < len(c.VFDrivers) {
		d = c.VFDrivers[i]
	}
	switch d {
	case "":
		return c.hostDriver()
	case "none":
		return ""
	}
	return d
}

// vfAddr is VF i's address: the functions after the PF's, as PAC cards
// place them.
func vfAddr(pf string, i int) string {
	dom, bus, dev, fn := splitBDF(pf)
	n := fn + 1 + i
	return fmt.Sprintf("%s:%s:%02x.%d", dom, bus, dev+n/8, n%8)
}

func splitBDF(bdf string) (dom, bus string, dev, fn int) {
	// bdf is checked by AddCard: "dddd:bb:dd.f".
	d, _ := strconv.ParseInt(bdf[8:10], 16, 32)
	f, _ := strconv.Atoi(bdf[11:])
	return bdf[0:4], bdf[5:7], int(d), f
}

// devDir is a function's directory below /sys/devices.
func (t *Tree) devDir(bdf string) string {
	dom, bus, _, _ := splitBDF(bdf)
	return filepath.Join(t.root, "sys/devices", "pci"+dom+":"+bus, bdf)
}

func (t *Tree) sys(p ...string) string {
	return filepath.Join(append([]string{t.root, "sys"}, p...)...)
}

// paths lists every top-level entry a card owns, for removal before it is
// written again.
func (t *Tree) paths(c *cardState) []string {
	var ps []string
	fns := []string{c.PCI}
	for i := range c.TotalVFs {
		fns = append(fns, vfAddr(c.PCI, i))
	}
	for _, f := range fns {
		ps = append(ps, t.devDir(f), t.sys("bus/pci/devices", f))
		for _, d := range knownDrivers {
			ps = append(ps, t.sys("bus/pci/drivers", d, f))
		}
		if c.PFDriver != "" {
			ps = append(ps, t.sys("bus/pci/drivers", c.PFDriver, f))
		}
		for _, d := range c.VFDrivers {
			if d != "" {
				ps = append(ps, t.sys("bus/pci/drivers", d, f))
			}
		}
	}
	for i := 0; i <= c.TotalVFs; i++ {
		ps = append(ps, t.sys("kernel/iommu_groups", strconv.Itoa(c.IOMMU+i)),
			filepath.Join(t.root, "dev/vfio", strconv.Itoa(c.IOMMU+i)))
	}
	for _, n := range c.Hwmon {
		ps = append(ps, t.sys("class/hwmon", "hwmon"+strconv.Itoa(n)))
	}
	if c.Stack == fpga.StackDFL {
		ps = append(ps,
			t.sys("class/fpga_region", "region"+strconv.Itoa(c.Region)),
			t.sys("class/fpga_region", "region"+strconv.Itoa(c.FMERegion)),
			t.sys("class/fpga_manager", "fpga"+strconv.Itoa(c.Mgr)),
			filepath.Join(t.root, "dev", "dfl-fme."+strconv.Itoa(c.FME)),
			filepath.Join(t.root, "dev", "dfl-port."+strconv.Itoa(c.Port)))
		for i := range c.VFRegion {
			ps = append(ps, t.sys("class/fpga_region", "region"+strconv.Itoa(c.VFRegion[i])),
				filepath.Join(t.root, "dev", "dfl-port."+strconv.Itoa(c.VFPort[i])))
		}
	} else {
		ps = append(ps,
			t.sys("class/fpga", "intel-fpga-dev."+strconv.Itoa(c.Region)),
			filepath.Join(t.root, "dev", "intel-fpga-fme."+strconv.Itoa(c.FME)),
			filepath.Join(t.root, "dev", "intel-fpga-port."+strconv.Itoa(c.Port)))
		for i := range c.VFRegion {
			ps = append(ps, t.sys("class/fpga", "intel-fpga-dev."+strconv.Itoa(c.VFRegion[i])),
				filepath.Join(t.root, "dev", "intel-fpga-port."+strconv.Itoa(c.VFPort[i])))
		}
	}
	return ps
}

// writer collects the first error of many file operations, and
// remembers the directories it made so that each is made once.
type writer struct {
	err  error
	dirs map[string]bool
}

func (w *writer) mkdir(d string) {
	if w.err != nil || w.dirs[d] {
		return
	}
	if w.err = os.MkdirAll(d, 0o755); w.err == nil {
		if w.dirs == nil {
			w.dirs = map[string]bool{}
		}
		w.dirs[d] = true
	}
}

func (w *writer) file(p, content string) {
	w.mkdir(filepath.Dir(p))
	if w.err == nil {
		w.err = os.WriteFile(p, []byte(content), 0o644)
	}
}

func (w *writer) remove(p string) {
	if w.err == nil {
		w.err = os.RemoveAll(p)
	}
}

// link makes a relative symlink at p pointing to target, as sysfs does.
func (w *writer) link(p, target string) {
	w.mkdir(filepath.Dir(p))
	if w.err != nil {
		return
	}
	rel, err := filepath.Rel(filepath.Dir(p), target)
	if err != nil {
		w.err = err
		return
	}
	w.err = os.Symlink(rel, p)
}

func hexID(id string) string { return id + "\n" }

func (c *cardState) ids() (iface, afu string) {
	if c.Crashed {
		f := strings.Repeat("f", 32)
		return f, f
	}
	return c.InterfaceID, c.AFUID
}

// render removes and rewrites every entry of the card.
func (t *Tree) render(c *cardState) error {
	w := &writer{}
	for _, p := range t.paths(c) {
		w.remove(p)
	}
	info, _ := spec.LookupBoard(c.Board)
	pf := t.devDir(c.PCI)
	t.function(w, c.PCI, pf, info.PFDevice, c.NUMANode, c.pfDriver(), c.IOMMU)
	w.file(filepath.Join(pf, "sriov_totalvfs"), strconv.Itoa(c.TotalVFs)+"\n")
	if c.pfDriver() == c.hostDriver() {
		t.features(w, c, pf)
	}
	t.writeVFs(w, c)
	return w.err
}

// writeVFs writes sriov_numvfs and the VFs' entries; a VF bound to the
// host driver shows its port.
func (t *Tree) writeVFs(w *writer, c *cardState) {
	info, _ := spec.LookupBoard(c.Board)
	pf := t.devDir(c.PCI)
	w.file(filepath.Join(pf, "sriov_numvfs"), strconv.Itoa(c.NumVFs)+"\n")
	for i := range c.NumVFs {
		addr := vfAddr(c.PCI, i)
		vf := t.devDir(addr)
		t.function(w, addr, vf, info.VFDevice, c.NUMANode, c.vfDriver(i), c.IOMMU+1+i)
		w.link(filepath.Join(vf, "physfn"), pf)
		w.link(filepath.Join(pf, "virtfn"+strconv.Itoa(i)), vf)
		if c.vfDriver(i) == c.hostDriver() && i == 0 {
			t.vfPort(w, c, vf, i)
		}
	}
}

// removeVFs removes what the kernel removes when SR-IOV goes off.
func (t *Tree) removeVFs(w *writer, c *cardState) {
	pf := t.devDir(c.PCI)
	w.file(filepath.Join(pf, "sriov_numvfs"), "0\n")
	for i := range c.TotalVFs {
		addr := vfAddr(c.PCI, i)
		w.remove(filepath.Join(pf, "virtfn"+strconv.Itoa(i)))
		w.remove(t.devDir(addr))
		w.remove(t.sys("bus/pci/devices", addr))
		for _, d := range append(append([]string(nil), knownDrivers...), c.VFDrivers...) {
			if d != "" && d != "none" {
				w.remove(t.sys("bus/pci/drivers", d, addr))
			}
		}
		g := strconv.Itoa(c.IOMMU + 1 + i)
		w.remove(t.sys("kernel/iommu_groups", g))
		w.remove(filepath.Join(t.root, "dev/vfio", g))
		r, p := strconv.Itoa(c.VFRegion[i]), strconv.Itoa(c.VFPort[i])
		if c.Stack == fpga.StackDFL {
			w.remove(t.sys("class/fpga_region", "region"+r))
			w.remove(filepath.Join(t.root, "dev", "dfl-port."+p))
		} else {
			w.remove(t.sys("class/fpga", "intel-fpga-dev."+r))
			w.remove(filepath.Join(t.root, "dev", "intel-fpga-port."+p))
		}
	}
}

// pfPort is the PF's port directory and device node.
func (t *Tree) pfPort(c *cardState) (dir, dev string) {
	pf := t.devDir(c.PCI)
	if c.Stack == fpga.StackDFL {
		n := "dfl-port." + strconv.Itoa(c.Port)
		return filepath.Join(pf, "fpga_region", "region"+strconv.Itoa(c.Region), n), filepath.Join(t.root, "dev", n)
	}
	n := "intel-fpga-port." + strconv.Itoa(c.Port)
	return filepath.Join(pf, "fpga", "intel-fpga-dev."+strconv.Itoa(c.Region), n), filepath.Join(t.root, "dev", n)
}

func (t *Tree) writePFPort(w *writer, c *cardState) {
	_, afu := c.ids()
	dir, dev := t.pfPort(c)
	t.port(w, c, dir, afu)
	w.file(dev, "")
}

func (t *Tree) removePFPort(w *writer, c *cardState) {
	dir, dev := t.pfPort(c)
	w.remove(dir)
	w.remove(dev)
}

// writeAFU rewrites the afu_id of the PF's port (the one PR changes) and
// the FPGA manager's status.
func (t *Tree) writeAFU(w *writer, c *cardState) {
	_, afu := c.ids()
	if !c.Released {
		dir, _ := t.pfPort(c)
		w.file(filepath.Join(dir, "afu_id"), hexID(afu))
	}
	if c.Stack == fpga.StackDFL {
		w.file(filepath.Join(t.mgrDir(c), "status"), c.MgrError+"\n")
	}
}

func (t *Tree) mgrDir(c *cardState) string {
	fme := filepath.Join(t.devDir(c.PCI), "fpga_region", "region"+strconv.Itoa(c.Region), "dfl-fme."+strconv.Itoa(c.FME))
	return filepath.Join(fme, "dfl-fme-mgr."+strconv.Itoa(c.Mgr), "fpga_manager", "fpga"+strconv.Itoa(c.Mgr))
}

// function writes a PCI function's attributes and links.
func (t *Tree) function(w *writer, bdf, dir string, device uint16, numa int, driver string, group int) {
	w.file(filepath.Join(dir, "vendor"), "0x8086\n")
	w.file(filepath.Join(dir, "device"), fmt.Sprintf("0x%04x\n", device))
	w.file(filepath.Join(dir, "subsystem_vendor"), "0x8086\n")
	w.file(filepath.Join(dir, "subsystem_device"), "0x0000\n")
	w.file(filepath.Join(dir, "class"), "0x120000\n")
	w.file(filepath.Join(dir, "numa_node"), strconv.Itoa(numa)+"\n")
	w.link(t.sys("bus/pci/devices", bdf), dir)
	g := t.sys("kernel/iommu_groups", strconv.Itoa(group))
	w.link(filepath.Join(g, "devices", bdf), dir)
	w.link(filepath.Join(dir, "iommu_group"), g)
	if driver != "" {
		drv := t.sys("bus/pci/drivers", driver)
		w.link(filepath.Join(drv, bdf), dir)
		w.link(filepath.Join(dir, "driver"), drv)
	}
	if driver == "vfio-pci" {
		w.file(filepath.Join(t.root, "dev/vfio", strconv.Itoa(group)), "")
	}
}

// features writes the PF's FME and, unless released, its port.
func (t *Tree) features(w *writer, c *cardState, pf string) {
	iface, _ := c.ids()
	if c.Stack == fpga.StackDFL {
		region := filepath.Join(pf, "fpga_region", "region"+strconv.Itoa(c.Region))
		w.link(t.sys("class/fpga_region", "region"+strconv.Itoa(c.Region)), region)
		fme := filepath.Join(region, "dfl-fme."+strconv.Itoa(c.FME))
		t.fme(w, c, fme)
		pr := filepath.Join(fme, "dfl-fme-region."+strconv.Itoa(c.FMERegion), "fpga_region", "region"+strconv.Itoa(c.FMERegion))
		w.file(filepath.Join(pr, "compat_id"), hexID(iface))
		w.link(t.sys("class/fpga_region", "region"+strconv.Itoa(c.FMERegion)), pr)
		mgr := t.mgrDir(c)
		w.file(filepath.Join(mgr, "name"), "DFL FME FPGA Manager\n")
		w.file(filepath.Join(mgr, "state"), "operating\n")
		w.file(filepath.Join(mgr, "status"), c.MgrError+"\n")
		w.link(t.sys("class/fpga_manager", "fpga"+strconv.Itoa(c.Mgr)), mgr)
		w.file(filepath.Join(t.root, "dev", "dfl-fme."+strconv.Itoa(c.FME)), "")
		if !c.Released {
			t.writePFPort(w, c)
		}
		return
	}
	dev := filepath.Join(pf, "fpga", "intel-fpga-dev."+strconv.Itoa(c.Region))
	w.link(t.sys("class/fpga", "intel-fpga-dev."+strconv.Itoa(c.Region)), dev)
	fme := filepath.Join(dev, "intel-fpga-fme."+strconv.Itoa(c.FME))
	t.fme(w, c, fme)
	w.file(filepath.Join(fme, "pr", "interface_id"), hexID(iface))
	w.file(filepath.Join(t.root, "dev", "intel-fpga-fme."+strconv.Itoa(c.FME)), "")
	if !c.Released {
		t.writePFPort(w, c)
	}
}

func (t *Tree) fme(w *writer, c *cardState, dir string) {
	h := c.Health.withDefaults()
	w.file(filepath.Join(dir, "bitstream_id"), fmt.Sprintf("0x%x\n", c.BitstreamID))
	w.file(filepath.Join(dir, "bitstream_metadata"), "0x0\n")
	w.file(filepath.Join(dir, "ports_num"), strconv.Itoa(h.PortsNum)+"\n")
	w.file(filepath.Join(dir, "socket_id"), "0\n")
	w.file(filepath.Join(dir, "dev"), "240:"+strconv.Itoa(c.FME)+"\n")
	regs := func(files map[string]uint64) {
		for name, v := range files {
			w.file(filepath.Join(dir, "errors", name), hex64(v))
		}
	}
	regs(map[string]uint64{
		"catfatal_errors": h.CatFatal, "nonfatal_errors": h.NonFatal,
		"pcie0_errors": h.PCIe0, "pcie1_errors": h.PCIe1,
	})
	if c.Stack == fpga.StackDFL {
		regs(map[string]uint64{
			"fme_errors": h.FMEErrors, "first_error": h.FirstError, "next_error": h.NextError, "inject_errors": 0,
		})
		t.hwmon(w, c, dir, h)
		return
	}
	regs(map[string]uint64{
		"fme-errors/errors": h.FMEErrors, "fme-errors/first_error": h.FirstError, "fme-errors/next_error": h.NextError,
		"fme-errors/clear": 0, "inject_error": 0,
	})
	w.file(filepath.Join(dir, "errors", "revision"), "1\n")
	// intel-fpga prints degrees Celsius in decimal and watts in hex.
	for name, v := range map[string]string{
		"thermal_mgmt/revision":           "0",
		"thermal_mgmt/temperature":        strconv.FormatInt(h.TempMilliC/1000, 10),
		"thermal_mgmt/threshold1":         strconv.FormatInt(h.TempMaxMilliC/1000, 10),
		"thermal_mgmt/threshold2":         strconv.FormatInt(h.TempCritMilliC/1000, 10),
		"thermal_mgmt/threshold_trip":     strconv.FormatInt(h.TempEmergencyMilliC/1000, 10),
		"thermal_mgmt/threshold1_reached": flag(h.TempMilliC >= h.TempMaxMilliC),
		"thermal_mgmt/threshold2_reached": flag(h.TempMilliC >= h.TempCritMilliC),
		"thermal_mgmt/threshold1_policy":  "0",
		"power_mgmt/revision":             "0",
		"power_mgmt/consumed":             fmt.Sprintf("0x%x", h.PowerMicroW/1000000),
		"power_mgmt/threshold1":           fmt.Sprintf("0x%x", h.PowerMaxMicroW/1000000),
		"power_mgmt/threshold2":           fmt.Sprintf("0x%x", h.PowerCritMicroW/1000000),
		"power_mgmt/threshold1_status":    flag(h.PowerMicroW >= h.PowerMaxMicroW),
		"power_mgmt/threshold2_status":    flag(h.PowerMicroW >= h.PowerCritMicroW),
		"power_mgmt/rtl":                  "0x0",
		"power_mgmt/xeon_limit":           "0x0",
		"power_mgmt/fpga_limit":           "0x0",
	} {
		w.file(filepath.Join(dir, name), v+"\n")
	}
}

// hwmon writes the DFL FME's thermal and power hwmon devices, in the
// kernel's units: millidegrees Celsius and microwatts.
func (t *Tree) hwmon(w *writer, c *cardState, fme string, h Health) {
	if len(c.Hwmon) < 2 { // a tree saved before the FME had sensors
		c.Hwmon = []int{t.next("hwmon"), t.next("hwmon")}
	}
	devs := []struct {
		name  string
		files map[string]string
	}{
		{"dfl_fme_thermal", map[string]string{
			"temp1_input":      strconv.FormatInt(h.TempMilliC, 10),
			"temp1_max":        strconv.FormatInt(h.TempMaxMilliC, 10),
			"temp1_crit":       strconv.FormatInt(h.TempCritMilliC, 10),
			"temp1_emergency":  strconv.FormatInt(h.TempEmergencyMilliC, 10),
			"temp1_max_alarm":  flag(h.TempMilliC >= h.TempMaxMilliC),
			"temp1_crit_alarm": flag(h.TempMilliC >= h.TempCritMilliC),
			"temp1_max_policy": "0",
		}},
		{"dfl_fme_power", map[string]string{
			"power1_input":      strconv.FormatInt(h.PowerMicroW, 10),
			"power1_max":        strconv.FormatInt(h.PowerMaxMicroW, 10),
			"power1_crit":       strconv.FormatInt(h.PowerCritMicroW, 10),
			"power1_max_alarm":  flag(h.PowerMicroW >= h.PowerMaxMicroW),
			"power1_crit_alarm": flag(h.PowerMicroW >= h.PowerCritMicroW),
			"power1_xeon_limit": "0",
			"power1_fpga_limit": "0",
			"power1_ltr":        "0",
		}},
	}
	for i, d := range devs {
		n := "hwmon" + strconv.Itoa(c.Hwmon[i])
		dir := filepath.Join(fme, "hwmon", n)
		w.file(filepath.Join(dir, "name"), d.name+"\n")
		for f, v := range d.files {
			w.file(filepath.Join(dir, f), v+"\n")
		}
		w.link(t.sys("class/hwmon", n), dir)
	}
}

func hex64(v uint64) string { return fmt.Sprintf("0x%x\n", v) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// port writes a port's attributes as the drivers show them. Only port 0
// exists in the fake, so the port health is port 0's.
func (t *Tree) port(w *writer, c *cardState, dir, afu string) {
	h := c.Health
	w.file(filepath.Join(dir, "afu_id"), hexID(afu))
	w.file(filepath.Join(dir, "id"), "0\n")
	w.file(filepath.Join(dir, "errors", "errors"), hex64(c.PortErrs))
	w.file(filepath.Join(dir, "errors", "first_error"), hex64(h.PortFirstError))
	w.file(filepath.Join(dir, "errors", "first_malformed_req"), hex64(h.PortFirstMalformedReq))
	if c.Stack == fpga.StackIntelFPGA {
		w.file(filepath.Join(dir, "errors", "clear"), "0x0\n")
	}
	w.file(filepath.Join(dir, "power_state"), fmt.Sprintf("0x%x\n", h.PowerState))
	w.file(filepath.Join(dir, "ap1_event"), flag(h.AP1Event)+"\n")
	w.file(filepath.Join(dir, "ap2_event"), flag(h.AP2Event)+"\n")
	w.file(filepath.Join(dir, "ltr"), "0\n")
	if c.userClock() {
		// userclk_freqcmd and userclk_freqcntrcmd are write-only commands
		// to the PLL; the status files read back 0x0 here.
		for _, f := range []string{"userclk_freqcmd", "userclk_freqcntrcmd"} {
			w.file(filepath.Join(dir, f), "")
		}
		for _, f := range []string{"userclk_freqsts", "userclk_freqcntrsts"} {
			w.file(filepath.Join(dir, f), "0x0\n")
		}
	}
}

// userClock reports whether the card's port has the userclk interface.
func (c *cardState) userClock() bool { return c.Stack == fpga.StackIntelFPGA || !c.NoUserClock }

// vfPort writes the container and port a host-bound VF shows.
func (t *Tree) vfPort(w *writer, c *cardState, vf string, i int) {
	_, afu := c.ids()
	r, p := strconv.Itoa(c.VFRegion[i]), strconv.Itoa(c.VFPort[i])
	if c.Stack == fpga.StackDFL {
		region := filepath.Join(vf, "fpga_region", "region"+r)
		w.link(t.sys("class/fpga_region", "region"+r), region)
		t.port(w, c, filepath.Join(region, "dfl-port."+p), afu)
		w.file(filepath.Join(t.root, "dev", "dfl-port."+p), "")
		return
	}
	dev := filepath.Join(vf, "fpga", "intel-fpga-dev."+r)
	w.link(t.sys("class/fpga", "intel-fpga-dev."+r), dev)
	t.port(w, c, filepath.Join(dev, "intel-fpga-port."+p), afu)
	w.file(filepath.Join(t.root, "dev", "intel-fpga-port."+p), "")
}
