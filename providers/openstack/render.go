package openstack

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Summary counts a plan's changes.
type Summary struct {
	Create     int `json:"create"`
	Replace    int `json:"replace"`
	Update     int `json:"update"`
	Disruptive int `json:"disruptive"`
	Blocked    int `json:"blocked"`
	Drift      int `json:"drift"`
}

// Summarize counts changes; blocked changes count only as blocked.
func Summarize(changes []Change) Summary {
	var s Summary
	for _, c := range changes {
		switch {
		case c.Action == Drift:
			s.Drift++
			continue
		case c.Blocked != "":
			s.Blocked++
			continue
		}
		switch c.Action {
		case CreateImage, CreateDeviceProfile, CreateFlavor:
			s.Create++
		case ReplaceDeviceProfile, ReplaceServer:
			s.Replace++
		case ProgramDeployable, UpdateTraits:
			s.Update++
		}
		if c.Disruptive {
			s.Disruptive++
		}
	}
	return s
}

// Actionable reports whether any change would be applied.
func (s Summary) Actionable() bool { return s.Create+s.Replace+s.Update > 0 }

// Line is the summary for a combined plan's summary line.
func (s Summary) Line() string {
	return fmt.Sprintf("OpenStack: %d to create, %d to replace (%d disruptive), %d to update, %d blocked, %d drift.",
		s.Create, s.Replace, s.Disruptive, s.Update, s.Blocked, s.Drift)
}

func symbol(a Action) string {
	switch a {
	case CreateImage, CreateDeviceProfile, CreateFlavor:
		return "  +"
	case ReplaceDeviceProfile, ReplaceServer:
		return "-/+"
	case ProgramDeployable, UpdateTraits:
		return "  ~"
	}
	return "  !"
}

// RenderText writes the plan the way terraform does: one line per change
// with a symbol (+ create, -/+ replace, ~ update in place, ! drift), its
// details indented below, and a summary line. No colour, no secrets: a
// plan holds names, IDs and digests only.
func RenderText(w io.Writer, changes []Change) error {
	var b strings.Builder
	if len(changes) == 0 {
		b.WriteString("No changes. OpenStack matches the fleet.\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("OpenStack changes:\n\n")
	writeChanges(&b, changes)
	s := Summarize(changes)
	fmt.Fprintf(&b, "\nPlan: %d to create, %d to replace (%d disruptive), %d to update, %d blocked. Drift: %d.\n",
		s.Create, s.Replace, s.Disruptive, s.Update, s.Blocked, s.Drift)
	_, err := io.WriteString(w, b.String())
	return err
}

// ChangesText is the plan's changes as RenderText shows them, without its
// heading and summary: the OpenStack section of a combined plan. It is ""
// when there are none.
func ChangesText(changes []Change) string {
	var b strings.Builder
	writeChanges(&b, changes)
	return b.String()
}

func writeChanges(b *strings.Builder, changes []Change) {
	for _, c := range changes {
		head := fmt.Sprintf("%s %s", symbol(c.Action), c.ID)
		switch {
		case c.Action == Drift:
			head += " (drift)"
		case c.Blocked != "":
			head += " (blocked: " + c.Blocked + ")"
		case c.Disruptive:
			head += " (disruptive)"
		}
		b.WriteString(head + "\n")
		for _, d := range details(c) {
			b.WriteString("      " + d + "\n")
		}
	}
}

func details(c Change) []string {
	var d []string
	switch {
	case c.Image != nil:
		src := c.Image.File
		if src == "" {
			src = c.Image.URL
		}
		d = append(d, "name: "+c.Image.Name, "from: "+src, "sha256: "+c.Image.SHA256)
	case c.Profile != nil:
		img := c.Profile.ImageID
		if img == "" {
			img = "(image of " + c.Profile.Bitstream + ", known after apply)"
		}
		d = append(d, "bitstream: "+c.Profile.Bitstream+" on "+string(c.Profile.Board), "accel:bitstream_id: "+img)
		if c.Profile.OldUUID != "" {
			d = append(d, "replaces: "+c.Profile.OldUUID)
		}
	case c.Flavor != nil:
		d = append(d, fmt.Sprintf("size: %d vCPU, %d MB RAM, %d GB disk", c.Flavor.VCPUs, c.Flavor.RAM, c.Flavor.Disk),
			"accel:device_profile: "+c.Flavor.DeviceProfile)
	case c.Program != nil:
		d = append(d, "bitstream: "+c.Program.Bitstream, "deployable: "+c.Program.Deployable)
	case c.Server != nil:
		d = append(d, "flavor: "+c.Server.OldFlavor+" -> "+c.Server.Flavor, "host: "+c.Server.Host)
	case c.Traits != nil:
		if len(c.Traits.Add) > 0 {
			d = append(d, "add: "+strings.Join(c.Traits.Add, ", "))
		}
		if len(c.Traits.Remove) > 0 {
			d = append(d, "remove: "+strings.Join(c.Traits.Remove, ", "))
		}
	}
	if c.Reason != "" {
		d = append(d, "# "+c.Reason)
	}
	return d
}

// JSONPlan is the -o json form of a plan.
type JSONPlan struct {
	Changes []Change `json:"changes"`
	Summary Summary  `json:"summary"`
}

// RenderJSON writes the plan as indented JSON.
func RenderJSON(w io.Writer, changes []Change) error {
	if changes == nil {
		changes = []Change{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(JSONPlan{Changes: changes, Summary: Summarize(changes)})
}
