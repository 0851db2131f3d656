package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newApplyCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "apply",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("apply: not built yet")
		},
	}
}
