//go:build ignore

// gencorpus writes the GBS corpus in testdata/corpus: small images laid
// out as OPAE's packager writes them (GUID, little-endian u32 metadata
// length, the metadata as Python's json.dumps prints the AFU JSON with the
// magic number added last, then the payload), each varied in one way, and
// verdicts.txt with what OPAE does with each. From bitstream/:
//
//	go run testdata/gencorpus.go
//
// TestCorpusUpToDate runs it again and compares.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
)

const (
	iface = "9346116d-a52d-5ca8-b06a-a9a389ef7c8d"
	afu   = "d8424dc4-a4a3-c413-f89e-433683f9040b"
	afu2  = "331db30c-9885-41ea-9081-f88b8f655caa"
)

var guid = []byte("XeonFPGA\xb7GBSv001")

// field is one key of the afu-image object, in the packager's order.
type field struct{ key, value string }

func baseImage() []field {
	return []field{
		{"power", "50"},
		{"clock-frequency-high", "312"},
		{"clock-frequency-low", "156"},
		{"interface-uuid", `"` + iface + `"`},
		{"afu-top-interface", `{"class": "ccip_std_afu"}`},
		{"accelerator-clusters", cluster(`"name": "nlb_400"`, `"total-contexts": 1`, `"accelerator-type-uuid": "`+afu+`"`)},
		{"magic-no", "488605312"},
	}
}

func cluster(kv ...string) string { return "[{" + strings.Join(kv, ", ") + "}]" }

