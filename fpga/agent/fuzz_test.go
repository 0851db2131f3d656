package agent_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
)

// FuzzAPI sends the agent's handler arbitrary requests, as a server would
// parse them off the wire: every answer is JSON, an error one carries a
// code and a message, and none is a 500, since the host here never fails
// on its own.
func FuzzAPI(f *testing.F) {
	image, bs := agenttest.Image(f)
	pci := agenttest.CardPCI
	f.Add("GET", "/v1/inventory", "", "", []byte(nil))
	f.Add("POST", "/v1/cards/"+pci+"/program?sha256="+bs.SHA256, "application/octet-stream", "", image)
	f.Add("POST", "/v1/cards/"+pci+"/program?force=true&sha256="+bs.SHA256, "application/octet-stream", "", image[:len(image)/2])
	f.Add("POST", "/v1/cards/"+pci+"/program", "application/json", "", []byte(`{"sha256":"`+bs.SHA256+`","url":"https://images.example/nlb.gbs"}`))
	f.Add("PUT", "/v1/cards/"+pci+"/vfs", "application/json", "", []byte(`{"count": 1}`))
	f.Add("PUT", "/v1/cards/"+pci+"/vfs", "application/json", "", []byte(`{"count": 99}`))
	f.Add("PUT", "/v1/cards/0000:5e:00.0/../vfs", "text/plain", "X-Extra: 1", []byte(`{}`))
	f.Add("DELETE", "/v1//inventory", "", "Transfer-Encoding: chunked", []byte("0\r\n\r\n"))
	f.Add("OPTIONS", "*", "", "", []byte(nil))

	srv := agent.Server{MaxImageBytes: 1 << 20, MaxJSONBytes: 4 << 10, TempDir: f.TempDir()}
	h := agent.NewHandler(agenttest.NewMemHost(), srv)
	f.Fuzz(func(t *testing.T, method, target, contentType, header string, body []byte) {
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: agent\r\nContent-Type: %s\r\n%s\r\nContent-Length: %d\r\n\r\n", method, target, contentType, header, len(body))
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + string(body))))
		if err != nil {
			return // no server would hand this to a handler
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == http.StatusInternalServerError {
			t.Fatalf("%s %s: 500 %s", method, target, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: %d with Content-Type %q: %s", method, target, w.Code, ct, w.Body)
		}
		if w.Code < 400 {
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %s: %d, not JSON: %s", method, target, w.Code, w.Body)
			}
			return
		}
		var eb agent.ErrorBody
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&eb); err != nil || eb.Error == nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("%s %s: %d, not a JSON error: %s", method, target, w.Code, w.Body)
		}
	})
}
