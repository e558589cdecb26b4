package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dyno-run/dyno/buildpacks/gitpush"
	"github.com/dyno-run/dyno/ledger/app"
)

// A gitRemote is one remote of the repository a command runs in, and
// the app of this machine its URL names ("" for none).
type gitRemote struct {
	Name, URL, App string
}

// gitRemotes lists the remotes of the git repository dir is in, each
// with the app of h its URL names: a local path to an app's repo.git,
// or an SSH or HTTPS URL ending in /APP.git (dyno@host:APP.git,
// https://127.0.0.1:5055/APP.git) for an app that exists here. Outside
// a repository, or without git, there are none.
func gitRemotes(h app.Home, dir string) []gitRemote {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "config", "--get-regexp", `^remote\..*\.url$`)
	cmd.Dir = dir
	cmd.Env = gitpush.CleanEnv(cmd.Environ())
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	var rs []gitRemote
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, u, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(key, "remote."), ".url")
		r := gitRemote{Name: name, URL: u}
		if a := appOfURL(h, u); a != "" {
			if _, err := h.Open(a); err == nil {
				r.App = a
			}
		}
		rs = append(rs, r)
	}
	return rs
}

// appOfURL is the app a remote's URL names, by its shape alone.
func appOfURL(h app.Home, u string) string {
	var p string
	switch {
	case strings.HasPrefix(u, "/") || strings.HasPrefix(u, "file://"):
		p = filepath.Clean(strings.TrimPrefix(u, "file://"))
		// DYNO_HOME/apps/APP/repo.git
		if filepath.Base(p) != "repo.git" || filepath.Dir(filepath.Dir(p)) != filepath.Join(h.Dir, "apps") {
			return ""
		}
		return filepath.Base(filepath.Dir(p))
	case strings.Contains(u, "://"):
		pu, err := url.Parse(u)
		if err != nil {
			return ""
		}
		p = pu.Path
	default:
		// scp-like: [user@]host:path
		_, after, ok := strings.Cut(u, ":")
		if !ok {
			return ""
		}
		p = after
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	if p == "" || strings.Contains(p, "/") || app.ValidName(p) != nil {
		return ""
	}
	return p
}

// appFromRemotes is the app the Heroku CLI's habit picks in dir: the
// remote named dyno, else heroku, else the only remote that names an app
// here; several others are ambiguous, and say which -a to use.
func appFromRemotes(h app.Home, dir string) (string, error) {
	byApp := map[string][]string{}
	for _, r := range gitRemotes(h, dir) {
		if r.App == "" {
			continue
		}
		if r.Name == "dyno" || r.Name == "heroku" {
			// dyno sorts before heroku: checked in that order below.
			byApp["\x00"+r.Name] = []string{r.App}
		}
		byApp[r.App] = append(byApp[r.App], r.Name)
	}
	for _, pref := range []string{"\x00dyno", "\x00heroku"} {
		if a, ok := byApp[pref]; ok {
			return a[0], nil
		}
	}
	if len(byApp) == 1 {
		for a := range byApp {
			return a, nil
		}
	}
	if len(byApp) > 1 {
		var list []string
		for a, remotes := range byApp {
			list = append(list, fmt.Sprintf("%s (remote %s)", a, strings.Join(remotes, ", ")))
		}
		sort.Strings(list)
		return "", fmt.Errorf("the git remotes here name several apps: %s; pick one with -a APP", strings.Join(list, "; "))
	}
	return "", nil
}
