package isolate

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Sandbox makes a dyno an isolated one: new user (the dyno user, DynoUID,
// inside mapped to the caller's uid, setgroups denied), mount, pid, uts and ipc
// namespaces; a root of read-only host binds; /app an overlay of Lower
// with a fresh upper layer per dyno; a private /tmp, /proc and /dev; its
// own hostname; no capabilities (with IDs, the few of its own user
// namespace that chown and privilege drops need: appCaps). The host's
// network is shared: the app binds $PORT and is reachable on 127.0.0.1.
type Sandbox struct {
	// Lower is the directory seen as /app. It is never written to. ""
	// means no /app (a build sandbox, whose work is in Binds).
	Lower string
	// Binds are host directories seen at the same path inside, after
	// everything else is mounted (so a bind under /tmp lands on the
	// private /tmp): what a build may read or write.
	Binds []Bind
	// StateDir is where the dyno's own directory (upper and work layers,
	// mount point of its root) is made, and removed when the dyno ends.
	// It must be on a disk filesystem (ext4, xfs, btrfs): overlay wants
	// user xattrs and d_type on its upper layer.
	StateDir string
	// Hostname is the dyno's; "" gives a random id.
	Hostname string
	// TmpSize caps /tmp, in bytes; 0 means 512 MiB.
	TmpSize int64
	// ReadOnly are the host paths the dyno sees; nil means
	// DefaultReadOnly.
	ReadOnly []string
	// CopyLower copies Lower instead of mounting an overlay (Probe says
	// when the host refuses overlay in a user namespace).
	CopyLower bool
	// Seccomp loads the syscall deny list for the app.
	Seccomp bool
	// Cgroup, when set, is the dyno's cgroup leaf: init is born in it.
	Cgroup CgroupLeaf
	// IDs, when set, is the app's own slice of host ids (IDAllocator):
	// the app's processes run as the dyno user of a user namespace
	// mapping the whole slice (slice start + DynoUID on the host),
	// instead of as this process's uid. newuidmap and newgidmap write
	// init's maps (a warm init's ahead of its start: WarmUp). Lower must
	// then be the app's own tree, given to that user (GiveTree;
	// slug.Store.UnpackedFor): the overlay shows it as it is, and its
	// copy-up keeps the app the owner of what it writes. The app keeps
	// CAP_CHOWN, CAP_FOWNER, CAP_SETUID, CAP_SETGID and CAP_KILL of its
	// own namespace (appCaps), so chown and privilege drops work within
	// the slice.
	IDs *IDRange
}

// Bind is a host directory made visible in a sandbox at the same path.
type Bind struct {
	Path     string `json:"path"`
	Writable bool   `json:"writable,omitempty"`
}

// CgroupLeaf is the cgroup a dyno is started in.
type CgroupLeaf interface {
	// Open returns the leaf directory, for clone3(CLONE_INTO_CGROUP).
	Open() (*os.File, error)
	// AddProcess moves pid in, where CLONE_INTO_CGROUP is refused.
	AddProcess(pid int) error
}

const defaultTmpSize = 512 << 20

// dynoDir is one dyno's state directory: upper and work layers of the
// overlay, the mount point of its root, and a lock file that init holds
// (inherited as fd 4) for as long as it lives.
type dynoDir struct {
	path string
	lock *os.File
}

// makeDynoDir creates a fresh state directory for a dyno under parent.
func makeDynoDir(parent, id string) (*dynoDir, error) {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("create dyno state dir %s: %w", parent, err)
	}
	path := filepath.Join(parent, id)
	if err := os.Mkdir(path, 0o700); err != nil {
		return nil, fmt.Errorf("create dyno dir: %w", err)
	}
	d := &dynoDir{path: path}
	lock, err := os.OpenFile(filepath.Join(path, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		fsutil.RemoveAll(path)
		return nil, fmt.Errorf("lock dyno dir %s: %w", path, err)
	}
	d.lock = lock
	for _, sub := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(path, sub), 0o755); err != nil {
			d.remove()
			return nil, fmt.Errorf("create dyno dir: %w", err)
		}
	}
	return d, nil
}

func (d *dynoDir) remove() error {
	d.lock.Close()
	return removeDynoDir(d.path)
}

// idsFile, in a dyno's dir, records the app's ids (Sandbox.IDs): what a
// dyno leaves there when its init is killed belongs to them.
const idsFile = "ids.json"

// removeDynoDir removes a dyno's dir; when files of the app's ids are
// left in it (its init was killed before it emptied the upper dir), a
// helper mapping those ids removes them first.
func removeDynoDir(path string) error {
	// Read first: a failed RemoveAll still removes what it can.
	b, rerr := os.ReadFile(filepath.Join(path, idsFile))
	err := fsutil.RemoveAll(path)
	if err == nil || rerr != nil {
		return err
	}
	var r IDRange
	if json.Unmarshal(b, &r) != nil {
		return err
	}
	for _, sub := range []string{"upper", "work"} {
		if herr := RemoveAsOwner(filepath.Join(path, sub), r); herr != nil {
			return fmt.Errorf("%w; as the app's ids: %v", err, herr)
		}
	}
	return fsutil.RemoveAll(path)
}

// SweepDynoDirs removes the directories of dynos under parent that no
// live init holds: leftovers of a crash or a SIGKILL. It reports how many
// it removed.
func SweepDynoDirs(parent string) (int, error) {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep dyno dirs: %w", err)
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(parent, e.Name())
		lock, err := os.OpenFile(filepath.Join(path, "lock"), os.O_RDWR, 0)
		if err != nil {
			// No lock yet: being created right now, or broken long ago.
			if info, serr := os.Stat(path); serr == nil && time.Since(info.ModTime()) > time.Minute {
				if fsutil.RemoveAll(path) == nil {
					removed++
				}
			}
			continue
		}
		if unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			if removeDynoDir(path) == nil {
				removed++
			}
		}
		lock.Close()
	}
	return removed, nil
}

// newID returns a random id in the shape of a UUID, like a Heroku dyno's
// hostname.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
