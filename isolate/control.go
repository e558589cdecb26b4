package isolate

import (
	"io"

	"golang.org/x/sys/unix"
)

// controlReader reads the parent's end of the control socket with
// recvmsg(2), keeping file descriptors that arrive with SCM_RIGHTS. A
// plain read(2) would silently close them (unix(7)).
type controlReader struct {
	fd  int
	fds []int
}

func (r *controlReader) Read(p []byte) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(r.fd, p, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if oobn > 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if fds, err := unix.ParseUnixRights(&m); err == nil {
						r.fds = append(r.fds, fds...)
					}
				}
			}
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// takeFD returns the oldest received descriptor.
func (r *controlReader) takeFD() (int, bool) {
	if len(r.fds) == 0 {
		return -1, false
	}
	fd := r.fds[0]
	r.fds = r.fds[1:]
	return fd, true
}

// closeFDs closes descriptors nobody asked for.
func (r *controlReader) closeFDs() {
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	r.fds = nil
}
