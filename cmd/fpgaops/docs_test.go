package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docExample is one fpgaops command of a ```sh block of the docs.
type docExample struct {
	file string
	line int
	// text is the command with its continuation lines joined, without
	// its comment.
	text string
	args []string
	// needs is what a "# needs: ..." comment says the example needs
	// beyond the simulated fleet (hardware, a cloud, a controller): it is
	// checked but not run.
	needs string
	// exit is the status a "# exit N" comment expects; 0 otherwise.
	exit int
}

var (
	needsComment = regexp.MustCompile(`\bneeds: ([^;]+)`)
	exitComment  = regexp.MustCompile(`\bexit ([0-9]+)\b`)
	// A placeholder is an argument in capitals (DIR, FILE, URL, F).
	placeholder = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
)

// docExamples extracts the fpgaops commands of a Markdown file's sh blocks.
func docExamples(t *testing.T, path, name string) []docExample {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []docExample
		inSh    bool
		inBlock bool
		pending string
		start   int
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			lang := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "```"))
			inSh = !inBlock && (lang == "sh" || lang == "bash")
			inBlock = !inBlock
			continue
		}
		if !inSh {
			continue
		}
		if pending == "" {
			start = n
		}
		if code, ok := strings.CutSuffix(l, "\\"); ok && !strings.Contains(l, " #") {
			pending += code + " "
			continue
		}
		full := pending + l
		pending = ""
		if !strings.HasPrefix(strings.TrimSpace(full), "fpgaops ") && strings.TrimSpace(full) != "fpgaops" {
			continue
		}
		ex := docExample{file: name, line: start}
		code, comment := splitComment(full)
		ex.text = strings.TrimSpace(code)
		if m := needsComment.FindStringSubmatch(comment); m != nil {
			ex.needs = strings.TrimSpace(m[1])
		}
		if m := exitComment.FindStringSubmatch(comment); m != nil {
			ex.exit, _ = strconv.Atoi(m[1])
		}
		// [--flag VALUE] is an optional part: check it as given.
		ex.args, err = shellWords(strings.NewReplacer("[", "", "]", "").Replace(ex.text))
		if err != nil {
			t.Errorf("%s:%d: %v", name, start, err)
			continue
		}
		out = append(out, ex)
	}
	return out
}

// splitComment cuts a shell line at its first # outside quotes that
// starts a word.
func splitComment(l string) (code, comment string) {
	var quote rune
	for i, r := range l {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i], l[i+1:]
		}
	}
	return l, ""
}

// shellWords splits a command as sh would, for the quoting the docs use.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		quote rune
		word  bool
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, word = r, true
		case r == ' ' || r == '\t':
			if word {
				words = append(words, cur.String())
				cur.Reset()
				word = false
			}
		default:
			cur.WriteRune(r)
			word = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", s)
	}
	if word {
		words = append(words, cur.String())
	}
	return words, nil
}

// runnable says why an example is not run, or "" when it is.
func (ex docExample) runnable() string {
	switch {
	case ex.needs != "":
		return "needs " + ex.needs
	case ex.args[len(ex.args)-1] == "&":
		return "runs in the background"
	}
	for _, a := range ex.args[1:] {
		if placeholder.MatchString(a) {
			return "placeholder " + a
		}
	}
	return ""
}

