package openstacktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Placement is a real OpenStack Placement API (Debian's placement-api) on
// sqlite with noauth2, in a temporary directory, on a free loopback port.
// With noauth2, requests carry "X-Auth-Token: admin".
type Placement struct {
	URL string
	dir string
	cmd *exec.Cmd
	log *bytes.Buffer
}

// PlacementToken is the token noauth2 treats as an admin.
const PlacementToken = "admin"

// StartPlacement writes a config and starts placement-api, which creates
// its sqlite database as it starts; it returns once the API answers. Call Stop when done (from
// TestMain, so one server serves a whole test package).
func StartPlacement() (*Placement, error) {
	if _, err := exec.LookPath("placement-api"); err != nil {
		return nil, fmt.Errorf("placement: placement-api not found (Debian package placement-api; .ci/run installs it): %w", err)
	}
	dir, err := os.MkdirTemp("", "placement-")
	if err != nil {
		return nil, err
	}
	p := &Placement{dir: dir, log: &bytes.Buffer{}}
	conf := fmt.Sprintf(`[DEFAULT]
debug = False
use_stderr = True
[api]
auth_strategy = noauth2
[placement_database]
connection = sqlite:///%s
# Migrate the empty database as the API starts: one Python process
# instead of placement-manage db sync and then the API.
sync_on_startup = True
[oslo_policy]
enforce_scope = False
enforce_new_defaults = False
`, filepath.Join(dir, "placement.db"))
	confPath := filepath.Join(dir, "placement.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		p.Stop()
		return nil, err
	}
	env := append(os.Environ(), "OS_PLACEMENT_CONFIG_DIR="+dir)
	port, err := freePort()
	if err != nil {
		p.Stop()
		return nil, err
	}
	p.cmd = exec.Command("placement-api", "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	p.cmd.Env = env
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		p.Stop()
		return nil, fmt.Errorf("placement: start: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	p.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case err := <-exited:
			p.cmd = nil
			p.Stop()
			return nil, fmt.Errorf("placement: placement-api exited: %v\n%s", err, p.log.String())
		case <-ctx.Done():
			p.Stop()
			return nil, errors.New("placement: placement-api did not answer within 60s")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop kills the server and removes its directory.
func (p *Placement) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	os.RemoveAll(p.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
