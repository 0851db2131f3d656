//go:build ignore

// gengbs writes the example fleet's GBS files. The images carry real GBS
// headers and metadata around small made-up payloads, so that the files
// are byte-for-byte reproducible:
//
//	go run examples/fleet/gengbs.go
//
// It prints each file's sha256 for bitstreams/*.yaml.
package main

import (
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/fpgaops/fpgaops/bitstream"
)

type image struct {
	file, platform, afuName string
	interfaceID, afuID      string
	power                   float64
	clockHigh, clockLow     bitstream.Clock
	payloadSize             int
}

var images = []image{
	{"vran-ldpc-n3000.gbs", "pac-n3000", "vran_ldpc", "9d7324a1-5c0e-4f62-b6e8-3a41f07c2d95", "c8a2f41e-7b3d-4e96-a15f-20d8e6b7c3a9", 45, 350, 175, 4096},
	{"nlb-mode-0-d5005.gbs", "pac-d5005", "nlb_mode_0", "b41f3e6a-2c8d-47c5-a0e9-1f72d6c3805b", "5e9b1c7a-3f2d-4a80-b6c4-e1f09d27a3b6", 66, 400, 200, 2048},
	{"genomics-smith-waterman-d5005.gbs", "pac-d5005", "sw_align", "b41f3e6a-2c8d-47c5-a0e9-1f72d6c3805b", "2b6e9d41-c7a3-4f05-b8e1-3d92a6f7c04e", 70, 300, 150, 3072},
	{"dma-afu-a10.gbs", "pac-a10", "dma_afu", "3e1c7a90-d45b-4f28-be6a-0c5d19f27e84", "a7f3c2e1-5d8b-4f60-91e2-b7c4d30a8f15", 35, 312.5, 156.25, 2048},
}

func main() {
	dir := filepath.Join("examples", "fleet", "bitstreams")
	for _, im := range images {
		md := bitstream.Metadata{
			Version:      1,
			PlatformName: im.platform,
			AFUImage: bitstream.AFUImage{
				MagicNo:            bitstream.MagicNo,
				InterfaceUUID:      im.interfaceID,
				Power:              im.power,
				ClockFrequencyHigh: im.clockHigh,
				ClockFrequencyLow:  im.clockLow,
				AcceleratorClusters: []bitstream.Cluster{
					{Name: im.afuName, TotalContexts: 1, AcceleratorTypeUUID: im.afuID},
				},
			},
		}
		data, err := bitstream.Build(md, payload(im.file, im.payloadSize))
		if err != nil {
			log.Fatalf("%s: %v", im.file, err)
		}
		if err := os.WriteFile(filepath.Join(dir, im.file), data, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s sha256 %x interfaceID %s afuID %s\n", im.file, sha256.Sum256(data),
			bitstream.NormalizeID(im.interfaceID), bitstream.NormalizeID(im.afuID))
	}
}

// payload stands in for a PR image: a reproducible byte stream.
func payload(seed string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	block := sha256.Sum256([]byte(seed))
	for len(out) < n {
		out = append(out, block[:]...)
		block = sha256.Sum256(block[:])
	}
	return out[:n]
}
