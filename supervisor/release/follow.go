package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"golang.org/x/sys/unix"
)

// pollInterval is how often Follow reads the ledger where inotify is
// not to be had: the daemon's own rhythm.
const pollInterval = 250 * time.Millisecond

// Follow calls changed with the ledger's state each time a record is
// committed after seq, the record the caller last acted on, until ctx
// is done. It returns ctx's error then, or the error that keeps the
// ledger from being read (the app was destroyed).
//
// It watches the ledger's folder with inotify(7) rather than reading
// the ledger on a timer: an app that nobody changes costs nothing, and
// a change is seen at once. An append is a write to the ledger
// (IN_MODIFY) and its head file is renamed into place (IN_MOVED_TO);
// either wakes a read of the state, whose sequence number says whether
// a record was committed (a write seen half done is not, and its end
// is another event). Destroying the app moves its folder away
// (IN_MOVE_SELF). Where inotify is refused (no instances left, see
// fs.inotify.max_user_instances), the ledger is read every 250 ms, as
// the daemon reads it.
func Follow(ctx context.Context, l *ledger.Ledger, seq int, changed func(*ledger.State)) error {
	return follow(ctx, l, seq, changed, watchDir)
}

// follow is Follow with the watch given (a test refuses it to try the
// poll).
func follow(ctx context.Context, l *ledger.Ledger, seq int, changed func(*ledger.State), watch func(dir string) (<-chan struct{}, func(), error)) error {
	look := func() error {
		st, err := l.State()
		if err != nil {
			return err
		}
		if st.Seq != seq {
			seq = st.Seq
			changed(st)
		}
		return nil
	}
	var tick <-chan time.Time
	events, stop, err := watch(filepath.Dir(l.Path()))
	if err == nil {
		defer stop()
	} else {
		t := time.NewTicker(pollInterval)
		defer t.Stop()
		tick = t.C
	}
	// A change between the caller's read and the watch is seen here.
	if err := look(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-events:
			if !ok {
				return fmt.Errorf("follow %s: the watch ended", l.Path())
			}
		case <-tick:
		}
		if err := look(); err != nil {
			return err
		}
	}
}

// watchDir sends on events when something in dir changes, or dir itself
// moves or goes; stop ends the watch and closes events.
func watchDir(dir string) (events <-chan struct{}, stop func(), err error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, fmt.Errorf("inotify: %w", err)
	}
	const mask = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE |
		unix.IN_DELETE | unix.IN_MOVE_SELF | unix.IN_DELETE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// Non-blocking, so the runtime's poller waits for it and Close
	// wakes a Read under way.
	f := os.NewFile(uintptr(fd), "inotify:"+dir)
	ch := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
		for {
			// What changed is not read: any event means look again,
			// and one pending token covers a burst.
			if _, err := f.Read(buf); err != nil && !errors.Is(err, unix.EINTR) {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	return ch, func() {
		close(done)
		f.Close()
	}, nil
}
