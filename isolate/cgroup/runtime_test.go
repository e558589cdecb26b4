package cgroup

import (
	"os"
	"path/filepath"
	"testing"
)

// Runtime reads memory.stat's anon and file, io.stat's bytes summed over
// devices, and counts the leaf's threads in R or D from /proc, a COMM
// with spaces and parentheses included; a controller that is off reads
// as 0.
func TestRuntime(t *testing.T) {
	t.Parallel()
	dir, proc := t.TempDir(), t.TempDir()
	files := map[string]string{
		"memory.current":      "23068672\n",
		"memory.swap.current": "1048576\n",
		"memory.stat":         "anon 20971520\nfile 2097152\nkernel 0\nanon_thp 0\n",
		"io.stat":             "8:0 rbytes=8192 wbytes=4096 rios=2 wios=1 dbytes=0 dios=0\n253:1 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
		"cgroup.threads":      "10\n11\n12\n13\n",
		"cpu.stat":            "usage_usec 1500000\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for tid, stat := range map[string]string{
		"10": "10 (node) S 1 10 10 0 -1",
		"11": "11 (node worker) R 1 10 10 0 -1",
		"12": "12 (a) b (c) D 1 10 10 0 -1",
		// 13 has ended: no /proc entry.
	} {
		os.MkdirAll(filepath.Join(proc, tid), 0o755)
		if err := os.WriteFile(filepath.Join(proc, tid, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := &Leaf{path: dir, ops: kernelOps(), proc: proc}
	r, err := l.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	want := Runtime{Stats: Stats{MemoryCurrent: 23068672, SwapCurrent: 1048576, CPUUsage: 1500000 * 1000},
		Anon: 20971520, File: 2097152, ReadBytes: 12288, WriteBytes: 4096, Runnable: 2}
	if r != want {
		t.Errorf("Runtime() = %+v\nwant        %+v", r, want)
	}

	os.Remove(filepath.Join(dir, "io.stat"))
	os.Remove(filepath.Join(dir, "memory.stat"))
	if r, err := l.Runtime(); err != nil || r.ReadBytes != 0 || r.Anon != 0 {
		t.Errorf("without io and memory.stat: %+v, %v", r, err)
	}
}
