package cyborg_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/providers/openstack/cyborg"
	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
)

// connect returns a Cyborg client on the fixture cloud, logged in through
// its Keystone.
func connect(t *testing.T, cloud *openstacktest.Cloud) *gophercloud.ServiceClient {
	t.Helper()
	ctx := context.Background()
	pc, err := config.NewProviderClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: cloud.AuthURL(), Username: cloud.Username, Password: cloud.Password,
		DomainName: cloud.Domain, TenantName: cloud.Project,
	})
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	c, err := cyborg.NewAcceleratorV2(pc, gophercloud.EndpointOpts{Region: cloud.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeviceProfiles(t *testing.T) {
	ctx := context.Background()
	cloud := openstacktest.NewCloud(t, "")
	c := connect(t, cloud)
	img := cloud.AddImage("fpgaops-gzip", []byte("bitstream"), nil)

	created, err := cyborg.CreateDeviceProfile(ctx, c, cyborg.DeviceProfile{
		Name: "fpgaops-gzip-pac-a10-1a2b3c4d", Description: "gzip",
		Groups: []map[string]string{{"resources:FPGA": "1", "trait:CUSTOM_FPGA_INTEL": "required", "accel:bitstream_id": img}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.UUID == "" || created.Groups[0]["accel:bitstream_id"] != img {
		t.Errorf("created %+v", created)
	}
	cloud.AddProfile(openstacktest.Profile{Name: "other", Groups: []map[string]string{{"resources:FPGA": "1"}}})

	all, err := cyborg.ListDeviceProfiles(ctx, c)
	if err != nil || len(all) != 2 {
		t.Fatalf("list: %v, %d profiles, want 2", err, len(all))
	}
	named, err := cyborg.ListDeviceProfiles(ctx, c, "fpgaops-gzip-pac-a10-1a2b3c4d")
	if err != nil || len(named) != 1 || named[0].UUID != created.UUID {
		t.Fatalf("list by name: %v, %+v", err, named)
	}
	got, err := cyborg.GetDeviceProfile(ctx, c, created.UUID)
	if err != nil || got.Name != created.Name {
		t.Fatalf("get: %v, %+v", err, got)
	}
	if err := cyborg.DeleteDeviceProfile(ctx, c, created.UUID); err != nil {
		t.Fatal(err)
	}
	if left := cloud.Profiles(); len(left) != 1 || left[0].Name != "other" {
		t.Errorf("after delete: %+v", left)
	}
	if _, err := cyborg.GetDeviceProfile(ctx, c, created.UUID); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("get a deleted profile: %v, want 404", err)
	}
}

func TestDeviceProfileValidate(t *testing.T) {
	tests := []struct {
		name    string
		profile cyborg.DeviceProfile
		wantErr string
	}{
		{"valid", cyborg.DeviceProfile{Name: "a-b_C9", Groups: []map[string]string{{"resources:FPGA": "1", "trait:CUSTOM_X": "forbidden"}}}, ""},
		{"name with a dot", cyborg.DeviceProfile{Name: "a.b", Groups: []map[string]string{{"resources:FPGA": "1"}}}, "must match"},
		{"empty name", cyborg.DeviceProfile{Groups: []map[string]string{{"resources:FPGA": "1"}}}, "name is required"},
		{"no groups", cyborg.DeviceProfile{Name: "a"}, "at least one group"},
		{"bad key", cyborg.DeviceProfile{Name: "a", Groups: []map[string]string{{"foo": "1"}}}, "want resources:"},
		{"standard trait", cyborg.DeviceProfile{Name: "a", Groups: []map[string]string{{"trait:HW_CPU_X86_AVX": "required"}}}, "want CUSTOM_"},
		{"trait value", cyborg.DeviceProfile{Name: "a", Groups: []map[string]string{{"trait:CUSTOM_X": "yes"}}}, "required or forbidden"},
		{"bitstream and function", cyborg.DeviceProfile{Name: "a", Groups: []map[string]string{{"accel:bitstream_id": "x", "accel:function_id": "y"}}}, "exclude each other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.profile.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestCreateRefusesInvalidProfileBeforeAnyRequest(t *testing.T) {
	cloud := openstacktest.NewCloud(t, "")
	c := connect(t, cloud)
	before := len(cloud.Requests())
	_, err := cyborg.CreateDeviceProfile(context.Background(), c, cyborg.DeviceProfile{Name: "bad name", Groups: []map[string]string{{"resources:FPGA": "1"}}})
	if err == nil {
		t.Fatal("no error for a name with a space")
	}
	if n := len(cloud.Requests()) - before; n != 0 {
		t.Errorf("%d requests sent for an invalid profile", n)
	}
}

func TestDeployablesDevicesARQs(t *testing.T) {
	ctx := context.Background()
	cloud := openstacktest.NewCloud(t, "")
	c := connect(t, cloud)
	nlb, err := bitstream.Build(bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{InterfaceUUID: "9926ab6d6c925a68aabca7d84c545738",
		AcceleratorClusters: []bitstream.Cluster{{Name: "nlb", TotalContexts: 1, AcceleratorTypeUUID: "c000c9660d824272a665ffffc7d00d01"}}}}, []byte("nlb"))
	if err != nil {
		t.Fatal(err)
	}
	img := cloud.AddImage("fpgaops-nlb", nlb, nil)
	cloud.AddFlavor(openstacktest.Flavor{Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20})
	free := cloud.AddDevice("compute-01", "0000:5e:00.0", "0x09c4", "11111111-0000-4000-8000-000000000001", "")
	held := cloud.AddDevice("compute-01", "0000:be:00.0", "0x09c4", "11111111-0000-4000-8000-000000000002", img)
	cloud.AddDevice("compute-02", "0000:5e:00.0", "0x0b30", "11111111-0000-4000-8000-000000000003", "")
	srv := cloud.AddServer(openstacktest.Server{Name: "vm-a", Host: "compute-01"}, "m1.small")
	cloud.BindARQ(srv, held, "fpgaops-nlb-pac-a10-00000000")

	deps, err := cyborg.ListDeployables(ctx, c)
	if err != nil || len(deps) != 3 {
		t.Fatalf("deployables: %v, %d", err, len(deps))
	}
	byUUID := map[string]cyborg.Deployable{}
	for _, d := range deps {
		byUUID[d.UUID] = d
	}
	if d := byUUID[held]; d.Bitstream() != img || d.RPUUID != "11111111-0000-4000-8000-000000000002" || d.Name != "compute-01_0000:be:00.0" {
		t.Errorf("held deployable %+v", d)
	}
	if d := byUUID[free]; d.Bitstream() != "" || d.BitstreamID != nil {
		t.Errorf("free deployable has bitstream %v", d.BitstreamID)
	}

	programmed, err := cyborg.ProgramDeployable(ctx, c, free, img)
	if err != nil {
		t.Fatal(err)
	}
	// Cyborg answers with the deployable as it was: the program action
	// does not record the image.
	if programmed.UUID != free || programmed.Bitstream() != "" {
		t.Errorf("program answered %+v, want deployable %s without a bitstream_id", programmed, free)
	}
	for _, d := range cloud.Deployables() {
		if d.UUID == free && !slices.Equal(d.Programmed, []string{img}) {
			t.Errorf("fixture saw programs %v", d.Programmed)
		}
	}

	devs, err := cyborg.ListDevices(ctx, c, cyborg.DeviceListOpts{Hostname: "compute-01", Type: "FPGA"})
	if err != nil || len(devs) != 2 {
		t.Fatalf("devices on compute-01: %v, %d, want 2", err, len(devs))
	}
	arqs, err := cyborg.ListARQs(ctx, c, srv)
	if err != nil || len(arqs) != 1 {
		t.Fatalf("ARQs of vm-a: %v, %+v", err, arqs)
	}
	a := arqs[0]
	if a.State != cyborg.ARQBound || a.Instance() != srv || a.DeviceRP() != "11111111-0000-4000-8000-000000000002" || a.AttachHandleInfo["bus"] != "be" || a.AttachHandleType != "PCI" {
		t.Errorf("ARQ %+v", a)
	}
	none, err := cyborg.ListARQs(ctx, c, "00000000-0000-4000-8000-000000000000")
	if err != nil || len(none) != 0 {
		t.Errorf("ARQs of another instance: %v, %+v", err, none)
	}
}
