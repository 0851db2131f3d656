package bitstream_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
)

const (
	iface = "9346116d-a52d-5ca8-b06a-a9a389ef7c8d"
	afu   = "D8424DC4-A4A3-C413-F89E-433683F9040B"
)

// raw assembles a GBS from a metadata string as it appears in the file.
func raw(md string, payload string) []byte {
	b := append([]byte{}, bitstream.GUID[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(md)))
	b = append(b, md...)
	return append(b, payload...)
}

func meta(imageFields string) string {
	return `{"version":1,"platform-name":"pac_a10","afu-image":{` + imageFields + `}}`
}

var goodMeta = meta(`"magic-no":488605312,"interface-uuid":"` + iface + `","power":0,` +
	`"clock-frequency-high":"auto","clock-frequency-low":312.5,` +
	`"accelerator-clusters":[{"name":"nlb_400","total-contexts":1,"accelerator-type-uuid":"` + afu + `"}]`)

func TestParse(t *testing.T) {
	withLen := func(n uint32, rest string) []byte {
		b := append([]byte{}, bitstream.GUID[:]...)
		b = binary.LittleEndian.AppendUint32(b, n)
		return append(b, rest...)
	}
	padded := `{"version":640,"afu-image":{"interface-uuid":"` + iface + `","accelerator-clusters":[{"accelerator-type-uuid":"` + afu + `"}]}}` + "\x00\x00\x00"
	tests := []struct {
		name    string
		data    []byte
		wantErr error
		wantMsg string
	}{
		{name: "good", data: raw(goodMeta, "PAYLOAD")},
		{name: "padded metadata, version alias", data: raw(padded, "P")},
		{name: "truncated", data: bitstream.GUID[:10], wantErr: bitstream.ErrTruncated},
		{name: "bad GUID", data: raw(goodMeta, "P")[1:], wantErr: bitstream.ErrGUID},
		{name: "zero metadata length", data: withLen(0, "{}"), wantErr: bitstream.ErrMetadataLen},
		{name: "metadata length over the limit", data: withLen(9000, goodMeta), wantErr: bitstream.ErrMetadataLen},
		{name: "metadata length past the end", data: withLen(uint32(len(goodMeta)+1), goodMeta), wantErr: bitstream.ErrMetadataLen,
			wantMsg: "past the end of the file"},
		{name: "bad JSON", data: raw(`{"version":1,`, "P"), wantErr: bitstream.ErrMetadata},
		{name: "bad version", data: raw(`{"version":2,"afu-image":{}}`, ""), wantErr: bitstream.ErrMetadata, wantMsg: "version 2"},
		{name: "missing interface ID", data: raw(meta(`"accelerator-clusters":[{"accelerator-type-uuid":"`+afu+`"}]`), ""),
			wantErr: bitstream.ErrMetadata, wantMsg: "interface-uuid is missing"},
		{name: "bad interface ID", data: raw(meta(`"interface-uuid":"1234","accelerator-clusters":[{"accelerator-type-uuid":"`+afu+`"}]`), ""),
			wantErr: bitstream.ErrMetadata, wantMsg: "not a 128-bit ID"},
		{name: "no clusters", data: raw(meta(`"interface-uuid":"`+iface+`"`), ""),
			wantErr: bitstream.ErrMetadata, wantMsg: "accelerator-clusters is empty"},
		{name: "missing AFU ID", data: raw(meta(`"interface-uuid":"`+iface+`","accelerator-clusters":[{"name":"x"}]`), ""),
			wantErr: bitstream.ErrMetadata, wantMsg: "accelerator-type-uuid is missing"},
		{name: "bad clock", data: raw(meta(`"interface-uuid":"`+iface+`","clock-frequency-high":"fast","accelerator-clusters":[{"accelerator-type-uuid":"`+afu+`"}]`), ""),
			wantErr: bitstream.ErrMetadata, wantMsg: "clock frequency"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := bitstream.Parse(tc.data)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if f.InterfaceID() != "9346116da52d5ca8b06aa9a389ef7c8d" || f.AFUID() != "d8424dc4a4a3c413f89e433683f9040b" {
					t.Errorf("IDs %s %s, want normalised", f.InterfaceID(), f.AFUID())
				}
				if f.Size != int64(len(tc.data)) || f.PayloadOffset != bitstream.HeaderSize+f.MetadataLen {
					t.Errorf("sizes: size %d payload at %d, metadata %d", f.Size, f.PayloadOffset, f.MetadataLen)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Parse: %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Parse: %v, want it to say %q", err, tc.wantMsg)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	data := raw(goodMeta, "PAYLOAD")
	f, err := bitstream.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	img := f.Metadata.AFUImage
	if img.ClockFrequencyHigh != 0 || img.ClockFrequencyLow != 312.5 {
		t.Errorf("clocks %v %v, want auto (0) and 312.5", img.ClockFrequencyHigh, img.ClockFrequencyLow)
	}
	if string(f.Payload(data)) != "PAYLOAD" {
		t.Errorf("payload %q", f.Payload(data))
	}
	if f.Metadata.PlatformName != "pac_a10" || img.AcceleratorClusters[0].Name != "nlb_400" {
		t.Errorf("metadata %+v", f.Metadata)
	}
	if len(f.SHA256) != 64 {
		t.Errorf("sha256 %q", f.SHA256)
	}
}

func TestBuildRoundTrip(t *testing.T) {
	md := bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{
		InterfaceUUID:       iface,
		AcceleratorClusters: []bitstream.Cluster{{Name: "a", TotalContexts: 1, AcceleratorTypeUUID: afu}},
	}}
	b, err := bitstream.Build(md, []byte("xyz"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := bitstream.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Payload(b)) != "xyz" || f.AFUID() != bitstream.NormalizeID(afu) {
		t.Errorf("round trip: payload %q afu %s", f.Payload(b), f.AFUID())
	}
}

func TestIDs(t *testing.T) {
	for _, tc := range []struct {
		in, norm, uuid string
		valid          bool
	}{
		{" D8424DC4-A4A3-C413-F89E-433683F9040B\n", "d8424dc4a4a3c413f89e433683f9040b", "d8424dc4-a4a3-c413-f89e-433683f9040b", true},
		{"d8424dc4a4a3c413f89e433683f9040b", "d8424dc4a4a3c413f89e433683f9040b", "d8424dc4-a4a3-c413-f89e-433683f9040b", true},
		{"d8424dc4a4a3c413f89e433683f9040", "d8424dc4a4a3c413f89e433683f9040", "d8424dc4a4a3c413f89e433683f9040", false},
		{"z8424dc4a4a3c413f89e433683f9040b", "z8424dc4a4a3c413f89e433683f9040b", "z8424dc4-a4a3-c413-f89e-433683f9040b", false},
	} {
		if got := bitstream.NormalizeID(tc.in); got != tc.norm {
			t.Errorf("NormalizeID(%q) = %q, want %q", tc.in, got, tc.norm)
		}
		if got := bitstream.ValidID(tc.in); got != tc.valid {
			t.Errorf("ValidID(%q) = %v", tc.in, got)
		}
		if got := bitstream.FormatUUID(tc.in); got != tc.uuid {
			t.Errorf("FormatUUID(%q) = %q, want %q", tc.in, got, tc.uuid)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts is consistent.
func FuzzParse(f *testing.F) {
	f.Add(raw(goodMeta, "PAYLOAD"))
	f.Add(raw(`{"version":1,`, "P"))
	f.Add(raw(meta(`"interface-uuid":"`+iface+`"`), ""))
	f.Add(append(bitstream.GUID[:], 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte("\x7fELF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := bitstream.Parse(data)
		if err != nil {
			if g != nil {
				t.Fatal("Parse returned a file and an error")
			}
			return
		}
		if g.PayloadOffset < bitstream.HeaderSize || g.PayloadOffset > len(data) || g.Size != int64(len(data)) {
			t.Fatalf("payload offset %d, size %d, for %d bytes", g.PayloadOffset, g.Size, len(data))
		}
		if !bitstream.ValidID(g.InterfaceID()) || !bitstream.ValidID(g.AFUID()) {
			t.Fatalf("accepted IDs %q %q", g.InterfaceID(), g.AFUID())
		}
		if g.InterfaceID() != bitstream.NormalizeID(g.InterfaceID()) {
			t.Fatalf("interface ID not normalised: %q", g.InterfaceID())
		}
	})
}
