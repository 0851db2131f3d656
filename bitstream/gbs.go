// Package bitstream parses FPGA partial-reconfiguration images: OPAE "green
// bitstreams" (GBS) and, through them, OpenCL AOCX files. It only reads
// bytes; it never touches a device.
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
	"strconv"
	"strings"
)

// GUID opens every GBS file: "XeonFPGA\xb7GBSv001", the bytes of
// 58656F6E-4650-4741-B747-425376303031.
var GUID = [16]byte{0x58, 0x65, 0x6f, 0x6e, 0x46, 0x50, 0x47, 0x41, 0xb7, 0x47, 0x42, 0x53, 0x76, 0x30, 0x30, 0x31}

const (
	// HeaderSize is the GUID and the metadata length.
	HeaderSize = 20
	// MaxMetadataLen is OPAE's limit on the JSON metadata.
	MaxMetadataLen = 8192
	// MagicNo is the afu-image magic number OPAE writes.
	MagicNo = 488605312
)

// Errors a caller may test for with errors.Is.
var (
	ErrTruncated   = errors.New("file is shorter than the GBS header")
	ErrGUID        = errors.New("not a GBS file: bad GUID")
	ErrMetadataLen = errors.New("bad metadata length")
	ErrMetadata    = errors.New("bad metadata")
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
	InterfaceUUID       string    `json:"interface-uuid"`
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

// Clock is a user clock frequency in MHz; "auto" and absent are zero.
type Clock float64

func (c *Clock) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s == "" || strings.EqualFold(s, "auto") {
			*c = 0
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("clock frequency %q: not a number", s)
		}
		*c = Clock(f)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("clock frequency: want a number of MHz")
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

// Parse checks a GBS image and returns its header and metadata.
func Parse(data []byte) (*File, error) {
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
	var md Metadata
	if err := json.Unmarshal(raw, &md); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMetadata, err)
	}
	if err := md.check(); err != nil {
		return nil, err
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

func (md *Metadata) check() error {
	switch md.Version {
	case 1, 640, 650:
	default:
		return fmt.Errorf("%w: version %d: want 1 (or its aliases 640, 650)", ErrMetadata, md.Version)
	}
	img := md.AFUImage
	if img.InterfaceUUID == "" {
		return fmt.Errorf("%w: afu-image.interface-uuid is missing", ErrMetadata)
	}
	if !ValidID(img.InterfaceUUID) {
		return fmt.Errorf("%w: afu-image.interface-uuid %q is not a 128-bit ID", ErrMetadata, img.InterfaceUUID)
	}
	if len(img.AcceleratorClusters) == 0 {
		return fmt.Errorf("%w: afu-image.accelerator-clusters is empty", ErrMetadata)
	}
	for i, c := range img.AcceleratorClusters {
		if c.AcceleratorTypeUUID == "" {
			return fmt.Errorf("%w: afu-image.accelerator-clusters[%d].accelerator-type-uuid is missing", ErrMetadata, i)
		}
		if !ValidID(c.AcceleratorTypeUUID) {
			return fmt.Errorf("%w: afu-image.accelerator-clusters[%d].accelerator-type-uuid %q is not a 128-bit ID", ErrMetadata, i, c.AcceleratorTypeUUID)
		}
	}
	return nil
}

// Build assembles a GBS image from metadata and a payload. The simulated
// fleet, the examples and the tests make their images with it.
func Build(md Metadata, payload []byte) ([]byte, error) {
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

// FormatUUID writes a normalised ID in the 8-4-4-4-12 form.
func FormatUUID(id string) string {
	n := NormalizeID(id)
	if len(n) != 32 {
		return id
	}
	return n[0:8] + "-" + n[8:12] + "-" + n[12:16] + "-" + n[16:20] + "-" + n[20:]
}
