package isolate

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// AppIDs is how many uids (and gids) each app gets: a full 16-bit range,
// so that chown, tar restoring owners and programs that drop privileges
// work inside its dynos.
const AppIDs = 65536

// IDRange is an app's own slice of host ids: Size uids from UID and Size
// gids from GID, taken from the ranges /etc/subuid and /etc/subgid give
// the user dyno runs as (subuid(5)). Its dynos' processes run as those
// host ids, which no other app shares.
type IDRange struct {
	UID  int `json:"uid"`
	GID  int `json:"gid"`
	Size int `json:"size"`
}

// DynoUser is the host uid and gid the app's builds and dynos run as,
// and own their files as: the dyno user's (DynoUID) in the slice.
func (r IDRange) DynoUser() (uid, gid int) { return r.UID + DynoUID, r.GID + DynoGID }

// SubRange is one line of /etc/subuid or /etc/subgid.
type SubRange struct{ Start, Count int }

// ReadSubRanges returns the ranges that file (/etc/subuid or
// /etc/subgid) gives the user called name, whose uid is uid: lines name
// the user or give its uid (subuid(5)). A missing file means none.
func ReadSubRanges(file, name string, uid int) ([]SubRange, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	defer f.Close()
	var out []SubRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) != 3 || (fields[0] != name && fields[0] != strconv.Itoa(uid)) {
			continue
		}
		start, err1 := strconv.Atoi(fields[1])
		count, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil || start < 0 || count <= 0 {
			continue // newuidmap skips what it cannot parse too
		}
		if start == 0 || (uid >= start && uid-start < count) {
			// A slice holding host root, or this user itself, would give
			// an app root's files or the daemon's own: a mistake in the
			// file, never a range to hand out.
			continue
		}
		out = append(out, SubRange{start, count})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return out, nil
}

// slices of size within ranges, in file order.
func blocks(ranges []SubRange, size int) []int {
	var out []int
	for _, r := range ranges {
		for s := r.Start; s+size <= r.Start+r.Count; s += size {
			out = append(out, s)
		}
	}
	return out
}

// IDAllocator hands each app a slice of the user's subordinate ids and
// records it in File, so the slice stays the app's for as long as the
// app exists: its files keep their owners across restarts of dyno.
type IDAllocator struct {
	File       string // $DYNO_HOME/subids.json, the user's own (0600)
	UIDs, GIDs []SubRange
}

// NewIDAllocator reads the ranges of the user this process runs as. It
// returns nil when there are none: dynos then run as the user's own uid,
// and NoRangesWarning says how to give it some.
func NewIDAllocator(file string) (*IDAllocator, error) {
	name := ""
	if u, err := userName(os.Getuid()); err == nil {
		name = u
	}
	uids, err := ReadSubRanges("/etc/subuid", name, os.Getuid())
	if err != nil {
		return nil, err
	}
	gids, err := ReadSubRanges("/etc/subgid", name, os.Getuid())
	if err != nil {
		return nil, err
	}
	if len(blocks(uids, AppIDs)) == 0 || len(blocks(gids, AppIDs)) == 0 {
		return nil, nil
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		return nil, nil
	}
	if _, err := exec.LookPath("newgidmap"); err != nil {
		return nil, nil
	}
	return &IDAllocator{File: file, UIDs: uids, GIDs: gids}, nil
}

// NoRangesWarning is the one line said when the user has no ranges of
// its own (or newuidmap is missing).
func NoRangesWarning() string {
	name := strconv.Itoa(os.Getuid())
	if u, err := userName(os.Getuid()); err == nil {
		name = u
	}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		return "newuidmap is not installed, so every app's dynos run as this user's own uid; install the uidmap package (apt-get install uidmap) and give " + name + " subordinate ids: sudo usermod --add-subuids 100000-6653599 --add-subgids 100000-6653599 " + name
	}
	return fmt.Sprintf("%s has no %d subordinate ids in /etc/subuid and /etc/subgid, so every app's dynos run as its own uid; give it ranges, %d ids per app (these are 100 apps): sudo usermod --add-subuids 100000-6653599 --add-subgids 100000-6653599 %s", name, AppIDs, AppIDs, name)
}

// userName looks the user up in /etc/passwd without cgo.
func userName(uid int) (string, error) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(uid) {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("uid %d is not in /etc/passwd", uid)
}

// idFile is what IDAllocator.File holds.
type idFile struct {
	Apps map[string]IDRange `json:"apps"`
}

