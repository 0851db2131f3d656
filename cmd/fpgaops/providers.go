package main

import (
	"errors"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// providerFlags are the flags that say how to reach the fleet; plan, apply
// and run share them.
type providerFlags struct{}

func (f *providerFlags) register(fs *pflag.FlagSet) {}

// newProvider builds the provider that observes and changes the fleet's
// nodes, choosing per node from what the fleet declares.
func newProvider(fleet *spec.Fleet, f *providerFlags) (providers.Provider, error) {
	return nil, errors.New("no provider configured")
}
