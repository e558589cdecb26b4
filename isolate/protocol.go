package isolate

// The protocol between the dyno manager (parent) and a dyno's init
// (child) runs over a SOCK_STREAM unix socketpair; the child's end is its
// fd 3. Each message is one JSON object; json.Decoder frames them.
//
//	parent -> child  Config                  once, first
//	child  -> parent Message{Type:"started"} the app is running, with its pid
//	                 Message{Type:"error"}   the app could not be started
//	parent -> child  Message{Type:"signal"}  send Signal to every process of the dyno
//	                 Message{Type:"kill"}    SIGKILL every process of the dyno
//
// The child's exit status is the app's: its exit code, or 128+N when a
// signal N killed it. End of file on the socket means the parent is gone:
// the child kills every process of the dyno and exits.

// controlFD is the child's end of the socket: the first of
// exec.Cmd.ExtraFiles, after stdin, stdout and stderr.
const controlFD = 3

// Config is what the parent sends first: the app to run.
type Config struct {
	Name string   `json:"name"` // the dyno's name, e.g. "web.1"
	Argv []string `json:"argv"` // argv[0] is looked up in PATH of Env
	Dir  string   `json:"dir"`
	Env  []string `json:"env"`
	// TTY makes the app's stdin (a terminal) its controlling terminal.
	TTY bool `json:"tty,omitempty"`
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
	msgError   = "error"
	msgSignal  = "signal"
	msgKill    = "kill"
)
