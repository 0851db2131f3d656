package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newBitstreamCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "bitstream",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("bitstream: not built yet")
		},
	}
}
