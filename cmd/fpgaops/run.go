package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newRunCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "run",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("run: not built yet")
		},
	}
}
