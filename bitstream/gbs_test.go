package bitstream_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

const corpusDir = "testdata/corpus"

// verdict is one line of the corpus's verdicts.txt.
type verdict struct {
	file string
	ok   bool
	why  string // what the error must say when refused
}

func readVerdicts(t testing.TB) []verdict {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "verdicts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []verdict
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, v, found := strings.Cut(line, "\t")
		if !found {
			t.Fatalf("verdicts.txt: bad line %q", line)
		}
		why, refused := strings.CutPrefix(v, "refused: ")
		if !refused && v != "ok" {
			t.Fatalf("verdicts.txt: %s: verdict %q, want ok or refused: ...", name, v)
		}
		out = append(out, verdict{file: name, ok: !refused, why: why})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("verdicts.txt lists no files")
	}
	return out
}

// Every corpus file gets the verdict OPAE gives it: accepted files parse
// with the IDs the packager wrote, refused ones fail saying why.
func TestCorpus(t *testing.T) {
	for _, v := range readVerdicts(t) {
		t.Run(v.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(corpusDir, v.file))
			if err != nil {
				t.Fatal(err)
			}
			f, err := bitstream.Parse(data)
			if !v.ok {
				if err == nil {
					t.Fatalf("Parse accepted a file OPAE refuses (%s)", v.why)
				}
				if !strings.Contains(err.Error(), v.why) {
					t.Fatalf("Parse: %v\nwant it to say: %s", err, v.why)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse refused a file OPAE loads: %v", err)
			}
			if f.InterfaceID() != bitstream.NormalizeID(iface) {
				t.Errorf("interface ID %s", f.InterfaceID())
			}
			if f.AFUID() != bitstream.NormalizeID(afu) {
				t.Errorf("AFU ID %s", f.AFUID())
			}
			if len(f.Payload(data)) == 0 || f.PayloadOffset != bitstream.HeaderSize+f.MetadataLen {
				t.Errorf("payload at %d, metadata %d bytes", f.PayloadOffset, f.MetadataLen)
			}
		})
	}
}

