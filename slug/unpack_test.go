package slug

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// A tarEntry is an entry of a test archive; body is the content of a regular file.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func tarFile(name, body string) tarEntry {
	return tarEntry{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body}
}

func tarDir(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func tarSymlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// makeArchive returns the gzip'd tar of entries, written as given.
func makeArchive(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := e.hdr
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("%s: %v", hdr.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("%s: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnpack(t *testing.T) {
	t.Parallel()
	when := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	exe := tarFile("bin/x", "#!/bin/sh\n")
	exe.hdr.Mode = 0o755
	exe.hdr.ModTime = when
	lib := tarDir("./lib/")
	lib.hdr.Mode = 0o750
	lib.hdr.ModTime = when
	sticky := tarDir("tmp/")
	sticky.hdr.Mode = 0o1777
	data := makeArchive(t,
		tarDir("./"),
		exe, // its parent comes from nowhere: made 0755
		tarFile("lib/deep/er/f", "deep"),
		lib, // after its contents: the mode and time still apply
		tarSymlink("lib/up", "../bin/x"),
		tarSymlink("lib/deep/er/top", "../../../Procfile"),
		tarSymlink("self", "."),
		tarFile("Procfile", "web: bin/x\n"),
		sticky,
	)
	dst := filepath.Join(t.TempDir(), "app")
	if err := Unpack(bytes.NewReader(data), dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dst, 0)
	want := map[string]string{
		"Procfile":        `file -rw-r--r-- "web: bin/x\n"`,
		"bin":             "dir -rwxr-xr-x",
		"bin/x":           `file -rwxr-xr-x "#!/bin/sh\n"`,
		"lib":             "dir -rwxr-x---",
		"lib/deep":        "dir -rwxr-xr-x",
		"lib/deep/er":     "dir -rwxr-xr-x",
		"lib/deep/er/f":   `file -rw-r--r-- "deep"`,
		"lib/deep/er/top": "link ../../../Procfile",
		"lib/up":          "link ../bin/x",
		"self":            "link .",
		"tmp":             "dir -rwxrwxrwx",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d entries, want %d: %v", len(got), len(want), got)
	}
	for _, name := range []string{"bin/x", "lib"} {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(when) {
			t.Errorf("%s: mtime %v, want %v", name, fi.ModTime(), when)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "lib/up")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Errorf("reading through lib/up: %q, %v", b, err)
	}

	if err := Unpack(bytes.NewReader(data), dst, Limits{}); err == nil {
		t.Error("Unpack into an existing dst succeeded")
	}
}

// zeroStream is a gzip'd tar of files of fileSize bytes of zeros, named
// z00000, z00001, ... (or "zeros" when there is one), totalling size
// bytes, made for as long as it is read. produced counts the bytes of
// file content it has made.
func zeroStream(size, fileSize int64, produced *atomic.Int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		zw := gzip.NewWriter(pw)
		tw := tar.NewWriter(zw)
		zeros := make([]byte, 1<<20)
		var err error
		for i := int64(0); err == nil && i*fileSize < size; i++ {
			name := fmt.Sprintf("z%05d", i)
			if fileSize == size {
				name = "zeros"
			}
			err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: fileSize})
			for n := int64(0); err == nil && n < fileSize; n += int64(len(zeros)) {
				m := min(int64(len(zeros)), fileSize-n)
				_, err = tw.Write(zeros[:m])
				produced.Add(m)
			}
		}
		if err == nil {
			err = tw.Close()
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func TestUnpackHostile(t *testing.T) {
	t.Parallel()
	setuid := tarFile("bin/su", "x")
	setuid.hdr.Mode = 0o4755
	setgid := tarFile("bin/sg", "x")
	setgid.hdr.Mode = 0o2755
	big := tarFile("big", strings.Repeat("x", 2000))
	var many []tarEntry
	for i := range 11 {
		many = append(many, tarFile("b"+strconv.Itoa(i), strings.Repeat("y", 100)))
	}

	tests := []struct {
		name    string
		entries []tarEntry
		lim     Limits
		bad     string // the entry the error must name
	}{
		{"absolute", []tarEntry{tarFile("/etc/passwd", "root::0:0::/:/bin/sh\n")}, Limits{}, "/etc/passwd"},
		{"dotdot", []tarEntry{tarFile("../x", "x")}, Limits{}, "../x"},
		{"inner dotdot", []tarEntry{tarDir("a/"), tarFile("a/../../x", "x")}, Limits{}, "a/../../x"},
		{"harmless-looking dotdot", []tarEntry{tarFile("a/../x", "x")}, Limits{}, "a/../x"},
		{"absolute symlink", []tarEntry{tarSymlink("l", "/etc"), tarFile("l/passwd", "x")}, Limits{}, "l"},
		{"through symlink", []tarEntry{tarDir("etc/"), tarSymlink("l", "etc"), tarFile("l/passwd", "x")}, Limits{}, "l/passwd"},
		{"dir through symlink", []tarEntry{tarDir("etc/"), tarSymlink("l", "etc"), tarDir("l/sub/")}, Limits{}, "l/sub/"},
		{"climbing symlink", []tarEntry{tarSymlink("l", "../../x")}, Limits{}, "l"},
		{"climbing symlink deep", []tarEntry{tarSymlink("a/b/l", "../../../x")}, Limits{}, "a/b/l"},
		{"dotdot after name in symlink", []tarEntry{tarSymlink("x", "a/../../..")}, Limits{}, "x"},
		{"empty symlink", []tarEntry{tarSymlink("x", "")}, Limits{}, "x"},
		{"symlink replaced by file", []tarEntry{tarSymlink("l", "x"), tarFile("l", "x")}, Limits{}, "l"},
		{"hard link out", []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "/etc/passwd"}}}, Limits{}, "h"},
		{"hard link in", []tarEntry{tarFile("a", "x"), {hdr: tar.Header{Typeflag: tar.TypeLink, Name: "h", Linkname: "a"}}}, Limits{}, "h"},
		{"char device", []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}}, Limits{}, "dev/null"},
		{"block device", []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Mode: 0o660, Devmajor: 8}}}, Limits{}, "sda"},
		{"fifo", []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o644}}}, Limits{}, "p"},
		{"setuid", []tarEntry{setuid}, Limits{}, "bin/su"},
		{"setgid", []tarEntry{setgid}, Limits{}, "bin/sg"},
		{"file too big", []tarEntry{big}, Limits{MaxFileBytes: 1000}, "big"},
		{"too many bytes", many, Limits{MaxBytes: 1000}, "b10"},
		{"too many files", many, Limits{MaxFiles: 10}, "b10"},
		{"dir replaced by file", []tarEntry{tarDir("a/"), tarFile("a", "x")}, Limits{}, "a"},
		{"file replaced by dir", []tarEntry{tarFile("a", "x"), tarDir("a/")}, Limits{}, "a/"},
		{"file through file", []tarEntry{tarFile("a", "x"), tarFile("a/b", "x")}, Limits{}, "a/b"},
		{"duplicate file", []tarEntry{tarFile("a", "x"), tarFile("./a", "y")}, Limits{}, "./a"},
		{"file as root", []tarEntry{tarFile(".", "")}, Limits{}, "."},
		{"empty name", []tarEntry{tarFile("", "x")}, Limits{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			err := Unpack(bytes.NewReader(makeArchive(t, tt.entries...)), dst, tt.lim)
			if err == nil {
				t.Fatal("Unpack succeeded")
			}
			if !strings.Contains(err.Error(), "entry "+strconv.Quote(tt.bad)+":") {
				t.Errorf("error %q does not name entry %q", err, tt.bad)
			}
			assertEntries(t, parent)
		})
	}
}

