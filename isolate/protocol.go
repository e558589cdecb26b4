package isolate

import (
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// The protocol between the dyno manager (parent) and a dyno's init
// (child) runs over a SOCK_STREAM unix socketpair; the child's end is its
// fd 3. Until the app runs, each message is one JSON object;
// json.Decoder frames them.
//
//	parent -> child  Config{Prepare:true}    a warm init's first: build the common
//	                                         part of the root (Root, ReadOnly) now
//	parent -> child  Config                  once, first (after the above, if sent)
//	child  -> parent Message{Type:"warning"} something fell back (overlay -> copy); the dyno runs
//	                 Message{Type:"pty"}     with SCM_RIGHTS: the master of a PTY made in
//	                                         the dyno's own devpts (Sandbox.PTY)
//	                 Message{Type:"started"} the app is running, with its pid
//	                 Message{Type:"error"}   the dyno could not be set up or the app started
//
// After "started", the parent sends fixed binary records, which the
// resident init (isolate/resident/resident.c, handover.go), a program
// with no JSON parser, reads:
//
//	parent -> child  's' N                   send signal N (one byte, 1 to 64) to
//	                                         every process of the dyno
//	                 'k'                     SIGKILL every process of the dyno, exit
//
// Blanks where a record begins are skipped: they are the end of the
// config's JSON line, which the child's JSON decoder may leave unread.
// Any other byte there is taken as end of file.
// The child sends nothing more. "started" comes from the Go init as
// soon as the app is forked, before it hands over to the resident init
// (handover.go), whichever then reads the records.
//
// The child's exit status is the app's: its exit code, or 128+N when a
// signal N killed it. End of file on the socket means the parent is gone:
// the child kills every process of the dyno and exits.

// A dyno with its own ids (Sandbox.IDs) is started as `dyno init
// --mapped NAME`, in a user namespace with no maps yet: its execve found
// no uid 0 there and left it no capabilities. It waits for
//
//	parent -> child  Message{Type:"mapped"}  newuidmap and newgidmap are done
//
// reading byte by byte so nothing after it is consumed, and re-executes
// itself as `dyno init NAME`: as uid 0 of a mapped namespace, that
// execve gives it the namespace's capabilities. The protocol above then
// runs as for any dyno.
//
// controlFD is the child's end of the socket: the first of
// exec.Cmd.ExtraFiles, after stdin, stdout and stderr. lockFD, for a
// sandboxed dyno, holds a flock on the dyno's state directory for as
// long as any process of the dyno's init lives, so a sweep of stale
// directories never takes a live one.
const (
	controlFD = 3
	lockFD    = 4
)

// Config is what the parent sends first: the app to run.
type Config struct {
	Name string   `json:"name"` // the dyno's name, e.g. "web.1"
	Argv []string `json:"argv"` // argv[0] is looked up in PATH of Env
	Dir  string   `json:"dir"`
	Env  []string `json:"env"`
	// TTY makes the app's stdin (a terminal) its controlling terminal.
	TTY bool `json:"tty,omitempty"`
	// Prepare marks a warm init's first message: only Sandbox.Root and
	// Sandbox.ReadOnly are set; the full Config follows when a dyno
	// takes the init.
	Prepare bool `json:"prepare,omitempty"`
	// Stdio says the message carries, with SCM_RIGHTS, the app's stdin,
	// stdout and stderr, for init to put on its fds 0, 1 and 2: a warm
	// init (Spawner.SetPrewarm) was started before they were known.
	Stdio bool `json:"stdio,omitempty"`
	// Sandbox, when set, says init runs in new namespaces and builds the
	// dyno's root before starting the app.
	Sandbox *SandboxConfig `json:"sandbox,omitempty"`
	// Remove, set alone, makes a mapped init a helper that removes this
	// path, files of the app's ids included, answers "started" (or an
	// error) and exits.
	Remove string `json:"remove,omitempty"`
	// Chown, set alone, makes a mapped init a helper that hands a tree
	// between the manager's ids and the app's (GiveTrees).
	Chown *ChownConfig `json:"chown,omitempty"`
	// KeepGoInit keeps the Go init resident instead of handing over to
	// the resident init (handover.go): tests of its loop use it.
	KeepGoInit bool `json:"keep_go_init,omitempty"`
}

// ChownConfig is a GiveTrees: in the helper's namespace the manager's
// ids are 0 and the app's 1 to its size.
type ChownConfig struct {
	Paths []string `json:"paths"`
	ToApp bool     `json:"to_app"`
}

// SandboxConfig is the child's part of a sandboxed dyno: host paths are
// as seen before pivot_root.
type SandboxConfig struct {
	Root     string   `json:"root"`  // empty dir: the new root's tmpfs is mounted here
	Lower    string   `json:"lower"` // read-only lower layer of /app; "" for none
	Binds    []Bind   `json:"binds,omitempty"`
	Upper    string   `json:"upper"` // overlay upper and work dirs, fresh per dyno,
	Work     string   `json:"work"`  // on the same filesystem
	ReadOnly []string `json:"ro"`    // host paths bound read-only at the same place
	Hostname string   `json:"hostname"`
	TmpSize  int64    `json:"tmp_size"` // bytes for the private /tmp
	// CopyLower copies Lower into Upper and binds that on /app, for
	// hosts that refuse overlay in a user namespace.
	CopyLower bool `json:"copy_lower,omitempty"`
	// PTY makes a terminal in the dyno's devpts for the app's stdio and
	// sends its master to the parent.
	PTY bool `json:"pty,omitempty"`
	// Rows and Cols size that PTY before the app starts.
	Rows uint16 `json:"rows,omitempty"`
	Cols uint16 `json:"cols,omitempty"`
	// Seccomp loads the deny list before the app starts.
	Seccomp bool `json:"seccomp,omitempty"`
	// Hidden are covered with empty read-only mounts, after Binds.
	Hidden []Hidden `json:"hidden,omitempty"`
	// IDs is the size of the app's slice of ids when init's user
	// namespace maps one at 1 (Sandbox.IDs): the app then runs in a
	// nested user namespace mapping them from 0, whose exec stage
	// becomes the dyno user, keeping of the capabilities it has there
	// only appCaps (chown and privilege drops within the range).
	IDs int `json:"ids,omitempty"`
}

// Message is every message after Config, in both directions.
type Message struct {
	Type   string `json:"type"`
	Pid    int    `json:"pid,omitempty"`
	Signal int    `json:"signal,omitempty"`
	Error  string `json:"error,omitempty"`
}

const (
	msgStarted = "started"
	msgWarning = "warning"
	msgPTY     = "pty"
	msgError   = "error"
	msgMapped  = "mapped"
)

// The records the parent sends after "started".
const (
	ctlSignal = 's'
	ctlKill   = 'k'
)

// A ctlRecord is one of them, decoded.
type ctlRecord struct {
	op  byte
	sig unix.Signal // ctlSignal's
}

// signalRecord and killRecord encode them.
func signalRecord(sig unix.Signal) []byte { return []byte{ctlSignal, byte(sig)} }
func killRecord() []byte                  { return []byte{ctlKill} }

// readRecord reads the next record, skipping blanks before it.
func readRecord(r io.ByteReader) (ctlRecord, error) {
	for {
		op, err := r.ReadByte()
		if err != nil {
			return ctlRecord{}, err
		}
		switch op {
		case ' ', '\t', '\r', '\n':
			continue
		case ctlKill:
			return ctlRecord{op: op}, nil
		case ctlSignal:
			n, err := r.ReadByte()
			if err != nil {
				return ctlRecord{}, err
			}
			return ctlRecord{op: op, sig: unix.Signal(n)}, nil
		}
		return ctlRecord{}, fmt.Errorf("unknown control record %q", op)
	}
}
