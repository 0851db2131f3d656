package execute_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/policy"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/spec"
)

// afterProgram wraps the fake: once a program of card has taken effect,
// the next read of the node fails (passingly) or the program's answer is
// lost (an error, though the card is programmed).
type afterProgram struct {
	*reconciletest.Fleet
	card       string
	failRead   int  // reads to fail after the program
	loseAnswer bool // the program answers an error once
	mu         sync.Mutex
	programs   int
}

func (a *afterProgram) Program(ctx context.Context, n *spec.Node, pci string, img providers.Image) error {
	err := a.Fleet.Program(ctx, n, pci, img)
	a.mu.Lock()
	defer a.mu.Unlock()
	if pci == a.card && n.Name == "compute-01" && err == nil {
		a.programs++
		if a.loseAnswer {
			a.loseAnswer = false
			return errors.New("connection reset by peer")
		}
	}
	return err
}

func (a *afterProgram) ObserveCards(ctx context.Context, n *spec.Node) ([]fpga.Device, error) {
	a.mu.Lock()
	fail := a.programs > 0 && a.failRead > 0 && n.Name == "compute-01"
	if fail {
		a.failRead--
	}
	a.mu.Unlock()
	if fail {
		return nil, providers.Transient(errors.New("agent: 503 busy"))
	}
	return a.Fleet.ObserveCards(ctx, n)
}

// A read-back that fails passingly after programming is retried on its
// own: the card is programmed once.
func TestReadBackIsRetriedWithoutProgrammingAgain(t *testing.T) {
	fx := newFixture(t)
	fake := &afterProgram{Fleet: reconciletest.New(fx.obs), card: "0000:5e:00.0", failRead: 2}
	ex := fx.executor(fake.Fleet, nil)
	ex.Provider = fake
	rep, err := ex.Apply(context.Background(), fx.desired, fx.plan(t, fx.obs))
	if err != nil {
		t.Fatal(err)
	}
	if fake.programs != 1 || statusOf(t, rep, pac0Program) != plans.StatusApplied {
		t.Fatalf("programmed %d times, %s; want once, applied", fake.programs, statusOf(t, rep, pac0Program))
	}
	noViolations(t, fake.Fleet)
	converged(t, fx, fake.Fleet)
}

// A program whose answer was lost (the card is programmed, the call
// failed) is not repeated, neither when retried nor when the run is
// resumed: each attempt reads the card first.
func TestProgramIsNeverRepeated(t *testing.T) {
	for _, resume := range []bool{false, true} {
		t.Run(map[bool]string{false: "retried", true: "resumed"}[resume], func(t *testing.T) {
			fx := newFixture(t)
			// Resumed: the answer is lost with an error that fails the step.
			// Retried: with a passing one.
			fake := &afterProgram{Fleet: reconciletest.New(fx.obs), card: "0000:5e:00.0", loseAnswer: resume}
			j := openStore(t, t.TempDir()).Journal()
			ex := fx.executor(fake.Fleet, j)
			ex.Provider = fake
			if !resume {
				ex.Provider = &transientAfter{afterProgram: fake}
			}
			p := fx.plan(t, fx.obs)
			rep, err := ex.Apply(context.Background(), fx.desired, p)
			if resume {
				if err == nil || statusOf(t, rep, pac0Program) != plans.StatusFailed {
					t.Fatalf("the lost answer: %v, %s", err, statusOf(t, rep, pac0Program))
				}
				ex.Resume = true
				if rep, err = ex.Apply(context.Background(), fx.desired, p); err != nil {
					t.Fatalf("resumed: %v", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if fake.programs != 1 || statusOf(t, rep, pac0Program) != plans.StatusApplied {
				t.Fatalf("programmed %d times, %s; want once, applied", fake.programs, statusOf(t, rep, pac0Program))
			}
			noViolations(t, fake.Fleet)
			converged(t, fx, fake.Fleet)
		})
	}
}

// transientAfter answers the first program of the card with a passing
// error after it took effect.
type transientAfter struct {
	*afterProgram
	once sync.Once
}

func (t *transientAfter) Program(ctx context.Context, n *spec.Node, pci string, img providers.Image) error {
	err := t.afterProgram.Program(ctx, n, pci, img)
	if err == nil && pci == t.card && n.Name == "compute-01" {
		t.once.Do(func() { err = providers.Transient(errors.New("gateway timeout after the card was programmed")) })
	}
	return err
}

// A maintenance window that closes during a long apply stops it before
// the next wave that would disrupt a VM; what is left is held, and the
// report says why.
func TestWindowIsCheckedBeforeEachWave(t *testing.T) {
	fx := newFixture(t)
	fx.desired.Policy.Budget.MaxDisruptedVMs = 1 // vnf-a and vnf-b: two waves
	fx.desired.Policy.Windows = []spec.Window{{Kind: spec.WindowAllow, Schedule: "0 2 * * *", Duration: spec.Duration(2 * time.Hour)}}
	p := fx.plan(t, fx.obs) // at 03:00, inside the window
	pol, err := policy.Compile(fx.desired)
	if err != nil {
		t.Fatal(err)
	}
	fake := reconciletest.New(fx.obs)
	clock := now
	ex := fx.executor(fake, nil)
	ex.Policy, ex.Now = pol, func() time.Time { return clock }
	ex.Progress = progressFunc(func() { clock = now.Add(2 * time.Hour) }) // 05:00 once a change has run
	rep, err := ex.Apply(context.Background(), fx.desired, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Stopped, "stopped before wave 2 of ") || !strings.Contains(rep.Stopped, "no allow window is open") {
		t.Fatalf("stopped = %q", rep.Stopped)
	}
	var held int
	for i, c := range p.Changes {
		if c.Wave >= 2 {
			if rep.Results[i].Status != plans.StatusHeld || !strings.HasPrefix(rep.Results[i].Error, "held by window: ") {
				t.Errorf("%s in wave %d: %+v", c.ID, c.Wave, rep.Results[i])
			}
			held++
		}
	}
	if held == 0 {
		t.Fatal("the plan has no second wave")
	}
	noViolations(t, fake)
}

type progressFunc func()

func (f progressFunc) Started(*plans.Change)                {}
func (f progressFunc) Finished(*plans.Change, plans.Result) { f() }
