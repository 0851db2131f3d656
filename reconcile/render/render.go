// Package render prints a plans.Plan for people, in the manner of
// `terraform plan`, and for programs, as JSON (docs/plan-format.md). It
// only formats: it never decides what a plan contains.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/rollout"
)

// Style says how text is decorated.
type Style struct {
	// Color turns on ANSI colours.
	Color bool
}

// StyleFor picks colour when w is a terminal and NO_COLOR is not set
// (https://no-color.org).
func StyleFor(w io.Writer, getenv func(string) string) Style {
	if getenv("NO_COLOR") != "" {
		return Style{}
	}
	f, ok := w.(*os.File)
	if !ok {
		return Style{}
	}
	st, err := f.Stat()
	if err != nil {
		return Style{}
	}
	return Style{Color: st.Mode()&os.ModeCharDevice != 0}
}

const (
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
	grey   = "\x1b[90m"
)

func (s Style) paint(code, text string) string {
	if !s.Color {
		return text
	}
	return code + text + reset
}

// Symbol is the glyph that marks an action in text output. Held changes
// keep their action's symbol and say why they are held.
func Symbol(a plans.Action) string {
	switch a {
	case plans.ActionAttach, plans.ActionCreate:
		return "+"
	case plans.ActionDetach:
		return "-"
	case plans.ActionReplace:
		return "±"
	case plans.ActionProgram, plans.ActionSetVFs, plans.ActionUpdate:
		return "~"
	case plans.ActionReport:
		return "?"
	}
	return " "
}

func colorOf(a plans.Action) string {
	switch a {
	case plans.ActionAttach, plans.ActionCreate:
		return green
	case plans.ActionDetach, plans.ActionReplace:
		return red
	case plans.ActionProgram, plans.ActionSetVFs, plans.ActionUpdate:
		return yellow
	case plans.ActionReport:
		return cyan
	}
	return ""
}

