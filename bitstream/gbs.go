// Package bitstream parses FPGA partial-reconfiguration images: OPAE "green
// bitstreams" (GBS) and, through them, OpenCL AOCX files. It only reads
// bytes; it never touches a device.
//
// A file is accepted when OPAE would program it: the rules follow OPAE's
// libbitstream (what fpgaconf loads) and its xfpga plugin (what the PR
// path checks), and docs/fpga.md lists them with the few places where
// fpgaops is stricter.
package bitstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// GUID opens every GBS file: "XeonFPGA\xb7GBSv001", the bytes of
// 58656F6E-4650-4741-B747-425376303031.
var GUID = [16]byte{0x58, 0x65, 0x6f, 0x6e, 0x46, 0x50, 0x47, 0x41, 0xb7, 0x47, 0x42, 0x53, 0x76, 0x30, 0x30, 0x31}

const (
	// HeaderSize is the GUID and the metadata length.
	HeaderSize = 20
	// MaxMetadataLen is the longest metadata OPAE programs: xfpga refuses
	// a length of 8192 or more.
	MaxMetadataLen = 8191
	// MagicNo is the afu-image magic number OPAE requires (0x1d1f8680).
	MagicNo = 488605312
	// LegacyMagic opens a pre-6.4.0 BBS image, which has no metadata: the
	// same number as MagicNo, as a little-endian u32 at offset 0.
	LegacyMagic = 0x1d1f8680
)

// Errors a caller may test for with errors.Is.
var (
	ErrTruncated   = errors.New("file is shorter than the GBS header")
	ErrGUID        = errors.New("not a GBS file: bad GUID")
	ErrLegacy      = errors.New("legacy GBS without metadata")
	ErrMetadataLen = errors.New("bad metadata length")
	ErrMetadata    = errors.New("bad metadata")
	ErrNoPayload   = errors.New("no PR payload after the metadata")
)

// File is a parsed GBS image.
type File struct {
	Metadata Metadata
	// MetadataLen is the length of the JSON metadata in bytes.
	MetadataLen int
	// PayloadOffset is where the raw PR payload starts: what goes to the
	// PR ioctl.
	PayloadOffset int
	// Size is the whole file's size; SHA256 its digest (lowercase hex).
	Size   int64
	SHA256 string
}

// Metadata is the JSON document after the GBS header.
type Metadata struct {
	Version      int      `json:"version"`
	PlatformName string   `json:"platform-name,omitempty"`
	AFUImage     AFUImage `json:"afu-image"`
}

// AFUImage describes the image.
type AFUImage struct {
	MagicNo             int64     `json:"magic-no,omitempty"`
	InterfaceUUID       string    `json:"interface-uuid,omitempty"`
	Power               float64   `json:"power,omitempty"`
	ClockFrequencyHigh  Clock     `json:"clock-frequency-high,omitempty"`
	ClockFrequencyLow   Clock     `json:"clock-frequency-low,omitempty"`
	AcceleratorClusters []Cluster `json:"accelerator-clusters"`
}

// Cluster is one accelerator in the image.
type Cluster struct {
	Name                string `json:"name"`
	TotalContexts       int    `json:"total-contexts"`
	AcceleratorTypeUUID string `json:"accelerator-type-uuid"`
}

// Clock is a user clock frequency in MHz. Zero means the metadata leaves
// the clock alone: absent, "auto" or "auto-<MHz>" (the afu schema's ways
// of letting the build pick the frequency, which OPAE does not set).
type Clock float64

// UnmarshalJSON reads a number, "auto" or "auto-<MHz>".
func (c *Clock) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s == "" || isAutoClock(s) {
			*c = 0
			return nil
		}
		return fmt.Errorf("clock frequency %q: want a number of MHz, \"auto\" or \"auto-<MHz>\"", s)
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("clock frequency: want a number of MHz, \"auto\" or \"auto-<MHz>\"")
	}
	*c = Clock(f)
	return nil
}

// InterfaceID is the PR interface the image was built for, normalised.
func (f *File) InterfaceID() string { return NormalizeID(f.Metadata.AFUImage.InterfaceUUID) }

// AFUID is the accelerator type of the image's first cluster, normalised:
// what the port's afu_id reads after programming.
func (f *File) AFUID() string {
	if len(f.Metadata.AFUImage.AcceleratorClusters) == 0 {
		return ""
	}
	return NormalizeID(f.Metadata.AFUImage.AcceleratorClusters[0].AcceleratorTypeUUID)
}

