package buildpacks

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPrepareSourceGit(t *testing.T) {
	repo := newRepo(t, map[string]string{
		"Procfile":    "web: ./server\n",
		"app/main.sh": "echo committed\n",
		".slugignore": "*.log\n",
		"debug.log":   "committed but ignored\n",
	})
	head := git(t, repo, "rev-parse", "HEAD")
	// Uncommitted work: a new file and a change to a committed one.
	writeFiles(t, repo, map[string]string{
		"uncommitted.txt": "not built\n",
		"app/main.sh":     "echo changed\n",
	})

	dst := filepath.Join(t.TempDir(), "build")
	version, err := PrepareSource(context.Background(), repo, dst)
	if err != nil {
		t.Fatal(err)
	}
	if version != head {
		t.Errorf("sourceVersion = %q, want HEAD %q", version, head)
	}
	if got, want := listFiles(t, dst), []string{".slugignore", "Procfile", "app/main.sh"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "app", "main.sh")); string(data) != "echo committed\n" {
		t.Errorf("app/main.sh = %q, want the committed content", data)
	}
}

func TestPrepareSourceGitSubdir(t *testing.T) {
	repo := newRepo(t, map[string]string{
		"README":           "the repo\n",
		"apps/web/index":   "hello\n",
		"apps/web/lib/x":   "x\n",
		"apps/other/index": "other\n",
	})
	dst := filepath.Join(t.TempDir(), "build")
	version, err := PrepareSource(context.Background(), filepath.Join(repo, "apps", "web"), dst)
	if err != nil {
		t.Fatal(err)
	}
	if version != git(t, repo, "rev-parse", "HEAD") {
		t.Errorf("sourceVersion = %q, want HEAD", version)
	}
	if got, want := listFiles(t, dst), []string{"index", "lib/x"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
}

func TestPrepareSourceGitUncommittedFolder(t *testing.T) {
	repo := newRepo(t, map[string]string{"README": "x\n"})
	writeFiles(t, repo, map[string]string{"new/app": "x\n"})
	dst := filepath.Join(t.TempDir(), "build")
	_, err := PrepareSource(context.Background(), filepath.Join(repo, "new"), dst)
	if err == nil || !strings.Contains(err.Error(), "not committed") {
		t.Fatalf("err = %v, want one saying the folder is not committed", err)
	}
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Errorf("dst left behind after a failure: %v", err)
	}
}

func TestPrepareSourceGitNoCommits(t *testing.T) {
	needGit(t)
	repo := t.TempDir()
	git(t, repo, "init", "-q")
	writeFiles(t, repo, map[string]string{"a": "x\n"})
	_, err := PrepareSource(context.Background(), repo, filepath.Join(t.TempDir(), "build"))
	if err == nil || !strings.Contains(err.Error(), "no commits") {
		t.Fatalf("err = %v, want one saying there are no commits", err)
	}
}

