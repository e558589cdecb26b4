// Package gitpush is the receiving end of git push deploys: each app's
// bare repository and its pre-receive hook, the rules a push follows
// (which refs build, which are refused), and the authorized_keys file
// that lets the system's sshd serve pushes with a forced command.
//
// Git itself does the transport (git receive-pack, run by a local push,
// by sshd through dyno git-shell, or by the daemon's HTTPS listener).
// What dyno adds is the hook: git runs hooks/pre-receive after the
// objects arrive and before any ref moves, with one line per ref on
// stdin (githooks(5)); a non-zero exit rejects the whole push, and what
// the hook writes reaches the pusher as "remote:" lines.
package gitpush

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/ledger/app"
)

// Hook says what the pre-receive hook script runs: the dyno binary, with
// DYNO_HOME, for one app. The script is rewritten whenever dyno touches
// the repository (Ensure), so a dyno binary that moved is followed.
type Hook struct {
	Dyno string // absolute path of the dyno binary
	Home string // DYNO_HOME
	App  string
}

// Script is the text of hooks/pre-receive.
func (h Hook) Script() string {
	return "#!/bin/sh\n" +
		"# Written by dyno (dyno git:remote rewrites it): a push to main or master\n" +
		"# builds and releases " + h.App + "; other refs are refused.\n" +
		"DYNO_HOME=" + shellQuote(h.Home) + "\n" +
		"export DYNO_HOME\n" +
		"exec " + shellQuote(h.Dyno) + " git-hook pre-receive --app " + shellQuote(h.App) + "\n"
}

// shellQuote quotes s for sh: single quotes, each ' written '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Ensure makes dir a bare git repository whose default branch is main,
// with dyno's pre-receive hook, or rewrites the hook of the one there.
// receive.fsckObjects makes git check every object a push brings, so a
// malformed one is refused before the hook ever reads the tree.
func Ensure(ctx context.Context, dir string, h Hook) error {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return fmt.Errorf("git repository %s: %w", dir, err)
		}
		// Made beside and renamed in, so that a push never meets half
		// a repository, and two first pushes at once make one.
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".repo-")
		if err != nil {
			return fmt.Errorf("git repository %s: %w", dir, err)
		}
		defer os.RemoveAll(tmp)
		if err := git(ctx, "init", "--quiet", "--bare", "--initial-branch=main", tmp); err != nil {
			return fmt.Errorf("git repository %s: %w", dir, err)
		}
		for _, kv := range [][2]string{
			{"receive.fsckObjects", "true"},
			// A force push is the pusher's call, as on Heroku.
			{"receive.denyNonFastForwards", "false"},
		} {
			if err := git(ctx, "--git-dir", tmp, "config", kv[0], kv[1]); err != nil {
				return fmt.Errorf("git repository %s: %w", dir, err)
			}
		}
		if err := writeHook(tmp, h); err != nil {
			return fmt.Errorf("git repository %s: %w", dir, err)
		}
		if err := os.Rename(tmp, dir); err != nil && !isExist(err) {
			return fmt.Errorf("git repository %s: %w", dir, err)
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("git repository %s: %w", dir, err)
	}
	if err := writeHook(dir, h); err != nil {
		return fmt.Errorf("git repository %s: %w", dir, err)
	}
	return nil
}

// isExist is a rename's failure because another Ensure made the
// repository first.
// rename(2) onto a folder that is not empty fails with ENOTEMPTY or
// EEXIST.
func isExist(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

// writeHook writes hooks/pre-receive whole, through a rename, unless it
// already says the same.
func writeHook(repo string, h Hook) error {
	path := filepath.Join(repo, "hooks", "pre-receive")
	want := []byte(h.Script())
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFile(path, want, 0o755)
}

// git runs a git command as this user, with git's whole message in its
// error. Variables that point git elsewhere are dropped: a hook's
// environment names the repository that runs it.
func git(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = CleanEnv(os.Environ())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("git %s: %s", args[0], msg)
		}
		return fmt.Errorf("git %s: %w", args[0], err)
	}
	return nil
}

// CleanEnv is env without the variables git sets for a hook (GIT_DIR,
// the quarantine's object folders and the like): a build started from a
// hook must not see the repository that received the push, nor hand it
// to the buildpacks.
func CleanEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GIT_") && k != "GIT_SSL_CAINFO" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// EnsureApp is Ensure for the app's repository, with a hook that runs
// this very binary with the app's DYNO_HOME: dyno apps:create and
// git:remote call it, and so does the daemon when the API creates an
// app, since the daemon is the same dyno binary.
func EnsureApp(ctx context.Context, a *app.App) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("git repository of %s: %w", a.Name, err)
	}
	return Ensure(ctx, a.RepoDir(), Hook{Dyno: exe, Home: a.Home().Dir, App: a.Name})
}
