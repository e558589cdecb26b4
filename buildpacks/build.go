package buildpacks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/slug"
)

// basePath is the PATH every build starts with: the host's usual
// directories, nothing from dyno's own environment.
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// A Build says what to build and with which buildpacks.
type Build struct {
	// BuildDir is the prepared source. Buildpacks compile in place, and
	// one may replace all of its content, so nothing about it is read
	// before the step that needs it.
	BuildDir string
	// CacheDir is kept per app between builds; it is created if missing.
	// With an Exec that hands folders over (Handover), the caller hands
	// it over before Run and back after: several builds of one app may
	// share it, and only the caller knows when the last one is done.
	CacheDir string
	// ConfigVars are written to a fresh ENV_DIR, one file per var (the
	// name is the key, the content the value exactly), mode 0600 in a
	// 0700 directory, removed after the build. They are not put in the
	// buildpacks' environment: each buildpack chooses what to read.
	ConfigVars map[string]string
	// Buildpacks are the refs to run, in order (see Fetch). When empty,
	// the source's .buildpacks file lists them; without one, each of
	// Installed is tried in turn and the first whose bin/detect accepts
	// the app is used, as Heroku does.
	Buildpacks []string
	// Installed are buildpack directories (see Installed) tried in
	// detection. Relative ones are relative to BaseDir.
	Installed []string
	// BaseDir is what relative buildpack refs are relative to.
	BaseDir string
	// Aliases name buildpacks that live in folders of the caller's
	// choosing (dyno's shipped ones: "heroku/go"). A ref that is a name
	// here is fetched from its folder, and an installed folder that
	// detection picks is reported by its name: names are what output
	// shows and what Result.Buildpacks holds.
	Aliases map[string]string
	// Stack is $STACK, such as "heroku-24".
	Stack string
	// SourceVersion is $SOURCE_VERSION, the commit being built.
	SourceVersion string
	// HostEnv is the host's environment. Only proxy and CA settings pass
	// into builds (HTTP_PROXY, HTTPS_PROXY, NO_PROXY and their
	// lower-case forms, SSL_CERT_FILE, SSL_CERT_DIR, NODE_EXTRA_CA_CERTS):
	// a build must not depend on what happens to be set where it ran.
	HostEnv []string
	// Out receives the build output, in Heroku's shapes, with each
	// buildpack's output streamed as it comes.
	Out io.Writer
	// Exec runs the buildpack commands; nil means PlainExecutor.
	Exec Executor
	// WorkDir is where Run makes the folder each build gets fresh and
	// loses at its end (HOME, TMPDIR, ENV_DIR, the buildpacks' copies);
	// "" means os.TempDir(). dyno gives a folder under DYNO_HOME that is
	// its build's own, so that what a killed build leaves is found again.
	WorkDir string
}

// A Result is what a successful build found out about the app.
type Result struct {
	// ProcessTypes are the app's process types: the last buildpack's
	// default types, under the Procfile left in BuildDir by the build,
	// whose types win where both name one (a Procfile need not repeat a
	// default the buildpack provides).
	ProcessTypes map[string]string
	// DefaultTypes are the default_process_types of the last buildpack
	// that has a bin/release.
	DefaultTypes map[string]string
	// Buildpacks are the refs used, in order, detection's pick included.
	Buildpacks []string
	// FromBuildpacksFile says Buildpacks came from the source's
	// .buildpacks file. Saving them on the app would make later edits
	// of that file count for nothing.
	FromBuildpacksFile bool
	// Names are what each buildpack's bin/detect printed ("Go").
	Names []string
	// Addons and ConfigVars (a long-deprecated key) come from the same
	// bin/release as DefaultTypes.
	Addons     []string
	ConfigVars map[string]string
}

// A BuildError is a build that failed: which buildpack (empty when no
// single one is to blame) and why.
type BuildError struct {
	Buildpack string
	Reason    string
}

func (e *BuildError) Error() string {
	if e.Buildpack == "" {
		return e.Reason
	}
	return "buildpack " + e.Buildpack + ": " + e.Reason
}

// Run builds b.BuildDir in place with buildpacks: for each, bin/detect
// (which must accept the app), bin/compile, then bin/release if it has
// one; then it reads the process types. Build output goes to b.Out. A
// failed build returns a *BuildError, after printing Heroku's lines for
// it; a canceled one returns an error wrapping ctx.Err(), its running
// command killed.
func Run(ctx context.Context, b Build) (*Result, error) {
	r, err := newBuilder(b)
	if err != nil {
		return nil, err
	}
	defer r.cleanup()
	return r.run(ctx)
}

