package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/spf13/cobra"
)

func newAgentCommand(s streams) *cobra.Command {
	var (
		listen, root, cert, key, clientCA string
		insecure                          bool
		maxImage                          int64
	)
	c := &cobra.Command{
		Use:   "agent --listen ADDR --tls-cert F --tls-key F --client-ca F",
		Short: "Serve this node's FPGA cards to the fpgaops controller",
		Long: `Serve this node's FPGA cards (the OPAE driver layer below --root) over
HTTPS with mutual TLS: GET /v1/inventory, POST /v1/cards/{pci}/program (an
image uploaded or fetched from a URL, checked against its sha256 before
anything else), PUT /v1/cards/{pci}/vfs. Clients must present a certificate
signed by --client-ca. --insecure serves plain HTTP, and only on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var conf *tls.Config
			if !insecure || cert != "" || key != "" || clientCA != "" {
				if cert == "" || key == "" || clientCA == "" {
					return fmt.Errorf("TLS needs --tls-cert, --tls-key and --client-ca (or --insecure on loopback)")
				}
				var err error
				if conf, err = agent.ServerTLS(cert, key, clientCA); err != nil {
					return err
				}
			}
			if err := agent.CheckListen(listen, conf, insecure); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(s.err, nil))
			h := agent.NewHandler(agent.Recalling(fpga.NewSysfsHost(root, fpga.Syscalls{})), agent.Server{MaxImageBytes: maxImage, Log: log})
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			scheme := "https"
			if conf == nil {
				scheme = "http"
			}
			log.Info("agent serving", "url", scheme+"://"+ln.Addr().String(), "root", root)
			return agent.Serve(ctx, agent.NewHTTPServer(h, conf), ln)
		},
	}
	f := c.Flags()
	f.StringVar(&listen, "listen", ":9443", "address to serve on")
	f.StringVar(&root, "root", "/", "root of the filesystem holding /sys and /dev")
	f.StringVar(&cert, "tls-cert", "", "the agent's certificate (PEM)")
	f.StringVar(&key, "tls-key", "", "the agent's key (PEM)")
	f.StringVar(&clientCA, "client-ca", "", "CA (PEM) that client certificates must chain to")
	f.BoolVar(&insecure, "insecure", false, "serve plain HTTP without client certificates (loopback only)")
	f.Int64Var(&maxImage, "max-image-bytes", agent.DefaultMaxImageBytes, "largest bitstream image accepted")
	return c
}
