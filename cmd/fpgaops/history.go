package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newHistoryCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "history",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("history: not built yet")
		},
	}
}
