package spec

import (
	"sort"
	"strings"
)

// Error is one mistake in a fleet repository, at a position.
type Error struct {
	Pos Pos
	Msg string
	// stage is the check that found the mistake; see Sort.
	stage stage
}

// stage orders mistakes so that a cause comes before its effects: a file
// that cannot be read before a document that is not there, a syntax error
// before a schema error, a document's own mistakes before those found
// across documents.
type stage int

const (
	stageRepo     stage = iota // files, symlinks, sizes, .fpgaopsignore
	stageYAML                  // syntax and the shape of documents
	stageSchema                // the CUE schema
	stageDocument              // one document's own checks, its GBS file
	stageFleet                 // checks across documents
)

func (e Error) Error() string {
	if p := e.Pos.String(); p != "" {
		return p + ": " + e.Msg
	}
	return e.Msg
}

// ErrorList is every mistake found in one load, sorted.
type ErrorList []Error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// at sets the stage of every error of the list.
func (l ErrorList) at(s stage) ErrorList {
	for i := range l {
		l[i].stage = s
	}
	return l
}

// Sort orders the list by the check that found each mistake, so that
// causes come before their effects, then by file, line, column and
// message; it drops exact duplicates.
func (l *ErrorList) Sort() {
	s := *l
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.stage != b.stage {
			return a.stage < b.stage
		}
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Msg < b.Msg
	})
	out := s[:0]
	for i, e := range s {
		if i == 0 || e != s[i-1] {
			out = append(out, e)
		}
	}
	*l = out
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