// Text writes the plan for a reader: changes grouped by node (the
// objects a backend shares across nodes first), one headline each with
// its details below, then the summary line. No-ops are left out.
func Text(w io.Writer, p *plans.Plan, s Style) error {
	var b strings.Builder
	if !p.HasChanges() {
		b.WriteString(s.paint(bold+green, "No changes.") + " The fleet matches the desired state.\n")
		for _, line := range ownedLines(p) {
			b.WriteString(line + "\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("fpgaops will perform the following actions")
	if p.Revision != "" {
		b.WriteString(" for revision " + p.Revision)
	}
	b.WriteString(":\n")
	if hasObjects(p) {
		fmt.Fprintf(&b, "  Symbols: %s attach or create, %s detach, %s change, %s replace, %s report only.\n",
			s.paint(green, "+"), s.paint(red, "-"), s.paint(yellow, "~"), s.paint(red, "±"), s.paint(cyan, "?"))
	} else {
		fmt.Fprintf(&b, "  Symbols: %s attach, %s detach, %s change, %s report only.\n",
			s.paint(green, "+"), s.paint(red, "-"), s.paint(yellow, "~"), s.paint(cyan, "?"))
	}
	node := "\x00"
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Action == plans.ActionNoop {
			continue
		}
		if c.Node != node {
			node = c.Node
			head := "node " + node
			if node == "" {
				head = "shared objects"
			}
			b.WriteString("\n" + s.paint(bold, head) + "\n")
		}
		writeChange(&b, c, s)
	}
	if lines := ownedLines(p); len(lines) > 0 {
		b.WriteString("\n" + strings.Join(lines, "\n") + "\n")
	}
	if p.Rollout != nil {
		b.WriteString("\n" + RolloutLine(p.Rollout) + "\n")
	}
	b.WriteString("\n" + SummaryLine(p) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// hasObjects reports whether the plan holds a backend's objects.
func hasObjects(p *plans.Plan) bool {
	for i := range p.Changes {
		if p.Changes[i].Backend != "" {
			return true
		}
	}
	return false
}

// ownedLines say which nodes' cards a backend attaches and programs
// itself, naming a few per backend.
func ownedLines(p *plans.Plan) []string {
	var lines []string
	for _, backend := range slices.Sorted(maps.Keys(p.Owned)) {
		nodes := p.Owned[backend]
		const named = 5
		names := strings.Join(nodes[:min(len(nodes), named)], ", ")
		if len(nodes) > named {
			names += fmt.Sprintf(" and %d more", len(nodes)-named)
		}
		lines = append(lines, fmt.Sprintf("Backend %s attaches and programs the cards of %d node(s) (%s) itself; the plan holds its changes for them.", backend, len(nodes), names))
	}
	return lines
}

func writeChange(b *strings.Builder, c *plans.Change, s Style) {
	sym := s.paint(colorOf(c.Action), Symbol(c.Action))
	head := fmt.Sprintf("  %s %-8s %s", sym, c.Action, c.ID)
	if c.Held != nil {
		head = fmt.Sprintf("  %s %-8s %s", s.paint(grey, Symbol(c.Action)), c.Action, c.ID)
	}
	b.WriteString(head)
	var tags []string
	if c.Wave > 0 {
		tags = append(tags, "wave "+strconv.Itoa(c.Wave))
	}
	if c.RolloutStep > 0 {
		tags = append(tags, "rollout step "+strconv.Itoa(c.RolloutStep))
	}
	if c.Disruptive {
		tags = append(tags, "disruptive")
	}
	switch c.Restart {
	case plans.RestartWait:
		tags = append(tags, "waits for the VM's restart")
	case plans.RestartVM:
		tags = append(tags, "restarts the VM")
	}
	if c.Drift {
		tags = append(tags, "drift")
	}
	if c.Held != nil {
		tags = append(tags, "held")
	}
	if len(tags) > 0 {
		b.WriteString(" (" + strings.Join(tags, ", ") + ")")
	}
	b.WriteString("\n")
	if d := detail(c); d != "" {
		b.WriteString("      " + d + "\n")
	}
	for _, a := range attrs(c) {
		b.WriteString("      " + a + "\n")
	}
	if c.Reason != "" {
		b.WriteString("      " + s.paint(grey, "reason: "+c.Reason) + "\n")
	}
	// Within a card the order of the listing is the order of the run;
	// say so when a change waits for another card's, or for an object.
	for _, d := range c.DependsOn {
		if c.Card == "" || !strings.HasPrefix(d, plans.CardID(c.Node, c.Card)+"/") && !strings.HasPrefix(d, plans.CardID(c.Node, c.Card)+":") {
			b.WriteString("      after: " + d + "\n")
		}
	}
	if c.Held != nil {
		b.WriteString("      " + s.paint(bold+red, "held by "+string(c.Held.Gate)+": ") + c.Held.Why + "\n")
	}
}

// attrs lists a backend object's attributes, one per line, sorted: each
// as it is and as it will be where the two differ.
func attrs(c *plans.Change) []string {
	var before, after map[string]string
	if c.Before != nil {
		before = c.Before.Attrs
	}
	if c.After != nil {
		after = c.After.Attrs
	}
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		b, inB := before[k]
		a, inA := after[k]
		switch {
		case inB && inA && a != b:
			out = append(out, fmt.Sprintf("%s: %s -> %s", k, orNone(b), orNone(a)))
		case inA:
			out = append(out, k+": "+orNone(a))
		default:
			out = append(out, k+": "+orNone(b))
		}
	}
	return out
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// detail is the change's before and after in a few words.
func detail(c *plans.Change) string {
	switch c.Action {
	case plans.ActionReplace:
		if c.Before != nil && c.Before.VM != "" {
			return fmt.Sprintf("%s (%s) is deleted and booted again", c.Before.VM, runState(c.Before.Running))
		}
		return ""
	case plans.ActionCreate, plans.ActionUpdate:
		return ""
	case plans.ActionProgram:
		from := "AFU " + shortID(c.Before.AFUID)
		if c.Before.Bitstream != "" {
			from = c.Before.Bitstream + " (" + from + ")"
		}
		if c.Before.Bitstream == "" && c.Before.AFUID == "" && c.Backend != "" {
			from = "what " + c.Backend + " last loaded"
		}
		return fmt.Sprintf("%s: %s -> %s (AFU %s, sha256 %s)", c.CardPCI, from, c.After.Bitstream, shortID(c.After.AFUID), shortID(c.After.SHA256))
	case plans.ActionSetVFs:
		return fmt.Sprintf("%s: VFs %d -> %d", c.CardPCI, *c.Before.VFs, *c.After.VFs)
	case plans.ActionDetach:
		return fmt.Sprintf("%s (%s) gives up %s %s", c.Before.VM, runState(c.Before.Running), c.Before.Function, c.Before.PCI)
	case plans.ActionAttach:
		pci := c.After.PCI
		if c.After.Note != "" {
			return fmt.Sprintf("%s (%s) gets %s %s", c.After.VM, c.After.Note, c.After.Function, pci)
		}
		if pci == "" {
			pci = "(address known once VFs are on)"
		}
		return fmt.Sprintf("%s (%s) gets %s %s", c.After.VM, runState(c.After.Running), c.After.Function, pci)
	case plans.ActionReport:
		var parts []string
		if c.Before != nil {
			parts = append(parts, "observed: "+valueText(c.Before))
		}
		if c.After != nil {
			parts = append(parts, "desired: "+valueText(c.After))
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

func valueText(v *plans.Value) string {
	var parts []string
	if v.Note != "" {
		parts = append(parts, v.Note)
	}
	if v.Bitstream != "" {
		parts = append(parts, "bitstream "+v.Bitstream)
	}
	if v.AFUID != "" {
		parts = append(parts, "AFU "+shortID(v.AFUID))
	}
	if v.VFs != nil {
		parts = append(parts, strconv.Itoa(*v.VFs)+" VF(s)")
	}
	if v.PCI != "" && v.Note == "" {
		parts = append(parts, v.PCI)
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func runState(running bool) string {
	if running {
		return "running"
	}
	return "stopped"
}

func shortID(id string) string {
	if id == "" {
		return "(unknown)"
	}
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

// RolloutLine says where the policy's rollout is, and what stopped it.
func RolloutLine(r *rollout.State) string {
	line := "Rollout: " + r.Summary() + "."
	if !r.BakeUntil.IsZero() {
		line += " Bakes until " + r.BakeUntil.UTC().Format(time.RFC3339) + "."
	}
	if r.Failure != nil {
		line += " Failed: " + r.Failure.String() + "."
	}
	if len(r.Reverted) > 0 {
		line += fmt.Sprintf(" Reverted %d card(s) to revision %s.", len(r.Reverted), r.LastGood)
	}
	return line
}

// SummaryLine is the last line of the text plan. The counts of a
// backend's objects appear when there are any.
func SummaryLine(p *plans.Plan) string {
	s := p.Summary
	objects := ""
	if s.Create+s.Replace+s.Update > 0 {
		objects = fmt.Sprintf(" %d to create, %d to replace, %d to update,", s.Create, s.Replace, s.Update)
	}
	line := fmt.Sprintf("Plan: %d to program, %d to attach, %d to detach, %d to set VFs,%s %d to report, %d held back.",
		s.Program, s.Attach, s.Detach, s.SetVFs, objects, s.Report, s.Held)
	if p.Waves > 1 {
		line += fmt.Sprintf(" Rolls out in %d waves (budget: %d card(s) and %d disrupted VM(s) at once).",
			p.Waves, p.Budget.MaxCardsInFlight, p.Budget.MaxDisruptedVMs)
	}
	return line
}

// JSON writes the plan in its documented JSON format, indented.
func JSON(w io.Writer, p *plans.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