// checkParses finds the example's command and parses its flags and
// arguments as fpgaops would, without running it. A placeholder given to
// a typed flag (--nodes N) is parsed as a value of its type.
func checkParses(ex docExample) error {
	args := ex.args[1:]
	if n := len(args); n > 0 && args[n-1] == "&" {
		args = args[:n-1]
	}
	root := newRootCommand(streams{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if !cmd.Runnable() {
		return fmt.Errorf("%q is not a command", cmd.CommandPath())
	}
	for i := 1; i < len(rest); i++ {
		if !placeholder.MatchString(rest[i]) || !strings.HasPrefix(rest[i-1], "-") {
			continue
		}
		f := cmd.Flags().Lookup(strings.TrimLeft(rest[i-1], "-"))
		if f == nil && len(rest[i-1]) == 2 {
			f = cmd.Flags().ShorthandLookup(rest[i-1][1:])
		}
		if f == nil {
			continue
		}
		switch f.Value.Type() {
		case "int", "int64", "uint64", "float64":
			rest[i] = "1"
		case "duration":
			rest[i] = "1s"
		case "ipSlice":
			rest[i] = "127.0.0.1"
		}
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return err
	}
	return cmd.ValidateArgs(cmd.Flags().Args())
}

// The shell examples of README.md and docs/*.md: every fpgaops command
// must parse (its command, flags and arguments exist), and those that can
// run against the examples and the simulated fleet are run, in order, in
// a directory of their own per file beside a copy of examples/, and must
// exit as their "# exit N" comment says (0 without one). An example that
// needs more (hardware, a cloud, a controller, a git server) says so with
// "# needs: ..." and is only checked; one with a placeholder (DIR, FILE)
// is a template and is only checked.
func TestDocExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join("..", "..", "README.md")}, files...)
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	var ran, checked int
	for _, path := range files {
		name, _ := filepath.Rel(filepath.Join("..", ".."), path)
		exs := docExamples(t, path, name)
		if len(exs) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(examples, filepath.Join(dir, "examples")); err != nil {
				t.Fatal(err)
			}
			t.Chdir(dir)
			for _, ex := range exs {
				where := fmt.Sprintf("%s:%d: %s", ex.file, ex.line, ex.text)
				if err := checkParses(ex); err != nil {
					t.Errorf("%s: does not parse: %v", where, err)
					continue
				}
				checked++
				if why := ex.runnable(); why != "" {
					t.Logf("%s: checked, not run: %s", where, why)
					continue
				}
				f := &simFleet{t: t}
				code, out, errOut := f.run("", ex.args[1:]...)
				if code != ex.exit {
					t.Errorf("%s: exit %d, want %d\n%s\n%s", where, code, ex.exit, out, errOut)
				}
				ran++
				t.Logf("%s: ran", where)
			}
		})
	}
	t.Logf("%d examples checked, %d run", checked, ran)
	if ran < 10 {
		t.Errorf("only %d examples ran: the extraction is broken", ran)
	}
}

func TestDocExampleExtraction(t *testing.T) {
	md := "text `fpgaops nope`\n```sh\n# a comment\nfpgaops validate examples/fleet   # exit 0: valid\nfpgaops plan --repo DIR \\\n  --out p.plan  # needs: a fleet; then apply\n" +
		"fpgaops sim gen --endpoint 'http://h/{node} x' --out F\nfpgaops sim serve --repo F &\nmake demo\n```\n```\nfpgaops not-sh\n```\n"
	path := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	got := docExamples(t, path, "x.md")
	want := []struct {
		line            int
		args            string
		needs, runnable string
		exit            int
	}{
		{4, "fpgaops|validate|examples/fleet", "", "", 0},
		{5, "fpgaops|plan|--repo|DIR|--out|p.plan", "a fleet", "needs a fleet", 0},
		{7, "fpgaops|sim|gen|--endpoint|http://h/{node} x|--out|F", "", "placeholder F", 0},
		{8, "fpgaops|sim|serve|--repo|F|&", "", "runs in the background", 0},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d examples, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.line != w.line || strings.Join(g.args, "|") != w.args || g.needs != w.needs || g.runnable() != w.runnable || g.exit != w.exit {
			t.Errorf("example %d: %+v (runnable %q), want %+v", i, g, g.runnable(), w)
		}
	}
	if err := checkParses(docExample{args: []string{"fpgaops", "plan", "--no-such-flag"}}); err == nil {
		t.Error("an unknown flag parses")
	}
	if err := checkParses(docExample{args: []string{"fpgaops", "sim", "gen", "--nodes", "N", "--out", "DIR"}}); err != nil {
		t.Errorf("a placeholder for an int flag: %v", err)
	}
}