// TestUnpackGzipBomb feeds Unpack 10 GB of zeros, which gzip makes
// about 10 MB of, and checks that it stops at the limits having read
// little of it.
func TestUnpackGzipBomb(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fileSize int64
		lim      Limits
		bad      string
		msg      string
	}{
		{10 << 30, Limits{}, "zeros", "exceeds the limit"},
		{10 << 30, Limits{MaxBytes: 1 << 20, MaxFileBytes: 1 << 40}, "zeros", "expands past the limit"},
		{1 << 20, Limits{MaxBytes: 16 << 20}, "z00016", "expands past the limit"},
		{1 << 10, Limits{MaxFiles: 1000}, "z01000", "more than 1000 entries"},
	}
	for _, tt := range tests {
		var produced atomic.Int64
		r := zeroStream(10<<30, tt.fileSize, &produced)
		parent := t.TempDir()
		start := time.Now()
		err := Unpack(r, filepath.Join(parent, "dst"), tt.lim)
		r.Close() // stops the producer
		if err == nil || !strings.Contains(err.Error(), "entry "+strconv.Quote(tt.bad)+": ") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("limits %+v: err = %v, want one naming entry %q", tt.lim, err, tt.bad)
		}
		if n := produced.Load(); n > 64<<20 {
			t.Errorf("limits %+v: read %d bytes of a 10 GB stream before failing", tt.lim, n)
		} else {
			t.Logf("limits %+v: failed after %v, %d bytes made: %v", tt.lim, time.Since(start), n, err)
		}
		assertEntries(t, parent)
	}
}