// image returns the base afu-image with keys replaced; an empty value
// drops the key.
func image(changes ...field) string {
	fs := baseImage()
	for _, c := range changes {
		found := false
		for i := range fs {
			if fs[i].key == c.key {
				fs[i].value, found = c.value, true
			}
		}
		if !found {
			fs = append(fs, c)
		}
	}
	var parts []string
	for _, f := range fs {
		if f.value != "" {
			parts = append(parts, fmt.Sprintf("%q: %s", f.key, f.value))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func meta(version, img string) string {
	return `{"version": ` + version + `, "afu-image": ` + img + `, "platform-name": "pac_a10"}`
}

// gbs lays out a file; length overrides the metadata length when >= 0.
func gbs(md string, length int, payload []byte) []byte {
	if length < 0 {
		length = len(md)
	}
	out := append([]byte{}, guid...)
	out = binary.LittleEndian.AppendUint32(out, uint32(length))
	out = append(out, md...)
	return append(out, payload...)
}

// payload stands in for the RBF a PR loads: reproducible bytes.
func payload(seed string) []byte {
	b := sha256.Sum256([]byte(seed))
	return bytes.Repeat(b[:], 2)
}

type entry struct {
	name string
	data []byte
	// verdict is "ok" or "refused: " and what the error must say.
	verdict string
}

func ok(name string, data []byte) entry { return entry{name, data, "ok"} }
func refused(name string, data []byte, why string) entry {
	return entry{name, data, "refused: " + why}
}

func corpus() []entry {
	std := func(changes ...field) []byte { return gbs(meta("1", image(changes...)), -1, payload("nlb")) }
	padTo := func(md string, n int) string { return md + strings.Repeat("\x00", n-len(md)) }
	legacy := binary.LittleEndian.AppendUint32(nil, 0x1d1f8680)
	for i := 15; i >= 0; i-- { // the interface ID, stored backwards
		legacy = append(legacy, []byte{0x93, 0x46, 0x11, 0x6d, 0xa5, 0x2d, 0x5c, 0xa8, 0xb0, 0x6a, 0xa9, 0xa3, 0x89, 0xef, 0x7c, 0x8d}[i])
	}
	legacy = append(legacy, payload("legacy")...)
	return []entry{
		ok("packager.gbs", std()),
		ok("version-640.gbs", gbs(meta("640", image()), -1, payload("nlb"))),
		ok("version-650.gbs", gbs(meta("650", image()), -1, payload("nlb"))),
		ok("clock-auto.gbs", std(field{"clock-frequency-high", `"auto"`}, field{"clock-frequency-low", `"auto"`})),
		ok("clock-auto-target.gbs", std(field{"clock-frequency-high", `"auto-312.5"`}, field{"clock-frequency-low", `"auto-156.25"`})),
		ok("clock-fraction.gbs", std(field{"clock-frequency-high", "312.5"}, field{"clock-frequency-low", "156.25"})),
		ok("optional-keys-absent.gbs", gbs(`{"version": 1, "afu-image": {"interface-uuid": "`+iface+`", "accelerator-clusters": `+
			cluster(`"name": "nlb_400"`, `"total-contexts": 1`, `"accelerator-type-uuid": "`+afu+`"`)+`, "magic-no": 488605312}}`, -1, payload("nlb"))),
		ok("nul-padded.gbs", gbs(padTo(meta("1", image()), 1024), -1, payload("nlb"))),
		ok("metadata-8191.gbs", gbs(padTo(meta("1", image()), 8191), -1, payload("nlb"))),
		ok("interface-uppercase.gbs", std(field{"interface-uuid", `"` + strings.ToUpper(iface) + `"`})),
		ok("afu-id-without-dashes.gbs", std(field{"accelerator-clusters", cluster(`"name": "nlb_400"`, `"total-contexts": 1`,
			`"accelerator-type-uuid": "`+strings.ReplaceAll(afu, "-", "")+`"`)})),
		ok("two-clusters.gbs", std(field{"accelerator-clusters", `[{"name": "nlb_400", "total-contexts": 1, "accelerator-type-uuid": "` + afu +
			`"}, {"name": "dma", "total-contexts": 1, "accelerator-type-uuid": "` + afu2 + `"}]`})),

		refused("magic-missing.gbs", std(field{"magic-no", ""}), "afu-image.magic-no is missing: OPAE wants 488605312"),
		refused("magic-wrong.gbs", std(field{"magic-no", "488605313"}), "afu-image.magic-no 488605313: OPAE wants 488605312"),
		refused("magic-string.gbs", std(field{"magic-no", `"488605312"`}), "afu-image.magic-no is a string, want an integer"),
		refused("interface-without-dashes.gbs", std(field{"interface-uuid", `"` + strings.ReplaceAll(iface, "-", "") + `"`}),
			`afu-image.interface-uuid "9346116da52d5ca8b06aa9a389ef7c8d" is not a UUID in the 8-4-4-4-12 form OPAE reads`),
		refused("interface-missing.gbs", std(field{"interface-uuid", ""}), "afu-image.interface-uuid is missing"),
		refused("metadata-8192.gbs", gbs(padTo(meta("1", image()), 8192), -1, payload("nlb")), "bad metadata length 8192: want 1 to 8191"),
		refused("metadata-zero.gbs", gbs(meta("1", image()), 0, payload("nlb")), "bad metadata length 0: want 1 to 8191"),
		refused("metadata-past-end.gbs", gbs(meta("1", image()), 4096, nil), "past the end of the file"),
		refused("clock-word.gbs", std(field{"clock-frequency-high", `"fast"`}),
			`afu-image.clock-frequency-high "fast": want a number of MHz, "auto" or "auto-<MHz>"`),
		refused("cluster-without-name.gbs", std(field{"accelerator-clusters", cluster(`"total-contexts": 1`, `"accelerator-type-uuid": "`+afu+`"`)}),
			"afu-image.accelerator-clusters[0].name is missing"),
		refused("cluster-without-contexts.gbs", std(field{"accelerator-clusters", cluster(`"name": "nlb_400"`, `"accelerator-type-uuid": "`+afu+`"`)}),
			"afu-image.accelerator-clusters[0].total-contexts is missing"),
		refused("cluster-without-afu-id.gbs", std(field{"accelerator-clusters", cluster(`"name": "nlb_400"`, `"total-contexts": 1`)}),
			"afu-image.accelerator-clusters[0].accelerator-type-uuid is missing"),
		refused("clusters-empty.gbs", std(field{"accelerator-clusters", "[]"}), "afu-image.accelerator-clusters is empty"),
		refused("clusters-missing.gbs", std(field{"accelerator-clusters", ""}), "afu-image.accelerator-clusters is missing"),
		refused("version-2.gbs", gbs(meta("2", image()), -1, payload("nlb")), "version 2: want 1 (or its aliases 640, 650)"),
		refused("version-fraction.gbs", gbs(meta("1.0", image()), -1, payload("nlb")), "version is a fraction, want an integer"),
		refused("several-problems.gbs", std(field{"magic-no", ""}, field{"interface-uuid", `"9346116d"`},
			field{"accelerator-clusters", cluster(`"total-contexts": 1`, `"accelerator-type-uuid": "`+afu+`"`)}),
			`afu-image.magic-no is missing: OPAE wants 488605312; afu-image.interface-uuid "9346116d" is not a UUID in the 8-4-4-4-12 form OPAE reads; afu-image.accelerator-clusters[0].name is missing`),
		refused("bad-json.gbs", gbs(`{"version": 1, "afu-image": {`, -1, payload("nlb")), "bad metadata: unexpected end of JSON input"),
		refused("no-payload.gbs", gbs(meta("1", image()), -1, nil), "no PR payload after the metadata"),
		refused("legacy.gbs", legacy, "legacy GBS without metadata (pre-6.4.0 BBS format, PR interface 9346116da52d5ca8b06aa9a389ef7c8d)"),
		refused("bad-guid.gbs", append([]byte("XeonFPGA\xb7GBSv002"), gbs(meta("1", image()), -1, payload("nlb"))[16:]...), "not a GBS file: bad GUID"),
		refused("truncated.gbs", guid[:10], "file is shorter than the GBS header (10 bytes, want at least 20)"),
	}
}

func main() {
	dir := flag.String("dir", filepath.Join("testdata", "corpus"), "directory to write the corpus to")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	var verdicts strings.Builder
	verdicts.WriteString("# Written by gencorpus.go: each file and what OPAE does with it.\n")
	for _, e := range corpus() {
		if err := os.WriteFile(filepath.Join(*dir, e.name), e.data, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(&verdicts, "%s\t%s\n", e.name, e.verdict)
	}
	if err := os.WriteFile(filepath.Join(*dir, "verdicts.txt"), []byte(verdicts.String()), 0o644); err != nil {
		log.Fatal(err)
	}
}
