package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/spf13/cobra"
)

func newInventoryCommand(s streams) *cobra.Command {
	var root, output string
	c := &cobra.Command{
		Use:   "inventory",
		Short: "List this host's FPGAs, their functions and who holds them",
		Long: `inventory reads the host's sysfs (DFL and intel-fpga drivers alike) and lists
every FPGA card: board, driver stack, PR interface ID, FIM (BBS) version, what
each port runs, the SR-IOV VFs and the driver holding each function (the host
FPGA driver, or vfio-pci when a VM holds it), and anything unhealthy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutputFormat(output); err != nil {
				return err
			}
			devs, err := fpga.NewSysfsHost(root, nil).Discover(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return writeInventoryJSON(s.out, devs)
			}
			return writeInventoryTable(s.out, devs)
		},
	}
	c.Flags().StringVar(&root, "root", "/", "filesystem root to read sysfs and /dev below")
	c.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return c
}

func checkOutputFormat(o string) error {
	if o != "table" && o != "json" {
		return fmt.Errorf("output format %q: want table or json", o)
	}
	return nil
}

func writeInventoryJSON(w io.Writer, devs []fpga.Device) error {
	if devs == nil {
		devs = []fpga.Device{}
	}
	b, err := json.MarshalIndent(struct {
		Devices []fpga.Device `json:"devices"`
	}{devs}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// holder says who holds a function, from the driver bound to it.
func holder(driver string) string {
	switch driver {
	case "":
		return "nobody"
	case "vfio-pci":
		return "vm"
	}
	return "host"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeInventoryTable(w io.Writer, devs []fpga.Device) error {
	if len(devs) == 0 {
		_, err := fmt.Fprintln(w, "No FPGA cards found.")
		return err
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PCI\tFUNCTION\tBOARD\tSTACK\tDRIVER\tHELD BY\tNUMA\tBBS\tINTERFACE ID\tPORT\tAFU ID\tHEALTH")
	for _, d := range devs {
		health := "ok"
		if !d.Health.OK() {
			health = strings.Join(d.Health.Problems, "; ")
		}
		var pfPorts, pfAFUs []string
		for _, p := range d.Ports {
			if !p.OnVF {
				pfPorts = append(pfPorts, strconv.Itoa(p.ID))
				pfAFUs = append(pfAFUs, dash(p.AFUID))
			}
		}
		numa := "-"
		if d.NUMANode >= 0 {
			numa = strconv.Itoa(d.NUMANode)
		}
		fmt.Fprintf(tw, "%s\tpf\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			d.PCI, dash(d.Board), dash(string(d.Stack)), dash(d.Driver), holder(d.Driver), numa,
			dash(d.BBSVersion), dash(d.InterfaceID), dash(strings.Join(pfPorts, ",")), dash(strings.Join(pfAFUs, ",")), health)
		// Ports on VFs pair with the VFs in order: each VF owns one port.
		var vfPorts []fpga.Port
		for _, p := range d.Ports {
			if p.OnVF {
				vfPorts = append(vfPorts, p)
			}
		}
		for i, vf := range d.VFs {
			port, afu := "-", "-"
			if i < len(vfPorts) {
				port = strconv.Itoa(vfPorts[i].ID)
				afu = vfPorts[i].AFUID
				if afu == "" {
					afu = "unknown"
				}
			}
			fmt.Fprintf(tw, "%s\tvf%d\t\t\t%s\t%s\t\t\t\t%s\t%s\t\n",
				vf.PCI, vf.Index, dash(vf.Driver), holder(vf.Driver), port, afu)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Rows of VFs end in empty cells: drop the padding they leave.
	for line := range strings.Lines(buf.String()) {
		if _, err := fmt.Fprintln(w, strings.TrimRight(line, " \n")); err != nil {
			return err
		}
	}
	return nil
}
