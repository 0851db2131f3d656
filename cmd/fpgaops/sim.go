package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newSimCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "sim",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("sim: not built yet")
		},
	}
}
