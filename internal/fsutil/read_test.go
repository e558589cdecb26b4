package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadRegular(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("at", strings.Repeat("x", 1024))
	write("over", strings.Repeat("x", 1025))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("fifo", filepath.Join(dir, "to-fifo"))
	os.Symlink("at", filepath.Join(dir, "to-at"))
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "out"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	// Sparse: 100 GB that take no room, and would be allocated whole
	// by os.ReadFile.
	f, err := os.Create(filepath.Join(dir, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(100 << 30); err != nil {
		t.Skipf("no sparse file here: %v", err)
	}
	f.Close()

	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, name := range []string{"at", "to-at"} {
		if data, err := ReadRegular(root, name, 1024); err != nil || len(data) != 1024 {
			t.Errorf("%s: %d bytes, %v", name, len(data), err)
		}
	}
	for _, tc := range []struct{ name, want string }{
		{"over", "read over: larger than 1 KiB, the most dyno reads of it"},
		{"sparse", "read sparse: larger than 1 KiB, the most dyno reads of it"},
		// Without O_NONBLOCK these would block until a writer came.
		{"fifo", "read fifo: is a named pipe (fifo), not a regular file"},
		{"to-fifo", "read to-fifo: is a named pipe (fifo), not a regular file"},
		{"sub", "read sub: is a directory, not a regular file"},
		{"out", "path escapes from parent"},
	} {
		_, err := ReadRegular(root, tc.name, 1024)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadRegular(root, "missing", 1024); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v, want fs.ErrNotExist", err)
	}
}
