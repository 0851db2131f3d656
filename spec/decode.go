package spec

import (
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fpgaops/fpgaops/bitstream"
)

// decode fills the document's model object. Every field that passed the
// schema has the type the model expects; the others (d.bad) are left at
// their zero values.
func decode(d *document) {
	pos := d.pos()
	switch d.kind {
	case KindNode:
		n := &Node{Pos: pos}
		eachField(d.root, func(k string, v *yaml.Node) {
			if !d.ok(k) {
				return
			}
			switch k {
			case "name":
				n.Name = v.Value
			case "endpoint":
				n.Endpoint = v.Value
			case "libvirt":
				n.Libvirt = v.Value
			case "hostname":
				n.Hostname = v.Value
			case "kubernetes":
				n.Kubernetes = v.Value
			case "resourceProvider":
				n.ResourceProvider = v.Value
			case "deviceHostname":
				n.DeviceHostname = v.Value
			case "labels":
				n.Labels = make(map[string]string, len(v.Content)/2)
				eachField(v, func(k string, v *yaml.Node) { n.Labels[k] = v.Value })
			case "fpgas":
				n.FPGAs = make([]FPGA, 0, len(v.Content))
				for i, item := range v.Content {
					n.FPGAs = append(n.FPGAs, decodeFPGA(d, strconv.Itoa(i), deref(item)))
				}
			}
		})
		d.node = n
	case KindBitstream:
		b := &Bitstream{Pos: pos}
		eachField(d.root, func(k string, v *yaml.Node) {
			if !d.ok(k) {
				return
			}
			switch k {
			case "name":
				b.Name = v.Value
			case "file":
				b.File = v.Value
			case "url":
				b.URL = v.Value
			case "sha256":
				b.SHA256 = strings.ToLower(v.Value)
			case "interfaceID":
				b.InterfaceID = bitstream.NormalizeID(v.Value)
			case "afuID":
				b.AFUID = bitstream.NormalizeID(v.Value)
			}
		})
		d.bitstream = b
	case KindBinding:
		b := &Binding{Pos: pos}
		eachField(d.root, func(k string, v *yaml.Node) {
			if !d.ok(k) {
				return
			}
			switch k {
			case "name":
				b.Name = v.Value
			case "node":
				b.Node = v.Value
			case "fpga":
				b.FPGA = v.Value
			case "function":
				b.Function, _ = ParseFunction(v.Value)
			case "vm":
				b.VM = v.Value
			case "pool":
				b.Pool = v.Value
			case "bitstream":
				b.Bitstream = v.Value
			case "protected":
				b.Protected = boolOf(v)
			}
		})
		d.binding = b
	case KindPolicy:
		p := &Policy{Pos: pos, Drift: DriftReport}
		eachField(d.root, func(k string, v *yaml.Node) {
			if !d.ok(k) {
				return
			}
			switch k {
			case "name":
				p.Name = v.Value
			case "schedule":
				p.Schedule = v.Value
			case "drift":
				p.Drift = DriftMode(v.Value)
			case "vmRestart":
				p.VMRestart = boolOf(v)
			case "approval":
				p.Approval = ApprovalMode(v.Value)
			case "windows":
				for i, item := range v.Content {
					item = deref(item)
					w := Window{Pos: Pos{File: d.file, Line: item.Line, Col: item.Column}}
					at := strconv.Itoa(i)
					eachField(item, func(k string, v *yaml.Node) {
						if !d.ok("windows", at, k) {
							return
						}
						switch k {
						case "kind":
							w.Kind = WindowKind(v.Value)
						case "schedule":
							w.Schedule = v.Value
						case "duration":
							dur, _ := time.ParseDuration(v.Value)
							w.Duration = Duration(dur)
						case "timezone":
							w.TimeZone = v.Value
						}
					})
					p.Windows = append(p.Windows, w)
				}
			case "budget":
				eachField(v, func(k string, v *yaml.Node) {
					if !d.ok("budget", k) {
						return
					}
					switch k {
					case "maxDisruptedVMs":
						p.Budget.MaxDisruptedVMs = atoi(v)
					case "maxCardsInFlight":
						p.Budget.MaxCardsInFlight = atoi(v)
					}
				})
			case "prune":
				eachField(v, func(k string, v *yaml.Node) {
					if !d.ok("prune", k) {
						return
					}
					switch k {
					case "enabled":
						p.Prune.Enabled = boolOf(v)
					case "maxShare":
						p.Prune.MaxShare, _ = strconv.ParseFloat(v.Value, 64)
					case "allowEmpty":
						p.Prune.AllowEmpty = boolOf(v)
					}
				})
			case "rollout":
				p.Rollout = decodeRollout(d, v)
			case "limits":
				eachField(v, func(k string, v *yaml.Node) {
					if k == "maxBitstreamBytes" && d.ok("limits", k) {
						_ = v.Decode(&p.Limits.MaxBitstreamBytes)
					}
				})
			}
		})
		d.policy = p
	}
}

