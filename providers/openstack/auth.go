package openstack

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/fpgaops/fpgaops/providers/openstack/cyborg"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
)

// ComputeMicroversion is the least Nova microversion that supports
// accelerators through device profiles.
const ComputeMicroversion = "2.82"

// Options say how to reach the cloud, the way OpenStack tools do: a cloud
// of clouds.yaml (Cloud, or OS_CLOUD when empty), else the OS_* variables.
type Options struct {
	// Cloud names an entry of clouds.yaml.
	Cloud string
	// CloudsFile is the clouds.yaml to read; empty means the usual search
	// (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack, /etc/openstack).
	CloudsFile string
	// HTTPClient, if set, carries every request, and fetches bitstreams
	// that have a URL.
	HTTPClient *http.Client
	// BootTimeout bounds the wait for a replaced server to go and for its
	// replacement to become ACTIVE; zero means DefaultBootTimeout.
	BootTimeout time.Duration
	// PollInterval is how often a replacement checks the server; zero
	// means one second.
	PollInterval time.Duration
}

// Clients are the service clients the provider uses.
type Clients struct {
	Compute     *gophercloud.ServiceClient
	Image       *gophercloud.ServiceClient
	Placement   *gophercloud.ServiceClient
	Accelerator *gophercloud.ServiceClient
}

// Connect authenticates with Keystone and finds Nova, Glance, Placement
// and Cyborg in the catalog. The token stays inside the clients: errors
// and logs never carry it.
func Connect(ctx context.Context, o Options) (*Clients, error) {
	ao, eo, httpClient, err := authOptions(o)
	if err != nil {
		return nil, err
	}
	// Re-authenticate when the token expires during a long run.
	ao.AllowReauth = true
	pc, err := config.NewProviderClient(ctx, ao, config.WithHTTPClient(httpClient))
	if err != nil {
		return nil, fmt.Errorf("openstack: authenticate at %s: %w", ao.IdentityEndpoint, err)
	}
	var c Clients
	if c.Compute, err = openstack.NewComputeV2(pc, eo); err != nil {
		return nil, fmt.Errorf("openstack: compute: %w", err)
	}
	c.Compute.Microversion = ComputeMicroversion
	if c.Image, err = openstack.NewImageV2(pc, eo); err != nil {
		return nil, fmt.Errorf("openstack: image: %w", err)
	}
	if c.Placement, err = openstack.NewPlacementV1(pc, eo); err != nil {
		return nil, fmt.Errorf("openstack: placement: %w", err)
	}
	c.Placement.Microversion = PlacementMicroversion
	if c.Accelerator, err = cyborg.NewAcceleratorV2(pc, eo); err != nil {
		return nil, fmt.Errorf("openstack: %w", err)
	}
	return &c, nil
}

// authOptions reads how to log in, from clouds.yaml or the OS_*
// variables, without calling anything: a cloud that is not configured is
// an error here.
func authOptions(o Options) (gophercloud.AuthOptions, gophercloud.EndpointOpts, http.Client, error) {
	cloud := o.Cloud
	if cloud == "" {
		cloud = os.Getenv("OS_CLOUD")
	}
	var (
		ao  gophercloud.AuthOptions
		eo  gophercloud.EndpointOpts
		err error
	)
	httpClient := http.Client{}
	if o.HTTPClient != nil {
		httpClient = *o.HTTPClient
	}
	if cloud != "" {
		popts := []clouds.ParseOption{clouds.WithCloudName(cloud)}
		if o.CloudsFile != "" {
			popts = append(popts, clouds.WithLocations(o.CloudsFile))
		}
		var tlsConfig *tls.Config
		ao, eo, tlsConfig, err = clouds.Parse(popts...)
		if err != nil {
			return ao, eo, httpClient, fmt.Errorf("openstack: cloud %s: %w", cloud, err)
		}
		if tlsConfig != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = tlsConfig
			httpClient.Transport = t
		}
	} else {
		ao, err = openstack.AuthOptionsFromEnv()
		if err != nil {
			return ao, eo, httpClient, fmt.Errorf("openstack: no --os-cloud or OS_CLOUD, and the OS_* variables do not do: %w", err)
		}
		eo = gophercloud.EndpointOpts{Region: os.Getenv("OS_REGION_NAME"), Availability: gophercloud.Availability(os.Getenv("OS_INTERFACE"))}
	}
	if eo.Availability == "" {
		eo.Availability = gophercloud.AvailabilityPublic
	}
	return ao, eo, httpClient, nil
}
