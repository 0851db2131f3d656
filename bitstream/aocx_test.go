package bitstream_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
)

// elf64 builds a minimal little-endian ELF64 relocatable file holding the
// given named sections, enough for debug/elf and for AOCX tests.
func elf64(t testing.TB, sections map[string][]byte, order ...string) []byte {
	t.Helper()
	le := binary.LittleEndian
	shstr := []byte{0}
	nameOff := map[string]uint32{}
	for _, n := range append(order, ".shstrtab") {
		nameOff[n] = uint32(len(shstr))
		shstr = append(append(shstr, n...), 0)
	}
	var body []byte
	offs := map[string]uint64{}
	for _, n := range order {
		offs[n] = uint64(64 + len(body))
		body = append(body, sections[n]...)
	}
	offs[".shstrtab"] = uint64(64 + len(body))
	body = append(body, shstr...)
	for len(body)%8 != 0 {
		body = append(body, 0)
	}
	shoff := uint64(64 + len(body))
	nsec := uint16(len(order) + 2)

	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(h[16:], 1)    // ET_REL
	le.PutUint16(h[18:], 0x3e) // x86-64
	le.PutUint32(h[20:], 1)
	le.PutUint64(h[40:], shoff)
	le.PutUint16(h[52:], 64)
	le.PutUint16(h[58:], 64)
	le.PutUint16(h[60:], nsec)
	le.PutUint16(h[62:], nsec-1)

	out := append(h, body...)
	out = append(out, make([]byte, 64)...) // the null section
	sh := func(name string, typ uint32, size int) {
		s := make([]byte, 64)
		le.PutUint32(s[0:], nameOff[name])
		le.PutUint32(s[4:], typ)
		le.PutUint64(s[24:], offs[name])
		le.PutUint64(s[32:], uint64(size))
		le.PutUint64(s[48:], 1)
		out = append(out, s...)
	}
	for _, n := range order {
		sh(n, 1, len(sections[n])) // SHT_PROGBITS
	}
	sh(".shstrtab", 3, len(shstr)) // SHT_STRTAB
	return out
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func aocx(t testing.TB, gbs []byte) []byte {
	t.Helper()
	inner := elf64(t, map[string][]byte{".acl.gbs.gz": gzipped(t, gbs), ".acl.board": []byte("pac_a10")}, ".acl.board", ".acl.gbs.gz")
	return elf64(t, map[string][]byte{".acl.fpga.bin": inner, ".acl.source": []byte("kernel void k() {}")}, ".acl.source", ".acl.fpga.bin")
}

func TestParseAOCX(t *testing.T) {
	gbs := raw(goodMeta, "PAYLOAD")
	data := aocx(t, gbs)
	f, got, err := bitstream.ParseImage(data)
	if err != nil {
		t.Fatalf("ParseImage: %v", err)
	}
	if !bytes.Equal(got, gbs) {
		t.Error("the GBS extracted from the AOCX differs from the one put in")
	}
	if f.AFUID() != "d8424dc4a4a3c413f89e433683f9040b" || string(f.Payload(got)) != "PAYLOAD" {
		t.Errorf("AOCX image: afu %s payload %q", f.AFUID(), f.Payload(got))
	}
}

func TestParseAOCXErrors(t *testing.T) {
	gbs := raw(goodMeta, "P")
	noInner := elf64(t, map[string][]byte{".acl.source": []byte("x")}, ".acl.source")
	noGBS := elf64(t, map[string][]byte{".acl.fpga.bin": noInner}, ".acl.fpga.bin")
	notGzip := elf64(t, map[string][]byte{".acl.fpga.bin": elf64(t, map[string][]byte{".acl.gbs.gz": gbs}, ".acl.gbs.gz")}, ".acl.fpga.bin")
	badGBS := aocx(t, gbs[1:])
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"not an ELF past the magic", []byte("\x7fELF garbage"), bitstream.ErrAOCX},
		{"no FPGA binary", noInner, bitstream.ErrAOCX},
		{"no gzipped GBS", noGBS, bitstream.ErrAOCX},
		{"GBS not gzipped", notGzip, bitstream.ErrAOCX},
		{"bad GBS inside", badGBS, bitstream.ErrGUID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := bitstream.ParseImage(tc.data); !errors.Is(err, tc.want) {
				t.Fatalf("ParseImage: %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzParseImage: GBS or AOCX, the parser never panics and what it accepts
// parses again from the GBS bytes it returns.
func FuzzParseImage(f *testing.F) {
	f.Add(raw(goodMeta, "P"))
	f.Add(aocx(f, raw(goodMeta, "P")))
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, gbs, err := bitstream.ParseImage(data)
		if err != nil {
			return
		}
		again, err := bitstream.Parse(gbs)
		if err != nil || again.AFUID() != g.AFUID() {
			t.Fatalf("accepted image does not parse again: %v", err)
		}
	})
}
