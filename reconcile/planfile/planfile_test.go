package planfile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/spec"
)

func sample(t testing.TB) (*plans.Plan, *spec.Fleet) {
	t.Helper()
	desired := &spec.Fleet{
		Root:       "/srv/fleet",
		Revision:   "4f2a9c1",
		Nodes:      []spec.Node{{Name: "compute-01", Labels: map[string]string{"rack": "r1"}, FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000, VFs: 1}}}},
		Bitstreams: []spec.Bitstream{{Name: "nfv", File: "bitstreams/nfv.gbs", SHA256: strings.Repeat("1", 64), InterfaceID: strings.Repeat("a", 32), AFUID: strings.Repeat("b", 32)}},
		Bindings:   []spec.Binding{{Name: "vnf-a", Node: "compute-01", FPGA: "pac0", Function: spec.VF(0), VM: "vnf-a", Bitstream: "nfv"}},
		Policy:     spec.Policy{Name: "default", Drift: spec.DriftReport, Windows: []spec.Window{{Kind: spec.WindowAllow, Schedule: "0 2 * * *", Duration: spec.Duration(4 * time.Hour)}}},
	}
	obs := &observed.Fleet{Version: 1, Nodes: []observed.Node{{Name: "compute-01", State: observed.NodeUnknown, Reason: "down"}}}
	p, err := reconcile.NewPlan(desired, obs, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p, desired
}

func TestRoundTrip(t *testing.T) {
	p, desired := sample(t)
	var buf bytes.Buffer
	if err := planfile.Write(&buf, p, desired, nil); err != nil {
		t.Fatal(err)
	}
	f, err := planfile.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Plan, p) {
		t.Error("plan changed through the file")
	}
	if !reflect.DeepEqual(f.Desired, desired) {
		t.Errorf("desired changed through the file:\n%+v\n%+v", f.Desired, desired)
	}
}

func TestReadRefuses(t *testing.T) {
	p, desired := sample(t)
	var buf bytes.Buffer
	if err := planfile.Write(&buf, p, desired, nil); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	tests := []struct{ name, from, to, want string }{
		{"edited desired state", `"vm": "vnf-a"`, `"vm": "vnf-b"`, "does not match its digest"},
		{"newer format", `"formatVersion": 2`, `"formatVersion": 3`, "format version 3"},
		{"unknown field", `"formatVersion": 2`, `"formatVersion": 2, "extra": true`, "unknown field"},
		{"truncated", `"changes"`, `"changes`, "saved plan:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(good, tt.from, tt.to, 1)
			if text == good {
				t.Fatalf("%q not found in the file", tt.from)
			}
			_, err := planfile.Read(strings.NewReader(text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzRead: whatever the file holds, Read returns a plan or an error,
// never panics, and a plan it accepts reads back the same once written.
func FuzzRead(f *testing.F) {
	p, desired := sample(f)
	var buf bytes.Buffer
	if err := planfile.Write(&buf, p, desired, nil); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"formatVersion"`), []byte(`"formatVersion":99,"x"`), 1))
	f.Add([]byte(`{"formatVersion":2,"changes":[{"id":"a","dependsOn":["a"]}]}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := planfile.Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		var again bytes.Buffer
		if err := planfile.Write(&again, got.Plan, got.Desired, got.Options); err != nil {
			t.Fatalf("an accepted plan cannot be written: %v", err)
		}
		back, err := planfile.Read(&again)
		if err != nil {
			t.Fatalf("an accepted plan, written, is refused: %v", err)
		}
		if !reflect.DeepEqual(back.Plan, got.Plan) {
			t.Fatal("an accepted plan changed through a write and a read")
		}
	})
}

// A saved plan keeps the options it was made with, their paths absolute,
// and never what the files hold; a plan saved without them reads back
// with none.
func TestOptions(t *testing.T) {
	p, desired := sample(t)
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("client-key.pem", []byte("-----BEGIN EC PRIVATE KEY-----\nSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := planfile.Options{VMs: "endpoint", Insecure: true, StateDir: "state", Concurrency: 8,
		NodeTimeout: spec.Duration(3 * time.Second), AgentCert: "client.pem", AgentKey: "client-key.pem", AgentCA: "/etc/fpgaops/ca.pem"}
	if err := planfile.WriteFile("p.plan", p, desired, opts); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("p.plan")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "SECRET") {
		t.Error("the key's content is in the saved plan")
	}
	if !strings.Contains(string(raw), `"nodeTimeout": "3s"`) {
		t.Errorf("node timeout not written as a duration:\n%s", raw)
	}
	f, err := planfile.ReadFile(filepath.Join(dir, "p.plan"))
	if err != nil {
		t.Fatal(err)
	}
	want := opts
	want.StateDir, want.AgentCert, want.AgentKey = filepath.Join(dir, "state"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	if f.Options == nil || *f.Options != want {
		t.Errorf("options read back = %+v, want %+v", f.Options, want)
	}
	if st, err := os.Stat("p.plan"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("saved plan mode: %v %v, want 0600", st.Mode(), err)
	}

	var buf bytes.Buffer
	if err := planfile.Write(&buf, p, desired, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), `"options"`) {
		t.Error("a plan without options writes an options field")
	}
	if f, err := planfile.Read(&buf); err != nil || f.Options != nil {
		t.Errorf("plan without options: %+v, %v; want no options", f, err)
	}
}
