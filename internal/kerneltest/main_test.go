package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	console := "Linux version 6.1\r\n" +
		"KERNELTEST BOOT 6.1.176 cpu io memory pids\n" +
		"KERNELTEST RUN root:isolate/cgroup\n" +
		"KERNELTEST PASS root:isolate/cgroup\n" +
		// Kernel output ahead of a result line on the console.
		"[  12.3] oom-kill:constraint=CONSTRAINT_MEMCGKERNELTEST FAIL root:cmd/dyno (exit 1)\n" +
		"KERNELTEST DONE\n" +
		"reboot: Power down\n"
	res := parse(strings.NewReader(console))
	if !res.booted || !res.done || !slices.Equal(res.passed, []string{"root:isolate/cgroup"}) || !slices.Equal(res.failed, []string{"root:cmd/dyno"}) {
		t.Errorf("parse = %+v", res)
	}
	if res.last != "reboot: Power down" {
		t.Errorf("last = %q", res.last)
	}
	if res := parse(strings.NewReader("Kernel panic - not syncing: no init\n")); res.booted || res.done {
		t.Errorf("a guest that never ran init: %+v", res)
	}
}