// UserClocks are the user clock frequencies programming sets, in whole
// MHz as OPAE's xfpga reads them (312.5 sets 312); zero leaves a clock
// alone.
func (f *File) UserClocks() (high, low uint64) {
	mhz := func(c Clock) uint64 {
		if c <= 0 {
			return 0
		}
		return uint64(c)
	}
	img := f.Metadata.AFUImage
	return mhz(img.ClockFrequencyHigh), mhz(img.ClockFrequencyLow)
}

// Payload returns the PR payload of data, the file Parse was given.
func (f *File) Payload(data []byte) []byte { return data[f.PayloadOffset:] }

// ReadFile reads and parses a GBS file.
func ReadFile(path string) (*File, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	f, err := Parse(data)
	if err != nil {
		return nil, nil, err
	}
	return f, data, nil
}

// Parse checks a GBS image and returns its header and metadata. Every
// problem the metadata has is in the one error.
func Parse(data []byte) (*File, error) {
	if len(data) >= HeaderSize && binary.LittleEndian.Uint32(data) == LegacyMagic {
		// libbitstream still reads these (deprecated), but xfpga's PR
		// refuses them, and without metadata there is no AFU ID to check
		// the card against afterwards.
		id := make([]byte, 16)
		for i := range id {
			id[i] = data[4+15-i] // stored backwards
		}
		return nil, fmt.Errorf("%w (pre-6.4.0 BBS format, PR interface %s): OPAE no longer programs it and it names no AFU ID; repackage it with OPAE's packager",
			ErrLegacy, hex.EncodeToString(id))
	}
	if len(data) < HeaderSize {
		return nil, fmt.Errorf("%w (%d bytes, want at least %d)", ErrTruncated, len(data), HeaderSize)
	}
	if !bytes.Equal(data[:16], GUID[:]) {
		return nil, fmt.Errorf("%w %x", ErrGUID, data[:16])
	}
	n := binary.LittleEndian.Uint32(data[16:20])
	if n == 0 || n > MaxMetadataLen {
		return nil, fmt.Errorf("%w %d: want 1 to %d", ErrMetadataLen, n, MaxMetadataLen)
	}
	if int64(n) > int64(len(data)-HeaderSize) {
		return nil, fmt.Errorf("%w %d: past the end of the file (%d bytes)", ErrMetadataLen, n, len(data))
	}
	raw := data[HeaderSize : HeaderSize+int(n)]
	// OPAE pads the metadata with NULs up to its declared length.
	raw = bytes.TrimRight(raw, "\x00")
	md, problems := decodeMetadata(raw)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMetadata, strings.Join(problems, "; "))
	}
	if HeaderSize+int(n) == len(data) {
		return nil, ErrNoPayload
	}
	sum := sha256.Sum256(data)
	return &File{
		Metadata:      md,
		MetadataLen:   int(n),
		PayloadOffset: HeaderSize + int(n),
		Size:          int64(len(data)),
		SHA256:        hex.EncodeToString(sum[:]),
	}, nil
}

// Build assembles a GBS image from metadata and a payload, as OPAE's
// packager writes one: it sets the magic number when md has none, and
// writes a 128-bit interface ID in the dashed form OPAE reads. It does not
// otherwise check md, so that tests can build bad images. The simulated
// fleet, the examples and the tests make their images with it.
func Build(md Metadata, payload []byte) ([]byte, error) {
	if md.AFUImage.MagicNo == 0 {
		md.AFUImage.MagicNo = MagicNo
	}
	if ValidID(md.AFUImage.InterfaceUUID) {
		md.AFUImage.InterfaceUUID = FormatUUID(md.AFUImage.InterfaceUUID)
	}
	js, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	if len(js) > MaxMetadataLen {
		return nil, fmt.Errorf("%w %d: want at most %d", ErrMetadataLen, len(js), MaxMetadataLen)
	}
	out := make([]byte, 0, HeaderSize+len(js)+len(payload))
	out = append(out, GUID[:]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(js)))
	out = append(out, js...)
	return append(out, payload...), nil
}

// NormalizeID lowercases an ID and strips its dashes, so that IDs read
// from sysfs, GBS metadata and YAML compare equal.
func NormalizeID(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", ""))
}

// ValidID reports whether s is a 128-bit ID: 32 hex digits, dashes allowed.
func ValidID(s string) bool {
	n := NormalizeID(s)
	if len(n) != 32 {
		return false
	}
	_, err := hex.DecodeString(n)
	return err == nil
}

// IsUUID reports whether s is a UUID in the 8-4-4-4-12 form, the only
// form libuuid's uuid_parse (and so OPAE) reads.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// FormatUUID writes a normalised ID in the 8-4-4-4-12 form.
func FormatUUID(id string) string {
	n := NormalizeID(id)
	if len(n) != 32 {
		return id
	}
	return n[0:8] + "-" + n[8:12] + "-" + n[12:16] + "-" + n[16:20] + "-" + n[20:]
}
