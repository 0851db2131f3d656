package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSimGenCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "gen",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("sim gen: not built yet")
		},
	}
}
