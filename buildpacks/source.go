package buildpacks

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// A Source is a source folder as a build takes it: the HEAD of the git
// work tree it is in, or, when it is in none, the folder as it is.
type Source struct {
	Dir string // absolute
	// Head is HEAD's full sha when Dir is in a git work tree; "" for a
	// plain folder.
	Head string
	// Changed counts what git status reports in Dir's part of the work
	// tree besides untracked files: files modified, added, deleted or
	// renamed, staged or not. Untracked counts the files git neither
	// tracks nor ignores. Neither is in a build, which takes HEAD.
	// Only InspectSource counts them.
	Changed, Untracked int

	git gitRunner
}

// InspectSource says what a build of the folder src takes: HEAD and
// the changes it leaves out, or the folder. A git work tree git refuses
// is an error with git's whole message (see openSource), never a plain
// folder.
func InspectSource(ctx context.Context, src string) (Source, error) {
	src, err := filepath.Abs(src)
	if err != nil {
		return Source{}, fmt.Errorf("inspect source: %w", err)
	}
	s, err := openSource(ctx, src)
	if err != nil || s.Head == "" {
		return s, err
	}
	// --no-optional-locks: a look must not rewrite the index (git
	// status refreshes it when it can), least of all another user's.
	// The pathspec "." keeps to Dir's part of a larger repository, the
	// part that is built.
	out, err := s.git.output(ctx, "-C", s.Dir, "--no-optional-locks", "status",
		"--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
	if err != nil {
		return s, fmt.Errorf("inspect source %s: %w", s.Dir, err)
	}
	// Entries are "XY path", each ending in NUL; a rename or a copy (R
	// or C in X or Y) is followed by one more entry, its original path.
	entries := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	for i := 0; i < len(entries); i++ {
		e := entries[i]
		if len(e) < 3 {
			continue
		}
		if e[:2] == "??" {
			s.Untracked++
			continue
		}
		s.Changed++
		if strings.ContainsAny(e[:2], "RC") {
			i++
		}
	}
	return s, nil
}

// Warnings are what a build of s says before it starts: the work in
// the folder that is not in the build, and how to put it in. Untracked
// files count, apart: they are as absent from the build as uncommitted
// edits, and as easily forgotten. Ignored ones do not: the user chose
// to keep them out of git.
func (s Source) Warnings() []string {
	if s.Head == "" || s.Changed+s.Untracked == 0 {
		return nil
	}
	var what, fix string
	switch {
	case s.Untracked == 0:
		what = count(s.Changed, "uncommitted change", "uncommitted changes")
		fix = `commit them (git commit -am "...")`
	case s.Changed == 0:
		what = count(s.Untracked, "untracked file", "untracked files")
		fix = `add and commit them (git add -A && git commit -m "...")`
	default:
		what = count(s.Changed, "uncommitted change", "uncommitted changes") + " and " +
			count(s.Untracked, "untracked file", "untracked files")
		fix = `commit them (git add -A && git commit -m "...")`
	}
	verb := "are"
	if s.Changed+s.Untracked == 1 {
		verb = "is"
	}
	return []string{fmt.Sprintf("%s %s not in this build of HEAD %s; %s to include them",
		what, verb, s.Head[:min(len(s.Head), 8)], fix)}
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// PrepareSource copies an app's source into dst, which must not exist,
// as Heroku's slug compiler checks out a push. When src is inside a git
// work tree, what is copied is src's part of HEAD's tree, so uncommitted
// changes are not built, and sourceVersion is HEAD's full sha; otherwise
// it is a copy of the folder and sourceVersion is the digest of what
// the build gets (folderDigest). .git is never copied. Then what the
// top-level .slugignore names is removed.
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

	s, err := openSource(ctx, src)
	if err != nil {
		return "", err
	}
	if s.Head != "" {
		if err := s.git.archive(ctx, src, s.Head, dst); err != nil {
			return "", err
		}
	} else if err := fsutil.CopyTree(src, dst, skipIn(src, append(exclude, dst))); err != nil {
		return "", fmt.Errorf("prepare source: copying %s: %w", src, err)
	}
	if err := applySlugignore(dst, filepath.Join(src, ".slugignore")); err != nil {
		return "", fmt.Errorf("prepare source: %w", err)
	}
	if s.Head != "" {
		return s.Head, nil
	}
	digest, err := folderDigest(dst)
	if err != nil {
		return "", fmt.Errorf("prepare source %s: %w", src, err)
	}
	return digest, nil
}

// openSource finds the git work tree dir is in, and its HEAD. Git
// refuses a work tree owned by another uid ("dubious ownership",
// CVE-2022-24765: its .git/config can name commands, core.fsmonitor or
// a filter driver, that git runs as whoever reads the tree). That
// refusal is never taken for "not a repository", which would build
// untracked files with no SOURCE_VERSION:
//
//   - run as root, dyno runs git as the tree's owner (its uid and gid,
//     no other groups). The user named the folder to build, so reading
//     it is what was asked; what its config runs then runs as the
//     owner, who could run it anyway, and not as root, as it would
//     with safe.directory.
//   - run as another user, dyno cannot do that, and fails with git's
//     whole message: it names the fix, a safe.directory entry that is
//     the user's own decision; building as the owner is the other.
//
// Without git installed, a folder is plain, unless it is in a git work
// tree (a .git in it or above it): that is an error, since building it
// as a plain folder would take its untracked files without a word.
func openSource(ctx context.Context, dir string) (Source, error) {
	s := Source{Dir: dir}
	_, err := s.git.topLevel(ctx, dir)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		// A killed git says nothing about the folder.
		return s, ctx.Err()
	case errors.Is(err, exec.ErrNotFound):
		if repo := gitDirAbove(dir); repo != "" {
			return s, fmt.Errorf("prepare source %s: %s is a git repository but git is not installed; install git to build its HEAD, or build a copy without .git", dir, repo)
		}
		return s, nil
	default:
		// Asked again, trusting every owner and in the C locale: an
		// answer now means ownership was the refusal, and git's
		// untranslated words tell "not a repository" from the rest.
		// rev-parse --show-toplevel reads config but runs none of it.
		top, perr := gitRunner{cLocale: true, trustAll: true}.topLevel(ctx, dir)
		var probe *gitError
		switch {
		case ctx.Err() != nil:
			return s, ctx.Err()
		case errors.As(perr, &probe) && strings.HasPrefix(probe.stderr, "fatal: not a git repository"):
			return s, nil
		case perr != nil:
			return s, fmt.Errorf("prepare source %s: %w", dir, err)
		case os.Geteuid() != 0:
			return s, fmt.Errorf("prepare source %s: %w\nOr build it as the owner of %s, or as root (which reads it as its owner).", dir, err, top)
		}
		// The owner is the repository's, and must be the folder's and
		// the work tree's too: the work tree git names can come from
		// the repository's own config (core.worktree), and a tree
		// that points at another user's folder must not make dyno run
		// that user's git.
		gitDir, gerr := gitRunner{cLocale: true, trustAll: true}.output(ctx, "-C", dir, "rev-parse", "--absolute-git-dir")
		if gerr != nil {
			return s, fmt.Errorf("prepare source %s: %w", dir, gerr)
		}
		if err := sameOwner(dir, top, strings.TrimSpace(string(gitDir))); err != nil {
			return s, fmt.Errorf("prepare source %s: %w; build it as its owner", dir, err)
		}
		if s.git, err = runnerAs(top); err != nil {
			return s, fmt.Errorf("prepare source %s: %w", dir, err)
		}
		if _, err := s.git.topLevel(ctx, dir); err != nil {
			return s, fmt.Errorf("prepare source %s: as uid %d, the owner of %s: %w", dir, s.git.cred.Uid, top, err)
		}
	}
	out, err := s.git.output(ctx, "-C", dir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		var gerr *gitError
		if errors.As(err, &gerr) && gerr.stderr == "" {
			return s, fmt.Errorf("prepare source %s: the git repository has no commits yet; commit the app to build it", dir)
		}
		return s, fmt.Errorf("prepare source %s: %w", dir, err)
	}
	s.Head = strings.TrimSpace(string(out))
	return s, nil
}

