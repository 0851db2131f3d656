package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSimServeCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "serve",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("sim serve: not built yet")
		},
	}
}