func TestUnpackCorrupt(t *testing.T) {
	t.Parallel()
	good := makeArchive(t, tarDir("a/"), tarFile("a/f", strings.Repeat("data", 1000)), tarFile("g", "x"))
	var junk bytes.Buffer
	zw := gzip.NewWriter(&junk)
	zw.Write(make([]byte, 2<<20))
	zw.Close()
	tests := map[string][]byte{
		"trailing data": append(slices.Clip(good), junk.Bytes()...),
		"empty":         nil,
		"not gzip":      []byte("hello, world"),
		"truncated":     good[:len(good)/2],
		"bad crc":       append(good[:len(good)-8:len(good)-8], 0, 0, 0, 0, 0, 0, 0, 0),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			if err := Unpack(bytes.NewReader(data), filepath.Join(parent, "dst"), Limits{}); err == nil {
				t.Fatal("Unpack succeeded")
			}
			assertEntries(t, parent)
		})
	}
}

// errAfter fails reading after n bytes, as a dying disk or network would.
type errAfter struct {
	r io.Reader
	n int
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, errors.New("read failure")
	}
	if len(p) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

func TestUnpackReadError(t *testing.T) {
	t.Parallel()
	data := makeArchive(t, tarFile("a", strings.Repeat("z", 1<<20)), tarFile("b", "x"))
	parent := t.TempDir()
	err := Unpack(&errAfter{bytes.NewReader(data), len(data) - 10}, filepath.Join(parent, "dst"), Limits{})
	if err == nil {
		t.Fatal("Unpack succeeded")
	}
	assertEntries(t, parent)
}

func FuzzUnpack(f *testing.F) {
	f.Add(makeArchive(f, tarDir("a/"), tarFile("a/b", "x"), tarSymlink("a/l", "b"), tarSymlink("up", "a/l")))
	f.Add(makeArchive(f, tarSymlink("l", "."), tarFile("l/x", "x")))
	f.Add(makeArchive(f, tarSymlink("l", "/etc"), tarFile("l/passwd", "x")))
	f.Add(makeArchive(f, tarFile("a", "x"), tarDir("a/"), tarFile("../x", "y")))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		err := Unpack(bytes.NewReader(data), dst, Limits{MaxBytes: 1 << 20, MaxFiles: 1000, MaxFileBytes: 1 << 20})
		entries, rerr := os.ReadDir(parent)
		if rerr != nil {
			t.Fatal(rerr)
		}
		switch {
		case err != nil && len(entries) != 0:
			t.Fatalf("failed (%v) and left %v", err, entries)
		case err == nil && (len(entries) != 1 || entries[0].Name() != "dst"):
			t.Fatalf("succeeded and left %v", entries)
		}
		fsutil.RemoveAll(dst) // directories may have come without write permission
	})
}
