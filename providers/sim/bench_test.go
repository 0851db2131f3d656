package sim_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// genFleet is the fleet `fpgaops sim gen` writes, built in memory: n
// nodes of four cards, a VF in a VM, the PF in a VM, a VF in a VM and a
// preprogrammed card.
func genFleet(b *testing.B, n int) *spec.Fleet {
	b.Helper()
	images, err := fleetgen.Images()
	if err != nil {
		b.Fatal(err)
	}
	f := &spec.Fleet{}
	byBoard := map[spec.Board][]string{}
	for _, img := range images {
		f.Bitstreams = append(f.Bitstreams, spec.Bitstream{Name: img.Name, InterfaceID: img.InterfaceID, AFUID: img.AFUID})
		byBoard[img.Board] = append(byBoard[img.Board], img.Name)
	}
	buses := []string{"3b", "5e", "86", "af"}
	f.Nodes = make([]spec.Node, n)
	f.Bindings = make([]spec.Binding, 0, 4*n)
	for i := range n {
		info := spec.Boards[(i+1)%len(spec.Boards)]
		node := &f.Nodes[i]
		node.Name = fleetgen.NodeName(i + 1)
		for k, bus := range buses {
			slot := "pac" + strconv.Itoa(k)
			node.FPGAs = append(node.FPGAs, spec.FPGA{Slot: slot, PCI: "0000:" + bus + ":00.0", Board: info.Board,
				VFs: min(1, k%4^1), InterfaceID: fleetgen.InterfaceID(info.Board)})
			bd := spec.Binding{Name: node.Name + "-" + slot, Node: node.Name, FPGA: slot, Function: spec.VF(0),
				Bitstream: byBoard[info.Board][(i+k)%2]}
			switch k {
			case 1:
				bd.Function, bd.VM = spec.PF, fleetgen.VMName(i+1, k)
			case 0, 2:
				bd.VM = fleetgen.VMName(i+1, k)
			}
			f.Bindings = append(f.Bindings, bd)
		}
	}
	return f
}

// get asks the sim's handler directly: the cost of the sim, without the
// network's.
func get(b *testing.B, h http.Handler, path string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
}

func put(b *testing.B, h http.Handler, method, path, body string) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
}

// vmRSS is the process's resident memory in MB, read from /proc.
func vmRSS() (float64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}

// BenchmarkTouchEveryNode builds a sim of the fleet and asks every node
// for its cards and its VMs, as the first plan does. B/node is the heap
// the sim holds per node afterwards; rss-MB the whole test process's
// resident memory then, the fleet's description and the test included.
// With a state directory, every node also has a VF turned on and given
// to a VM, and disk-B/node is the state file's size per node.
func BenchmarkTouchEveryNode(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, state := range []bool{false, true} {
			if state && n > 10_000 {
				continue
			}
			b.Run(fmt.Sprintf("nodes=%d/state=%v", n, state), func(b *testing.B) {
				fleet := genFleet(b, n)
				var heap, rss, disk float64
				for b.Loop() {
					b.StopTimer()
					opts := sim.Options{}
					if state {
						opts.StateDir = b.TempDir()
					}
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					b.StartTimer()
					s, err := sim.New(fleet, opts)
					if err != nil {
						b.Fatal(err)
					}
					h := s.Handler()
					for i := range fleet.Nodes {
						base := "/nodes/" + fleet.Nodes[i].Name
						get(b, h, base+agentapi.PathInventory)
						get(b, h, base+sim.PathVMs)
						if state {
							put(b, h, http.MethodPut, base+"/v1/cards/0000:3b:00.0/vfs", `{"count":1}`)
							put(b, h, http.MethodPost, base+"/v1/vms/"+fleetgen.VMName(i+1, 0)+"/attach", `{"pci":"0000:3b:00.1"}`)
						}
					}
					b.StopTimer()
					rss, _ = vmRSS()
					runtime.GC()
					runtime.ReadMemStats(&after)
					heap = float64(after.HeapAlloc) - float64(before.HeapAlloc)
					if st := s.Stats(); st.NodesTouched != n {
						b.Fatalf("%d nodes touched; want %d", st.NodesTouched, n)
					}
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
					if state {
						fi, err := os.Stat(filepath.Join(opts.StateDir, sim.StateFile))
						if err != nil {
							b.Fatal(err)
						}
						disk = float64(allocated(fi)) / float64(n)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/node")
				b.ReportMetric(heap/float64(n), "B/node")
				if rss > 0 {
					b.ReportMetric(rss, "rss-MB")
				}
				if state {
					b.ReportMetric(disk, "disk-B/node")
				}
			})
		}
	}
}
