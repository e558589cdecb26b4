//go:build linux && !amd64 && !arm64

package seccomp

// auditArch 0 makes Program report the architecture as unsupported: the
// program has been written and tested for amd64 and arm64 only, and
// loading it elsewhere with guessed numbers could deny the wrong calls.
const auditArch = 0

const hasX32 = false

var syscallNumbers map[string]int
