package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/providers/all"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// engineFlags are the flags that say how to reach the fleet and where run
// state lives; plan, apply and run share them.
type engineFlags struct {
	stateDir    string
	concurrency int
	nodeTimeout time.Duration
	tls         agent.TLSFiles
	insecure    bool
	vms         string
	prometheus  string
	// kinds are the backends; each registers its own flags.
	kinds []providers.Kind
	// opened are the stores openState opened.
	opened []*state.Local
	// fs holds the flags, to tell those given from defaults.
	fs *pflag.FlagSet
}

func newEngineFlags() *engineFlags { return &engineFlags{kinds: all.Kinds()} }

// register adds the flags; an empty stateHelp leaves --state-dir out, for
// a command that keeps no run state.
func (f *engineFlags) register(fs *pflag.FlagSet, stateHelp string) {
	f.fs = fs
	if stateHelp != "" {
		fs.StringVar(&f.stateDir, "state-dir", "", stateHelp)
	}
	fs.IntVar(&f.concurrency, "concurrency", engine.DefaultConcurrency, "nodes observed and changed at once")
	fs.DurationVar(&f.nodeTimeout, "node-timeout", 10*time.Second, "time to observe one node before it counts as unknown")
	fs.StringVar(&f.tls.Cert, "agent-cert", "", "client certificate (PEM) presented to node agents")
	fs.StringVar(&f.tls.Key, "agent-key", "", "key (PEM) of the client certificate presented to node agents")
	fs.StringVar(&f.tls.CA, "agent-ca", "", "CA (PEM) that signed the node agents' certificates (default: system roots);\nthe agents' CA, not the git server's (that is run's --git-ca-file)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain-HTTP endpoints on loopback (the simulated fleet)")
	fs.StringVar(&f.prometheus, "prometheus-url", "", "Prometheus server that answers the policy's rollout checks (http://HOST:9090)")
	for _, k := range f.kinds {
		k.Flags(fs)
	}
	fs.StringVar(&f.vms, "vms", providers.Auto, "the backend that runs every node's VMs: "+strings.Join(vmsChoices(), ", ")+";\nauto picks libvirt for nodes with a libvirt URI, openstack for nodes with\na hostname when a cloud is configured, and the node's endpoint (the\nsimulated fleet) otherwise")
}

// vmsChoices are the values --vms takes: auto and every backend's name.
func vmsChoices() []string {
	out := []string{providers.Auto}
	for _, k := range all.Kinds() {
		out = append(out, k.Name())
	}
	return out
}

// options are what a saved plan keeps of the flags.
func (f *engineFlags) options() (planfile.Options, error) {
	dir, err := f.state()
	return planfile.Options{
		VMs: f.vms, Insecure: f.insecure, StateDir: dir,
		Concurrency: f.concurrency, NodeTimeout: spec.Duration(f.nodeTimeout),
		AgentCert: f.tls.Cert, AgentKey: f.tls.Key, AgentCA: f.tls.CA,
	}, err
}

// useSaved takes a saved plan's options for the flags not given on the
// command line, which override them. It returns those that differ from
// the flags' defaults, for the operator to see.
func (f *engineFlags) useSaved(o *planfile.Options) ([]string, error) {
	if o == nil {
		return nil, nil
	}
	var insecure, conc, timeout string
	if o.Insecure {
		insecure = "true"
	}
	if o.Concurrency > 0 {
		conc = strconv.Itoa(o.Concurrency)
	}
	if o.NodeTimeout > 0 {
		timeout = o.NodeTimeout.String()
	}
	saved := [...]struct{ flag, value string }{
		{"vms", o.VMs}, {"insecure", insecure}, {"state-dir", o.StateDir}, {"concurrency", conc},
		{"node-timeout", timeout}, {"agent-cert", o.AgentCert}, {"agent-key", o.AgentKey}, {"agent-ca", o.AgentCA},
	}
	var shown []string
	for _, s := range saved {
		if s.value == "" || f.fs.Changed(s.flag) {
			continue
		}
		if err := f.fs.Set(s.flag, s.value); err != nil {
			return nil, fmt.Errorf("the plan's option --%s: %w", s.flag, err)
		}
		if s.value != f.fs.Lookup(s.flag).DefValue {
			shown = append(shown, "--"+s.flag+"="+s.value)
		}
	}
	return shown, nil
}

// engine builds the engine over store (nil keeps nothing).
func (f *engineFlags) engine(store state.Store, log *slog.Logger) *engine.Engine {
	e := &engine.Engine{
		Kinds: f.kinds, VMs: f.vms, Store: store, Log: log,
		Agents:      agent.Transport{TLS: f.tls, Insecure: f.insecure, Concurrency: f.concurrency},
		Concurrency: f.concurrency, NodeTimeout: f.nodeTimeout,
	}
	if f.prometheus != "" {
		e.Prometheus = &engine.Prometheus{URL: f.prometheus}
	}
	return e
}

// state is the state directory, by flag or default.
func (f *engineFlags) state() (string, error) { return stateDirOr(f.stateDir) }

// defaultStateHelp is the default every command that reads or writes run state
// gives --state-dir.
const defaultStateHelp = "(default: $XDG_STATE_HOME/fpgaops or ~/.local/state/fpgaops)"

// stateDirOr is the --state-dir flag's value, or where run state lives by
// default: the same for every command.
func stateDirOr(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fpgaops"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --state-dir and no home directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "fpgaops"), nil
}

// openState opens the state directory's store: for reading only, where a
// directory that holds none yet is no history (nil); or for writing, in
// holder's name, which takes the directory's lock until closeState.
func (f *engineFlags) openState(holder string) (state.Store, error) {
	dir, err := f.state()
	if err != nil {
		return nil, err
	}
	s, err := state.Open(dir, state.Options{ReadOnly: holder == "", Holder: holder})
	switch {
	case errors.Is(err, state.ErrNoState):
		return nil, nil
	case err != nil:
		return nil, err
	}
	f.opened = append(f.opened, s)
	return s, nil
}

// closeState gives up what openState took: a command defers it.
func (f *engineFlags) closeState() {
	for _, s := range f.opened {
		s.Close()
	}
	f.opened = nil
}

// observing shows the observation's progress on stderr when it is a
// terminal, and nothing elsewhere; the returned func ends its line.
func observing(s streams, e *engine.Engine, nodes int) func() {
	if !render.IsTerminal(s.err) {
		return func() {}
	}
	bar := render.NewObserveBar(s.err, nodes)
	e.Observed = bar.Observed
	return bar.Close
}

// warnings logs at warn level and above to w: what commands show of the
// engine's log.
func warnings(s streams) *slog.Logger {
	return slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
