package source

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing"
)

// RefKind says how a Ref picks a commit.
type RefKind string

const (
	// RefHead follows the remote's default branch.
	RefHead RefKind = "head"
	// RefBranch follows the tip of a branch.
	RefBranch RefKind = "branch"
	// RefTag pins a tag.
	RefTag RefKind = "tag"
	// RefSemver follows the highest tag that satisfies a semver range.
	RefSemver RefKind = "semver"
	// RefCommit pins a commit by its full hash.
	RefCommit RefKind = "commit"
)

// Ref is what the source follows in the remote.
type Ref struct {
	Kind RefKind
	// Name is the branch, the tag, the semver range or the commit hash.
	Name string
}

func (r Ref) String() string {
	if r.Kind == RefHead {
		return "HEAD"
	}
	return string(r.Kind) + ":" + r.Name
}

// ParseRef reads the --ref syntax: "branch:NAME", "tag:NAME",
// "semver:RANGE", "commit:HASH", or without a prefix a full commit hash,
// "refs/heads/NAME", "refs/tags/NAME" or a branch name. "" and "HEAD" follow
// the remote's default branch.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	var r Ref
	switch {
	case s == "" || s == "HEAD":
		return Ref{Kind: RefHead}, nil
	case strings.HasPrefix(s, "branch:"):
		r = Ref{RefBranch, strings.TrimPrefix(s, "branch:")}
	case strings.HasPrefix(s, "tag:"):
		r = Ref{RefTag, strings.TrimPrefix(s, "tag:")}
	case strings.HasPrefix(s, "semver:"):
		r = Ref{RefSemver, strings.TrimSpace(strings.TrimPrefix(s, "semver:"))}
	case strings.HasPrefix(s, "commit:"):
		r = Ref{RefCommit, strings.ToLower(strings.TrimPrefix(s, "commit:"))}
	case strings.HasPrefix(s, "refs/heads/"):
		r = Ref{RefBranch, strings.TrimPrefix(s, "refs/heads/")}
	case strings.HasPrefix(s, "refs/tags/"):
		r = Ref{RefTag, strings.TrimPrefix(s, "refs/tags/")}
	case isFullHash(s):
		r = Ref{RefCommit, strings.ToLower(s)}
	default:
		r = Ref{RefBranch, s}
	}
	return r, r.validate()
}

func (r Ref) validate() error {
	if r.Name == "" && r.Kind != RefHead {
		return fmt.Errorf("ref %q: empty %s", r.String(), r.Kind)
	}
	switch r.Kind {
	case RefBranch:
		if !plumbing.NewBranchReferenceName(r.Name).IsBranch() || !validRefName(r.Name) {
			return fmt.Errorf("ref %q: not a valid branch name", r.String())
		}
	case RefTag:
		if !validRefName(r.Name) {
			return fmt.Errorf("ref %q: not a valid tag name", r.String())
		}
	case RefSemver:
		if _, err := semver.NewConstraint(r.Name); err != nil {
			return fmt.Errorf("ref %q: semver range: %w", r.String(), err)
		}
	case RefCommit:
		if !isFullHash(r.Name) {
			return fmt.Errorf("ref %q: want a full 40-character commit hash", r.String())
		}
	}
	return nil
}

// validRefName rejects the names git itself refuses (git check-ref-format),
// so that a name never reaches a refspec with a colon, a glob or "..".
func validRefName(n string) bool {
	if n == "" || strings.HasPrefix(n, "/") || strings.HasSuffix(n, "/") ||
		strings.HasSuffix(n, ".lock") || strings.HasSuffix(n, ".") ||
		strings.Contains(n, "..") || strings.Contains(n, "//") || strings.Contains(n, "@{") {
		return false
	}
	for _, c := range n {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	return true
}

func isFullHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// highestTag returns the highest tag among names that satisfies the range.
// Tags that are not semantic versions are ignored.
func highestTag(rng string, names []string) (string, error) {
	c, err := semver.NewConstraint(rng)
	if err != nil {
		return "", err
	}
	var best *semver.Version
	var bestName string
	for _, n := range names {
		v, err := semver.NewVersion(n)
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestName = v, n
		}
	}
	if best == nil {
		return "", fmt.Errorf("no tag satisfies semver range %q", rng)
	}
	return bestName, nil
}
