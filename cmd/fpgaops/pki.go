package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/fpgaops/fpgaops/internal/pki"
	"github.com/spf13/cobra"
)

func newPKICommand(s streams) *cobra.Command {
	c := &cobra.Command{
		Use:   "pki",
		Short: "Make the CA and the certificates of the agents' mutual TLS",
		Long: `pki makes, in one directory, a CA (init) and the certificates it signs
(issue): a server certificate for each node agent and a client certificate
for the controller, ECDSA P-256, keys readable by their owner only. No file
is replaced without --force. docs/agent.md shows where each goes.`,
	}
	c.AddCommand(newPKIInitCommand(s), newPKIIssueCommand(s))
	return c
}

func newPKIInitCommand(s streams) *cobra.Command {
	var (
		dir, name string
		opts      pki.Options
	)
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--name NAME]",
		Short: "Make a CA: DIR/ca.pem and DIR/ca-key.pem",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" {
				return errors.New("--dir is required")
			}
			if _, err := pki.Init(dir, name, opts); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Wrote the CA: %s (agents' --client-ca, the controller's --agent-ca) and %s (its key: keep it off the nodes).\n",
				filepath.Join(dir, pki.CACert), filepath.Join(dir, pki.CAKey))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the CA and its certificates (created 0700)")
	cmd.Flags().StringVar(&name, "name", "fpgaops CA", "the CA's common name")
	cmd.Flags().DurationVar(&opts.ValidFor, "valid-for", 10*365*24*time.Hour, "how long the CA is valid")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing CA (its certificates then no longer verify)")
	return cmd
}

func newPKIIssueCommand(s streams) *cobra.Command {
	var (
		dir, agentName, controller string
		dns                        []string
		ips                        []net.IP
		opts                       pki.Options
	)
	cmd := &cobra.Command{
		Use:   "issue --dir DIR (--agent NAME --dns HOST --ip IP | --controller NAME)",
		Short: "Sign an agent's server certificate or the controller's client certificate",
		Long: `Issue signs a certificate with the CA in DIR and writes it and its key
beside it. An agent's (--agent NAME, DIR/agent-NAME.pem) is for TLS servers,
valid for the host names (--dns) and addresses (--ip) of its endpoint. The
controller's (--controller NAME, DIR/controller-NAME.pem) is for TLS
clients and carries NAME, a DNS name or a URI such as a SPIFFE ID: what the
agents' --client-name accepts.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			var errs []error
			if dir == "" {
				errs = append(errs, errors.New("--dir is required"))
			}
			req := pki.Request{DNS: dns, IPs: ips}
			switch {
			case (agentName == "") == (controller == ""):
				errs = append(errs, errors.New("give --agent NAME or --controller NAME"))
			case agentName != "":
				req.Role, req.Name = pki.Agent, agentName
			default:
				req.Role, req.Name = pki.Controller, controller
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			files, err := pki.Issue(dir, req, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Wrote %s and its key %s.\n", files[0], files[1])
			if req.Role == pki.Agent {
				fmt.Fprintf(s.out, "On the node: fpgaops agent --tls-cert %s --tls-key %s --client-ca %s --client-name CONTROLLER\n",
					files[0], files[1], filepath.Join(dir, pki.CACert))
			} else {
				fmt.Fprintf(s.out, "On the controller: --agent-cert %s --agent-key %s --agent-ca %s; agents accept it with --client-name %s\n",
					files[0], files[1], filepath.Join(dir, pki.CACert), controller)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory holding the CA (pki init)")
	cmd.Flags().StringVar(&agentName, "agent", "", "issue a node agent's server certificate under this name")
	cmd.Flags().StringVar(&controller, "controller", "", "issue the controller's client certificate for this name (DNS name or URI)")
	cmd.Flags().StringSliceVar(&dns, "dns", nil, "an agent's DNS name; repeatable or comma-separated")
	cmd.Flags().IPSliceVar(&ips, "ip", nil, "an agent's IP address; repeatable or comma-separated")
	cmd.Flags().DurationVar(&opts.ValidFor, "valid-for", 365*24*time.Hour, "how long the certificate is valid (never past the CA)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace an existing certificate and key")
	return cmd
}
