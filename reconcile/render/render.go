// Package render prints a reconcile.Plan for people, in the manner of
// `terraform plan`, and for programs, as JSON (docs/plan-format.md). It
// only formats: it never decides what a plan contains.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/fpgaops/fpgaops/reconcile"
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
func Symbol(a reconcile.Action) string {
	switch a {
	case reconcile.ActionAttach:
		return "+"
	case reconcile.ActionDetach:
		return "-"
	case reconcile.ActionProgram, reconcile.ActionSetVFs:
		return "~"
	case reconcile.ActionReport:
		return "?"
	}
	return " "
}

func colorOf(a reconcile.Action) string {
	switch a {
	case reconcile.ActionAttach:
		return green
	case reconcile.ActionDetach:
		return red
	case reconcile.ActionProgram, reconcile.ActionSetVFs:
		return yellow
	case reconcile.ActionReport:
		return cyan
	}
	return ""
}

// Text writes the plan for a reader: changes grouped by node, one
// headline each with its details below, then the summary line. No-ops are
// left out.
func Text(w io.Writer, p *reconcile.Plan, s Style) error { return TextWith(w, p, s) }

// Section is another planner's part of a combined plan (the OpenStack
// changes): its changes already rendered, and its summary.
type Section struct {
	// Title heads the section ("OpenStack changes").
	Title string
	// Body is the section's rendered changes; "" when it has none.
	Body string
	// Summary joins the plan's summary line ("OpenStack: 3 to create, ...").
	Summary string
}

// TextWith writes the plan like Text, then each section with changes
// after the fleet's changes, and one summary line for them all: a plan
// with an OpenStack part reads as one plan.
func TextWith(w io.Writer, p *reconcile.Plan, s Style, sections ...Section) error {
	var b strings.Builder
	changes := p.HasChanges()
	for _, sec := range sections {
		changes = changes || sec.Body != ""
	}
	if !changes {
		b.WriteString(s.paint(bold+green, "No changes.") + " The fleet matches the desired state.\n")
		if line := cloudLine(p); line != "" {
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
	fmt.Fprintf(&b, "  Symbols: %s attach, %s detach, %s change, %s report only.\n",
		s.paint(green, "+"), s.paint(red, "-"), s.paint(yellow, "~"), s.paint(cyan, "?"))
	node := ""
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Action == reconcile.ActionNoop {
			continue
		}
		if c.Node != node {
			node = c.Node
			b.WriteString("\n" + s.paint(bold, "node "+node) + "\n")
		}
		writeChange(&b, c, s)
	}
	summary := SummaryLine(p)
	for _, sec := range sections {
		if sec.Body != "" {
			b.WriteString("\n" + s.paint(bold, sec.Title+":") + "\n\n" + sec.Body)
		}
		if sec.Summary != "" {
			summary += " " + sec.Summary
		}
	}
	if line := cloudLine(p); line != "" {
		b.WriteString("\n" + line + "\n")
	}
	b.WriteString("\n" + summary + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// cloudLine says which nodes' cards OpenStack manages, naming a few.
func cloudLine(p *reconcile.Plan) string {
	n := len(p.CloudManaged)
	if n == 0 {
		return ""
	}
	const named = 5
	names := strings.Join(p.CloudManaged[:min(n, named)], ", ")
	if n > named {
		names += fmt.Sprintf(" and %d more", n-named)
	}
	return fmt.Sprintf("OpenStack manages the cards of %d node(s) (%s): Nova and Cyborg attach and program them, through the OpenStack changes.", n, names)
}

func writeChange(b *strings.Builder, c *reconcile.Change, s Style) {
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
	if c.Disruptive {
		tags = append(tags, "disruptive")
	}
	switch c.Restart {
	case reconcile.RestartWait:
		tags = append(tags, "waits for the VM's restart")
	case reconcile.RestartVM:
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
	if c.Reason != "" {
		b.WriteString("      " + s.paint(grey, "reason: "+c.Reason) + "\n")
	}
	// Within a card the order of the listing is the order of the run;
	// say so when a change waits for another card's.
	for _, d := range c.DependsOn {
		if !strings.HasPrefix(d, reconcile.CardID(c.Node, c.Card)+"/") && !strings.HasPrefix(d, reconcile.CardID(c.Node, c.Card)+":") {
			b.WriteString("      after: " + d + "\n")
		}
	}
	if c.Held != nil {
		b.WriteString("      " + s.paint(bold+red, "held by "+string(c.Held.Gate)+": ") + c.Held.Why + "\n")
	}
}

// detail is the change's before and after in a few words.
func detail(c *reconcile.Change) string {
	switch c.Action {
	case reconcile.ActionProgram:
		from := "AFU " + shortID(c.Before.AFUID)
		if c.Before.Bitstream != "" {
			from = c.Before.Bitstream + " (" + from + ")"
		}
		return fmt.Sprintf("%s: %s -> %s (AFU %s, sha256 %s)", c.CardPCI, from, c.After.Bitstream, shortID(c.After.AFUID), shortID(c.After.SHA256))
	case reconcile.ActionSetVFs:
		return fmt.Sprintf("%s: VFs %d -> %d", c.CardPCI, *c.Before.VFs, *c.After.VFs)
	case reconcile.ActionDetach:
		return fmt.Sprintf("%s (%s) gives up %s %s", c.Before.VM, runState(c.Before.Running), c.Before.Function, c.Before.PCI)
	case reconcile.ActionAttach:
		pci := c.After.PCI
		if c.After.Note != "" {
			return fmt.Sprintf("%s (%s) gets %s %s", c.After.VM, c.After.Note, c.After.Function, pci)
		}
		if pci == "" {
			pci = "(address known once VFs are on)"
		}
		return fmt.Sprintf("%s (%s) gets %s %s", c.After.VM, runState(c.After.Running), c.After.Function, pci)
	case reconcile.ActionReport:
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

func valueText(v *reconcile.Value) string {
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

// SummaryLine is the last line of the text plan.
func SummaryLine(p *reconcile.Plan) string {
	s := p.Summary
	line := fmt.Sprintf("Plan: %d to program, %d to attach, %d to detach, %d to set VFs, %d to report, %d held back.",
		s.Program, s.Attach, s.Detach, s.SetVFs, s.Report, s.Held)
	if p.Waves > 1 {
		line += fmt.Sprintf(" Rolls out in %d waves (budget: %d card(s) and %d disrupted VM(s) at once).",
			p.Waves, p.Budget.MaxCardsInFlight, p.Budget.MaxDisruptedVMs)
	}
	return line
}

// JSON writes the plan in its documented JSON format, indented.
func JSON(w io.Writer, p *reconcile.Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
