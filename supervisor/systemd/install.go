package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// Install writes unit, the text of a unit file, to path, and returns the
// commands to run next, one command line each.
//
// The unit is written to a temporary file in the same directory, made
// 0644 and renamed over path, so that systemd, which may read units at
// any moment (a daemon-reload by someone else), sees the old unit or the
// new one, never a part of one. The directory is created when missing.
//
// An existing unit with the same text is left alone. One that differs is
// replaced only when force is set; else Install returns an error that
// wraps fs.ErrExist. A unit changed by hand is the administrator's, and
// belongs in a drop-in (systemctl edit) instead.
//
// The unit is taken for a user unit when its directory is named
// systemd/user, like every directory of the user unit search path
// (systemd.unit(5)). Then the commands use systemctl --user and begin
// with loginctl enable-linger (loginctl(1)): without it the user's
// manager, and dyno with it, starts only at the user's first login and
// stops at the last logout; with it, the manager starts at boot and at
// once, so the systemctl --user commands after it find one to talk to.
// When Install replaced a different unit, the commands include a
// try-restart, which restarts a running daemon so that it runs under the
// new unit; enable --now starts one that is not running.
func Install(path, unit string, force bool) (next []string, err error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, []byte(unit)):
		return nextCommands(path, false), nil
	case err == nil && !force:
		return nil, fmt.Errorf("install %s: a different unit is there (force replaces it): %w", path, fs.ErrExist)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("install %s: %w", path, err)
	}
	replaced := err == nil

	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("install %s: %w", path, err)
	}
	// Atomically: systemd may read a unit at any moment.
	if err := fsutil.WriteFile(path, []byte(unit), 0o644); err != nil {
		return nil, fmt.Errorf("install: %w", err)
	}
	return nextCommands(path, replaced), nil
}

// nextCommands returns the commands that load and start the unit at path.
func nextCommands(path string, replaced bool) []string {
	name := strings.TrimSuffix(filepath.Base(path), ".service")
	userUnit := filepath.Base(filepath.Dir(path)) == "user" &&
		filepath.Base(filepath.Dir(filepath.Dir(path))) == "systemd"
	ctl := "systemctl"
	if userUnit {
		ctl = "systemctl --user"
	}
	var next []string
	if userUnit {
		next = append(next, "loginctl enable-linger "+currentUser())
	}
	next = append(next, ctl+" daemon-reload")
	if replaced {
		next = append(next, ctl+" try-restart "+name)
	}
	return append(next, ctl+" enable --now "+name)
}

// currentUser names the user running this process for loginctl, which
// takes a name or a uid: the name when the user database has one.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}
