package bitstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

// jsonKind is a JSON value's type as json-c, which OPAE parses metadata
// with, tells them apart: a number with a fraction or an exponent is a
// double, any other number an int.
type jsonKind int

const (
	kindMissing jsonKind = iota
	kindNull
	kindBool
	kindInt
	kindDouble
	kindString
	kindObject
	kindArray
)

func (k jsonKind) String() string {
	return [...]string{"missing", "null", "a boolean", "an integer", "a fraction", "a string", "an object", "an array"}[k]
}

func kindOf(v json.RawMessage) jsonKind {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return kindMissing
	}
	switch v[0] {
	case 'n':
		return kindNull
	case 't', 'f':
		return kindBool
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	}
	if bytes.ContainsAny(v, ".eE") {
		return kindDouble
	}
	return kindInt
}

// autoClock is the afu schema's pattern for a clock the build chooses.
var autoClock = regexp.MustCompile(`^auto(-[0-9.]+)?$`)

func isAutoClock(s string) bool { return autoClock.MatchString(s) }

// metadataReader decodes the metadata field by field, collecting every
// problem with the field's path, so that one error lists them all.
type metadataReader struct {
	problems []string
}

func (r *metadataReader) addf(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// object decodes v as a JSON object; nil when it is not one.
func object(v json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if kindOf(v) != kindObject || json.Unmarshal(v, &m) != nil {
		return nil
	}
	return m
}

// str reads a required string field.
func (r *metadataReader) str(obj map[string]json.RawMessage, key, path string) (string, bool) {
	v := obj[key]
	switch k := kindOf(v); k {
	case kindMissing:
		r.addf("%s is missing", path)
		return "", false
	case kindString:
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			r.addf("%s: %v", path, err)
			return "", false
		}
		return s, true
	default:
		r.addf("%s is %s, want a string", path, k)
		return "", false
	}
}

// integer reads a required field OPAE reads with json_object_get_int.
func (r *metadataReader) integer(obj map[string]json.RawMessage, key, path string) (int64, bool) {
	v := obj[key]
	switch k := kindOf(v); k {
	case kindMissing:
		r.addf("%s is missing", path)
		return 0, false
	case kindInt:
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 32)
		if err != nil {
			r.addf("%s %s is out of range", path, bytes.TrimSpace(v))
			return 0, false
		}
		return n, true
	default:
		r.addf("%s is %s, want an integer", path, k)
		return 0, false
	}
}

// number reads an optional number (power), refusing other types as the
// afu schema does.
func (r *metadataReader) number(obj map[string]json.RawMessage, key, path string) float64 {
	v := obj[key]
	switch k := kindOf(v); k {
	case kindMissing:
		return 0
	case kindInt, kindDouble:
		f, err := strconv.ParseFloat(string(bytes.TrimSpace(v)), 64)
		if err != nil {
			r.addf("%s %s is out of range", path, bytes.TrimSpace(v))
		}
		return f
	default:
		r.addf("%s is %s, want a number", path, k)
		return 0
	}
}

// clock reads an optional user clock: a number of MHz, or the afu
// schema's "auto" and "auto-<MHz>".
func (r *metadataReader) clock(obj map[string]json.RawMessage, key, path string) Clock {
	v := obj[key]
	if kindOf(v) != kindString {
		return Clock(r.number(obj, key, path))
	}
	var s string
	if json.Unmarshal(v, &s) != nil || !isAutoClock(s) {
		r.addf("%s %s: want a number of MHz, \"auto\" or \"auto-<MHz>\"", path, bytes.TrimSpace(v))
	}
	return 0
}

// decodeMetadata reads the metadata as OPAE does and returns it with
// every problem found. The version decides how the rest reads, so a bad
// version is the only problem reported.
func decodeMetadata(raw []byte) (Metadata, []string) {
	var md Metadata
	var root map[string]json.RawMessage
	if err := json.Unmarshal(raw, &root); err != nil {
		return md, []string{err.Error()}
	}
	if root == nil {
		return md, []string{"metadata is not a JSON object"}
	}
	r := &metadataReader{}
	v, ok := r.integer(root, "version", "version")
	if !ok {
		return md, r.problems
	}
	switch v {
	case 1, 640, 650:
		md.Version = int(v)
	default:
		return md, []string{fmt.Sprintf("version %d: want 1 (or its aliases 640, 650)", v)}
	}
	// OPAE only logs a platform name that is missing or not a string.
	if kindOf(root["platform-name"]) == kindString {
		_ = json.Unmarshal(root["platform-name"], &md.PlatformName)
	}
	img := object(root["afu-image"])
	if img == nil {
		if kindOf(root["afu-image"]) == kindMissing {
			r.addf("afu-image is missing")
		} else {
			r.addf("afu-image is %s, want an object", kindOf(root["afu-image"]))
		}
		return md, r.problems
	}
	a := &md.AFUImage
	if kindOf(img["magic-no"]) == kindMissing {
		r.addf("afu-image.magic-no is missing: OPAE wants %d", MagicNo)
	} else if n, ok := r.integer(img, "magic-no", "afu-image.magic-no"); ok {
		a.MagicNo = n
		if n != MagicNo {
			r.addf("afu-image.magic-no %d: OPAE wants %d", n, MagicNo)
		}
	}
	if s, ok := r.str(img, "interface-uuid", "afu-image.interface-uuid"); ok {
		a.InterfaceUUID = s
		if !IsUUID(s) {
			r.addf("afu-image.interface-uuid %q is not a UUID in the 8-4-4-4-12 form OPAE reads", s)
		}
	}
	a.ClockFrequencyHigh = r.clock(img, "clock-frequency-high", "afu-image.clock-frequency-high")
	a.ClockFrequencyLow = r.clock(img, "clock-frequency-low", "afu-image.clock-frequency-low")
	a.Power = r.number(img, "power", "afu-image.power")
	r.clusters(img["accelerator-clusters"], a)
	return md, r.problems
}

// clusters reads the accelerator clusters: libbitstream needs each one's
// name, total-contexts and accelerator-type-uuid, and xfpga's PR reads
// the AFU ID from the first, so the list may not be empty.
func (r *metadataReader) clusters(v json.RawMessage, a *AFUImage) {
	const path = "afu-image.accelerator-clusters"
	switch k := kindOf(v); k {
	case kindArray:
	case kindMissing:
		r.addf("%s is missing", path)
		return
	default:
		r.addf("%s is %s, want an array", path, k)
		return
	}
	var list []json.RawMessage
	if err := json.Unmarshal(v, &list); err != nil {
		r.addf("%s: %v", path, err)
		return
	}
	if len(list) == 0 {
		r.addf("%s is empty", path)
		return
	}
	a.AcceleratorClusters = make([]Cluster, len(list))
	for i, item := range list {
		at := fmt.Sprintf("%s[%d]", path, i)
		c := &a.AcceleratorClusters[i]
		obj := object(item)
		if obj == nil {
			r.addf("%s is %s, want an object", at, kindOf(item))
			continue
		}
		if n, ok := r.integer(obj, "total-contexts", at+".total-contexts"); ok {
			c.TotalContexts = int(n)
		}
		c.Name, _ = r.str(obj, "name", at+".name")
		if s, ok := r.str(obj, "accelerator-type-uuid", at+".accelerator-type-uuid"); ok {
			c.AcceleratorTypeUUID = s
			// OPAE does not parse it, but fpgaops compares it with the
			// port's afu_id after programming.
			if !ValidID(s) {
				r.addf("%s.accelerator-type-uuid %q is not a 128-bit ID", at, s)
			}
		}
	}
}