// Alloc returns app's slice, allocating one the first time. A slice
// whose app holds nothing any more (holds says: no app, no dyno, no
// files of its ids left; app.Home.Holds) is taken back, and only then
// given to another app; an app's slice is never moved. It holds an
// exclusive flock on File.lock across the read and the atomic replace,
// so two dyno processes never hand out one slice twice.
func (a *IDAllocator) Alloc(app string, holds func(app string) bool) (IDRange, error) {
	lock, err := os.OpenFile(a.File+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return IDRange{}, fmt.Errorf("allocate ids for %s: %w", app, err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return IDRange{}, fmt.Errorf("allocate ids for %s: lock %s: %w", app, lock.Name(), err)
	}
	var f idFile
	b, err := os.ReadFile(a.File)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return IDRange{}, fmt.Errorf("allocate ids for %s: %w", app, err)
	default:
		if err := json.Unmarshal(b, &f); err != nil {
			return IDRange{}, fmt.Errorf("allocate ids for %s: %s is not valid JSON (%v); move it away and start again, apps then get new ids", app, a.File, err)
		}
	}
	if f.Apps == nil {
		f.Apps = map[string]IDRange{}
	}
	if r, ok := f.Apps[app]; ok {
		if !within(a.UIDs, r.UID, r.Size) || !within(a.GIDs, r.GID, r.Size) {
			return IDRange{}, fmt.Errorf("allocate ids for %s: %s gives it uids %d and gids %d (%d each), which /etc/subuid and /etc/subgid no longer give this user; give them back, or remove %s from %s", app, a.File, r.UID, r.GID, r.Size, app, a.File)
		}
		return r, nil
	}
	uids, gids := blocks(a.UIDs, AppIDs), blocks(a.GIDs, AppIDs)
	usedU, usedG := map[int]bool{}, map[int]bool{}
	for _, name := range slices.Sorted(maps.Keys(f.Apps)) {
		if holds != nil && !holds(name) {
			delete(f.Apps, name) // its app is gone: the slice is free
			continue
		}
		usedU[f.Apps[name].UID], usedG[f.Apps[name].GID] = true, true
	}
	r := IDRange{UID: -1, GID: -1, Size: AppIDs}
	for _, u := range uids {
		if !usedU[u] {
			r.UID = u
			break
		}
	}
	for _, g := range gids {
		if !usedG[g] {
			r.GID = g
			break
		}
	}
	if r.UID < 0 || r.GID < 0 {
		return IDRange{}, fmt.Errorf("allocate ids for %s: every slice of %d ids in /etc/subuid and /etc/subgid is taken (%d apps); give this user more, e.g. sudo usermod --add-subuids 100000-6653599 --add-subgids 100000-6653599 USER", app, AppIDs, len(f.Apps))
	}
	f.Apps[app] = r
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return IDRange{}, err
	}
	tmp := a.File + ".tmp"
	if err := writeSynced(tmp, append(out, '\n')); err != nil {
		return IDRange{}, fmt.Errorf("allocate ids for %s: %w", app, err)
	}
	if err := os.Rename(tmp, a.File); err != nil {
		os.Remove(tmp)
		return IDRange{}, fmt.Errorf("allocate ids for %s: %w", app, err)
	}
	return r, nil
}

// LookupIDs returns the slice that file (IDAllocator.File) records for
// app, allocating none: nil when it records none, as when the user has
// no subordinate ids. What the app's ids own (its copies of its slugs)
// is removed with it (RemoveAsOwner).
func LookupIDs(file, app string) (*IDRange, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up the ids of %s: %w", app, err)
	}
	var f idFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("look up the ids of %s: %s is not valid JSON (%v)", app, file, err)
	}
	r, ok := f.Apps[app]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

func within(ranges []SubRange, start, size int) bool {
	for _, r := range ranges {
		if start >= r.Start && start+size <= r.Start+r.Count {
			return true
		}
	}
	return false
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mapIDs writes the uid and gid maps of pid's user namespace with the
// setuid helpers newuidmap and newgidmap (the uidmap package): inside 0
// is this process's own uid and gid, so that init, re-executed once
// mapped, holds the namespace's capabilities and can reach dyno's state;
// inside 1 to r.Size are the app's slice, which its dynos' processes run
// as (from a nested user namespace where they are 0 to r.Size-1).
func mapIDs(pid int, r IDRange) error {
	p := strconv.Itoa(pid)
	for _, m := range []struct {
		tool      string
		own, base int
	}{{"newuidmap", os.Getuid(), r.UID}, {"newgidmap", os.Getgid(), r.GID}} {
		out, err := exec.Command(m.tool, p, "0", strconv.Itoa(m.own), "1", "1", strconv.Itoa(m.base), strconv.Itoa(r.Size)).CombinedOutput()
		if err != nil {
			msg := strings.TrimSpace(string(out))
			if errors.Is(err, exec.ErrNotFound) {
				msg = "install the uidmap package"
			}
			return fmt.Errorf("%s %s 0 %d 1 1 %d %d: %v: %s", m.tool, p, m.own, m.base, r.Size, err, msg)
		}
	}
	return nil
}
