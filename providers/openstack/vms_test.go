package openstack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/fpgaops/fpgaops/spec"
)

var _ providers.Backend = (*Backend)(nil)

func TestVMsObserveHeldFunctions(t *testing.T) {
	cloud := openstacktest.NewCloud(t, placementURL)
	cloud.AddFlavor(openstacktest.Flavor{Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20})
	dep := cloud.AddDevice("cmp-vms", "0000:5E:00.0", "0x09c4", "4d0e5b1a-0000-4000-8000-000000000001", "")
	cloud.AddDevice("cmp-vms", "0000:be:00.0", "0x09c4", "4d0e5b1a-0000-4000-8000-000000000002", "")
	a := cloud.AddServer(openstacktest.Server{Name: "vm-a", Host: "cmp-vms"}, "m1.small")
	cloud.AddServer(openstacktest.Server{Name: "vm-b", Host: "cmp-vms", Status: "SHUTOFF"}, "m1.small")
	cloud.AddServer(openstacktest.Server{Name: "elsewhere", Host: "cmp-other"}, "m1.small")
	cloud.BindARQ(a, dep, "p")

	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(cloud.CloudsYAML("lab")), 0o600); err != nil {
		t.Fatal(err)
	}
	v := NewBackend(Options{Cloud: "lab", CloudsFile: clouds}, nil)
	node := &spec.Node{Name: "compute-01", Hostname: "cmp-vms"}
	got, err := v.ObserveVMs(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	want := []observed.VM{
		{Name: "vm-a", Running: true, Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.0", Live: true, Config: true}}},
		{Name: "vm-b", Running: false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ObserveVMs = %+v, want %+v", got, want)
	}
	if err := v.Attach(context.Background(), node, "vm-b", "0000:be:00.0"); !errors.Is(err, ErrNovaAttaches) {
		t.Errorf("Attach: %v", err)
	}
	if err := v.Detach(context.Background(), node, "vm-a", "0000:5e:00.0"); !errors.Is(err, ErrNovaAttaches) {
		t.Errorf("Detach: %v", err)
	}
	if _, err := v.ObserveVMs(context.Background(), &spec.Node{Name: "kvm"}); err == nil {
		t.Error("a node without a hostname: no error")
	}
}
