package spec

import "testing"

// canonical is how String writes the valid addresses of TestParsePCIAddress.
var canonical = map[string]string{
	"0000:5e:00.0": "0000:5e:00.0",
	"0000:5e:00.7": "0000:5e:00.7",
	"10de:af:1f.3": "10de:af:1f.3",
	"5e:00.0":      "0000:5e:00.0",
	"0000:AF:00.1": "0000:af:00.1",
}

func TestParsePCIAddress(t *testing.T) {
	tests := []struct {
		name, in string
		want     PCIAddress
		ok       bool
	}{
		{"PF", "0000:5e:00.0", PCIAddress{0, 0x5e, 0, 0}, true},
		{"VF", "0000:5e:00.7", PCIAddress{0, 0x5e, 0, 7}, true},
		{"domain and slot", "10de:af:1f.3", PCIAddress{0x10de, 0xaf, 0x1f, 3}, true},
		{"no domain", "5e:00.0", PCIAddress{0, 0x5e, 0, 0}, true},
		{"uppercase", "0000:AF:00.1", PCIAddress{0, 0xaf, 0, 1}, true},
		{"no slot", "0000:5e.0", PCIAddress{}, false},
		{"slot beyond 31", "0000:5e:20.0", PCIAddress{}, false},
		{"function beyond 7", "0000:5e:00.8", PCIAddress{}, false},
		{"not hex", "0000:5g:00.0", PCIAddress{}, false},
		{"three-digit slot", "0000:5e:000.0", PCIAddress{}, false},
		{"empty", "", PCIAddress{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePCIAddress(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParsePCIAddress(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if got != tc.want {
				t.Errorf("ParsePCIAddress(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if want := canonical[tc.in]; tc.ok && got.String() != want {
				t.Errorf("String() = %q, want %q", got.String(), want)
			}
		})
	}
}

func TestNormalizePCI(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"canonical", "0000:5e:00.0", "0000:5e:00.0"},
		{"no domain, upper case", " 5E:00.1 ", "0000:5e:00.1"},
		{"malformed left for the checks", "5e.0", "5e.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NormalizePCI(tc.in); got != tc.want {
				t.Errorf("NormalizePCI(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
