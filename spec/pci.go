package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// PCIAddress is a PCI function's address: domain, bus, slot (device) and
// function, as in "0000:5e:00.1".
type PCIAddress struct {
	Domain, Bus, Slot, Function uint
}

// ParsePCIAddress parses "dddd:bb:ss.f" (hex, either case; the form spec
// and sysfs use), or "bb:ss.f" in PCI domain 0. Slot and function must fit
// their 5 and 3 bits.
func ParsePCIAddress(s string) (PCIAddress, error) {
	var a PCIAddress
	bad := fmt.Errorf("PCI address %q: want dddd:bb:ss.f", s)
	full := s
	if strings.Count(s, ":") == 1 {
		full = "0000:" + s
	}
	dom, rest, ok1 := strings.Cut(full, ":")
	bus, rest, ok2 := strings.Cut(rest, ":")
	slot, fn, ok3 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !ok3 || len(dom) != 4 || len(bus) != 2 || len(slot) != 2 || len(fn) != 1 {
		return a, bad
	}
	for _, f := range []struct {
		s    string
		bits int
		v    *uint
	}{{dom, 16, &a.Domain}, {bus, 8, &a.Bus}, {slot, 5, &a.Slot}, {fn, 3, &a.Function}} {
		n, err := strconv.ParseUint(f.s, 16, f.bits)
		if err != nil {
			return PCIAddress{}, bad
		}
		*f.v = uint(n)
	}
	return a, nil
}

// String writes the address in lowercase dddd:bb:ss.f.
func (a PCIAddress) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.Domain, a.Bus, a.Slot, a.Function)
}

// NormalizePCI lowercases a PCI address and adds the default domain when
// it has none: "5E:00.0" becomes "0000:5e:00.0". It leaves a malformed
// address otherwise as it is, for the checks to report.
func NormalizePCI(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if strings.Count(s, ":") == 1 {
		s = "0000:" + s
	}
	return s
}