// The corpus is what gencorpus.go writes: running it again changes
// nothing, so the files and their verdicts cannot drift from the program.
func TestCorpusUpToDate(t *testing.T) {
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to run gencorpus.go: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(gotool, "run", "testdata/gencorpus.go", "-dir", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gencorpus: %v\n%s", err, out)
	}
	fresh, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != len(committed) {
		t.Errorf("gencorpus writes %d files, testdata/corpus has %d: run go run testdata/gencorpus.go", len(fresh), len(committed))
	}
	for _, e := range fresh {
		a, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b, err := os.ReadFile(filepath.Join(corpusDir, e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from what gencorpus writes: run go run testdata/gencorpus.go", e.Name())
		}
	}
}

func TestParseErrors(t *testing.T) {
	withLen := func(n uint32, rest string) []byte {
		b := append([]byte{}, bitstream.GUID[:]...)
		b = binary.LittleEndian.AppendUint32(b, n)
		return append(b, rest...)
	}
	legacy := binary.LittleEndian.AppendUint32(nil, bitstream.LegacyMagic)
	legacy = append(legacy, make([]byte, 40)...)
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"truncated", bitstream.GUID[:10], bitstream.ErrTruncated},
		{"bad GUID", raw(goodMeta, "P")[1:], bitstream.ErrGUID},
		{"legacy", legacy, bitstream.ErrLegacy},
		{"zero metadata length", withLen(0, "{}"), bitstream.ErrMetadataLen},
		{"metadata length over the limit", withLen(9000, goodMeta), bitstream.ErrMetadataLen},
		{"bad JSON", raw(`{"version":1,`, "P"), bitstream.ErrMetadata},
		{"JSON null", raw(`null`, "P"), bitstream.ErrMetadata},
		{"afu-image not an object", raw(`{"version":1,"afu-image":[]}`, "P"), bitstream.ErrMetadata},
		{"no payload", raw(goodMeta, ""), bitstream.ErrNoPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := bitstream.Parse(tc.data)
			if !errors.Is(err, tc.want) || f != nil {
				t.Fatalf("Parse: %v, %v; want %v", f, err, tc.want)
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
	if f.Metadata.PlatformName != "pac_a10" || img.AcceleratorClusters[0].Name != "nlb_400" || img.MagicNo != bitstream.MagicNo {
		t.Errorf("metadata %+v", f.Metadata)
	}
	if len(f.SHA256) != 64 {
		t.Errorf("sha256 %q", f.SHA256)
	}
}

// User clocks are set in whole MHz, as xfpga reads them; auto and absent
// leave the clock alone.
func TestUserClocks(t *testing.T) {
	for _, tc := range []struct {
		name, fields string
		high, low    uint64
	}{
		{"numbers", `"clock-frequency-high":400,"clock-frequency-low":200`, 400, 200},
		{"fractions truncate", `"clock-frequency-high":312.5,"clock-frequency-low":156.25`, 312, 156},
		{"auto", `"clock-frequency-high":"auto","clock-frequency-low":"auto-156.25"`, 0, 0},
		{"absent", ``, 0, 0},
		{"only low", `"clock-frequency-low":100`, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := `"magic-no":488605312,"interface-uuid":"` + iface + `",` +
				`"accelerator-clusters":[{"name":"a","total-contexts":1,"accelerator-type-uuid":"` + afu + `"}]`
			if tc.fields != "" {
				fields = tc.fields + "," + fields
			}
			f, err := bitstream.Parse(raw(meta(fields), "P"))
			if err != nil {
				t.Fatal(err)
			}
			if h, l := f.UserClocks(); h != tc.high || l != tc.low {
				t.Errorf("UserClocks() = %d, %d; want %d, %d", h, l, tc.high, tc.low)
			}
		})
	}
}

// Build writes what OPAE loads, as the packager does: the magic number
// and the dashed interface ID even when the metadata given lacks them.
func TestBuild(t *testing.T) {
	md := bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{
		InterfaceUUID:       bitstream.NormalizeID(iface),
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
	if img := f.Metadata.AFUImage; img.MagicNo != bitstream.MagicNo || img.InterfaceUUID != iface {
		t.Errorf("built magic %d interface %q, want %d and %q", img.MagicNo, img.InterfaceUUID, bitstream.MagicNo, iface)
	}
	md.AFUImage.AcceleratorClusters[0].Name = strings.Repeat("x", bitstream.MaxMetadataLen)
	if _, err := bitstream.Build(md, nil); !errors.Is(err, bitstream.ErrMetadataLen) {
		t.Errorf("Build of metadata over the limit: %v", err)
	}
}

func TestIDs(t *testing.T) {
	for _, tc := range []struct {
		in, norm, uuid string
		valid, isUUID  bool
	}{
		{" D8424DC4-A4A3-C413-F89E-433683F9040B\n", "d8424dc4a4a3c413f89e433683f9040b", "d8424dc4-a4a3-c413-f89e-433683f9040b", true, false},
		{"D8424DC4-A4A3-C413-F89E-433683F9040B", "d8424dc4a4a3c413f89e433683f9040b", "d8424dc4-a4a3-c413-f89e-433683f9040b", true, true},
		{"d8424dc4a4a3c413f89e433683f9040b", "d8424dc4a4a3c413f89e433683f9040b", "d8424dc4-a4a3-c413-f89e-433683f9040b", true, false},
		{"d8424dc4a4a3-c413-f89e-433683f9040b-", "d8424dc4a4a3c413f89e433683f9040b", "d8424dc4-a4a3-c413-f89e-433683f9040b", true, false},
		{"d8424dc4a4a3c413f89e433683f9040", "d8424dc4a4a3c413f89e433683f9040", "d8424dc4a4a3c413f89e433683f9040", false, false},
		{"z8424dc4a4a3c413f89e433683f9040b", "z8424dc4a4a3c413f89e433683f9040b", "z8424dc4-a4a3-c413-f89e-433683f9040b", false, false},
		{"z8424dc4-a4a3-c413-f89e-433683f9040b", "z8424dc4a4a3c413f89e433683f9040b", "z8424dc4-a4a3-c413-f89e-433683f9040b", false, false},
	} {
		if got := bitstream.NormalizeID(tc.in); got != tc.norm {
			t.Errorf("NormalizeID(%q) = %q, want %q", tc.in, got, tc.norm)
		}
		if got := bitstream.ValidID(tc.in); got != tc.valid {
			t.Errorf("ValidID(%q) = %v", tc.in, got)
		}
		if got := bitstream.IsUUID(tc.in); got != tc.isUUID {
			t.Errorf("IsUUID(%q) = %v", tc.in, got)
		}
		if got := bitstream.FormatUUID(tc.in); got != tc.uuid {
			t.Errorf("FormatUUID(%q) = %q, want %q", tc.in, got, tc.uuid)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts is consistent. The
// corpus seeds it.
func FuzzParse(f *testing.F) {
	f.Add(raw(goodMeta, "PAYLOAD"))
	f.Add(raw(`{"version":1,`, "P"))
	f.Add(raw(meta(`"interface-uuid":"`+iface+`"`), ""))
	f.Add(append(bitstream.GUID[:], 0xff, 0xff, 0xff, 0xff))
	f.Add([]byte("\x7fELF"))
	for _, v := range readVerdicts(f) {
		data, err := os.ReadFile(filepath.Join(corpusDir, v.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := bitstream.Parse(data)
		if err != nil {
			if g != nil {
				t.Fatal("Parse returned a file and an error")
			}
			return
		}
		if g.PayloadOffset < bitstream.HeaderSize || g.PayloadOffset >= len(data) || g.Size != int64(len(data)) {
			t.Fatalf("payload offset %d, size %d, for %d bytes", g.PayloadOffset, g.Size, len(data))
		}
		if !bitstream.IsUUID(g.Metadata.AFUImage.InterfaceUUID) || !bitstream.ValidID(g.AFUID()) {
			t.Fatalf("accepted IDs %q %q", g.Metadata.AFUImage.InterfaceUUID, g.AFUID())
		}
		if g.Metadata.AFUImage.MagicNo != bitstream.MagicNo || g.MetadataLen > bitstream.MaxMetadataLen {
			t.Fatalf("accepted magic %d, metadata length %d", g.Metadata.AFUImage.MagicNo, g.MetadataLen)
		}
		for i, c := range g.Metadata.AFUImage.AcceleratorClusters {
			if c.AcceleratorTypeUUID == "" {
				t.Fatalf("accepted cluster %d without an AFU ID", i)
			}
		}
	})
}
