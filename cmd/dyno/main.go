// Command dyno is Heroku's runtime model on one Linux machine: a Procfile
// runner for development and a dyno manager for production. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/dyno-run/dyno/isolate"
)

func main() {
	// A dyno's init is this same binary re-executed (isolate.Start). It
	// is dispatched before cobra so it starts fast and so the process
	// list inside a dyno reads `dyno init web.1`.
	if len(os.Args) > 1 && os.Args[1] == "init" {
		isolate.Init()
	}
	err := newRootCommand().Execute()
	var exit exitStatus
	switch {
	case errors.As(err, &exit):
		os.Exit(int(exit))
	case err != nil:
		fmt.Fprintf(os.Stderr, "dyno: %v\n", err)
		os.Exit(1)
	}
}

// exitStatus is returned by commands whose exit status is another
// process's (start, run): no message, just the status.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
