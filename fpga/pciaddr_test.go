package fpga

import "testing"

func TestIsPCIAddress(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		{"sysfs form", "0000:5e:00.1", true},
		{"upper case", "0000:5E:00.1", false},
		{"no domain", "5e:00.1", false},
		{"function beyond 7", "0000:5e:00.8", false},
		{"driver entry", "bind", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsPCIAddress(tc.in); got != tc.want {
				t.Errorf("IsPCIAddress(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}
