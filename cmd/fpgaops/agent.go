package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/dra"
	"github.com/spf13/cobra"
)

// agentFlags are the agent's flags.
type agentFlags struct {
	listen, root, cert, key, clientCA, stateDir string
	clientNames, fetchAllow                     []string
	insecure                                    bool
	maxImage                                    int64
	maxUploads, maxImagesInMemory               int
	skipUserClocks, requireToken                bool
	dra                                         dra.Flags
}

func newAgentCommand(s streams) *cobra.Command {
	var f agentFlags
	c := &cobra.Command{
		Use:   "agent --listen ADDR --tls-cert F --tls-key F --client-ca F --client-name NAME",
		Short: "Serve this node's FPGA cards to the fpgaops controller",
		Long: `Serve this node's FPGA cards (the OPAE driver layer below --root) over
HTTPS with mutual TLS: GET /v1/inventory, POST /v1/cards/{pci}/program (an
image uploaded or fetched from a --fetch-allow host, checked against its
sha256 while it streams to disk), PUT /v1/cards/{pci}/vfs. Clients must
present a certificate signed by --client-ca that carries a --client-name.
--insecure serves plain HTTP, and only on loopback. With --state-dir, what
the agent last read of each card survives a restart. With --dra-node, it
also serves the DRA kubelet plugin of a Kubernetes node (docs/kubernetes.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := slog.New(slog.NewTextHandler(s.err, nil))
			api, conf, mem, err := f.check()
			if err != nil {
				return err
			}
			if conf != nil && len(f.clientNames) == 0 {
				log.Warn("no --client-name: any certificate --client-ca signed may program this node's cards")
			}
			api.Log = log
			host := agent.Recalling(fpga.NewSysfsHost(f.root, fpga.Syscalls{}), mem, log)
			h := agent.NewHandler(host, api)
			ln, err := net.Listen("tcp", f.listen)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			plugin, err := f.dra.Start(ctx, host, f.root, log)
			if err != nil {
				return err
			}
			defer plugin.Stop()
			scheme := "https"
			if conf == nil {
				scheme = "http"
			}
			log.Info("agent serving", "url", scheme+"://"+ln.Addr().String(), "root", f.root,
				"clients", strings.Join(f.clientNames, ","), "fetchAllow", strings.Join(api.FetchAllow, ","), "stateDir", f.stateDir)
			return agent.Serve(ctx, agent.NewHTTPServer(h, conf), ln)
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.listen, "listen", ":9443", "address to serve on")
	fs.StringVar(&f.root, "root", "/", "root of the filesystem holding /sys and /dev")
	fs.StringVar(&f.cert, "tls-cert", "", "the agent's certificate (PEM)")
	fs.StringVar(&f.key, "tls-key", "", "the agent's key (PEM)")
	fs.StringVar(&f.clientCA, "client-ca", "", "CA (PEM) that client certificates must chain to")
	fs.StringArrayVar(&f.clientNames, "client-name", nil, "accept only client certificates with this DNS or URI SAN (or, without SANs,\ncommon name); repeatable")
	fs.StringArrayVar(&f.fetchAllow, "fetch-allow", nil, "HOST or HOST:PORT the agent may fetch bitstream URLs from; repeatable or\ncomma-separated (default: URL bitstreams are refused)")
	fs.StringVar(&f.stateDir, "state-dir", "", "where the agent keeps what it last read of each card and the newest\ncontrollers' fencing token (default: in memory only)")
	fs.BoolVar(&f.requireToken, "require-fencing-token", false, "refuse requests without a fencing token: every controller runs with --etcd")
	fs.BoolVar(&f.insecure, "insecure", false, "serve plain HTTP without client certificates (loopback only)")
	fs.Int64Var(&f.maxImage, "max-image-bytes", agent.DefaultMaxImageBytes, "largest bitstream image accepted")
	fs.IntVar(&f.maxUploads, "max-uploads", agent.DefaultMaxUploads, "program requests in flight at once; more are answered 503")
	fs.IntVar(&f.maxImagesInMemory, "max-images-in-memory", agent.DefaultMaxImagesInMemory, "verified images held in memory for programming at once")
	f.dra.Register(fs)
	fs.BoolVar(&f.skipUserClocks, "skip-user-clocks", false, "leave the cards' user clocks as they are after programming, as OPAE's\nfpgaconf --skip-usrclk does (a host without OPAE's userclk tool)")
	return c
}

// check checks every flag, reporting all mistakes at once, and loads what
// they name: the API's settings, the TLS configuration (nil for plain
// HTTP) and the card memory.
func (f *agentFlags) check() (agent.Server, *tls.Config, *agent.Memory, error) {
	var (
		errs []error
		conf *tls.Config
	)
	if !f.insecure || f.cert != "" || f.key != "" || f.clientCA != "" {
		if f.cert == "" || f.key == "" || f.clientCA == "" {
			errs = append(errs, errors.New("TLS needs --tls-cert, --tls-key and --client-ca (or --insecure on loopback)"))
		} else {
			var err error
			if conf, err = agent.ServerTLS(f.cert, f.key, f.clientCA, f.clientNames...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if f.insecure {
		if err := agent.CheckListen(f.listen, conf, true); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range f.clientNames {
		if strings.TrimSpace(n) == "" {
			errs = append(errs, errors.New("--client-name: empty"))
		}
	}
	if f.insecure && len(f.clientNames) > 0 {
		errs = append(errs, errors.New("--client-name needs TLS: plain HTTP has no client certificates"))
	}
	allow, err := agent.ParseFetchAllow(f.fetchAllow)
	if err != nil {
		errs = append(errs, err)
	}
	for _, n := range []struct {
		flag  string
		value int64
	}{{"max-image-bytes", f.maxImage}, {"max-uploads", int64(f.maxUploads)}, {"max-images-in-memory", int64(f.maxImagesInMemory)}} {
		if n.value < 1 {
			errs = append(errs, fmt.Errorf("--%s %d: want 1 or more", n.flag, n.value))
		}
	}
	mem, err := agent.OpenMemory(f.stateDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("--state-dir: %w", err))
	}
	fence, err := agent.OpenFence(f.stateDir, f.requireToken)
	if err != nil {
		errs = append(errs, fmt.Errorf("--state-dir: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return agent.Server{}, nil, nil, err
	}
	return agent.Server{
		MaxImageBytes: f.maxImage, FetchAllow: allow,
		MaxUploads: f.maxUploads, MaxImagesInMemory: f.maxImagesInMemory,
		SkipUserClocks: f.skipUserClocks, Fence: fence,
	}, conf, mem, nil
}
