package spec

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// IgnoreFile is the file at the repository root that lists, in gitignore
// syntax, what is not part of the fleet.
const IgnoreFile = ".fpgaopsignore"

// ignoreRules reads IgnoreFile; a repository without one ignores nothing
// but hidden files.
func (r *Repo) ignoreRules() (gitignore.Matcher, error) {
	data, err := r.readFile(IgnoreFile, maxIgnoreBytes)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := r.root.Lstat(IgnoreFile); lerr != nil {
			return gitignore.NewMatcher(nil), nil
		}
	}
	if err != nil {
		return nil, err
	}
	var patterns []gitignore.Pattern
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		patterns = append(patterns, gitignore.ParsePattern(line, nil))
	}
	return gitignore.NewMatcher(patterns), nil
}

// isYAML reports whether a file name is one the loader reads.
func isYAML(name string) bool {
	ext := path.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// walker lists the YAML files of a repository.
type walker struct {
	r      *Repo
	ignore gitignore.Matcher
	files  []walked
	errs   ErrorList
	// dirs are the folders walked so far, to walk a folder reached by
	// several symlinks once and to find symlink loops.
	dirs []fs.FileInfo
	// linked is set when a symlink was followed: a file may then have been
	// found twice.
	linked bool
}

type walked struct {
	name string
	// viaLink: the path goes through a symlink, so it is not known to be
	// a regular file until it is opened.
	viaLink bool
}

// yamlFiles lists the repository's YAML files in lexical order: every
// *.yaml and *.yml file, except hidden files and folders (names starting
// with a dot) and what IgnoreFile excludes. Symlinks are followed inside
// the repository. One that leaves it, dangles or loops is an error when it
// may stand for fleet documents: its name ends in .yaml or .yml, or has no
// extension, as a folder's usually has not. A file found through several
// paths is listed once, at its own path rather than through a symlink.
func (r *Repo) yamlFiles(ignore gitignore.Matcher) ([]walked, ErrorList) {
	w := &walker{r: r, ignore: ignore}
	var top []fs.FileInfo
	if fi, err := r.root.Stat("."); err == nil {
		top = append(top, fi)
		w.dirs = append(w.dirs, fi)
	}
	w.walk(".", nil, top, false)
	if w.linked {
		return w.unique(), w.errs
	}
	return w.files, w.errs
}

func (w *walker) fail(err error) {
	w.errs = append(w.errs, fileError(err, "; list it in "+IgnoreFile+" if it is not part of the fleet"))
}

// fileError places an error about a whole file of the repository, with
// more to say after it.
func fileError(err error, more string) Error {
	var fe *FileError
	if !errors.As(err, &fe) {
		return Error{Msg: err.Error(), stage: stageRepo}
	}
	msg := strings.TrimPrefix(fe.Why, "is ") + more
	return Error{Pos: Pos{File: fe.Path}, Msg: msg, stage: stageRepo}
}

// walk lists the YAML files under dir, whose path elements are parts.
// ancestors are the folders dir is in, dir included, to find a symlink
// loop.
func (w *walker) walk(dir string, parts []string, ancestors []fs.FileInfo, viaLink bool) {
	f, err := w.r.root.Open(dir)
	if err != nil {
		w.fail(cannotRead(dir, err))
		return
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		w.fail(cannotRead(dir, err))
		return
	}
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		p := path.Join(dir, name)
		parts := append(parts, name) // the matcher does not keep it
		mode := e.Type()
		switch {
		case mode.IsDir():
			if w.ignore.Match(parts, true) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				w.fail(cannotRead(p, err))
				continue
			}
			w.dirs = append(w.dirs, fi)
			w.walk(p, parts, append(ancestors, fi), viaLink)
		case mode&fs.ModeSymlink != 0:
			// Whether the target is a file or a folder is not known
			// before following the link, which must not happen when
			// the link is ignored.
			if w.ignore.Match(parts, false) || w.ignore.Match(parts, true) {
				continue
			}
			w.follow(p, parts, ancestors)
		case w.ignore.Match(parts, false) || !isYAML(name):
		case mode.IsRegular():
			w.files = append(w.files, walked{p, viaLink})
		default:
			w.fail(notRegular(p, mode))
		}
	}
}

// follow resolves a symlink met while walking.
func (w *walker) follow(p string, parts []string, ancestors []fs.FileInfo) {
	w.linked = true
	fi, err := w.r.stat(p)
	if err != nil {
		// A symlink that cannot be followed may stand for fleet
		// documents, unless its name says it is a file of another kind
		// (x.gbs, README.md), which is left alone like any such file.
		if ext := path.Ext(p); ext == "" || isYAML(p) {
			w.fail(err)
		}
		return
	}
	switch {
	case fi.IsDir():
		for _, a := range ancestors {
			if os.SameFile(a, fi) {
				w.fail(&FileError{Path: p, Why: "is a symlink to a folder it is in, a loop", Err: ErrSymlinkLoop})
				return
			}
		}
		if slices.ContainsFunc(w.dirs, func(d fs.FileInfo) bool { return os.SameFile(d, fi) }) {
			return // walked already, through another path
		}
		w.dirs = append(w.dirs, fi)
		w.walk(p, parts, append(ancestors, fi), true)
	case !isYAML(p):
	case fi.Mode().IsRegular():
		w.files = append(w.files, walked{p, true})
	default:
		w.fail(notRegular(p, fi.Mode()))
	}
}

// unique drops the files found twice (through symlinks or hard links),
// keeping each at a path without a symlink if there is one, else at its
// first path.
func (w *walker) unique() []walked {
	type key struct {
		size  int64
		mtime int64
	}
	type seen struct {
		info fs.FileInfo
		at   int
	}
	buckets := map[key][]seen{}
	keep := make([]bool, len(w.files))
	// Files at their own paths first, so that they win.
	order := make([]int, 0, len(w.files))
	for i, f := range w.files {
		if !f.viaLink {
			order = append(order, i)
		}
	}
	for i, f := range w.files {
		if f.viaLink {
			order = append(order, i)
		}
	}
	for _, i := range order {
		fi, err := w.r.root.Stat(w.files[i].name)
		if err != nil {
			keep[i] = true // reported when it is read
			continue
		}
		k := key{fi.Size(), fi.ModTime().UnixNano()}
		if slices.ContainsFunc(buckets[k], func(s seen) bool { return os.SameFile(s.info, fi) }) {
			continue
		}
		buckets[k] = append(buckets[k], seen{fi, i})
		keep[i] = true
	}
	var out []walked
	for i, f := range w.files {
		if keep[i] {
			out = append(out, f)
		}
	}
	return out
}