// folderDigest is a plain folder's SOURCE_VERSION: the SHA-256, in hex,
// of what the build gets (dir, the copy after exclusions and
// .slugignore) as a stream of its entries in lexical order: each one's
// type and path, then a file's executable bit, size and content, or a
// link's target. Times, owners and the other mode bits are left out, so
// the same files give the same digest in any copy or checkout.
func folderDigest(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			fmt.Fprintf(h, "dir %q\n", rel)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "link %q %q\n", rel, target)
		case t.IsRegular():
			return digestFile(h, p, rel)
		default:
			fmt.Fprintf(h, "other %q %s\n", rel, t)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func digestFile(w io.Writer, p, rel string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "file %q %t %d\n", rel, info.Mode()&0o111 != 0, info.Size())
	if _, err := io.CopyN(w, f, info.Size()); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
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

// A gitRunner runs git commands as this process's user, or, with cred,
// as a work tree's owner. Variables that point git at a repository are
// removed from their environment: dyno may itself run from a git hook,
// where GIT_DIR names another repository than the one asked for.
// Prompts are off, since nobody is there to answer them.
type gitRunner struct {
	cred *syscall.Credential
	home string // HOME for cred's user: this one's may be closed to it
	// The ownership probe's (openSource): messages in the C locale, and
	// every owner trusted, with the config that runs commands on a
	// read switched off.
	cLocale, trustAll bool
}

