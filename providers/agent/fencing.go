package agent

import (
	"context"
	"errors"
	"fmt"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
)

type termKey struct{}

// term is a leader term as requests carry it.
type term struct {
	token uint64
	ended <-chan struct{}
}

// WithTerm returns a context whose requests to agents carry the fencing
// token of a leader term, and are not sent at all once ended is closed:
// a controller that knows it lost the lead sends nothing more, and one
// that does not know it yet is refused by every agent the new leader has
// reached. Every request made under the context carries the term, those
// of card chains that outlive it (context.WithoutCancel) too.
func WithTerm(ctx context.Context, token uint64, ended <-chan struct{}) context.Context {
	return context.WithValue(ctx, termKey{}, term{token, ended})
}

// FencingToken is the token requests made under ctx carry, if any.
func FencingToken(ctx context.Context) (uint64, bool) {
	t, ok := ctx.Value(termKey{}).(term)
	return t.token, ok && t.token > 0
}

// ErrTermEnded is returned for a request not sent because the leader
// term it was made in has ended.
var ErrTermEnded = errors.New("this controller's leader term has ended: request not sent")

// checkTerm refuses a request whose term has ended.
func checkTerm(ctx context.Context) error {
	t, ok := ctx.Value(termKey{}).(term)
	if !ok || t.ended == nil {
		return nil
	}
	select {
	case <-t.ended:
		return fmt.Errorf("term %d: %w", t.token, ErrTermEnded)
	default:
		return nil
	}
}

// IsFenced reports whether a request was refused because its leader term
// is over: by an agent a newer leader's token had reached, or before it
// was sent.
func IsFenced(err error) bool {
	var e *agentapi.Error
	return errors.Is(err, ErrTermEnded) || errors.As(err, &e) && e.Code == agentapi.CodeFenced
}
