package policy

import (
	"errors"
	"fmt"
	"time"

	_ "time/tzdata" // windows name time zones; plans must not depend on the host's zoneinfo

	"github.com/fpgaops/fpgaops/spec"
	"github.com/robfig/cron/v3"
)

// window is a compiled maintenance window.
type window struct {
	spec  spec.Window
	sched cron.Schedule
	loc   *time.Location
}

// windows are the policy's maintenance windows. They gate disruptive
// changes only: with no windows, disruption is always allowed; with allow
// windows, only while one is open; an open deny window always wins.
type windows struct {
	allow, deny []window
}

// compileWindows parses the policy's windows, reporting every bad one.
func compileWindows(p spec.Policy) (windows, error) {
	var ws windows
	var errs spec.ErrorList
	for _, w := range p.Windows {
		s, err := cron.ParseStandard(w.Schedule)
		if err != nil {
			errs = append(errs, spec.Error{Pos: w.Pos, Msg: fmt.Sprintf("window schedule %q: %v", w.Schedule, err)})
			continue
		}
		loc := time.UTC
		if w.TimeZone != "" {
			l, err := time.LoadLocation(w.TimeZone)
			if err != nil {
				errs = append(errs, spec.Error{Pos: w.Pos, Msg: fmt.Sprintf("window time zone %q: %v", w.TimeZone, err)})
				continue
			}
			loc = l
		}
		if w.Duration <= 0 {
			errs = append(errs, spec.Error{Pos: w.Pos, Msg: fmt.Sprintf("window %q: duration must be positive", w.Schedule)})
			continue
		}
		cw := window{spec: w, sched: s, loc: loc}
		switch w.Kind {
		case spec.WindowAllow:
			ws.allow = append(ws.allow, cw)
		case spec.WindowDeny:
			ws.deny = append(ws.deny, cw)
		default:
			errs = append(errs, spec.Error{Pos: w.Pos, Msg: fmt.Sprintf("window kind %q: want allow or deny", w.Kind)})
		}
	}
	if len(errs) > 0 {
		errs.Sort()
		return windows{}, errors.Join(errs)
	}
	return ws, nil
}

// openedAt returns when the window last opened if it is open at now.
func (w window) openedAt(now time.Time) (time.Time, bool) {
	d := time.Duration(w.spec.Duration)
	// The window is open when it fired in (now-d, now]: Next gives the
	// first firing strictly after its argument.
	t := w.sched.Next(now.In(w.loc).Add(-d))
	if t.IsZero() || t.After(now) {
		return time.Time{}, false
	}
	return t, true
}

func (w window) String() string {
	tz := w.spec.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	return fmt.Sprintf("%s window %q for %s (%s)", w.spec.Kind, w.spec.Schedule, w.spec.Duration, tz)
}

// allowDisruption says whether disruptive changes may run at now, and if
// not, why.
func (ws windows) allowDisruption(now time.Time) (bool, string) {
	for _, w := range ws.deny {
		if t, ok := w.openedAt(now); ok {
			end := t.Add(time.Duration(w.spec.Duration))
			return false, fmt.Sprintf("%s is open until %s", w, end.Format("2006-01-02 15:04 MST"))
		}
	}
	if len(ws.allow) == 0 {
		return true, ""
	}
	var next time.Time
	for _, w := range ws.allow {
		if _, ok := w.openedAt(now); ok {
			return true, ""
		}
		if t := w.sched.Next(now.In(w.loc)); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	why := "no allow window is open"
	if !next.IsZero() {
		why += "; the next opens " + next.Format("2006-01-02 15:04 MST")
	}
	return false, why
}
