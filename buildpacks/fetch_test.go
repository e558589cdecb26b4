package buildpacks

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildpackFiles are the files of a minimal buildpack whose compile
// prints version.
func buildpackFiles(version string) map[string]string {
	return map[string]string{
		"bin/detect":  "#!/bin/sh\necho Minimal\n",
		"bin/compile": "#!/bin/sh\necho \"-----> minimal " + version + "\"\n",
		"VERSION":     version + "\n",
	}
}

func readVersion(t *testing.T, bp *Buildpack) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(bp.Dir, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestFetchFolder(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeFiles(t, base, buildpackFiles("v1"))
	writeFiles(t, base, map[string]string{".git/config": "not copied"})
	work := t.TempDir()
	bp, err := Fetch(".", base, work)
	if err != nil {
		t.Fatal(err)
	}
	if bp.Ref != "." || !filepath.IsAbs(bp.Dir) || !strings.HasPrefix(bp.Dir, work+string(filepath.Separator)) {
		t.Errorf("Buildpack = %+v, want Ref \".\" and Dir under %s", bp, work)
	}
	if got, want := listFiles(t, bp.Dir), []string{"VERSION", "bin/compile", "bin/detect"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	// The copy is private: writing export there leaves the original alone.
	if err := os.WriteFile(filepath.Join(bp.Dir, "export"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "export")); !os.IsNotExist(err) {
		t.Error("writing into the copy changed the original")
	}
	// Each fetch gets its own copy.
	bp2, err := Fetch(base, "/nonexistent", work)
	if err != nil {
		t.Fatal(err)
	}
	if bp2.Dir == bp.Dir {
		t.Error("two fetches share a directory")
	}
}

func TestFetchGit(t *testing.T) {
	t.Parallel()
	repo := newRepo(t, buildpackFiles("v1"))
	git(t, repo, "tag", "v1")
	v1 := git(t, repo, "rev-parse", "HEAD")
	writeFiles(t, repo, map[string]string{"VERSION": "v2\n"})
	git(t, repo, "commit", "-q", "-am", "second")
	git(t, repo, "branch", "stable", v1)
	writeFiles(t, repo, map[string]string{"VERSION": "v3 uncommitted\n"})

	tests := []struct{ ref, want string }{
		{repo + "#v1", "v1"},                // a tag
		{repo + "#stable", "v1"},            // a branch
		{repo + "#" + v1, "v1"},             // a commit, which needs the fallback
		{repo + "#main", "v2"},              // the default branch, without uncommitted work
		{"file://" + repo, "v2"},            // a URL: a clone of HEAD
		{"file://" + repo + "#v1", "v1"},    // a URL with a ref
		{repo, "v3 uncommitted"},            // a plain path is a folder, copied as it is
		{filepath.Base(repo) + "#v1", "v1"}, // relative to baseDir
	}
	for _, tt := range tests {
		bp, err := Fetch(tt.ref, filepath.Dir(repo), t.TempDir())
		if err != nil {
			t.Errorf("Fetch(%q): %v", tt.ref, err)
			continue
		}
		if got := readVersion(t, bp); got != tt.want {
			t.Errorf("Fetch(%q): VERSION = %q, want %q", tt.ref, got, tt.want)
		}
		if _, err := os.Stat(filepath.Join(bp.Dir, ".git")); !os.IsNotExist(err) {
			t.Errorf("Fetch(%q): .git kept in the copy", tt.ref)
		}
	}

	if _, err := Fetch(repo+"#nosuchref", "", t.TempDir()); err == nil || !strings.Contains(err.Error(), "nosuchref") {
		t.Errorf("Fetch of a missing ref: err = %v, want one naming the ref", err)
	}
}

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeTgz(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), Linkname: e.link}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
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

func TestFetchTarball(t *testing.T) {
	t.Parallel()
	flat := makeTgz(t, []tarEntry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/detect", body: "#!/bin/sh\necho Tarred\n", mode: 0o755},
		{name: "bin/compile", body: "#!/bin/sh\n", mode: 0o755},
		{name: "VERSION", body: "tgz\n"},
		{name: "lib/current", typ: tar.TypeSymlink, link: "../VERSION"},
	})
	// As GitHub's archives are: everything under one top directory.
	wrapped := makeTgz(t, []tarEntry{
		{name: "bp-1.0/bin/detect", body: "#!/bin/sh\n", mode: 0o755},
		{name: "bp-1.0/bin/compile", body: "#!/bin/sh\n", mode: 0o755},
		{name: "bp-1.0/VERSION", body: "wrapped\n"},
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bp.tgz"), flat, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/flat.tgz":
			w.Write(flat)
		case "/wrapped.tar.gz":
			w.Write(wrapped)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	for _, tt := range []struct{ ref, want string }{
		{"bp.tgz", "tgz"},
		{srv.URL + "/flat.tgz", "tgz"},
		{srv.URL + "/wrapped.tar.gz", "wrapped"},
	} {
		bp, err := Fetch(tt.ref, dir, t.TempDir())
		if err != nil {
			t.Errorf("Fetch(%q): %v", tt.ref, err)
			continue
		}
		if got := readVersion(t, bp); got != tt.want {
			t.Errorf("Fetch(%q): VERSION = %q, want %q", tt.ref, got, tt.want)
		}
		if info, err := os.Stat(filepath.Join(bp.Dir, "bin", "detect")); err != nil || info.Mode().Perm()&0o111 == 0 {
			t.Errorf("Fetch(%q): bin/detect not executable: %v", tt.ref, err)
		}
	}

	if _, err := Fetch(srv.URL+"/missing.tgz", "", t.TempDir()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Fetch of a missing URL: err = %v, want a 404", err)
	}
}

func TestFetchTarballUnsafe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"parent", []tarEntry{{name: "bin/compile", body: "x"}, {name: "../evil", body: "x"}}, "leads outside"},
		{"parent inside", []tarEntry{{name: "bin/../../evil", body: "x"}}, "leads outside"},
		{"absolute", []tarEntry{{name: "/tmp/evil", body: "x"}}, "absolute path"},
		{"hard link out", []tarEntry{{name: "bin/compile", typ: tar.TypeLink, link: "../../etc/passwd"}}, "leads outside"},
		{"through a symlink", []tarEntry{
			{name: "bin", typ: tar.TypeSymlink, link: "/tmp"},
			{name: "bin/compile", body: "x"},
		}, "compile"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		work := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "bp.tgz"), makeTgz(t, tt.entries), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Fetch("bp.tgz", dir, work)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
		if _, err := os.Stat(filepath.Join(work, "..", "evil")); err == nil {
			t.Errorf("%s: a file was written outside the work dir", tt.name)
		}
		if entries, _ := os.ReadDir(work); len(entries) != 0 {
			t.Errorf("%s: the failed copy was left in the work dir", tt.name)
		}
	}
	if _, err := os.Stat("/tmp/compile"); err == nil {
		t.Error("a file was written through a symlink to /tmp")
	}
}

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	writeFiles(t, base, map[string]string{"empty/README": "no bin here"})
	for _, tt := range []struct{ ref, want string }{
		{"missing", "no such file"},
		{"heroku/go", "registry names"},
		{"empty", "no bin/compile"},
		{"", "empty reference"},
	} {
		_, err := Fetch(tt.ref, base, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Fetch(%q): err = %v, want one containing %q", tt.ref, err, tt.want)
		}
	}
}

