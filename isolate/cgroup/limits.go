package cgroup

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Limits are the resource limits of one dyno's leaf. The zero value limits
// nothing but swap (see SwapMax).
type Limits struct {
	// MemoryMax is memory.max in bytes: above it the kernel reclaims and,
	// failing that, OOM-kills inside the leaf. 0 means no limit.
	MemoryMax int64
	// SwapMax is memory.swap.max in bytes; 0 allows no swap, -1 leaves
	// the kernel's default ("max").
	SwapMax int64
	// PidsMax is pids.max: fork(2) and clone(2) fail with EAGAIN once the
	// leaf holds this many tasks, threads included. 0 means no limit.
	PidsMax int64
	// CPUWeight is cpu.weight, the leaf's share of CPU time against its
	// siblings when the CPUs are contended, 1 to 10000; 0 leaves the
	// kernel's default of 100.
	CPUWeight int64
	// CPUQuota is the CPU time the leaf may use in each CPUPeriod, across
	// all CPUs (cpu.max); 0 means no quota.
	CPUQuota time.Duration
	// CPUPeriod is the period of CPUQuota; 0 means 100ms, the kernel's
	// default.
	CPUPeriod time.Duration
}

// Bounds the kernel puts on cpu.weight and cpu.max ("CPU Interface Files";
// kernel/sched/core.c rejects a period outside 1ms..1s and a quota under
// 1ms with EINVAL).
const (
	minCPUWeight     = 1
	maxCPUWeight     = 10000
	defaultCPUPeriod = 100 * time.Millisecond
	minCPUPeriod     = time.Millisecond
	maxCPUPeriod     = time.Second
	minCPUQuota      = time.Millisecond
)

// check reports a limit the kernel would refuse, so that the mistake is
// found before a leaf is made, and the same way against a fake directory.
func (l Limits) check() error {
	switch {
	case l.MemoryMax < 0:
		return fmt.Errorf("memory limit %d is negative", l.MemoryMax)
	case l.SwapMax < -1:
		return fmt.Errorf("swap limit %d is negative (-1 leaves it as is)", l.SwapMax)
	case l.PidsMax < 0:
		return fmt.Errorf("pids limit %d is negative", l.PidsMax)
	case l.CPUWeight != 0 && (l.CPUWeight < minCPUWeight || l.CPUWeight > maxCPUWeight):
		return fmt.Errorf("cpu weight %d is outside %d..%d", l.CPUWeight, minCPUWeight, maxCPUWeight)
	case l.CPUPeriod != 0 && (l.CPUPeriod < minCPUPeriod || l.CPUPeriod > maxCPUPeriod):
		return fmt.Errorf("cpu period %v is outside %v..%v", l.CPUPeriod, minCPUPeriod, maxCPUPeriod)
	case l.CPUQuota != 0 && l.CPUQuota < minCPUQuota:
		return fmt.Errorf("cpu quota %v is under %v", l.CPUQuota, minCPUQuota)
	}
	return nil
}

// setting is one value to write to one interface file of a leaf.
type setting struct {
	file, value string
	// optional settings are skipped when the file does not exist.
	optional bool
}

// settings turns l into the writes that set it, for the controllers that
// are enabled: a controller's files exist only when it is enabled in the
// parent's cgroup.subtree_control ("Enabling and Disabling").
func (l Limits) settings(controllers []string) []setting {
	var out []setting
	if slices.Contains(controllers, "memory") {
		// memory.oom.group=1: on an OOM kill in the leaf the kernel kills
		// every process in it, not just the largest ("Memory Interface
		// Files"). A dyno dies as a unit, as Heroku restarts a dyno that
		// exceeded its memory, and no half-killed process tree lingers.
		out = append(out, setting{file: "memory.oom.group", value: "1"})
		if l.SwapMax >= 0 {
			// memory.swap.max exists only with swap accounting
			// (CONFIG_SWAP and swapaccount not turned off), so its absence
			// means there is no swap to limit.
			out = append(out, setting{file: "memory.swap.max", value: strconv.FormatInt(l.SwapMax, 10), optional: true})
		}
		out = append(out, setting{file: "memory.max", value: maxOrValue(l.MemoryMax)})
	}
	if slices.Contains(controllers, "pids") {
		out = append(out, setting{file: "pids.max", value: maxOrValue(l.PidsMax)})
	}
	if slices.Contains(controllers, "cpu") {
		if l.CPUWeight != 0 {
			out = append(out, setting{file: "cpu.weight", value: strconv.FormatInt(l.CPUWeight, 10)})
		}
		period := l.CPUPeriod
		if period == 0 {
			period = defaultCPUPeriod
		}
		quota := "max"
		if l.CPUQuota != 0 {
			quota = strconv.FormatInt(l.CPUQuota.Microseconds(), 10)
		}
		// cpu.max is "$MAX $PERIOD" in microseconds.
		out = append(out, setting{file: "cpu.max", value: quota + " " + strconv.FormatInt(period.Microseconds(), 10)})
	}
	return out
}

// maxOrValue writes a limit of 0 as "max", the kernel's word for none.
func maxOrValue(n int64) string {
	if n == 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}
