package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ten []time.Duration
	for i := 1; i <= 10; i++ {
		ten = append(ten, time.Duration(i))
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{ten, 0.5, 5},
		{ten, 0.9, 9},
		{ten, 1, 10},
		{ten, 0, 1},
		{ten[:1], 0.5, 1},
		{ten[:1], 0.9, 1},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
		}
	}
}

func TestHostRoot(t *testing.T) {
	dir := t.TempDir()
	usr := filepath.Join(dir, "usr")
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(usr, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr", bin); err != nil {
		t.Fatal(err)
	}
	got := hostRoot([]string{usr, bin, filepath.Join(dir, "lib32")})
	want := []hostPath{{path: usr}, {path: bin, link: "usr"}}
	if !slices.Equal(got, want) {
		t.Errorf("hostRoot = %+v, want %+v", got, want)
	}
}

func TestBwrapArgs(t *testing.T) {
	root := []hostPath{{path: "/usr"}, {path: "/bin", link: "usr/bin"}, {path: "/etc"}}
	got := strings.Join(bwrapArgs(root, "/tmp/lower"), " ")
	want := "--unshare-user --unshare-pid --unshare-uts --unshare-ipc " +
		"--ro-bind /usr /usr --symlink usr/bin /bin --ro-bind /etc /etc " +
		"--proc /proc --dev /dev --tmpfs /tmp --bind /tmp/lower /app --chdir /app /bin/true"
	if got != want {
		t.Errorf("bwrapArgs =\n%s\nwant\n%s", got, want)
	}
}

func TestWriteLower(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "lower")
	if err := writeLower(dir, 2); err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(filepath.Join(dir, "blob0"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "blob1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != fileBytes || len(b) != fileBytes {
		t.Errorf("files of %d and %d bytes, want %d", len(a), len(b), fileBytes)
	}
	if bytes.Equal(a, b) {
		t.Error("the two files are the same")
	}
}

func TestOnly(t *testing.T) {
	c := config{dyno: "bin/dyno", lines: 1, procs: 1, idle: 1, starts: 1, routerDuration: time.Second, routerRounds: 1}
	if err := c.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	for _, s := range sections {
		if !c.runs(s) {
			t.Errorf("no -only: section %s does not run", s)
		}
	}
	c.only = "logs,memory"
	if err := c.validate(); err != nil {
		t.Fatalf("validate -only %s: %v", c.only, err)
	}
	if !c.runs("logs") || !c.runs("memory") || c.runs("sandbox") {
		t.Errorf("-only %s runs logs %v, memory %v, sandbox %v", c.only, c.runs("logs"), c.runs("memory"), c.runs("sandbox"))
	}
	for _, bad := range []string{"sandboxes", "logs,", "throughput"} {
		c.only = bad
		if err := c.validate(); err == nil {
			t.Errorf("validate accepted -only %q", bad)
		}
	}
}

func TestIsDynamic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := isDynamic(path); err == nil {
		t.Error("isDynamic accepted a shell script")
	}
	if _, err := isDynamic("/proc/self/exe"); err != nil {
		t.Errorf("isDynamic(the test binary): %v", err)
	}
}
