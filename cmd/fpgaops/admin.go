package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/spf13/cobra"
)

// adminFlags are the flags of the commands that change a running
// controller: suspend, resume, reconcile.
type adminFlags struct {
	server, tokenFile string
}

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "the controller's URL (http://ADDR)")
	cmd.Flags().StringVar(&f.tokenFile, "admin-token-file", "", "file holding the admin bearer token (default: $FPGAOPS_ADMIN_TOKEN)")
	// The flag's name before it matched run's --admin-token-file.
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "")
	_ = cmd.Flags().MarkDeprecated("token-file", "use --admin-token-file")
}

// client checks the flags, all at once, and reads the token from the
// file or the environment.
func (f *adminFlags) client() (*controller.Client, error) {
	var errs []error
	if f.server == "" {
		errs = append(errs, errors.New("--server is required"))
	}
	var token string
	switch {
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--admin-token-file: %w", err))
		}
		token = strings.TrimSpace(string(b))
		if err == nil && token == "" {
			errs = append(errs, fmt.Errorf("--admin-token-file %s: empty", f.tokenFile))
		}
	default:
		token = strings.TrimSpace(os.Getenv("FPGAOPS_ADMIN_TOKEN"))
		if token == "" {
			errs = append(errs, errors.New("no admin token: give --admin-token-file or set FPGAOPS_ADMIN_TOKEN"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return controller.NewClient(f.server, []byte(token)), nil
}
