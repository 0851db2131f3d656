package fpga

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Health is what a card says about itself: its non-zero error and status
// registers, its sensors, and what they mean. Problems make the card
// unhealthy, so that fpgaops neither programs it nor gives it to VMs;
// warnings are shown but change nothing. Every problem and warning names
// the register, sensor or file and its value ("fme errors/catfatal_errors
// = 0x1"). docs/fpga.md says which reading is which.
type Health struct {
	Problems []string `json:"problems,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Registers are the error and status registers that are not zero.
	Registers []Register `json:"registers,omitempty"`
	// Sensors are the card's temperatures and power, with thresholds.
	Sensors []Sensor `json:"sensors,omitempty"`
}

// OK reports whether the card has no known problem. Warnings do not count.
func (h Health) OK() bool { return len(h.Problems) == 0 }

// Severity says whether a reading makes the card unhealthy.
type Severity string

const (
	SeverityProblem Severity = "problem"
	SeverityWarning Severity = "warning"
)

// Register is an error or status register read from sysfs.
type Register struct {
	// Name is where it was read: "fme errors/catfatal_errors", "port 0
	// errors/errors", "port 0 power_state".
	Name     string   `json:"name"`
	Value    Hex64    `json:"value"`
	Severity Severity `json:"severity"`
}

// Hex64 is a 64-bit register value, written in JSON as a "0x" string so
// that no bit is lost to a reader's floating point.
type Hex64 uint64

func (v Hex64) String() string { return fmt.Sprintf("%#x", uint64(v)) }

// MarshalText writes the value as 0x-prefixed hex.
func (v Hex64) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads hex with or without 0x, or decimal digits.
func (v *Hex64) UnmarshalText(b []byte) error {
	n, err := strconv.ParseUint(string(b), 0, 64)
	if err != nil {
		return fmt.Errorf("register value %q: %w", b, err)
	}
	*v = Hex64(n)
	return nil
}

// Sensor is a temperature (degrees Celsius) or power (watts) reading and
// the thresholds the hardware acts on; a zero threshold is one the card
// does not report.
type Sensor struct {
	// Name is the sensor's source: the hwmon device and channel
	// ("dfl_fme_thermal temp1") or the intel-fpga file
	// ("thermal_mgmt temperature").
	Name  string     `json:"name"`
	Kind  SensorKind `json:"kind"`
	Value float64    `json:"value"`
	// Max is where the hardware starts throttling; Crit where it
	// throttles fully; Emergency where the board shuts the FPGA down.
	Max       float64 `json:"max,omitempty"`
	Crit      float64 `json:"crit,omitempty"`
	Emergency float64 `json:"emergency,omitempty"`
	// Severity is set when a threshold is reached.
	Severity Severity `json:"severity,omitempty"`
}

// SensorKind is what a sensor measures.
type SensorKind string

const (
	SensorTemperature SensorKind = "temperature" // degrees Celsius
	SensorPower       SensorKind = "power"       // watts
)

func (k SensorKind) unit() string {
	if k == SensorTemperature {
		return "°C"
	}
	return "W"
}

// report collects a card's health while it is read, in the order found.
type report struct{ h Health }

func (r *report) problem(format string, args ...any) {
	r.h.Problems = append(r.h.Problems, fmt.Sprintf(format, args...))
}

func (r *report) warn(format string, args ...any) {
	r.h.Warnings = append(r.h.Warnings, fmt.Sprintf(format, args...))
}

func (r *report) add(s Severity, format string, args ...any) {
	if s == SeverityProblem {
		r.problem(format, args...)
	} else {
		r.warn(format, args...)
	}
}

// register records a non-zero register with the severity it carries.
func (r *report) register(name string, v uint64, s Severity, meaning string) {
	if v == 0 {
		return
	}
	r.h.Registers = append(r.h.Registers, Register{Name: name, Value: Hex64(v), Severity: s})
	msg := fmt.Sprintf("%s = %#x", name, v)
	if meaning != "" {
		msg += " (" + meaning + ")"
	}
	r.add(s, "%s", msg)
}

// errorFile is an error register below a feature's errors/ directory.
type errorFile struct {
	path     string // relative to the FME or port directory
	severity Severity
}

// Error registers per stack. Catastrophic and fatal errors make a card
// unhealthy; everything else is a warning: non-fatal errors are
// throttling and AFU events the card survives, PCIe errors are logged
// link events, and first/next error repeat which of them came first.
// Files a driver version does not have are skipped.
var (
	dflFMEErrors = []errorFile{
		{"errors/catfatal_errors", SeverityProblem},
		{"errors/nonfatal_errors", SeverityWarning},
		{"errors/pcie0_errors", SeverityWarning},
		{"errors/pcie1_errors", SeverityWarning},
		{"errors/fme_errors", SeverityWarning},
		{"errors/first_error", SeverityWarning},
		{"errors/next_error", SeverityWarning},
	}
	intelFMEErrors = []errorFile{
		{"errors/catfatal_errors", SeverityProblem},
		{"errors/bbs_errors", SeverityProblem}, // older drivers' name for catfatal_errors
		{"errors/nonfatal_errors", SeverityWarning},
		{"errors/gbs_errors", SeverityWarning}, // older drivers' name for nonfatal_errors
		{"errors/warning_errors", SeverityWarning},
		{"errors/pcie0_errors", SeverityWarning},
		{"errors/pcie1_errors", SeverityWarning},
		{"errors/fme-errors/errors", SeverityWarning},
		{"errors/fme-errors/first_error", SeverityWarning},
		{"errors/fme-errors/next_error", SeverityWarning},
	}
	// Port errors are the AFU's: programming clears them (as OPAE does
	// before a PR), so they do not stop it.
	portErrors = []errorFile{
		{"errors/errors", SeverityWarning},
		{"errors/first_error", SeverityWarning},
		{"errors/first_malformed_req", SeverityWarning},
	}
)

// readRegisters reads a feature's error registers into r; prefix names
// the feature ("fme", "port 0").
func (h *SysfsHost) readRegisters(dir, prefix string, files []errorFile, r *report) {
	for _, f := range files {
		v, err := readUint(filepath.Join(dir, f.path), 16, 64)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			r.warn("%s", h.readErr(err))
		default:
			r.register(prefix+" "+f.path, v, f.severity, "")
		}
	}
}

// powerStates names the APx states a port's power_state reports.
var powerStates = map[uint64]string{
	1: "AP1: 50% throttling",
	2: "AP2: 90% throttling",
	6: "AP6: the AFU is held for power or heat",
}

// readPortStatus reads a port's power state and its AP1/AP2 events:
// throttling slows the AFU down but harms nothing, so each is a warning.
func (h *SysfsHost) readPortStatus(dir, prefix string, r *report) {
	if v, err := readUint(filepath.Join(dir, "power_state"), 16, 8); err == nil {
		meaning := powerStates[v]
		if meaning == "" {
			meaning = "unknown APx state"
		}
		r.register(prefix+" power_state", v, SeverityWarning, meaning)
	}
	for _, ev := range []string{"ap1_event", "ap2_event"} {
		if v, err := readUint(filepath.Join(dir, ev), 16, 8); err == nil {
			r.register(prefix+" "+ev, v, SeverityWarning, "throttling happened since it was last cleared")
		}
	}
}

// readNumber reads a sysfs number printed as decimal or 0x-hex.
func readNumber(p string) (int64, error) {
	s, err := readString(p)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, &fs.PathError{Op: "parse", Path: p, Err: err}
	}
	return v, nil
}

// readSensors reads the FME's temperatures and power: hwmon devices on
// DFL, thermal_mgmt and power_mgmt on intel-fpga.
func (h *SysfsHost) readSensors(stack Stack, fme string, r *report) {
	if stack == StackIntelFPGA {
		h.readIntelSensors(fme, r)
		return
	}
	devs, _ := os.ReadDir(filepath.Join(fme, "hwmon"))
	for _, d := range devs { // ReadDir sorts by name
		h.readHwmon(filepath.Join(fme, "hwmon", d.Name()), r)
	}
}

// readHwmon reads one hwmon device's channels: temp*_input in millidegrees
// Celsius and power*_input in microwatts, with the _max, _crit and
// _emergency thresholds the device has. One directory read finds them all.
func (h *SysfsHost) readHwmon(dev string, r *report) {
	ents, err := os.ReadDir(dev)
	if err != nil {
		return
	}
	has := make(map[string]bool, len(ents))
	for _, e := range ents {
		has[e.Name()] = true
	}
	name, err := readString(filepath.Join(dev, "name"))
	if err != nil {
		name = filepath.Base(dev)
	}
	for _, e := range ents {
		ch, ok := strings.CutSuffix(e.Name(), "_input")
		if !ok {
			continue
		}
		kind, scale := SensorTemperature, 1000.0
		switch {
		case strings.HasPrefix(ch, "temp"):
		case strings.HasPrefix(ch, "power"):
			kind, scale = SensorPower, 1e6
		default:
			continue
		}
		v, err := readNumber(filepath.Join(dev, e.Name()))
		if err != nil {
			r.warn("%s", h.readErr(err))
			continue
		}
		s := Sensor{Name: name + " " + ch, Kind: kind, Value: float64(v) / scale}
		var names [3]string
		for i, limit := range []*float64{&s.Max, &s.Crit, &s.Emergency} {
			names[i] = ch + "_" + [...]string{"max", "crit", "emergency"}[i]
			if has[names[i]] {
				if t, err := readNumber(filepath.Join(dev, names[i])); err == nil {
					*limit = float64(t) / scale
				}
			}
		}
		judge(r, s, name+" "+e.Name(), names)
	}
}

// readIntelSensors reads intel-fpga's thermal_mgmt (degrees Celsius) and
// power_mgmt (watts) files.
func (h *SysfsHost) readIntelSensors(fme string, r *report) {
	read := func(f string) (float64, bool) {
		v, err := readNumber(filepath.Join(fme, f))
		return float64(v), err == nil
	}
	if t, ok := read("thermal_mgmt/temperature"); ok {
		s := Sensor{Name: "thermal_mgmt temperature", Kind: SensorTemperature, Value: t}
		s.Max, _ = read("thermal_mgmt/threshold1")
		s.Crit, _ = read("thermal_mgmt/threshold2")
		s.Emergency, _ = read("thermal_mgmt/threshold_trip")
		judge(r, s, "thermal_mgmt temperature", [3]string{"threshold1", "threshold2", "threshold_trip"})
	}
	if p, ok := read("power_mgmt/consumed"); ok {
		s := Sensor{Name: "power_mgmt consumed", Kind: SensorPower, Value: p}
		s.Max, _ = read("power_mgmt/threshold1")
		s.Crit, _ = read("power_mgmt/threshold2")
		judge(r, s, "power_mgmt consumed", [3]string{"threshold1", "threshold2", ""})
	}
}

// judge records a sensor and what its thresholds say. A temperature at or
// above its critical threshold (its max when it has no critical one), or
// its emergency one, is a problem: the hardware is throttling fully or
// about to cut power. Reaching a lower threshold, or any power threshold,
// is a warning: the hardware throttles and carries on. limits names the
// max, crit and emergency files.
func judge(r *report, s Sensor, input string, limits [3]string) {
	for i, l := range []float64{s.Emergency, s.Crit, s.Max} {
		if l <= 0 || s.Value < l {
			continue
		}
		s.Severity = SeverityWarning
		if s.Kind == SensorTemperature && (i < 2 || s.Crit == 0) {
			s.Severity = SeverityProblem
		}
		unit := s.Kind.unit()
		r.add(s.Severity, "%s = %s %s, at or above %s %s %s", input, num(s.Value), unit, limits[2-i], num(l), unit)
		break
	}
	r.h.Sensors = append(r.h.Sensors, s)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// checkPorts compares the FME's ports_num with the ports found: a port
// the FME has but the host does not show is a port whose device failed.
func checkPorts(d *Device, portsNum int, r *report) {
	if portsNum < 0 {
		return
	}
	if n := len(d.Ports); n != portsNum {
		noun := "ports"
		if n == 1 {
			noun = "port"
		}
		r.problem("fme ports_num = %d, but %d %s found", portsNum, n, noun)
	}
}
