package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dyno-run/dyno/isolate"
	"golang.org/x/sys/unix"
)

// IDsFile records each app's own slice of host ids
// (isolate.IDAllocator.File).
func (h Home) IDsFile() string { return filepath.Join(h.Dir, "subids.json") }

// ownSlugsDir holds the app's own copies of its slugs (Lower), owned by
// its ids: inside the app's directory, whose 0700 keeps every other uid
// of the host out, the app's own ones included.
func (a *App) ownSlugsDir() string { return filepath.Join(a.Dir, "slugs") }

// Lower returns the directory the app's dynos see as /app for the slug
// of digest. Without ids of its own (ids nil) it is the store's shared
// tree. With them it is the app's own copy, unpacked once per slug and
// given to its dyno user (isolate.IDRange.DynoUser), so that each start mounts the overlay over
// it as it is and copies nothing: a shared tree, owned by this user,
// would be neither readable (its private files) nor writable by the
// app.
func (a *App) Lower(digest string, ids *isolate.IDRange) (string, error) {
	if ids == nil {
		return a.home.Slugs().Unpacked(digest)
	}
	dir, err := a.home.Slugs().UnpackedFor(digest, a.ownSlugsDir(), idOwner(*ids))
	if err != nil {
		return "", err
	}
	// A copy made for other ids (subids.json lost or edited, the app
	// given another slice) would show the app files it can neither read
	// nor write: say so rather than start it.
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", fmt.Errorf("unpack slug %s for %s: %w", digest, a.Name, err)
	}
	uid, gid := ids.DynoUser()
	if int(st.Uid) == ids.UID && int(st.Gid) == ids.GID {
		// Made when dynos ran as the first of the app's ids (uid 0
		// inside): handed to the dyno user they run as now.
		if err := isolate.GiveTree(dir, *ids, false); err != nil {
			return "", fmt.Errorf("unpack slug %s for %s: %w", digest, a.Name, err)
		}
		if err := isolate.GiveTree(dir, *ids, true); err != nil {
			return "", fmt.Errorf("unpack slug %s for %s: %w", digest, a.Name, err)
		}
		if err := unix.Lstat(dir, &st); err != nil {
			return "", fmt.Errorf("unpack slug %s for %s: %w", digest, a.Name, err)
		}
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		return "", fmt.Errorf("unpack slug %s for %s: %s belongs to uid %d and gid %d, not to the app's dyno user %d and %d (%s changed since it was made); remove it as root and start again", digest, a.Name, dir, st.Uid, st.Gid, uid, gid, a.home.IDsFile())
	}
	return dir, nil
}

// GCLowers removes the app's own copies of slugs not in keep that no one
// holds, and returns their digests.
func (a *App) GCLowers(keep map[string]bool) ([]string, error) {
	dir := a.ownSlugsDir()
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	ids, err := isolate.LookupIDs(a.home.IDsFile(), a.Name)
	if err != nil {
		return nil, err
	}
	if ids == nil {
		return nil, fmt.Errorf("gc slugs of %s: %s holds copies of its slugs, but %s records no ids for it to remove them as; remove %s as root", a.Name, dir, a.home.IDsFile(), dir)
	}
	return a.home.Slugs().GCFor(dir, keep, idOwner(*ids))
}

// idOwner gives trees to an app's ids and removes them as those ids.
type idOwner isolate.IDRange

func (o idOwner) Give(path string) error { return isolate.GiveTree(path, isolate.IDRange(o), true) }
func (o idOwner) Remove(path string) error {
	return isolate.RemoveAsOwner(path, isolate.IDRange(o))
}

// removeOwned removes what the app's ids own under dir (the app's
// directory on its way out, in the trash): its copies of its slugs.
func (h Home) removeOwned(name, dir string) error {
	own := filepath.Join(dir, "slugs")
	if _, err := os.Stat(own); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ids, err := isolate.LookupIDs(h.IDsFile(), name)
	if err != nil {
		return err
	}
	if ids == nil {
		return fmt.Errorf("%s holds copies of its slugs, but %s records no ids to remove them as; remove it as root", own, h.IDsFile())
	}
	return isolate.RemoveAsOwner(own, *ids)
}

// Holds reports whether anything of app name may still run as, or lie on
// disk owned by, the app's ids: the app itself, a dyno dir of it (the
// daemon stops a destroyed app's dynos only at its next look), its trash
// (Destroy removes the app's own files after the rename that makes it
// gone) or a build's scratch. Only then may its slice of ids go to
// another app: handed over sooner, two apps would share host uids.
func (h Home) Holds(name string) bool {
	if _, err := h.Open(name); err == nil {
		return true
	}
	if entries, err := os.ReadDir(filepath.Join(h.DynosDir(), name)); err == nil && len(entries) > 0 {
		return true
	}
	for _, dir := range []string{filepath.Join(h.Dir, "trash"), filepath.Join(h.Dir, "builds")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if rest, ok := strings.CutPrefix(e.Name(), name+"-"); ok && rest != "" && !strings.Contains(rest, "-") {
				return true
			}
		}
	}
	return false
}