// cleanup hands back what the commands' ids hold (a build that failed
// or was canceled has not yet), then removes the build's own folder.
func (r *builder) cleanup() {
	r.handBack()
	fsutil.RemoveAll(r.work)
}

// handOver hands dirs to the ids the commands run as, where they are not
// this process's (Handover).
func (r *builder) handOver(dirs ...string) error {
	h, ok := r.exec.(Handover)
	if !ok {
		return nil
	}
	handed, err := h.HandOver(dirs...)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	for _, d := range dirs {
		r.handed[d] = handed
	}
	return nil
}

// handBack hands back everything handOver handed over.
func (r *builder) handBack() error {
	h, ok := r.exec.(Handover)
	if !ok {
		return nil
	}
	if err := h.HandBack(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	return nil
}

// A builder holds one run's state.
type builder struct {
	b                  Build
	out                *lineWriter
	exec               Executor
	buildDir, cacheDir string
	// work holds what each build gets fresh and loses at its end: HOME,
	// TMPDIR, ENV_DIR and the buildpacks' private copies.
	work, home, tmp, envDir, packDir string
	env                              []string
	done                             []string // dirs of the buildpacks compiled so far, in order
	// handed are the dirs handed to the commands' ids (Handover), which
	// this process may not look into until they are handed back.
	handed map[string]bool
	// releases says, for each buildpack fetched, whether it has a
	// bin/release, as looked up before it was handed over.
	releases map[string]bool
}

func newBuilder(b Build) (r *builder, err error) {
	r = &builder{b: b, exec: b.Exec, out: &lineWriter{w: b.Out}, handed: map[string]bool{}, releases: map[string]bool{}}
	if r.exec == nil {
		r.exec = PlainExecutor{}
	}
	if r.out.w == nil {
		r.out.w = io.Discard
	}
	if r.buildDir, err = filepath.Abs(b.BuildDir); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if info, err := os.Stat(r.buildDir); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	} else if !info.IsDir() {
		return nil, fmt.Errorf("build: %s is not a directory", r.buildDir)
	}
	if b.CacheDir == "" {
		return nil, errors.New("build: no cache directory")
	}
	if r.cacheDir, err = filepath.Abs(b.CacheDir); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if err := os.MkdirAll(r.cacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("build: creating cache: %w", err)
	}
	if r.work, err = os.MkdirTemp(b.WorkDir, "dyno-build-"); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	defer func() {
		if err != nil {
			r.cleanup()
		}
	}()
	r.home = filepath.Join(r.work, "home")
	r.tmp = filepath.Join(r.work, "tmp")
	r.envDir = filepath.Join(r.work, "env")
	r.packDir = filepath.Join(r.work, "buildpacks")
	for _, d := range []string{r.home, r.tmp, r.packDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
	}
	if err := writeEnvDir(r.envDir, b.ConfigVars); err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	r.env = buildEnv(b, r.home, r.tmp)
	return r, nil
}

