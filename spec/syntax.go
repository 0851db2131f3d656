package spec

import (
	"bytes"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlMessage splits a yaml.v3 error into the line it names (0 for none)
// and its message.
func yamlMessage(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// syntaxError places a yaml.v3 error in a chunk at the line and column of
// its cause.
func syntaxError(file string, c chunk, err error) Error {
	reported, msg := yamlMessage(err)
	line, col := locate(c.text, reported, msg)
	return Error{Pos: Pos{File: file, Line: c.line + line - 1, Col: col}, Msg: "YAML syntax: " + msg, stage: stageYAML}
}

// locate finds where a syntax error is, as a line and a column (in
// characters) of text.
//
// yaml.v3 reports a line only, and often not the problem's: it names the
// construct the problem is in (the mapping a badly indented key breaks,
// the scalar an unterminated quote opens), and for parser errors that
// line counted from 0. So the line is found again: it is the first line
// at which a prefix of the text, cut after whole lines, fails with the
// same message. The column is then read from that line, by what the
// message is about (the tab, the quote, the bracket); otherwise it is the
// line's first character. Errors about bytes (UTF-8, control characters)
// are found in the bytes directly.
func locate(text []byte, reported int, msg string) (line, col int) {
	switch {
	case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "Unicode"):
		if i := firstInvalidUTF8(text); i >= 0 {
			return position(text, i)
		}
	case strings.Contains(msg, "control characters"):
		if i := firstUnprintable(text); i >= 0 {
			return position(text, i)
		}
	}
	ends := lineEnds(text)
	line = problemLine(text, ends, reported, msg)
	start := 0
	if line > 1 {
		start = ends[line-2]
	}
	l := text[start:ends[line-1]]
	return line, column(l, msg)
}

// lineEnds returns the offset just past each line of text.
func lineEnds(text []byte) []int {
	var ends []int
	for i := 0; i < len(text); {
		j := bytes.IndexByte(text[i:], '\n')
		if j < 0 {
			ends = append(ends, len(text))
			break
		}
		i += j + 1
		ends = append(ends, i)
	}
	if len(ends) == 0 {
		ends = append(ends, 0)
	}
	return ends
}

// problemLine is the first line k such that the text up to the end of
// line k fails to parse with msg. Lines above the one yaml.v3 reported
// (less one, for its count from 0) are known to parse. A prefix fails
// with msg from the problem's line on; before it, it parses or fails only
// for being cut short, with another message, so a binary search finds the
// line in a few parses.
func problemLine(text []byte, ends []int, reported int, msg string) int {
	lo := max(reported-1, 1)
	if lo > len(ends) {
		lo = len(ends)
	}
	n := len(ends) - lo + 1
	i := sort.Search(n, func(i int) bool {
		k := lo + i
		if k == len(ends) {
			return true // the whole text: known to fail
		}
		var node yaml.Node
		err := yaml.Unmarshal(text[:ends[k-1]], &node)
		if err == nil {
			return false
		}
		_, m := yamlMessage(err)
		return m == msg
	})
	return lo + i
}

// column finds the column of a syntax error in its line, by what the
// message is about.
func column(l []byte, msg string) int {
	l = bytes.TrimRight(l, "\r\n")
	at := -1
	switch {
	case strings.Contains(msg, "tab character"):
		at = firstTab(l)
	case strings.Contains(msg, "cannot start any token"):
		at = bytes.IndexAny(l, "@`\t")
	case strings.Contains(msg, "end of stream"):
		at, _ = scanLine(l)
	case strings.Contains(msg, "expected ',' or"):
		_, at = scanLine(l)
	case strings.Contains(msg, "mapping values are not allowed"):
		// "a: b: c": the second colon. A line with one colon is one
		// indented too far, continuing the scalar above it: its start.
		if cs := mappingColons(l); len(cs) > 1 {
			at = cs[1]
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		at = bytes.Index(l, []byte("*"+name))
	}
	if at < 0 {
		at = len(l) - len(bytes.TrimLeft(l, " \t"))
		if at == len(l) {
			at = 0
		}
	}
	return utf8.RuneCount(l[:at]) + 1
}

// firstTab is the offset of the first tab of a line's indentation, or of
// the line.
func firstTab(l []byte) int {
	indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
	if i := bytes.IndexByte(indent, '\t'); i >= 0 {
		return i
	}
	return bytes.IndexByte(l, '\t')
}

// scanLine reads a line's quotes and flow brackets, and returns the
// offsets of a quote left open at the end of the line and of the first
// bracket left open, -1 for none.
func scanLine(l []byte) (openQuote, openBracket int) {
	openQuote = -1
	var quote byte
	var brackets []int
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0 && c == quote:
			if quote == '\'' && i+1 < len(l) && l[i+1] == '\'' {
				i++ // '' is a quote inside single quotes
				continue
			}
			quote = 0
		case quote != 0:
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			i = len(l)
		case (c == '"' || c == '\'') && tokenStart(l, i):
			quote, openQuote = c, i
		case c == '[' || c == '{':
			brackets = append(brackets, i)
		case (c == ']' || c == '}') && len(brackets) > 0:
			brackets = brackets[:len(brackets)-1]
		}
	}
	if quote == 0 {
		openQuote = -1
	}
	openBracket = -1
	if len(brackets) > 0 {
		openBracket = brackets[0]
	}
	return openQuote, openBracket
}

// tokenStart reports whether a token may start at l[i]: a quote inside a
// plain scalar (it's) is a character, not a quote.
func tokenStart(l []byte, i int) bool {
	if i == 0 {
		return true
	}
	return bytes.IndexByte([]byte(" \t:-[{,?"), l[i-1]) >= 0
}

// mappingColons returns the offsets of a line's colons that separate a
// key from its value, outside quotes and comments.
func mappingColons(l []byte) []int {
	var out []int
	var quote byte
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote == '"' && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '#' && (i == 0 || l[i-1] == ' '):
			return out
		case (c == '"' || c == '\'') && tokenStart(l, i):
			quote = c
		case c == ':' && (i+1 == len(l) || l[i+1] == ' ' || l[i+1] == '\t'):
			out = append(out, i)
		}
	}
	return out
}

// position turns an offset of text into a line and a column in
// characters.
func position(text []byte, off int) (line, col int) {
	start := bytes.LastIndexByte(text[:off], '\n') + 1
	line = bytes.Count(text[:start], []byte("\n")) + 1
	return line, utf8.RuneCount(text[start:off]) + 1
}

// firstInvalidUTF8 is the offset of text's first byte that is not UTF-8,
// or -1.
func firstInvalidUTF8(text []byte) int {
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// firstUnprintable is the offset of the first character YAML does not
// allow in a stream (YAML 1.2, 5.1: c-printable), or -1.
func firstUnprintable(text []byte) int {
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRune(text[i:])
		ok := r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85 ||
			(r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd && (r != 0xfeff || i == 0)) ||
			(r >= 0x10000 && r <= 0x10ffff)
		if !ok {
			return i
		}
		i += n
	}
	return -1
}
