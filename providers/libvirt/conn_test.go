package libvirt

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/digitalocean/go-libvirt/socket/dialers"
)

func TestDialerForURI(t *testing.T) {
	tests := []struct {
		name, uri string
		opts      Options
		want      any // the dialer's type; nil for go-libvirt's own SSH dialling
		err       string
	}{
		{"local system", "qemu:///system", Options{}, &dialers.Local{}, ""},
		{"local with socket", "qemu:///system?socket=/run/x.sock", Options{}, &dialers.Local{}, ""},
		{"tcp", "qemu+tcp://compute-01/system", Options{}, &dialers.Remote{}, ""},
		{"tls", "qemu+tls://compute-01:16514/system", Options{}, &dialers.TLS{}, ""},
		{"host without transport is tls", "qemu://compute-01/system", Options{}, &dialers.TLS{}, ""},
		{"ssh", "qemu+ssh://root@compute-01/system", Options{}, nil, ""},
		{"socket option wins", "qemu+tls://compute-01/system", Options{Socket: "/tmp/s"}, &dialers.Local{}, ""},
		{"unknown transport", "qemu+ext://compute-01/system", Options{}, nil, `unsupported libvirt transport "ext"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			d, err := New(tc.opts).dialer(u)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if d != nil {
					t.Fatalf("dialer %T, want go-libvirt's own", d)
				}
				return
			}
			if reflect.TypeOf(d) != reflect.TypeOf(tc.want) {
				t.Errorf("dialer %T, want %T", d, tc.want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	if got := redact("qemu+ssh://admin:hunter2@compute-01/system"); strings.Contains(got, "hunter2") {
		t.Errorf("redact left the password in: %s", got)
	}
	if got := redact("qemu:///system"); got != "qemu:///system" {
		t.Errorf("redact changed a URI without a password: %s", got)
	}
}
