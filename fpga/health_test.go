package fpga_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

// A sick card shows what is wrong, naming each register or sensor with
// its value, for both driver stacks; only fatal errors, temperatures at a
// critical threshold, crashed firmware and missing ports make it
// unhealthy.
func TestDiscoverHealth(t *testing.T) {
	dfl := fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, Stack: fpga.StackDFL, InterfaceID: ifaceN3000, AFUID: afuNLB}
	intel := fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardPACA10, Stack: fpga.StackIntelFPGA, InterfaceID: ifaceA10, AFUID: afuDMA}
	fme := map[fpga.Stack]string{
		fpga.StackDFL:       "sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0/dfl-fme.0",
		fpga.StackIntelFPGA: "sys/devices/pci0000:5e/0000:5e:00.0/fpga/intel-fpga-dev.0/intel-fpga-fme.0",
	}
	tests := []struct {
		name      string
		card      fpgatest.Card
		health    fpgatest.Health
		portErrs  uint64
		modify    func(t *testing.T, fmeDir string)
		problems  []string
		warnings  []string
		registers []fpga.Register
	}{
		{
			name: "dfl catastrophic error", card: dfl, health: fpgatest.Health{CatFatal: 0x1},
			problems:  []string{"fme errors/catfatal_errors = 0x1"},
			registers: []fpga.Register{{Name: "fme errors/catfatal_errors", Value: 0x1, Severity: fpga.SeverityProblem}},
		},
		{
			name: "intel-fpga catastrophic error", card: intel, health: fpgatest.Health{CatFatal: 0x400},
			problems:  []string{"fme errors/catfatal_errors = 0x400"},
			registers: []fpga.Register{{Name: "fme errors/catfatal_errors", Value: 0x400, Severity: fpga.SeverityProblem}},
		},
		{
			name: "intel-fpga driver of the bbs_errors era", card: intel,
			modify: func(t *testing.T, dir string) {
				t.Helper()
				for f, v := range map[string]string{"errors/bbs_errors": "0x4\n", "errors/gbs_errors": "0x1\n"} {
					if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			problems: []string{"fme errors/bbs_errors = 0x4"},
			warnings: []string{"fme errors/gbs_errors = 0x1"},
			registers: []fpga.Register{
				{Name: "fme errors/bbs_errors", Value: 0x4, Severity: fpga.SeverityProblem},
				{Name: "fme errors/gbs_errors", Value: 0x1, Severity: fpga.SeverityWarning},
			},
		},
		{
			name: "non-fatal, PCIe and FME errors are warnings", card: dfl,
			health:   fpgatest.Health{NonFatal: 0x2, PCIe0: 0x8, FMEErrors: 0x10, FirstError: 0x10},
			warnings: []string{"fme errors/nonfatal_errors = 0x2", "fme errors/pcie0_errors = 0x8", "fme errors/fme_errors = 0x10", "fme errors/first_error = 0x10"},
			registers: []fpga.Register{
				{Name: "fme errors/nonfatal_errors", Value: 0x2, Severity: fpga.SeverityWarning},
				{Name: "fme errors/pcie0_errors", Value: 0x8, Severity: fpga.SeverityWarning},
				{Name: "fme errors/fme_errors", Value: 0x10, Severity: fpga.SeverityWarning},
				{Name: "fme errors/first_error", Value: 0x10, Severity: fpga.SeverityWarning},
			},
		},
		{
			name: "intel-fpga FME errors live in fme-errors/", card: intel, health: fpgatest.Health{FMEErrors: 0x2, NextError: 0x4},
			warnings: []string{"fme errors/fme-errors/errors = 0x2", "fme errors/fme-errors/next_error = 0x4"},
			registers: []fpga.Register{
				{Name: "fme errors/fme-errors/errors", Value: 0x2, Severity: fpga.SeverityWarning},
				{Name: "fme errors/fme-errors/next_error", Value: 0x4, Severity: fpga.SeverityWarning},
			},
		},
		{
			name: "port errors and throttling are warnings", card: dfl, portErrs: 0x10,
			health: fpgatest.Health{PortFirstMalformedReq: 0x3000, PowerState: 2, AP1Event: true},
			warnings: []string{
				"port 0 errors/errors = 0x10", "port 0 errors/first_malformed_req = 0x3000",
				"port 0 power_state = 0x2 (AP2: 90% throttling)",
				"port 0 ap1_event = 0x1 (throttling happened since it was last cleared)",
			},
			registers: []fpga.Register{
				{Name: "port 0 errors/errors", Value: 0x10, Severity: fpga.SeverityWarning},
				{Name: "port 0 errors/first_malformed_req", Value: 0x3000, Severity: fpga.SeverityWarning},
				{Name: "port 0 power_state", Value: 0x2, Severity: fpga.SeverityWarning},
				{Name: "port 0 ap1_event", Value: 0x1, Severity: fpga.SeverityWarning},
			},
		},
		{
			name: "dfl temperature at its critical threshold", card: dfl, health: fpgatest.Health{TempMilliC: 100500},
			problems: []string{"dfl_fme_thermal temp1_input = 100.5 °C, at or above temp1_crit 100 °C"},
		},
		{
			name: "dfl temperature over max is throttling", card: dfl, health: fpgatest.Health{TempMilliC: 91000},
			warnings: []string{"dfl_fme_thermal temp1_input = 91 °C, at or above temp1_max 90 °C"},
		},
		{
			name: "over max with no critical threshold is a problem", card: dfl, health: fpgatest.Health{TempMilliC: 91000},
			modify: func(t *testing.T, dir string) {
				t.Helper()
				crit, err := filepath.Glob(filepath.Join(dir, "hwmon/hwmon*/temp1_crit"))
				if err != nil || len(crit) != 1 {
					t.Fatalf("temp1_crit: %v %v", crit, err)
				}
				if err := os.Remove(crit[0]); err != nil {
					t.Fatal(err)
				}
			},
			problems: []string{"dfl_fme_thermal temp1_input = 91 °C, at or above temp1_max 90 °C"},
		},
		{
			name: "intel-fpga temperature at threshold2", card: intel, health: fpgatest.Health{TempMilliC: 101000},
			problems: []string{"thermal_mgmt temperature = 101 °C, at or above threshold2 100 °C"},
		},
		{
			name: "power over a threshold is a warning", card: dfl, health: fpgatest.Health{PowerMicroW: 65000000},
			warnings: []string{"dfl_fme_power power1_input = 65 W, at or above power1_max 60 W"},
		},
		{
			name: "intel-fpga power in hex watts", card: intel, health: fpgatest.Health{PowerMicroW: 75000000},
			warnings: []string{"power_mgmt consumed = 75 W, at or above threshold2 70 W"},
		},
		{
			name: "a port the FME counts is missing", card: dfl, health: fpgatest.Health{PortsNum: 2},
			problems: []string{"fme ports_num = 2, but 1 port found"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.card
			c.Health = tc.health
			tr := newTree(t, c)
			if tc.portErrs != 0 {
				must(t, tr.SetPortErrors(c.PCI, tc.portErrs))
			}
			if tc.modify != nil {
				tc.modify(t, filepath.Join(tr.Root(), fme[c.Stack]))
			}
			h := discover(t, tr.Root())[0].Health
			if !reflect.DeepEqual(h.Problems, tc.problems) {
				t.Errorf("problems:\n got %q\nwant %q", h.Problems, tc.problems)
			}
			if !reflect.DeepEqual(h.Warnings, tc.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", h.Warnings, tc.warnings)
			}
			if !reflect.DeepEqual(h.Registers, tc.registers) {
				t.Errorf("registers:\n got %+v\nwant %+v", h.Registers, tc.registers)
			}
			if h.OK() != (len(tc.problems) == 0) {
				t.Errorf("OK() = %v with problems %q", h.OK(), h.Problems)
			}
			if len(h.Sensors) != 2 {
				t.Errorf("sensors %+v, want a temperature and a power", h.Sensors)
			}
		})
	}
}

// Health's JSON is additive to what snapshots held before (problems) and
// writes register values as hex strings, which read back unchanged.
func TestHealthJSON(t *testing.T) {
	h := fpga.Health{
		Problems:  []string{"fme errors/catfatal_errors = 0x8000000000000001"},
		Registers: []fpga.Register{{Name: "fme errors/catfatal_errors", Value: 0x8000000000000001, Severity: fpga.SeverityProblem}},
		Sensors:   []fpga.Sensor{{Name: "dfl_fme_thermal temp1", Kind: fpga.SensorTemperature, Value: 45.5, Max: 90, Crit: 100}},
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"problems":["fme errors/catfatal_errors = 0x8000000000000001"],` +
		`"registers":[{"name":"fme errors/catfatal_errors","value":"0x8000000000000001","severity":"problem"}],` +
		`"sensors":[{"name":"dfl_fme_thermal temp1","kind":"temperature","value":45.5,"max":90,"crit":100}]}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	var back fpga.Health
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, h) {
		t.Errorf("read back %+v (%v), want %+v", back, err, h)
	}
	var old fpga.Health
	if err := json.Unmarshal([]byte(`{"problems":["port errors 0x1"]}`), &old); err != nil || old.OK() {
		t.Errorf("a snapshot's health from before: %+v %v", old, err)
	}
	if b, _ := json.Marshal(fpga.Health{}); string(b) != "{}" {
		t.Errorf("healthy card without sensors: %s, want {}", b)
	}
}