func decodeRollout(d *document, m *yaml.Node) *Rollout {
	r := &Rollout{}
	eachField(m, func(k string, v *yaml.Node) {
		if !d.ok("rollout", k) {
			return
		}
		switch k {
		case "steps":
			for _, s := range v.Content {
				r.Steps = append(r.Steps, deref(s).Value)
			}
		case "bake":
			dur, _ := time.ParseDuration(v.Value)
			r.Bake = Duration(dur)
		case "onFailure":
			r.OnFailure = RolloutFailure(v.Value)
		case "maxUnhealthy":
			r.MaxUnhealthy = atoi(v)
		case "spreadBy":
			r.SpreadBy = v.Value
		case "checks":
			for i, item := range v.Content {
				at := strconv.Itoa(i)
				var c Check
				eachField(item, func(k string, v *yaml.Node) {
					if !d.ok("rollout", "checks", at, k) {
						return
					}
					switch k {
					case "name":
						c.Name = v.Value
					case "http":
						c.HTTP = &HTTPCheck{}
						eachField(v, func(k string, v *yaml.Node) {
							switch k {
							case "url":
								c.HTTP.URL = v.Value
							case "status":
								c.HTTP.Status = atoi(v)
							case "timeout":
								dur, _ := time.ParseDuration(v.Value)
								c.HTTP.Timeout = Duration(dur)
							}
						})
					case "prometheus":
						c.Prometheus = &PrometheusCheck{}
						eachField(v, func(k string, v *yaml.Node) {
							if k == "query" {
								c.Prometheus.Query = v.Value
							}
						})
					}
				})
				r.Checks = append(r.Checks, c)
			}
		}
	})
	return r
}

func decodeFPGA(d *document, i string, m *yaml.Node) FPGA {
	f := FPGA{Pos: Pos{File: d.file, Line: m.Line, Col: m.Column}}
	if !d.ok("fpgas", i) {
		return f
	}
	eachField(m, func(k string, v *yaml.Node) {
		if !d.ok("fpgas", i, k) {
			return
		}
		switch k {
		case "slot":
			f.Slot = v.Value
		case "pci":
			f.PCI = NormalizePCI(v.Value)
		case "board":
			f.Board = Board(v.Value)
		case "vfs":
			f.VFs = atoi(v)
		case "interfaceID":
			f.InterfaceID = bitstream.NormalizeID(v.Value)
		}
	})
	return f
}

func eachField(m *yaml.Node, fn func(k string, v *yaml.Node)) {
	m = deref(m)
	for i := 0; i+1 < len(m.Content); i += 2 {
		fn(m.Content[i].Value, deref(m.Content[i+1]))
	}
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func atoi(n *yaml.Node) int {
	var i int
	_ = n.Decode(&i)
	return i
}

func boolOf(n *yaml.Node) bool {
	var b bool
	_ = n.Decode(&b)
	return b
}
