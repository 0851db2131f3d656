package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newPlanCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:    "plan",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("plan: not built yet")
		},
	}
}