// writeEnvDir writes vars as Heroku's ENV_DIR: one file per var, so
// that any value, newlines included, arrives exactly.
func writeEnvDir(dir string, vars map[string]string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	// Modes are set explicitly: the umask must not widen or narrow them.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	for k, v := range vars {
		if k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00") {
			return fmt.Errorf("config var %q: the name cannot be a file name in ENV_DIR", k)
		}
		name := filepath.Join(dir, k)
		if err := os.WriteFile(name, []byte(v), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(name, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// buildEnv is the environment every buildpack command starts from.
// HOME and TMPDIR are fresh for each build: some buildpacks write a git
// config into HOME, and a shared /tmp would leak between builds.
func buildEnv(b Build, home, tmp string) []string {
	env := []string{"PATH=" + basePath, "LANG=C.UTF-8"}
	at := make(map[string]int)
	for _, kv := range b.HostEnv {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !passedThrough(k) {
			continue
		}
		if i, seen := at[k]; seen {
			env[i] = kv // the last one wins, as in a shell
			continue
		}
		at[k] = len(env)
		env = append(env, kv)
	}
	if b.Stack != "" {
		env = append(env, "STACK="+b.Stack)
	}
	if b.SourceVersion != "" {
		env = append(env, "SOURCE_VERSION="+b.SourceVersion)
	}
	return append(env, "HOME="+home, "TMPDIR="+tmp)
}

// passedThrough reports whether a host variable reaches builds: those
// without which a build behind a proxy or a private CA cannot download.
func passedThrough(name string) bool {
	switch name {
	case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		"SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS":
		return true
	}
	return false
}

func (r *builder) run(ctx context.Context) (*Result, error) {
	res := &Result{ProcessTypes: map[string]string{}, DefaultTypes: map[string]string{}}
	refs := r.b.Buildpacks
	if len(refs) == 0 {
		var err error
		if refs, err = ReadBuildpacksFile(r.buildDir); err != nil {
			r.out.printf(" !     %v\n", err)
			return nil, r.fail("", err.Error())
		}
		res.FromBuildpacksFile = len(refs) > 0
	}
	multi := res.FromBuildpacksFile
	// Read: .buildpacks, above. The commands' ids must be able to
	// write these and read ENV_DIR. The cache, which outlives the build
	// and may serve several at once, is the caller's to hand over
	// (CacheDir).
	if err := r.handOver(r.buildDir, r.home, r.tmp, r.envDir); err != nil {
		return nil, err
	}

	if r.b.Stack != "" {
		r.out.printf("-----> Building on the %s stack\n", stackTitle(r.b.Stack))
	}
	switch {
	case multi:
		// The shape of heroku-buildpack-multi, whose file this is.
		r.out.printf("-----> Multipack app detected\n")
	case len(refs) == 1:
		r.out.printf("-----> Using buildpack: %s\n", refs[0])
	case len(refs) > 1:
		r.out.printf("-----> Using buildpacks:\n")
		for i, ref := range refs {
			r.out.printf("       %d. %s\n", i+1, ref)
		}
	default:
		r.out.printf("-----> Determining which buildpack to use for this app\n")
		ref, name, err := r.detectInstalled(ctx)
		if err != nil {
			return nil, err
		}
		if ref == "" {
			r.out.printf(" !     No default language could be detected for this app.\n")
			return nil, r.fail("", "no buildpack detected this app; set one with -b or dyno buildpacks:set")
		}
		r.out.printf("-----> %s app detected\n", name)
		bp, err := r.fetch(ctx, ref)
		if err != nil {
			return nil, r.fetchFailed(ctx, ref, err)
		}
		if _, err := r.compileAndRelease(ctx, bp, name, res); err != nil {
			return nil, err
		}
	}

	lastRelease := ""
	for _, ref := range refs {
		if multi {
			r.out.printf("=====> Downloading Buildpack: %s\n", ref)
		}
		bp, err := r.fetch(ctx, ref)
		if err != nil {
			return nil, r.fetchFailed(ctx, ref, err)
		}
		name, ok, err := r.detect(ctx, bp.Dir, ref, r.out)
		if err != nil {
			return nil, r.commandFailed(ctx, ref, "bin/detect", err)
		}
		if !ok {
			r.out.printf("-----> App not compatible with buildpack: %s\n", ref)
			r.out.printf("       More info: https://devcenter.heroku.com/articles/buildpacks#detection-failure\n")
			return nil, r.fail(ref, "bin/detect: the buildpack does not apply to this app")
		}
		if multi {
			r.out.printf("=====> Detected Framework: %s\n", name)
		} else {
			r.out.printf("-----> %s app detected\n", name)
		}
		hasRelease, err := r.compileAndRelease(ctx, bp, name, res)
		if err != nil {
			return nil, err
		}
		if hasRelease {
			lastRelease = name
		}
	}
	if multi && lastRelease != "" {
		r.out.printf("       Using release configuration from last framework (%s).\n", lastRelease)
	}

	// The commands are done: what they made is this process's again
	// before it reads the Procfile, and before the slug is packed.
	if err := r.handBack(); err != nil {
		return nil, err
	}
	r.out.printf("-----> Discovering process types\n")
	procfile, err := readProcfile(r.buildDir)
	// A line that is not "name: command" is skipped, as dyno start and
	// Foreman skip it, with a warning in the build output.
	var skipped []slug.SkippedLine
	var pe *slug.ProcfileError
	if errors.As(err, &pe) {
		skipped = pe.Skipped
	} else if procfile != nil {
		skipped = procfile.Skipped
	}
	for _, s := range skipped {
		r.out.printf(" !     Warning: %s\n", s)
	}
	if err != nil {
		r.out.printf(" !     %s\n", err)
		return nil, r.fail("", err.Error())
	}
	r.printProcessTypes(procfile, res.DefaultTypes)
	for k, v := range res.DefaultTypes {
		res.ProcessTypes[k] = v
	}
	if procfile != nil {
		for _, t := range procfile.Types {
			res.ProcessTypes[t.Name] = t.Command
		}
	}
	return res, nil
}

// compileAndRelease compiles bp, runs its bin/release and records both
// in res. hasRelease says whether bp has a bin/release.
func (r *builder) compileAndRelease(ctx context.Context, bp *Buildpack, name string, res *Result) (hasRelease bool, err error) {
	if err := r.compile(ctx, bp, name); err != nil {
		return false, err
	}
	rel, err := r.release(ctx, bp)
	if err != nil {
		return false, err
	}
	r.done = append(r.done, bp.Dir)
	res.Buildpacks = append(res.Buildpacks, bp.Ref)
	res.Names = append(res.Names, name)
	if rel == nil {
		return false, nil
	}
	// The last buildpack's bin/release wins (a Heroku maintainer's
	// word); one without a bin/release leaves the earlier one standing.
	res.DefaultTypes = rel.DefaultProcessTypes
	if res.DefaultTypes == nil {
		res.DefaultTypes = map[string]string{}
	}
	res.Addons, res.ConfigVars = rel.Addons, rel.ConfigVars
	return true, nil
}

// detectInstalled returns the first of b.Installed whose bin/detect
// accepts the app, and the name it printed; ref is "" when none does.
// Candidates run where they are installed: only the one picked is
// copied, and detection must not write to its buildpack anyway.
// fetch fetches ref, or the folder it names in Aliases, keeping ref as
// the buildpack's name.
func (r *builder) fetch(ctx context.Context, ref string) (*Buildpack, error) {
	src := ref
	if dir, ok := r.b.Aliases[ref]; ok {
		src = dir
	}
	bp, err := fetch(ctx, src, r.b.BaseDir, r.packDir)
	if err != nil {
		return nil, err
	}
	// Its compile may write into it; its scripts must be readable by
	// the commands' ids whatever modes the fetch gave them. Whether it
	// has a bin/release is looked up first: once handed over, its
	// folder (0700) is not this process's to look into.
	_, err = os.Lstat(filepath.Join(bp.Dir, "bin", "release"))
	r.releases[bp.Dir] = !errors.Is(err, fs.ErrNotExist)
	if err := r.handOver(bp.Dir); err != nil {
		return nil, err
	}
	bp.Ref = ref
	return bp, nil
}

// alias is the name Aliases gives folder dir ("heroku/go" over "go"),
// or dir itself.
func (r *builder) alias(dir string) string {
	best := ""
	for name, d := range r.b.Aliases {
		if d == dir && len(name) > len(best) {
			best = name
		}
	}
	if best == "" {
		return dir
	}
	return best
}

func (r *builder) detectInstalled(ctx context.Context) (ref, name string, err error) {
	for _, dir := range r.b.Installed {
		dir = localPath(dir, r.b.BaseDir)
		// The buildpacks that do not apply say so on stderr; trying
		// each in turn, that is noise.
		name, ok, err := r.detect(ctx, dir, dir, io.Discard)
		if err != nil {
			if ctx.Err() != nil {
				return "", "", fmt.Errorf("build canceled: %w", ctx.Err())
			}
			// One broken buildpack must not stop every build that
			// another would have built.
			r.out.printf(" !     Skipping buildpack %s: bin/detect: %v\n", dir, err)
			continue
		}
		if ok {
			return r.alias(dir), name, nil
		}
	}
	return "", "", nil
}

// An exitCoder is the error of a command that ran and exited non-zero,
// as *exec.ExitError is; executors return one for such commands.
type exitCoder interface {
	ExitCode() int
}

// detect runs the bin/detect in dir. ok says whether it accepted the
// app and name is the first line it printed; err is for a detect that
// could not run at all.
//
// Only the first line is used, so stdout is read up to maxDetectOutput
// (and one byte more, to tell "at" from "over"), then the command is
// stopped and err is an *outputTooLarge: one that prints without end
// (exec yes) would otherwise grow dyno without bound.
func (r *builder) detect(ctx context.Context, dir, ref string, stderr io.Writer) (name string, ok bool, err error) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	stdout := &cappedBuffer{limit: maxDetectOutput + 1, full: stop}
	err = r.exec.Run(runCtx, Command{
		Argv:     r.withExports(filepath.Join(dir, "bin", "detect"), r.buildDir),
		Dir:      dir,
		Env:      r.env,
		Stdout:   stdout,
		Stderr:   stderr,
		Writable: []string{r.home, r.tmp},
		Readable: append([]string{dir, r.buildDir}, r.done...),
	})
	if ctx.Err() == nil && stdout.buf.Len() > maxDetectOutput {
		return "", false, &outputTooLarge{limit: maxDetectOutput, of: "bin/detect's output"}
	}
	var exit exitCoder
	if err != nil && ctx.Err() == nil && errors.As(err, &exit) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	name, _, _ = strings.Cut(strings.TrimSpace(stdout.buf.String()), "\n")
	if name = strings.TrimSpace(name); name == "" {
		name = refName(ref)
	}
	return name, true, nil
}

func (r *builder) compile(ctx context.Context, bp *Buildpack, name string) error {
	err := r.exec.Run(ctx, Command{
		Argv:     r.withExports(filepath.Join(bp.Dir, "bin", "compile"), r.buildDir, r.cacheDir, r.envDir),
		Dir:      bp.Dir,
		Env:      r.env,
		Stdout:   r.out,
		Stderr:   r.out,
		Writable: []string{r.buildDir, r.cacheDir, bp.Dir, r.home, r.tmp},
		Readable: append([]string{r.envDir}, r.done...),
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("build canceled: buildpack %s: %w", bp.Ref, ctx.Err())
	}
	r.out.printf(" !     Push rejected, failed to compile %s app.\n", name)
	return r.fail(bp.Ref, fmt.Sprintf("failed to compile %s app: bin/compile: %v", name, err))
}

// release runs bp's bin/release, when it has one, and parses what it
// printed; a nil release means it has none.
func (r *builder) release(ctx context.Context, bp *Buildpack) (*release, error) {
	script := filepath.Join(bp.Dir, "bin", "release")
	if r.handed[bp.Dir] {
		// Looked up as fetched (fetch): a compile that adds one to
		// its own copy is not heard.
		if !r.releases[bp.Dir] {
			return nil, nil
		}
	} else if _, err := os.Lstat(script); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	// What bin/release prints is read up to the limit and one byte
	// more, which tells "at the limit" from "over it"; then the command
	// is stopped: one that prints without end would never exit.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	stdout := &cappedBuffer{limit: MaxReleaseSize + 1, full: stop}
	err := r.exec.Run(runCtx, Command{
		Argv:     r.withExports(script, r.buildDir),
		Dir:      bp.Dir,
		Env:      r.env,
		Stdout:   stdout,
		Stderr:   r.out,
		Writable: []string{r.home, r.tmp},
		Readable: append([]string{bp.Dir, r.buildDir}, r.done...),
	})
	if ctx.Err() == nil && stdout.buf.Len() > MaxReleaseSize {
		return nil, r.commandFailed(ctx, bp.Ref, "bin/release", &outputTooLarge{limit: MaxReleaseSize, of: "a release"})
	}
	if err != nil {
		return nil, r.commandFailed(ctx, bp.Ref, "bin/release", err)
	}
	rel, err := parseRelease(stdout.buf.Bytes())
	if err != nil {
		r.out.printf(" !     bin/release of %s: %v\n", bp.Ref, err)
		return nil, r.fail(bp.Ref, "bin/release: "+err.Error())
	}
	return rel, nil
}

// withExports is the argv that runs argv after sourcing, in order, the
// export file of each buildpack compiled so far, so that what one
// buildpack exports (PATH, most often) reaches the next.
func (r *builder) withExports(argv ...string) []string {
	var script strings.Builder
	for _, dir := range r.done {
		export := filepath.Join(dir, "export")
		if info, err := os.Stat(export); err == nil && info.Mode().IsRegular() {
			script.WriteString(". " + shellQuote(export) + "\n")
		}
	}
	if script.Len() == 0 {
		return argv
	}
	script.WriteString(`exec "$@"`)
	// bash -c's first operand is $0; the rest are "$@".
	return append([]string{"bash", "-c", script.String(), argv[0]}, argv...)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (r *builder) fetchFailed(ctx context.Context, ref string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("build canceled: %w", ctx.Err())
	}
	r.out.printf(" !     %v\n", err)
	// The error names the buildpack already; the BuildError does too.
	return r.fail(ref, "fetching: "+strings.TrimPrefix(err.Error(), "fetch buildpack "+ref+": "))
}

// commandFailed reports a detect or release that failed to run or
// exited non-zero where that is not a verdict.
func (r *builder) commandFailed(ctx context.Context, ref, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("build canceled: buildpack %s: %w", ref, ctx.Err())
	}
	if big, ok := err.(*outputTooLarge); ok {
		r.out.printf(" !     %s of %s: %v\n", what, ref, big)
		return r.fail(ref, what+": "+big.Error())
	}
	r.out.printf(" !     %s of %s failed: %v\n", what, ref, err)
	return r.fail(ref, what+": "+err.Error())
}

// fail ends the output as Heroku ends a failed build's, and returns the
// BuildError, its reason made one line.
func (r *builder) fail(ref, reason string) error {
	r.out.printf(" !     Push failed\n")
	return &BuildError{Buildpack: ref, Reason: strings.Join(strings.Fields(reason), " ")}
}

// MaxProcfileSize is the most dyno reads of the Procfile a build
// leaves. Real ones are a few lines.
const MaxProcfileSize = 1 << 20

// readProcfile reads the Procfile the build left, if any. A buildpack
// could leave anything there: a symlink to any file of the host (it is
// read through an os.Root), a fifo that would block the read for good, a
// sparse file of 100 GB (it must be a regular file, read up to
// MaxProcfileSize).
func readProcfile(dir string) (*slug.Procfile, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("reading Procfile: %w", err)
	}
	defer root.Close()
	data, err := fsutil.ReadRegular(root, "Procfile", MaxProcfileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return slug.ParseProcfile("Procfile", data)
}

// printProcessTypes prints Heroku's lines under "Discovering process
// types": the Procfile's always, the buildpack's defaults when there are
// any, the arrows aligned when both are shown.
func (r *builder) printProcessTypes(procfile *slug.Procfile, defaults map[string]string) {
	const procLabel, defLabel = "Procfile declares types", "Default types for buildpack"
	width := len(procLabel)
	if len(defaults) > 0 {
		width = len(defLabel)
	}
	var declared []string
	if procfile != nil {
		declared = procfile.Names()
	}
	r.out.printf("       %-*s -> %s\n", width, procLabel, typeList(declared))
	if len(defaults) > 0 {
		var names []string
		for name := range defaults {
			names = append(names, name)
		}
		r.out.printf("       %-*s -> %s\n", width, defLabel, typeList(names))
	}
}

func typeList(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	names = slices.Clone(names)
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// stackTitle is a stack's name as Heroku shows it: "Heroku-24".
func stackTitle(stack string) string {
	return strings.ToUpper(stack[:1]) + stack[1:]
}

// maxDetectOutput is the most dyno reads of what bin/detect prints. Only
// its first line, the app's framework name, is used.
const maxDetectOutput = 64 << 10

// An outputTooLarge is a buildpack command stopped for printing more
// than dyno reads of it.
type outputTooLarge struct {
	limit int
	of    string // what the limit is of, for the message: "a release"
}

func (e *outputTooLarge) Error() string {
	return fmt.Sprintf("printed more than %s, the most dyno reads of %s", sizeText(e.limit), e.of)
}

// A cappedBuffer keeps what is written to it up to limit bytes, and
// calls full once when more comes. It never fails a write: the writer
// must not die of a broken pipe before it is stopped.
type cappedBuffer struct {
	buf   bytes.Buffer
	limit int
	full  func()
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.limit - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
		if c.buf.Len() == c.limit {
			c.full()
		}
	}
	return len(p), nil
}

// A lineWriter passes writes through, remembering whether the output
// stopped mid-line, so that dyno's own lines never start at the end of
// a buildpack's unfinished one.
//
// Output is best effort: a write that fails is dropped and reported as
// done, because a buildpack whose output pipe broke would die of
// SIGPIPE, and whoever stopped reading should not decide the build.
// Stopping a build is what its context is for.
type lineWriter struct {
	w   io.Writer
	mid bool
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.w.Write(p)
		l.mid = p[len(p)-1] != '\n'
	}
	return len(p), nil
}

// printf writes a line of dyno's own.
func (l *lineWriter) printf(format string, args ...any) {
	if l.mid {
		l.Write([]byte("\n"))
	}
	fmt.Fprintf(l, format, args...)
}
