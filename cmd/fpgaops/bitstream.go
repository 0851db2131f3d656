package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/spf13/cobra"
)

func newBitstreamCommand(s streams) *cobra.Command {
	c := &cobra.Command{
		Use:   "bitstream",
		Short: "Work with PR bitstreams (GBS and AOCX files)",
	}
	c.AddCommand(newBitstreamInspectCommand(s))
	return c
}

func newBitstreamInspectCommand(s streams) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a bitstream's interface ID, AFU ID, clocks, sizes and digest",
		Long: `inspect parses a GBS file (or the GBS inside an OpenCL AOCX file), checks its
header and metadata, and shows what a card needs to load it: the PR interface
ID it was built for, the AFU ID the port will read afterwards, the user clocks,
the sizes and the sha256 digest to put in the fleet repository.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := checkOutputFormat(output); err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			f, gbs, err := bitstream.ParseImage(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			r := newBitstreamReport(args[0], data, f, gbs)
			if output == "json" {
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(s.out, "%s\n", b)
				return err
			}
			return r.writeTable(s.out)
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return c
}

// bitstreamReport is what inspect prints; its JSON form is stable.
type bitstreamReport struct {
	File   string `json:"file"`
	Format string `json:"format"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// GBSSize and GBSSHA256 describe the GBS inside an AOCX file.
	GBSSize       int64              `json:"gbsSize,omitempty"`
	GBSSHA256     string             `json:"gbsSHA256,omitempty"`
	MetadataLen   int                `json:"metadataLen"`
	PayloadOffset int                `json:"payloadOffset"`
	PayloadSize   int64              `json:"payloadSize"`
	Version       int                `json:"version"`
	Platform      string             `json:"platform,omitempty"`
	InterfaceID   string             `json:"interfaceID"`
	AFUID         string             `json:"afuID"`
	ClockHigh     float64            `json:"clockHighMHz"`
	ClockLow      float64            `json:"clockLowMHz"`
	UserClockHigh uint64             `json:"userClockHighMHz"` // what programming sets, whole MHz; 0 leaves it
	UserClockLow  uint64             `json:"userClockLowMHz"`
	Power         float64            `json:"powerW"`
	MagicNo       int64              `json:"magicNo,omitempty"`
	Clusters      []bitstreamCluster `json:"clusters"`
}

type bitstreamCluster struct {
	Name          string `json:"name"`
	TotalContexts int    `json:"totalContexts"`
	AFUID         string `json:"afuID"`
}

func newBitstreamReport(name string, data []byte, f *bitstream.File, gbs []byte) bitstreamReport {
	sum := sha256.Sum256(data)
	img := f.Metadata.AFUImage
	r := bitstreamReport{
		File: name, Format: "gbs", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		MetadataLen: f.MetadataLen, PayloadOffset: f.PayloadOffset, PayloadSize: f.Size - int64(f.PayloadOffset),
		Version: f.Metadata.Version, Platform: f.Metadata.PlatformName,
		InterfaceID: f.InterfaceID(), AFUID: f.AFUID(),
		ClockHigh: float64(img.ClockFrequencyHigh), ClockLow: float64(img.ClockFrequencyLow),
		Power: img.Power, MagicNo: img.MagicNo,
	}
	r.UserClockHigh, r.UserClockLow = f.UserClocks()
	for _, c := range img.AcceleratorClusters {
		r.Clusters = append(r.Clusters, bitstreamCluster{c.Name, c.TotalContexts, bitstream.NormalizeID(c.AcceleratorTypeUUID)})
	}
	if bitstream.IsAOCX(data) {
		r.Format = "aocx"
		r.GBSSize, r.GBSSHA256 = int64(len(gbs)), f.SHA256
	}
	return r
}

func clock(mhz float64) string {
	if mhz == 0 {
		return "auto"
	}
	return strconv.FormatFloat(mhz, 'f', -1, 64) + " MHz"
}

// userClocks says what programming does with the user clocks.
func userClocks(high, low uint64) string {
	if high == 0 && low == 0 {
		return "left as they are"
	}
	return fmt.Sprintf("set to %d MHz high, %d MHz low", high, low)
}

func (r bitstreamReport) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("File", r.File)
	row("Format", strings.ToUpper(r.Format))
	row("Size", fmt.Sprintf("%d bytes", r.Size))
	row("SHA256", r.SHA256)
	if r.Format == "aocx" {
		row("GBS size", fmt.Sprintf("%d bytes", r.GBSSize))
		row("GBS SHA256", r.GBSSHA256)
	}
	row("Metadata", fmt.Sprintf("%d bytes, version %d", r.MetadataLen, r.Version))
	row("Payload", fmt.Sprintf("%d bytes at offset %d", r.PayloadSize, r.PayloadOffset))
	row("Platform", dash(r.Platform))
	row("Interface ID", r.InterfaceID)
	row("AFU ID", r.AFUID)
	row("Clock high", clock(r.ClockHigh))
	row("Clock low", clock(r.ClockLow))
	row("User clocks", userClocks(r.UserClockHigh, r.UserClockLow))
	row("Power", strconv.FormatFloat(r.Power, 'f', -1, 64)+" W")
	for i, c := range r.Clusters {
		row(fmt.Sprintf("Cluster %d", i), fmt.Sprintf("%s %s, total contexts %d", dash(c.Name), c.AFUID, c.TotalContexts))
	}
	return tw.Flush()
}
