package openstacktest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that keeps the fixture's complaints instead of
// failing, so a test can check that a bad request is caught.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) complaints() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

func TestFixturesRejectWhatTheAPIReferencesDoNot(t *testing.T) {
	type req struct {
		method, path, body string
		headers            map[string]string
	}
	cyborgOK := map[string]string{"OpenStack-API-Version": "accelerator 2.0", "Content-Type": "application/json"}
	novaOK := map[string]string{"OpenStack-API-Version": "compute 2.82", "X-OpenStack-Nova-API-Version": "2.82", "Content-Type": "application/json"}
	tests := []struct {
		name     string
		req      req
		wantCode int
		wantMsg  string
	}{
		{"profile POST with two profiles", req{"POST", "/accelerator/v2/device_profiles",
			`[{"name":"a","groups":[{"resources:FPGA":"1"}]},{"name":"b","groups":[{"resources:FPGA":"1"}]}]`, cyborgOK}, 400, "Only one device profile"},
		{"profile POST as an object", req{"POST", "/accelerator/v2/device_profiles",
			`{"name":"a","groups":[{"resources:FPGA":"1"}]}`, cyborgOK}, 400, "want a JSON list"},
		{"profile name with a dot", req{"POST", "/accelerator/v2/device_profiles",
			`[{"name":"a.b","groups":[{"resources:FPGA":"1"}]}]`, cyborgOK}, 400, "must be of the form"},
		{"profile with a standard trait", req{"POST", "/accelerator/v2/device_profiles",
			`[{"name":"a","groups":[{"trait:HW_NIC":"required"}]}]`, cyborgOK}, 400, "trait"},
		{"profile naming a missing image", req{"POST", "/accelerator/v2/device_profiles",
			`[{"name":"a","groups":[{"resources:FPGA":"1","accel:bitstream_id":"5b1e4a5e-0000-4000-8000-000000000000"}]}]`, cyborgOK}, 400, "no Glance image"},
		{"cyborg without microversion", req{"GET", "/accelerator/v2/device_profiles", "", map[string]string{}}, 406, "OpenStack-API-Version"},
		{"cyborg with a microversion it lacks", req{"GET", "/accelerator/v2/deployables", "", map[string]string{"OpenStack-API-Version": "accelerator 2.9"}}, 406, "OpenStack-API-Version"},
		{"program with a bare object", req{"PATCH", "/accelerator/v2/deployables/x/program", `{"image_uuid":"y"}`, cyborgOK}, 400, "JSON-patch"},
		{"program with the wrong op", req{"PATCH", "/accelerator/v2/deployables/x/program", `[{"path":"/program","op":"add","value":[{"image_uuid":"y"}]}]`, cyborgOK}, 400, "want [{"},
		{"binding an ARQ", req{"PATCH", "/accelerator/v2/accelerator_requests", `{}`, cyborgOK}, 403, "only read ARQs"},
		{"deleting profiles by PUT", req{"PUT", "/accelerator/v2/device_profiles", `[]`, cyborgOK}, 405, "method not in the API reference"},
		{"nova below 2.82", req{"GET", "/compute/v2.1/servers/detail", "", map[string]string{"OpenStack-API-Version": "compute 2.60", "X-OpenStack-Nova-API-Version": "2.60"}}, 400, "microversion"},
		{"nova with one header only", req{"GET", "/compute/v2.1/flavors/detail", "", map[string]string{"X-OpenStack-Nova-API-Version": "2.82"}}, 400, "microversion"},
		{"servers by host without all_tenants", req{"GET", "/compute/v2.1/servers/detail?host=compute-01", "", novaOK}, 400, "all_tenants"},
		{"unknown query parameter", req{"GET", "/compute/v2.1/servers/detail?hostname=x", "", novaOK}, 400, "query parameter"},
		{"flavor without disk", req{"POST", "/compute/v2.1/flavors", `{"flavor":{"name":"f","ram":1,"vcpus":1}}`, novaOK}, 400, "disk"},
		{"flavor with an unknown field", req{"POST", "/compute/v2.1/flavors", `{"flavor":{"name":"f","ram":1,"vcpus":1,"disk":0,"gpus":1}}`, novaOK}, 400, "unknown field"},
		{"server without networks", req{"POST", "/compute/v2.1/servers", `{"server":{"name":"s","imageRef":"i","flavorRef":"f"}}`, novaOK}, 400, "networks"},
		{"upload to a missing image", req{"PUT", "/image/v2/images/x/file", `{}`, map[string]string{"Content-Type": "application/octet-stream"}}, 404, ""},
		{"image patch as plain JSON", req{"PATCH", "/image/v2/images/x", `[{"op":"add","path":"/accel:function_id","value":"y"}]`, map[string]string{"Content-Type": "application/json"}}, 415, "json-patch"},
		{"image with a read-only field", req{"POST", "/image/v2/images", `{"name":"n","disk_format":"raw","container_format":"bare","checksum":"x"}`, map[string]string{"Content-Type": "application/json"}}, 403, "read-only"},
		{"keystone with a token method", req{"POST", "/identity/v3/auth/tokens", `{"auth":{"identity":{"methods":["token"]}}}`, map[string]string{"Content-Type": "application/json"}}, 400, "methods"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			c := NewCloud(rec, "")
			r, err := http.NewRequest(tc.req.method, c.URL()+tc.req.path, strings.NewReader(tc.req.body))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tc.req.path, "/identity/") {
				r.Header.Set("X-Auth-Token", c.Token)
			}
			for k, v := range tc.req.headers {
				r.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.wantCode, body)
			}
			got := rec.complaints()
			if tc.wantMsg == "" {
				return // refused as the service would, without a complaint
			}
			if len(got) != 1 || !strings.Contains(got[0], tc.wantMsg) {
				t.Errorf("complaints %q, want one containing %q", got, tc.wantMsg)
			}
		})
	}
}

func TestFixturesRequireTheIssuedToken(t *testing.T) {
	for _, path := range []string{"/compute/v2.1/flavors/detail", "/image/v2/images", "/accelerator/v2/deployables"} {
		t.Run(path, func(t *testing.T) {
			rec := &recorder{TB: t}
			c := NewCloud(rec, "")
			r, _ := http.NewRequest("GET", c.URL()+path, nil)
			r.Header.Set("X-Auth-Token", "not-the-token")
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || len(rec.complaints()) != 1 {
				t.Errorf("status %d, complaints %q: want 401 and one complaint", resp.StatusCode, rec.complaints())
			}
		})
	}
}
