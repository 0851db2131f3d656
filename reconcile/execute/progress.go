package execute

import "github.com/fpgaops/fpgaops/plans"

// Progress hears about each change as the executor runs it, so a command
// can draw a counter or log lines while the executor only computes. Calls
// may come from several goroutines at once.
type Progress interface {
	// Started is called before the change's first attempt.
	Started(c *plans.Change)
	// Finished is called once per runnable change, with how it ended.
	Finished(c *plans.Change, r plans.Result)
}

// NoProgress ignores every event.
type NoProgress struct{}

func (NoProgress) Started(*plans.Change)                {}
func (NoProgress) Finished(*plans.Change, plans.Result) {}
