package spec

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string ("4h30m").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a value such as 30m or 4h", b)
	}
	*d = Duration(v)
	return nil
}
