package agent

import (
	"context"
	"errors"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
)

type fencingKey struct{}

// WithFencingToken returns a context whose requests to agents carry the
// fencing token: the leader term they are made in. Every request made
// under it carries that token, those of card chains that outlive the
// term too, so an agent that has seen a newer term refuses them.
func WithFencingToken(ctx context.Context, token uint64) context.Context {
	return context.WithValue(ctx, fencingKey{}, token)
}

// FencingToken is the token requests made under ctx carry, if any.
func FencingToken(ctx context.Context) (uint64, bool) {
	tok, ok := ctx.Value(fencingKey{}).(uint64)
	return tok, ok && tok > 0
}

// IsFenced reports whether an agent refused a request because a newer
// leader's token had reached it.
func IsFenced(err error) bool {
	var e *agentapi.Error
	return errors.As(err, &e) && e.Code == agentapi.CodeFenced
}
