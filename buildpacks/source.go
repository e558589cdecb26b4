package buildpacks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// PrepareSource copies an app's source into dst, which must not exist,
// as Heroku's slug compiler checks out a push. When src is inside a git
// work tree, what is copied is src's part of HEAD's tree, so uncommitted
// changes are not built, and sourceVersion is HEAD's full sha; otherwise
// it is a copy of the folder and sourceVersion is "". .git is never
// copied. Then what the top-level .slugignore names is removed.
//
// A folder that is no git work tree may hold dyno's own state
// (DYNO_HOME is ~/.local/share/dyno when the folder is ~), and the build's
// scratch, dst, lies in it: exclude names host paths never copied
// (every app's ledger and config vars would land in the slug, and dst
// would be copied into itself), and dst is always left out. Within says
// which of them lie in src.
//
// On failure dst is removed again. When ctx is done, the git command
// running is killed and the error wraps ctx.Err().
func PrepareSource(ctx context.Context, src, dst string, exclude ...string) (sourceVersion string, err error) {
	src, err = filepath.Abs(src)
	if err != nil {
		return "", fmt.Errorf("prepare source: %w", err)
	}
	info, err := os.Stat(src)
	if err != nil {
		return "", fmt.Errorf("prepare source: %w", err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("prepare source %s: not a directory", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("prepare source: %w", err)
	}
	// Mkdir fails if dst exists, which is the check the contract needs.
	if err := os.Mkdir(dst, 0o755); err != nil {
		return "", fmt.Errorf("prepare source: %w", err)
	}
	defer func() {
		if err != nil {
			fsutil.RemoveAll(dst)
			if ctx.Err() != nil {
				err = fmt.Errorf("prepare source: %w", ctx.Err())
			}
		}
	}()

	inGit := inGitWorkTree(ctx, src)
	if ctx.Err() != nil {
		// A killed git says nothing about the folder.
		return "", ctx.Err()
	}
	if inGit {
		if sourceVersion, err = gitHead(ctx, src); err != nil {
			return "", err
		}
		if err := gitArchive(ctx, src, sourceVersion, dst); err != nil {
			return "", err
		}
	} else if err := fsutil.CopyTree(src, dst, skipIn(src, append(exclude, dst))); err != nil {
		return "", fmt.Errorf("prepare source: copying %s: %w", src, err)
	}
	if err := applySlugignore(dst, filepath.Join(src, ".slugignore")); err != nil {
		return "", fmt.Errorf("prepare source: %w", err)
	}
	return sourceVersion, nil
}

// Within returns those of paths that lie inside the folder src, symlinks
// resolved, as paths relative to src.
func Within(src string, paths []string) []string {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return nil
	}
	var in []string
	for _, p := range paths {
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(root, real); err == nil && rel != "." && filepath.IsLocal(rel) {
			in = append(in, rel)
		}
	}
	return in
}

// skipIn is CopyTree's skip for a copy of src: .git, and the paths of
// exclude that lie in src.
func skipIn(src string, exclude []string) func(string, fs.DirEntry) bool {
	left := map[string]bool{}
	for _, rel := range Within(src, exclude) {
		left[rel] = true
	}
	return func(p string, d fs.DirEntry) bool {
		if skipGit(p, d) {
			return true
		}
		rel, err := filepath.Rel(src, p)
		return err == nil && left[rel]
	}
}

// inGitWorkTree reports whether dir is inside a git work tree. Without
// git installed it is not: there is nothing that could read the tree.
func inGitWorkTree(ctx context.Context, dir string) bool {
	out, err := gitCommand(ctx, "-C", dir, "rev-parse", "--is-inside-work-tree").Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

func gitHead(ctx context.Context, dir string) (string, error) {
	out, err := gitCommand(ctx, "-C", dir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("prepare source %s: the git repository has no commits yet; commit the app to build it", dir)
	}
	return strings.TrimSpace(string(out)), nil
}

// gitArchive unpacks commit's tree into dst. Run in a subdirectory of
// the work tree, git archive gives that subdirectory's part only, with
// paths relative to it: an app can live in a folder of a larger repo.
func gitArchive(ctx context.Context, dir, commit, dst string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := gitCommand(ctx, "-C", dir, "archive", "--format=tar", commit)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("prepare source %s: %w", dir, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("prepare source %s: git archive: %w", dir, err)
	}
	xerr := extractTar(out, dst)
	if xerr == nil {
		// Read the archive's padding, so git never blocks on a full pipe.
		_, xerr = io.Copy(io.Discard, out)
	} else {
		cancel()
	}
	werr := cmd.Wait()
	if werr != nil {
		msg := lastLine(stderr.String())
		if strings.Contains(msg, "untracked") {
			return fmt.Errorf("prepare source %s: the folder is not committed in its git repository; commit it to build it", dir)
		}
		if msg == "" {
			msg = werr.Error()
		}
		return fmt.Errorf("prepare source %s: git archive: %s", dir, msg)
	}
	if xerr != nil {
		return fmt.Errorf("prepare source %s: %w", dir, xerr)
	}
	return nil
}

// gitCommand is a git command with the variables that point git at a
// repository removed from its environment: dyno may itself run from a
// git hook, where GIT_DIR names another repository than the one asked
// for. Prompts are off, since nobody is there to answer them.
func gitCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
			"GIT_PREFIX", "GIT_CEILING_DIRECTORIES", "GIT_TERMINAL_PROMPT":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "GIT_TERMINAL_PROMPT=0")
	return cmd
}

// runGit runs a git command, making its error the last line git wrote
// to stderr, which is where git says what went wrong.
func runGit(ctx context.Context, args ...string) error {
	cmd := gitCommand(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		op := args[0]
		if op == "-C" && len(args) > 2 {
			op = args[2]
		}
		if msg := lastLine(stderr.String()); msg != "" {
			return errors.New("git " + op + ": " + msg)
		}
		return fmt.Errorf("git %s: %w", op, err)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