// gitDirAbove is the first of dir and its parents that holds a .git, or
// "" for none.
func gitDirAbove(dir string) string {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

// sameOwner checks that one uid owns every path.
func sameOwner(paths ...string) error {
	var first string
	var uid uint32
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no owner", p)
		}
		if first == "" {
			first, uid = p, st.Uid
		} else if st.Uid != uid {
			return fmt.Errorf("%s belongs to uid %d but %s to uid %d", first, uid, p, st.Uid)
		}
	}
	return nil
}

// runnerAs runs git as the owner of the folder top, with its uid and
// gid and no supplementary groups.
func runnerAs(top string) (gitRunner, error) {
	info, err := os.Stat(top)
	if err != nil {
		return gitRunner{}, err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return gitRunner{}, fmt.Errorf("%s: no owner", top)
	}
	home := "/"
	if u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10)); err == nil && u.HomeDir != "" {
		home = u.HomeDir
	}
	return gitRunner{cred: &syscall.Credential{Uid: st.Uid, Gid: st.Gid}, home: home}, nil
}

func (g gitRunner) command(ctx context.Context, args ...string) *exec.Cmd {
	if g.trustAll {
		args = append([]string{"-c", "safe.directory=*", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"}, args...)
	}
	if g.cred != nil {
		// The owner's config may name commands a read runs
		// (core.fsmonitor on status, filters on archive): they run as
		// the owner, who could run them anyway, and are kept from
		// this process's session below.
		args = append([]string{"-c", "core.fsmonitor=false"}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if g.cred != nil && !ownerEnv(k) {
			// Nothing of this user's environment (secrets, sockets)
			// reaches a command the owner's config names.
			continue
		}
		if strings.HasPrefix(k, "GIT_CONFIG_KEY_") || strings.HasPrefix(k, "GIT_CONFIG_VALUE_") {
			continue
		}
		switch k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
			"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
			"GIT_PREFIX", "GIT_CEILING_DIRECTORIES", "GIT_TERMINAL_PROMPT",
			// Set by git for a hook dyno may run from, about the
			// repository that runs the hook.
			"GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_EXEC_PATH", "GIT_QUARANTINE_PATH":
			continue
		case "LC_ALL", "LANGUAGE":
			if g.cLocale {
				continue
			}
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "GIT_TERMINAL_PROMPT=0")
	if g.cLocale {
		cmd.Env = append(cmd.Env, "LC_ALL=C")
	}
	if g.cred != nil {
		cmd.Env = append(cmd.Env, "HOME="+g.home)
		// A session of its own: no controlling terminal, so nothing
		// the owner's config runs can type into this user's (TIOCSTI).
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: g.cred, Setsid: true}
		// Where it starts, not where it works (-C): this process's
		// working directory may be closed to the owner.
		cmd.Dir = "/"
	}
	return cmd
}

// ownerEnv says whether variable k reaches git run as a tree's owner:
// what finds programs and speaks the user's language, nothing else.
func ownerEnv(k string) bool {
	return k == "PATH" || k == "LANG" || k == "TZ" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_")
}

// output runs a git command and returns what it wrote to stdout. Its
// error is a *gitError, with everything git wrote to stderr.
func (g gitRunner) output(ctx context.Context, args ...string) ([]byte, error) {
	cmd := g.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &gitError{op: gitOp(args), stderr: strings.TrimSpace(stderr.String()), err: err}
	}
	return out, nil
}

// topLevel is the top of the work tree dir is in.
func (g gitRunner) topLevel(ctx context.Context, dir string) (string, error) {
	out, err := g.output(ctx, "-C", dir, "rev-parse", "--show-toplevel")
	return strings.TrimSpace(string(out)), err
}

// archive unpacks commit's tree into dst. Run in a subdirectory of the
// work tree, git archive gives that subdirectory's part only, with
// paths relative to it: an app can live in a folder of a larger repo.
func (g gitRunner) archive(ctx context.Context, dir, commit, dst string) error {
	msg, err := unpackArchive(ctx, dst, func(ctx context.Context) *exec.Cmd {
		return g.command(ctx, "-C", dir, "archive", "--format=tar", commit)
	})
	switch {
	case msg != "" && strings.Contains(msg, "untracked"):
		return fmt.Errorf("prepare source %s: the folder is not committed in its git repository; commit it to build it (git archive: %s)", dir, msg)
	case msg != "":
		return fmt.Errorf("prepare source %s: git archive: %s", dir, msg)
	case err != nil:
		return fmt.Errorf("prepare source %s: %w", dir, err)
	}
	return nil
}

// unpackArchive runs the git archive command made by cmd and unpacks
// its tar stream into dst. A failed git comes back as msg, git's own
// words; a failure to unpack, or to run git, as err.
func unpackArchive(ctx context.Context, dst string, cmd func(context.Context) *exec.Cmd) (msg string, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := cmd(ctx)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := c.Start(); err != nil {
		return "", fmt.Errorf("git archive: %w", err)
	}
	xerr := extractTar(out, dst)
	if xerr == nil {
		// Read the archive's padding, so git never blocks on a full pipe.
		_, xerr = io.Copy(io.Discard, out)
	} else {
		cancel()
	}
	if werr := c.Wait(); werr != nil {
		return gitMessage(strings.TrimSpace(stderr.String()), werr), nil
	}
	return "", xerr
}

// gitCommand is a git command run as this user.
func gitCommand(ctx context.Context, args ...string) *exec.Cmd {
	return gitRunner{}.command(ctx, args...)
}

// runGit runs a git command as this user; its error holds everything
// git wrote to stderr, since git's reasons and hints span lines.
func runGit(ctx context.Context, args ...string) error {
	_, err := gitRunner{}.output(ctx, args...)
	return err
}

// A gitError is a git command that failed, with git's whole message.
type gitError struct {
	op     string // the git subcommand
	stderr string // all of it, trimmed
	err    error
}

func (e *gitError) Error() string { return "git " + e.op + ": " + gitMessage(e.stderr, e.err) }
func (e *gitError) Unwrap() error { return e.err }

// gitMessage is what git wrote to stderr, or, when it wrote nothing,
// how it ended.
func gitMessage(stderr string, err error) string {
	if stderr != "" {
		return stderr
	}
	return err.Error()
}

// gitOp is the subcommand in a git command line: the first argument
// after the global options.
func gitOp(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-C" || a == "-c":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return "command"
}

// ArchiveCommit unpacks commit's tree into dst, an empty folder, from
// the repository git's environment names: a pre-receive hook's, where
// the pushed objects are still in their quarantine (GIT_OBJECT_DIRECTORY
// and GIT_ALTERNATE_OBJECT_DIRECTORIES point at it; git-receive-pack(1),
// QUARANTINE ENVIRONMENT) and no other git command run by dyno sees them.
func ArchiveCommit(ctx context.Context, commit, dst string) error {
	msg, err := unpackArchive(ctx, dst, func(ctx context.Context) *exec.Cmd {
		return exec.CommandContext(ctx, "git", "archive", "--format=tar", commit)
	})
	switch {
	case msg != "":
		return fmt.Errorf("archive %s: git archive: %s", commit, msg)
	case err != nil:
		return fmt.Errorf("archive %s: %w", commit, err)
	}
	return nil
}

// PrepareTree is PrepareSource for a folder that already is one commit's
// tree (a pushed commit its hook unpacked): it is copied as a plain
// folder, .slugignore applied, and never taken for part of a git work
// tree that DYNO_HOME may lie in.
func PrepareTree(ctx context.Context, src, dst string, exclude ...string) (err error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("prepare source: %w", err)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fmt.Errorf("prepare source: %w", err)
	}
	defer func() {
		if err != nil {
			fsutil.RemoveAll(dst)
		}
	}()
	if err := fsutil.CopyTree(src, dst, skipIn(src, append(exclude, dst))); err != nil {
		return fmt.Errorf("prepare source: copying %s: %w", src, err)
	}
	if err := applySlugignore(dst, filepath.Join(src, ".slugignore")); err != nil {
		return fmt.Errorf("prepare source: %w", err)
	}
	return ctx.Err()
}
