package isolate

import "github.com/dyno-run/dyno/isolate/seccomp"

// loadSeccomp installs the dyno's syscall deny list on the calling
// thread; the app forked from it inherits the filter.
func loadSeccomp() error { return seccomp.Load() }
