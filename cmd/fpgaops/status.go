package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newStatusCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "status",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("status: not built yet")
		},
	}
}
