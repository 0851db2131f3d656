package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
)

func newInventoryCommand(s streams) *cobra.Command {
	var (
		root, output, endpoint string
		timeout                time.Duration
		tlsFiles               agent.TLSFiles
		insecure               bool
	)
	c := &cobra.Command{
		Use:   "inventory",
		Short: "List this host's FPGAs, their functions, who holds them and their health",
		Long: `inventory reads the host's sysfs (DFL and intel-fpga drivers alike) and lists
every FPGA card: board, driver stack, PR interface ID, FIM (BBS) version, what
each port runs, the SR-IOV VFs and the driver holding each function (the host
FPGA driver, or vfio-pci when a VM holds it), its temperature, and its health:
the problems that make it unhealthy and the warnings, each naming the register
or sensor and its value.

With --endpoint it asks a remote node's agent instead, over mutual TLS
(--agent-cert, --agent-key, --agent-ca), or plain HTTP on loopback with
--insecure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutputFormat(output); err != nil {
				return err
			}
			var devs []fpga.Device
			var err error
			if endpoint != "" {
				if cmd.Flags().Changed("root") {
					return fmt.Errorf("--root and --endpoint: read the local sysfs or ask an agent, not both")
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				defer cancel()
				devs, err = remoteInventory(ctx, endpoint, agent.Transport{TLS: tlsFiles, Insecure: insecure, Concurrency: 1})
			} else {
				devs, err = fpga.NewSysfsHost(root, nil).Discover(cmd.Context())
			}
			if err != nil {
				return err
			}
			if output == "json" {
				return writeInventoryJSON(s.out, devs)
			}
			return writeInventoryTable(s.out, devs)
		},
	}
	f := c.Flags()
	f.StringVar(&root, "root", "/", "filesystem root to read sysfs and /dev below")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&endpoint, "endpoint", "", "ask the agent at this URL (https://node:9443) instead of reading the local sysfs")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "time to wait for the agent's answer")
	f.StringVar(&tlsFiles.Cert, "agent-cert", "", "client certificate (PEM) presented to the agent")
	f.StringVar(&tlsFiles.Key, "agent-key", "", "key (PEM) of the client certificate")
	f.StringVar(&tlsFiles.CA, "agent-ca", "", "CA (PEM) that signed the agent's certificate (default: system roots)")
	f.BoolVar(&insecure, "insecure", false, "allow a plain-HTTP endpoint on loopback")
	return c
}

// remoteInventory asks the agent at endpoint for its cards, through the
// controller's client and its rules for endpoints.
func remoteInventory(ctx context.Context, endpoint string, tr agent.Transport) ([]fpga.Device, error) {
	name := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		name = u.Host
	}
	node := spec.Node{Name: name, Endpoint: endpoint}
	if err := tr.CheckEndpoints([]spec.Node{node}); err != nil {
		return nil, err
	}
	hc, err := tr.HTTPClient()
	if err != nil {
		return nil, err
	}
	devs, err := agent.NewClient(hc).ObserveCards(ctx, &node)
	if err != nil {
		return nil, fmt.Errorf("node %s: inventory: %w", name, err)
	}
	return devs, nil
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

// healthCell is the HEALTH column: the verdict and how many findings
// are listed under the table.
func healthCell(h fpga.Health) string {
	switch {
	case !h.OK():
		return fmt.Sprintf("unhealthy (%d %s)", len(h.Problems), plural(len(h.Problems), "problem", "problems"))
	case len(h.Warnings) > 0:
		return fmt.Sprintf("ok (%d %s)", len(h.Warnings), plural(len(h.Warnings), "warning", "warnings"))
	}
	return "ok"
}

// temperature is the TEMP column: the card's first temperature sensor.
func temperature(h fpga.Health) string {
	for _, s := range h.Sensors {
		if s.Kind == fpga.SensorTemperature {
			return strconv.FormatFloat(s.Value, 'f', -1, 64) + "°C"
		}
	}
	return "-"
}

func writeInventoryTable(w io.Writer, devs []fpga.Device) error {
	if len(devs) == 0 {
		_, err := fmt.Fprintln(w, "No FPGA cards found.")
		return err
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PCI\tFUNCTION\tBOARD\tSTACK\tDRIVER\tHELD BY\tNUMA\tBBS\tINTERFACE ID\tPORT\tAFU ID\tTEMP\tHEALTH")
	for _, d := range devs {
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
		fmt.Fprintf(tw, "%s\tpf\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			d.PCI, dash(d.Board), dash(string(d.Stack)), dash(d.Driver), holder(d.Driver), numa,
			dash(d.BBSVersion), dash(d.InterfaceID), dash(strings.Join(pfPorts, ",")), dash(strings.Join(pfAFUs, ",")),
			temperature(d.Health), healthCell(d.Health))
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
			fmt.Fprintf(tw, "%s\tvf%d\t\t\t%s\t%s\t\t\t\t%s\t%s\t\t\n",
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
	return writeFindings(w, devs)
}

// writeFindings lists each card's problems, then its warnings, under the
// table, one per line.
func writeFindings(w io.Writer, devs []fpga.Device) error {
	first := true
	for _, d := range devs {
		for _, f := range []struct {
			kind  string
			lines []string
		}{{"problem", d.Health.Problems}, {"warning", d.Health.Warnings}} {
			for _, l := range f.lines {
				if first {
					if _, err := fmt.Fprintln(w); err != nil {
						return err
					}
					first = false
				}
				if _, err := fmt.Fprintf(w, "%s %s: %s\n", d.PCI, f.kind, l); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
