// Package attached registers the one-off dynos that `dyno run -a` runs
// in the user's terminal, outside the daemon, so that the daemon lists
// them among the app's dynos as Heroku's ps lists run.N.
//
// Each one-off is two files in the app's folder: NAME.lock, which the
// running CLI holds with flock(2) for as long as the dyno runs, and
// NAME.json, its state, replaced whole by rename(2) at each change so a
// reader never sees half of it. The kernel drops the lock when the CLI
// dies however it dies, so an entry whose lock can be taken belongs to
// no one: List leaves it out and sweeps it. Nothing needs the daemon: a
// daemon that starts later finds the entries of the runs still going.
package attached

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dyno-run/dyno/supervisor"
	"golang.org/x/sys/unix"
)

// Dir is where an app whose folder is appDir keeps its entries.
func Dir(appDir string) string { return filepath.Join(appDir, "attached") }

const (
	lockExt  = ".lock"
	stateExt = ".json"
)

// A Registration is a running one-off's entry, held until Close.
type Registration struct {
	dir  string
	lock *os.File // NAME.lock, flocked
	st   supervisor.DynoStatus
}

// Register records st as a running one-off in dir, creating dir if
// needed. The caller updates it with SetState and must Close it.
func Register(dir string, st supervisor.DynoStatus) (*Registration, error) {
	if !validName(st.Name) {
		return nil, fmt.Errorf("attached: register %q: not a dyno name", st.Name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("attached: register %s: %w", st.Name, err)
	}
	path := filepath.Join(dir, st.Name+lockExt)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("attached: register: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("attached: register %s: another run holds %s: %w", st.Name, path, err)
	}
	r := &Registration{dir: dir, lock: f, st: st}
	if err := r.write(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// SetState records the one-off's new state, since now.
func (r *Registration) SetState(s supervisor.State) error {
	r.st.State, r.st.Since = s, time.Now()
	return r.write()
}

// write replaces NAME.json whole: a temporary file renamed over it.
func (r *Registration) write() error {
	b, err := json.Marshal(r.st)
	if err != nil {
		return fmt.Errorf("attached: %w", err)
	}
	tmp := filepath.Join(r.dir, "."+r.st.Name+stateExt)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("attached: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(r.dir, r.st.Name+stateExt)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("attached: %w", err)
	}
	return nil
}

// Close removes the entry: the state first, then the lock file, which
// is unlocked last, so that List never sees a state without its lock
// held by the run.
func (r *Registration) Close() error {
	if r.lock == nil {
		return nil
	}
	err := os.Remove(filepath.Join(r.dir, r.st.Name+stateExt))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	os.Remove(r.lock.Name())
	r.lock.Close()
	r.lock = nil
	if err != nil {
		return fmt.Errorf("attached: %w", err)
	}
	return nil
}

// List returns the one-offs running in dir, sorted by name. Entries
// whose run is gone (their lock is free) are removed on the way. A dir
// that does not exist holds none.
func List(dir string) ([]supervisor.DynoStatus, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("attached: list: %w", err)
	}
	var out []supervisor.DynoStatus
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), lockExt)
		if !ok || !validName(name) {
			continue
		}
		st, ok := read(dir, name)
		if ok {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b supervisor.DynoStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// read returns name's state if its run still holds the lock, and sweeps
// the entry if it does not.
func read(dir, name string) (supervisor.DynoStatus, bool) {
	var st supervisor.DynoStatus
	lockPath := filepath.Join(dir, name+lockExt)
	f, err := os.Open(lockPath)
	if err != nil {
		return st, false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		// No one holds it: the run died without its Close. Removing
		// while holding the lock keeps a run that took the same name
		// meanwhile from losing its fresh entry (it could not lock).
		os.Remove(filepath.Join(dir, name+stateExt))
		os.Remove(lockPath)
		return st, false
	}
	b, err := os.ReadFile(filepath.Join(dir, name+stateExt))
	if err != nil || json.Unmarshal(b, &st) != nil || st.Name != name {
		// Registered a moment ago and not yet written: next time.
		return st, false
	}
	return st, true
}

// ErrNoRun says that no running one-off has the name.
var ErrNoRun = errors.New("no such attached one-off")

// Signal sends sig to the process that runs the one-off name in dir,
// the Pid it registered (dyno run, which passes SIGTERM on to every
// process of its dyno): ps:stop run.N ends an attached run for good, as
// on Heroku. The process is taken by a pidfd first, then the entry is
// read again: only if a run still holds the name's lock with that pid
// is the signal sent, through the pidfd. A pid that ended and was
// reused in between is a pidfd of a dead process, which no signal
// reaches (pidfd_send_signal(2)).
func Signal(dir, name string, sig unix.Signal) error {
	if !validName(name) {
		return fmt.Errorf("signal %q: %w", name, ErrNoRun)
	}
	st, ok := read(dir, name)
	if !ok || st.Pid <= 0 {
		return fmt.Errorf("signal %s: %w", name, ErrNoRun)
	}
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("signal %s: %w", name, ErrNoRun)
	}
	defer unix.Close(pidfd)
	if again, ok := read(dir, name); !ok || again.Pid != st.Pid {
		return fmt.Errorf("signal %s: %w", name, ErrNoRun)
	}
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("signal %s: %w", name, ErrNoRun)
		}
		return fmt.Errorf("signal %s (pid %d): %w", name, st.Pid, err)
	}
	return nil
}

// validName is a dyno name that is safe as a file name: run.1234.
func validName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
