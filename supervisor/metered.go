package supervisor

import (
	"errors"
	"fmt"

	"github.com/dyno-run/dyno/isolate/cgroup"
)

// Metered is a Process whose resources are accounted (a cgroup leaf): the
// manager reports R14 while it is over its memory quota and R15 when the
// kernel killed it for going far over.
type Metered interface {
	Stats() (cgroup.Stats, error)
	// Runtime reads what log-runtime-metrics reports.
	Runtime() (cgroup.Runtime, error)
	// OOMKilled is valid after Wait: the kernel's OOM killer ended it.
	OOMKilled() bool
}

var errNoLimits = errors.New("no cgroup limits for this dyno")

// memoryLine is Heroku's R14 preamble: "Process running mem=520M(101.7%)".
func memoryLine(used, quota int64) string {
	return fmt.Sprintf("Process running mem=%dM(%.1f%%)", (used+(1<<19))>>20, float64(used)*100/float64(quota))
}