func TestPrepareSourceFolder(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{
		"index.html":    "hi\n",
		"lib/util.sh":   "true\n",
		".git/HEAD":     "not a real repository\n", // not one git recognizes, so a plain folder
		"vendor/.git/x": "nested\n",
	})
	if err := os.Chmod(filepath.Join(src, "lib", "util.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("index.html", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "build")
	version, err := PrepareSource(context.Background(), src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if version != "" {
		t.Errorf("sourceVersion = %q, want \"\" for a plain folder", version)
	}
	if got, want := listFiles(t, dst), []string{"index.html", "lib/util.sh", "link"}; !slices.Equal(got, want) {
		t.Errorf("files = %q, want %q", got, want)
	}
	if info, err := os.Stat(filepath.Join(dst, "lib", "util.sh")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("lib/util.sh: mode not kept: %v %v", info.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(dst, "link")); err != nil || target != "index.html" {
		t.Errorf("link = %q, %v; want a symlink to index.html", target, err)
	}
}

func TestPrepareSourceDstExists(t *testing.T) {
	dst := t.TempDir()
	if _, err := PrepareSource(context.Background(), t.TempDir(), dst); err == nil {
		t.Fatal("PrepareSource into an existing dst succeeded")
	}
}

func TestSlugignore(t *testing.T) {
	files := []string{
		"Procfile",
		"README.md",
		"debug.log",
		"docs/guide.md",
		"docs/img/a.png",
		"logs/today.log",
		"src/app.go",
		"src/app_test.go",
		"src/logs/keep.txt",
		"src/testdata/in.txt",
		"test/unit/a_test.go",
		"tmp",
		"vendor/lib/tmp/cache",
	}
	tests := []struct {
		name     string
		patterns string
		removed  []string
	}{
		{"none", "# just a comment\n\n", nil},
		{"extension anywhere", "*.log", []string{"debug.log", "logs/today.log"}},
		{"name anywhere", "tmp", []string{"tmp", "vendor/lib/tmp/cache"}},
		{"anchored", "/tmp", []string{"tmp"}},
		{"dirs only", "tmp/", []string{"vendor/lib/tmp/cache"}},
		{"anchored dir", "/docs/", []string{"docs/guide.md", "docs/img/a.png"}},
		{"path with slash is anchored", "src/logs", []string{"src/logs/keep.txt"}},
		{"leading double star", "**/testdata", []string{"src/testdata/in.txt"}},
		{"double star in the middle", "test/**/*_test.go", []string{"test/unit/a_test.go"}},
		{"trailing double star", "docs/**", []string{"docs/guide.md", "docs/img/a.png"}},
		{"star stays in one segment", "/src/*.go", []string{"src/app.go", "src/app_test.go"}},
		{"glob with class", "*_test.go", []string{"src/app_test.go", "test/unit/a_test.go"}},
		{"several lines, CRLF", "# docs\r\n*.md\r\n\r\n/logs\r\n", []string{"README.md", "docs/guide.md", "logs/today.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := t.TempDir()
			all := map[string]string{".slugignore": tt.patterns}
			for _, f := range files {
				all[f] = f
			}
			writeFiles(t, src, all)
			dst := filepath.Join(t.TempDir(), "build")
			if _, err := PrepareSource(context.Background(), src, dst); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, f := range append([]string{".slugignore"}, files...) {
				if !slices.Contains(tt.removed, f) {
					want = append(want, f)
				}
			}
			if got := listFiles(t, dst); !slices.Equal(got, want) {
				t.Errorf("patterns %q:\n got %q\nwant %q", tt.patterns, got, want)
			}
		})
	}
}

func TestSlugignoreErrors(t *testing.T) {
	tests := []struct {
		patterns string
		want     string
	}{
		{"*.log\n# keep this one\n!important.log\n", ".slugignore:3: \"!important.log\": negated patterns (\"!\") are not supported"},
		{"ok\n[unclosed\n", ".slugignore:2: \"[unclosed\": syntax error in pattern"},
		{"/\n", ".slugignore:1: \"/\": the pattern names no file"},
	}
	for _, tt := range tests {
		src := t.TempDir()
		writeFiles(t, src, map[string]string{".slugignore": tt.patterns, "important.log": "x"})
		dst := filepath.Join(t.TempDir(), "build")
		_, err := PrepareSource(context.Background(), src, dst)
		if err == nil {
			t.Errorf("patterns %q: no error", tt.patterns)
			continue
		}
		want := filepath.Join(src, tt.want)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("patterns %q: err = %q, want it to contain %q", tt.patterns, err, want)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Errorf("dst left behind after a failure: %v", err)
		}
	}
}

// .slugignore is read only as a regular file of at most 1 MiB, inside
// the source: a symlink to a file outside it is refused, not followed.
func TestPrepareSourceSlugignoreBounded(t *testing.T) {
	big := "*.log\n" + strings.Repeat("# padding\n", (1<<20)/10+1)
	src := t.TempDir()
	writeFiles(t, src, map[string]string{".slugignore": big, "debug.log": "x"})
	_, err := PrepareSource(context.Background(), src, filepath.Join(t.TempDir(), "build"))
	if err == nil || !strings.Contains(err.Error(), "read .slugignore: larger than 1 MiB, the most dyno reads of it") {
		t.Errorf("a .slugignore over 1 MiB: %v", err)
	}

	outside := filepath.Join(t.TempDir(), "patterns")
	writeFiles(t, filepath.Dir(outside), map[string]string{"patterns": "*.log\n"})
	src = t.TempDir()
	writeFiles(t, src, map[string]string{"debug.log": "x"})
	if err := os.Symlink(outside, filepath.Join(src, ".slugignore")); err != nil {
		t.Fatal(err)
	}
	_, err = PrepareSource(context.Background(), src, filepath.Join(t.TempDir(), "build"))
	if err == nil || !strings.Contains(err.Error(), ".slugignore: path escapes from parent") {
		t.Errorf("a .slugignore linking out of the source: %v", err)
	}
}

// A folder that holds dyno's own state (DYNO_HOME under ~, the folder
// built) and the build's scratch: neither is copied, and the copy ends.
func TestPrepareSourceLeavesOutPrivate(t *testing.T) {
	src := t.TempDir()
	home := filepath.Join(src, ".local", "share", "dyno")
	os.MkdirAll(filepath.Join(home, "apps", "alpha"), 0o700)
	os.WriteFile(filepath.Join(home, "apps", "alpha", "ledger.jsonl"), []byte("SECRET\n"), 0o600)
	os.WriteFile(filepath.Join(src, "app.txt"), []byte("code\n"), 0o644)
	dst := filepath.Join(home, "builds", "alpha-1", "app")
	if _, err := PrepareSource(context.Background(), src, dst, home); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "app.txt")); err != nil || string(b) != "code\n" {
		t.Errorf("app.txt: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dst, ".local", "share", "dyno")); err == nil {
		t.Error("DYNO_HOME was copied into the source")
	}
	if got := Within(src, []string{home, "/etc", src}); len(got) != 1 || got[0] != filepath.Join(".local", "share", "dyno") {
		t.Errorf("Within = %q", got)
	}
}
