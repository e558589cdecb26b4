package ledger

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// A Stamp is what stat(2) says of a file: its inode, size and change
// times. A poller compares stamps to learn, without reading a ledger,
// that it has not changed since the last read.
type Stamp struct {
	ino, size    uint64
	mtime, ctime int64 // nanoseconds since the epoch
}

// StampFile stats path. It allocates nothing but the path's C string, so
// a poll that finds nothing changed makes (almost) no garbage.
func StampFile(path string) (Stamp, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Stamp{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return Stamp{
		ino:   st.Ino,
		size:  uint64(st.Size),
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
	}, nil
}

// settleTime is how long after its last change a file's stamp is trusted.
// The kernel stamps mtime and ctime from a coarse clock that ticks once a
// jiffy (up to 10 ms, current_time() in fs/inode.c), so two writes within
// one tick can leave equal times; and a ledger's torn tail is truncated
// before an append, so even the size may come back to one seen before.
// A stamp whose times are this old cannot be hiding a second write.
const settleTime = time.Second

// Settled reports whether s's file last changed long enough before now
// for an equal stamp later to mean an unchanged file.
func (s Stamp) Settled(now time.Time) bool {
	n := now.UnixNano()
	return n-s.mtime > int64(settleTime) && n-s.ctime > int64(settleTime)
}

// Stamp is the ledger file's stamp: every Append or Create changes it.
func (l *Ledger) Stamp() (Stamp, error) {
	return StampFile(l.path)
}
