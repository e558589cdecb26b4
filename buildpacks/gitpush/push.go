package gitpush

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// An Update is one line of pre-receive's input: a ref moving from Old to
// New (githooks(5): "<old-value> SP <new-value> SP <ref-name> LF").
// An Old of zeros creates the ref; a New of zeros deletes it.
type Update struct {
	Old, New, Ref string
}

// maxUpdates bounds what a hook reads: no push that builds has more.
const maxUpdates = 10000

// ReadUpdates reads pre-receive's input.
func ReadUpdates(r io.Reader) ([]Update, error) {
	var us []Update
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 || !isObjectName(f[0]) || !isObjectName(f[1]) {
			return nil, fmt.Errorf("pre-receive: malformed update line %q", sc.Text())
		}
		if len(us) == maxUpdates {
			return nil, fmt.Errorf("pre-receive: over %d refs in one push", maxUpdates)
		}
		us = append(us, Update{Old: f[0], New: f[1], Ref: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pre-receive: %w", err)
	}
	return us, nil
}

// isObjectName is a SHA-1 or SHA-256 object name in hex.
func isObjectName(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isZero(s string) bool { return strings.Trim(s, "0") == "" }

// Creates says the update makes a new ref.
func (u Update) Creates() bool { return isZero(u.Old) }

// Deletes says the update removes the ref.
func (u Update) Deletes() bool { return isZero(u.New) }

// Branch is the branch name of a refs/heads/ ref, or "".
func (u Update) Branch() string {
	b, ok := strings.CutPrefix(u.Ref, "refs/heads/")
	if !ok {
		return ""
	}
	return b
}

// A Plan is what a push does: the update that builds (nil for none: a
// push of tags only), or, when Refused is set, nothing at all, with the
// lines that say why. A hook either takes every ref or none
// (githooks(5)), so one refused ref refuses the push.
type Plan struct {
	Build   *Update
	Refused []string
}

// PlanPush applies Heroku's rules: main or master builds and deploys;
// a push to another branch is refused (push it to main: git push dyno
// feature:main); tags are kept and build nothing; main and master are
// never deleted. remote is the remote's name in the hints.
func PlanPush(us []Update, remote string) Plan {
	var p Plan
	for i := range us {
		u := &us[i]
		switch b := u.Branch(); {
		case b == "main" || b == "master":
			if u.Deletes() {
				p.Refused = append(p.Refused, fmt.Sprintf("Deleting %s is not allowed: it is what the app's releases are built from.", b))
				continue
			}
			if p.Build != nil {
				p.Refused = append(p.Refused, fmt.Sprintf("Push main or master, not both: %s and %s were pushed together.", p.Build.Branch(), b))
				continue
			}
			p.Build = u
		case b != "":
			if u.Deletes() {
				// Nothing to refuse: such a branch was never kept.
				continue
			}
			p.Refused = append(p.Refused,
				"Pushed to non-main branch, skipping build.",
				fmt.Sprintf("Only main and master deploy; to deploy %s, push it to main: git push %s %s:main", b, remote, b))
		case strings.HasPrefix(u.Ref, "refs/tags/"):
		default:
			p.Refused = append(p.Refused, fmt.Sprintf("Pushed %s, refused: only branches main and master, and tags, are kept.", u.Ref))
		}
	}
	if len(p.Refused) > 0 {
		p.Build = nil
	}
	return p
}
