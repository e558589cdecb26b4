// Package isolate runs one dyno: a process tree with a resident init as
// its root, which the dyno manager can signal, stop and kill as a whole.
//
// A dyno is started by re-executing the dyno binary itself as `dyno init
// NAME` (see Start). The parent side (spawn.go) and the child side
// (init.go) talk over one inherited socket, fd 3, with the small protocol
// described in protocol.go. The init makes itself a child subreaper
// (PR_SET_CHILD_SUBREAPER, prctl(2)), so every process the app starts,
// even one that double-forks and calls setsid(2), stays below it: the
// init can always find and kill the whole tree, and when the socket
// closes because the manager died by any path, including SIGKILL, it
// kills the tree and exits. Nothing a dyno started survives it.
//
// Once the app runs, the Go init hands over (handover.go): it execs, in
// place, the resident init built from resident/resident.c and embedded
// in the binary, which does the same for the dyno's life in a few
// kilobytes instead of a Go runtime.
package isolate