func TestInstalled(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	writeFiles(t, a, map[string]string{
		"20-node/bin/detect": "", "10-ruby/bin/detect": "", "notes/README": "", ".hidden/bin/detect": "",
	})
	writeFiles(t, b, map[string]string{"go/bin/detect": ""})
	got, err := Installed(a, filepath.Join(a, "missing"), b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(a, "10-ruby"), filepath.Join(a, "20-node"), filepath.Join(b, "go")}
	if !slices.Equal(got, want) {
		t.Errorf("Installed = %q, want %q", got, want)
	}
}

func TestReadBuildpacksFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if refs, err := ReadBuildpacksFile(dir); err != nil || refs != nil {
		t.Errorf("no file: %q, %v; want none", refs, err)
	}
	writeFiles(t, dir, map[string]string{".buildpacks": "# the buildpacks\n" +
		"https://github.com/heroku/heroku-buildpack-nodejs.git#v200\r\n" +
		"\n  ./local/bp   https://example.com/bp.tgz\n  # indented comment\n"})
	refs, err := ReadBuildpacksFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://github.com/heroku/heroku-buildpack-nodejs.git#v200", "./local/bp", "https://example.com/bp.tgz"}
	if !slices.Equal(refs, want) {
		t.Errorf("refs = %q, want %q", refs, want)
	}
}
