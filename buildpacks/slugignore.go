package buildpacks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// A slugPattern is one line of a .slugignore file, split at "/".
type slugPattern struct {
	segs    []string // path.Match patterns, or "**" for any number of directories
	dirOnly bool     // the line ended in "/"
}

// parseSlugignore reads .slugignore's gitignore-like syntax. name is the
// file as the user knows it, for error messages.
//
// A pattern with a "/" before its end is anchored at the top of the app,
// as in gitignore; one without matches a name at any depth. Negation is
// refused rather than ignored: Heroku does not support it, and silently
// dropping a "!" line would keep out files the user meant to ship.
func parseSlugignore(name string, data []byte) ([]slugPattern, error) {
	var pats []slugPattern
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '!' {
			return nil, fmt.Errorf(`%s:%d: %q: negated patterns ("!") are not supported`, name, i+1, line)
		}
		var p slugPattern
		pat := line
		if strings.HasSuffix(pat, "/") {
			p.dirOnly = true
			pat = strings.TrimRight(pat, "/")
		}
		anchored := strings.Contains(pat, "/")
		for _, seg := range strings.Split(pat, "/") {
			if seg == "" {
				continue
			}
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("%s:%d: %q: %w", name, i+1, line, err)
			}
			p.segs = append(p.segs, seg)
		}
		if len(p.segs) == 0 {
			return nil, fmt.Errorf("%s:%d: %q: the pattern names no file", name, i+1, line)
		}
		if !anchored {
			p.segs = append([]string{"**"}, p.segs...)
		}
		pats = append(pats, p)
	}
	return pats, nil
}

// match reports whether the slash-separated path rel, relative to the
// top of the app, is matched.
func (p slugPattern) match(rel string, isDir bool) bool {
	if p.dirOnly && !isDir {
		return false
	}
	return matchSegs(p.segs, strings.Split(rel, "/"))
}

// matchSegs matches path segments against pattern segments. "**" matches
// zero or more segments, except at the end, where it matches one or
// more: "logs/**" is what is inside logs, as in gitignore.
func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			if len(pat) == 1 {
				return len(name) > 0
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// maxSlugignoreSize bounds .slugignore, a list of patterns.
const maxSlugignoreSize = 1 << 20

// applySlugignore removes from dir what dir/.slugignore names. shownAs
// is the file's name in error messages.
//
// The file is the app's, and may be anything (a symlink to a fifo, a
// sparse file of 100 GB): it is read as ReadRegular reads what code dyno
// did not write, inside dir, a regular file, at most
// maxSlugignoreSize.
func applySlugignore(dir, shownAs string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("reading .slugignore: %w", err)
	}
	data, err := fsutil.ReadRegular(root, ".slugignore", maxSlugignoreSize)
	root.Close()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err // names .slugignore
	}
	pats, err := parseSlugignore(shownAs, data)
	if err != nil || len(pats) == 0 {
		return err
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, pat := range pats {
			if !pat.match(rel, d.IsDir()) {
				continue
			}
			if err := fsutil.RemoveAll(p); err != nil {
				return fmt.Errorf("applying .slugignore: %w", err)
			}
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return nil
	})
}
