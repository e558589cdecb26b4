package buildpacks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
)

// newApp writes an app's prepared source into a new build dir.
func newApp(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "app")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, files)
	return dir
}

// build runs a build of dir with refs and returns the result, the error
// and the output.
func build(t *testing.T, b Build) (*Result, string, error) {
	t.Helper()
	var out syncBuffer
	b.Out = &out
	if b.CacheDir == "" {
		b.CacheDir = filepath.Join(t.TempDir(), "cache")
	}
	if b.Stack == "" {
		b.Stack = "heroku-24"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Run(ctx, b)
	return res, out.String(), err
}

// wantLines fails unless out holds each of lines, in order, each a whole line.
func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	rest := "\n" + out
	for _, l := range lines {
		i := strings.Index(rest, "\n"+l+"\n")
		if i < 0 {
			t.Errorf("output lacks line %q (in order):\n%s", l, out)
			return
		}
		rest = rest[i+len(l)+1:]
	}
}

func TestRunFixture(t *testing.T) {
	t.Parallel()
	app := newApp(t, map[string]string{".fixture": ""})
	bp := fixture(t)
	greeting := "hello\nworld, no newline at the end"
	res, out, err := build(t, Build{
		BuildDir:      app,
		Buildpacks:    []string{bp},
		ConfigVars:    map[string]string{"FIXTURE_GREETING": greeting, "OTHER": "x"},
		SourceVersion: "0123abcd",
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out,
		"-----> Building on the Heroku-24 stack",
		"-----> Using buildpack: "+bp,
		"-----> Fixture app detected",
		"-----> Compiling with fixture",
		"       cache hits: 1",
		"       stack: heroku-24",
		"       source version: 0123abcd",
		"       wrote greeting.txt from FIXTURE_GREETING",
		"-----> Discovering process types",
		"       Procfile declares types     -> (none)",
		"       Default types for buildpack -> web, worker",
	)
	if got, _ := os.ReadFile(filepath.Join(app, "greeting.txt")); string(got) != greeting {
		t.Errorf("greeting.txt = %q, want the config var exactly, %q", got, greeting)
	}
	if got, _ := os.ReadFile(filepath.Join(app, ".profile.d", "fixture.sh")); !strings.Contains(string(got), "FIXTURE_PROFILE") {
		t.Errorf(".profile.d/fixture.sh = %q", got)
	}
	if _, err := os.Stat(filepath.Join(bp, "export")); !os.IsNotExist(err) {
		t.Error("the build wrote export into the shared buildpack, not its private copy")
	}
	if len(res.ProcessTypes) != 2 || !strings.Contains(res.ProcessTypes["web"], "fixture web") || res.ProcessTypes["worker"] == "" {
		t.Errorf("ProcessTypes = %q, want the default web and worker", res.ProcessTypes)
	}
	if len(res.DefaultTypes) != 2 {
		t.Errorf("DefaultTypes = %q", res.DefaultTypes)
	}
	if len(res.Buildpacks) != 1 || res.Buildpacks[0] != bp || len(res.Names) != 1 || res.Names[0] != "Fixture" {
		t.Errorf("Buildpacks = %q, Names = %q", res.Buildpacks, res.Names)
	}
	if res.Addons == nil || len(res.Addons) != 0 || res.FromBuildpacksFile {
		t.Errorf("Addons = %#v, FromBuildpacksFile = %v; want empty and false", res.Addons, res.FromBuildpacksFile)
	}
}

func TestRunCacheReuse(t *testing.T) {
	t.Parallel()
	cache := filepath.Join(t.TempDir(), "apps", "x", "cache") // created by Run
	for i := 1; i <= 2; i++ {
		_, out, err := build(t, Build{
			BuildDir:   newApp(t, map[string]string{".fixture": ""}),
			CacheDir:   cache,
			Buildpacks: []string{fixture(t)},
		})
		if err != nil {
			t.Fatalf("build %d: %v\n%s", i, err, out)
		}
		wantLines(t, out, "       cache hits: "+strconv.Itoa(i))
	}
}

func TestRunEnvDir(t *testing.T) {
	t.Parallel()
	app := newApp(t, nil)
	_, out, err := build(t, Build{
		BuildDir:   app,
		Buildpacks: []string{testBuildpack(t, "envdump")},
		ConfigVars: map[string]string{"DATABASE_URL": "postgres://x", "SECRET": "s"},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out, "args: 3", "envdir mode: 700", "envfile: DATABASE_URL 600", "envfile: SECRET 600")
	if strings.Contains(out, "env: DATABASE_URL") || strings.Contains(out, "env: SECRET") {
		t.Errorf("config vars leaked into compile's environment:\n%s", out)
	}
	envDir := between(out, "envdir: ", "\n")
	if _, err := os.Stat(envDir); !os.IsNotExist(err) {
		t.Errorf("ENV_DIR %s still exists after the build", envDir)
	}
}

func TestRunEnvironment(t *testing.T) {
	t.Parallel()
	app := newApp(t, nil)
	bp := testBuildpack(t, "envdump")
	_, out, err := build(t, Build{
		BuildDir:      app,
		Buildpacks:    []string{bp},
		SourceVersion: "feedface",
		HostEnv: []string{
			"FOO_4f1c=leak", "PATH=/evil", "HOME=/root", "HTTPS_PROXY=http://proxy:3128",
			"no_proxy=localhost", "SSL_CERT_FILE=/etc/ca.pem", "HTTPS_PROXY=http://proxy:8080",
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var env []string
	for _, l := range strings.Split(out, "\n") {
		if kv, ok := strings.CutPrefix(l, "env: "); ok {
			env = append(env, kv)
		}
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":           basePath,
		"LANG":           "C.UTF-8",
		"STACK":          "heroku-24",
		"SOURCE_VERSION": "feedface",
		"HTTPS_PROXY":    "http://proxy:8080",
		"no_proxy":       "localhost",
		"SSL_CERT_FILE":  "/etc/ca.pem",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["FOO_4f1c"]; ok {
		t.Error("a host variable that is no proxy or CA setting reached the build")
	}
	// HOME and TMPDIR are the build's own: written during it, gone after.
	wantLines(t, out, "home and tmpdir writable")
	for _, k := range []string{"HOME", "TMPDIR"} {
		if got[k] == "" || got[k] == "/root" {
			t.Errorf("%s = %q, want a fresh directory of the build's own", k, got[k])
		} else if _, err := os.Stat(got[k]); !os.IsNotExist(err) {
			t.Errorf("%s %s still exists after the build", k, got[k])
		}
	}
	if pwd := between(out, "pwd: ", "\n"); filepath.Base(filepath.Dir(pwd)) != "buildpacks" || pwd == bp {
		t.Errorf("compile ran in %s, want the buildpack's private copy", pwd)
	}
}

// between returns what follows the first prefix in s, up to end.
func between(s, prefix, end string) string {
	_, after, _ := strings.Cut(s, prefix)
	v, _, _ := strings.Cut(after, end)
	return v
}

func TestRunExportSourced(t *testing.T) {
	t.Parallel()
	exported := testBuildpack(t, "exported")
	_, out, err := build(t, Build{
		BuildDir:   newApp(t, map[string]string{".fixture": ""}),
		Buildpacks: []string{fixture(t), exported},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out,
		"-----> Using buildpacks:",
		"       1. "+fixture(t),
		"       2. "+exported,
		"-----> Fixture app detected",
		"-----> Exported check app detected",
		"-----> FIXTURE_EXPORTED=yes",
	)

	// In the other order nothing was exported yet.
	_, out, err = build(t, Build{
		BuildDir:   newApp(t, map[string]string{".fixture": ""}),
		Buildpacks: []string{exported, fixture(t)},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out, "-----> FIXTURE_EXPORTED=unset")
}

// The buildpack's default types apply under the Procfile: its types win,
// the defaults fill in the rest.
func TestRunProcfileOverDefaults(t *testing.T) {
	t.Parallel()
	app := newApp(t, map[string]string{".fixture": "", "Procfile": "web: ./server -p $PORT\nclock: ./clock\n"})
	res, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{fixture(t)}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out,
		"-----> Discovering process types",
		"       Procfile declares types     -> clock, web",
		"       Default types for buildpack -> web, worker",
	)
	want := map[string]string{"web": "./server -p $PORT", "clock": "./clock", "worker": res.DefaultTypes["worker"]}
	if len(res.ProcessTypes) != len(want) || res.ProcessTypes["web"] != want["web"] || res.ProcessTypes["clock"] != want["clock"] ||
		want["worker"] == "" || res.ProcessTypes["worker"] != want["worker"] {
		t.Errorf("ProcessTypes = %q, want the Procfile's over the defaults, %q", res.ProcessTypes, want)
	}
	if len(res.DefaultTypes) != 2 {
		t.Errorf("DefaultTypes = %q, want the buildpack's web and worker", res.DefaultTypes)
	}
}

func TestRunProcfileOnly(t *testing.T) {
	t.Parallel()
	// A buildpack without bin/release: only the Procfile line, unpadded.
	app := newApp(t, map[string]string{"Procfile": "worker: ./work\n"})
	res, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{testBuildpack(t, "exported")}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out, "-----> Discovering process types", "       Procfile declares types -> worker")
	if strings.Contains(out, "Default types") {
		t.Errorf("a Default types line without defaults:\n%s", out)
	}
	if len(res.ProcessTypes) != 1 || len(res.DefaultTypes) != 0 {
		t.Errorf("ProcessTypes = %q, DefaultTypes = %q", res.ProcessTypes, res.DefaultTypes)
	}
}

// A Procfile line that is not "name: command" is skipped with a warning
// in the build output, as dyno start skips it; the rest is recorded.
func TestRunProcfileSkipsMalformedLines(t *testing.T) {
	t.Parallel()
	app := newApp(t, map[string]string{"Procfile": "web ./server\nworker: ./work\noops"})
	res, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{testBuildpack(t, "exported")}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out,
		"-----> Discovering process types",
		` !     Warning: Procfile:1: skipped "web ./server": not NAME: COMMAND`,
		` !     Warning: Procfile:3: skipped "oops": not NAME: COMMAND`,
		"       Procfile declares types -> worker",
	)
	if len(res.ProcessTypes) != 1 || res.ProcessTypes["worker"] != "./work" {
		t.Errorf("ProcessTypes = %q, want only worker", res.ProcessTypes)
	}
}

// A Procfile with nothing but skipped lines declares no types: the build
// fails, after warning about each line.
func TestRunInvalidProcfile(t *testing.T) {
	t.Parallel()
	app := newApp(t, map[string]string{"Procfile": "web ./server\n"})
	_, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{testBuildpack(t, "exported")}})
	var be *BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "Procfile: no process types, 1 line skipped") {
		t.Fatalf("err = %v, want a BuildError about a Procfile with no types\n%s", err, out)
	}
	wantLines(t, out, ` !     Warning: Procfile:1: skipped "web ./server": not NAME: COMMAND`, " !     Push failed")
}

// A duplicate process type fails the build, naming both lines.
func TestRunDuplicateProcfileType(t *testing.T) {
	t.Parallel()
	app := newApp(t, map[string]string{"Procfile": "web: a\nweb: b\n"})
	_, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{testBuildpack(t, "exported")}})
	var be *BuildError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, `Procfile:2: duplicate process type "web" (first on line 1)`) {
		t.Fatalf("err = %v, want a BuildError about the duplicate\n%s", err, out)
	}
	wantLines(t, out, " !     Push failed")
}

func TestRunCompileFails(t *testing.T) {
	t.Parallel()
	bp := fixture(t)
	app := newApp(t, map[string]string{".fixture": "", ".fail-compile": ""})
	_, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{bp}})
	var be *BuildError
	if !errors.As(err, &be) || be.Buildpack != bp {
		t.Fatalf("err = %#v, want a BuildError naming %s", err, bp)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "failed to compile Fixture app") {
		t.Errorf("Error() = %q, want one line saying the compile failed", msg)
	}
	wantLines(t, out,
		"-----> Compiling with fixture",
		" !     The app has a .fail-compile file: failing on purpose.",
		" !     Push rejected, failed to compile Fixture app.",
		" !     Push failed",
	)
	if strings.Contains(out, "Discovering process types") {
		t.Errorf("the build went on after the failure:\n%s", out)
	}
}

func TestRunNotCompatible(t *testing.T) {
	t.Parallel()
	bp := fixture(t)
	_, out, err := build(t, Build{BuildDir: newApp(t, nil), Buildpacks: []string{bp}})
	var be *BuildError
	if !errors.As(err, &be) || be.Buildpack != bp {
		t.Fatalf("err = %v, want a BuildError naming %s", err, bp)
	}
	wantLines(t, out,
		" !     No .fixture file at the top of the app: the fixture buildpack does not apply.",
		"-----> App not compatible with buildpack: "+bp,
		"       More info: https://devcenter.heroku.com/articles/buildpacks#detection-failure",
		" !     Push failed",
	)
	if strings.Contains(out, "Compiling") {
		t.Errorf("compiled after detect failed:\n%s", out)
	}
}

func TestRunAutoDetect(t *testing.T) {
	t.Parallel()
	installed := []string{testBuildpack(t, "nodetect"), fixture(t), testBuildpack(t, "exported")}
	res, out, err := build(t, Build{BuildDir: newApp(t, map[string]string{".fixture": ""}), Installed: installed})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out,
		"-----> Determining which buildpack to use for this app",
		"-----> Fixture app detected",
		"-----> Compiling with fixture",
	)
	if strings.Contains(out, "never applies") || strings.Contains(out, "Exported") {
		t.Errorf("output of buildpacks not picked:\n%s", out)
	}
	if len(res.Buildpacks) != 1 || res.Buildpacks[0] != fixture(t) {
		t.Errorf("Buildpacks = %q, want the one detected", res.Buildpacks)
	}
}

func TestRunAutoDetectNone(t *testing.T) {
	t.Parallel()
	_, out, err := build(t, Build{
		BuildDir:  newApp(t, nil),
		Installed: []string{testBuildpack(t, "nodetect"), fixture(t)},
	})
	var be *BuildError
	if !errors.As(err, &be) || be.Buildpack != "" {
		t.Fatalf("err = %v, want a BuildError", err)
	}
	if want := "no buildpack detected this app; set one with -b or dyno buildpacks:set"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	wantLines(t, out, "-----> Determining which buildpack to use for this app", " !     Push failed")
}

func TestRunInvalidRelease(t *testing.T) {
	t.Parallel()
	bp := testBuildpack(t, "badrelease")
	_, out, err := build(t, Build{BuildDir: newApp(t, nil), Buildpacks: []string{bp}})
	var be *BuildError
	if !errors.As(err, &be) || be.Buildpack != bp || !strings.Contains(be.Reason, "invalid YAML") {
		t.Fatalf("err = %v, want a BuildError naming %s and the YAML", err, bp)
	}
	wantLines(t, out, " !     Push failed")
}

func TestParseRelease(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "--- {}\n", "---\n", "addons: []\ndefault_process_types:\n  web: npm start\nconfig_vars:\n  PORT: 5000\n"} {
		if _, err := parseRelease([]byte(ok)); err != nil {
			t.Errorf("parseRelease(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"addons: [\n", "default_process_types: [web]\n", "Using release configuration\n",
		"default_process_types:\n  'bad name': x\n", "default_process_types:\n  web: ''\n"} {
		if _, err := parseRelease([]byte(bad)); err == nil {
			t.Errorf("parseRelease(%q) succeeded", bad)
		}
	}
	rel, _ := parseRelease([]byte("config_vars:\n  PORT: 5000\n"))
	if rel.ConfigVars["PORT"] != "5000" {
		t.Errorf("config_vars = %q", rel.ConfigVars)
	}
}

func TestRunReplacedBuildDir(t *testing.T) {
	t.Parallel()
	app := newApp(t, map[string]string{".fixture": "", "Procfile": "web: old\n", "old.txt": "old"})
	res, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{fixture(t), testBuildpack(t, "replace")}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := listFiles(t, app); len(got) != 2 || got[0] != "Procfile" || got[1] != "replaced.txt" {
		t.Errorf("build dir = %q, want the replacement's files", got)
	}
	if res.ProcessTypes["web"] != "cat replaced.txt" || res.ProcessTypes["web"] == "old" {
		t.Errorf("ProcessTypes = %q, want the new Procfile's web", res.ProcessTypes)
	}
}

func TestRunBuildpacksFile(t *testing.T) {
	t.Parallel()
	app := newApp(t, map[string]string{
		".fixture":    "",
		".buildpacks": "# the app's buildpacks\n" + fixture(t) + "\n" + testBuildpack(t, "exported") + "\n",
	})
	res, out, err := build(t, Build{BuildDir: app, Installed: []string{testBuildpack(t, "nodetect")}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out,
		"-----> Multipack app detected",
		"=====> Downloading Buildpack: "+fixture(t),
		"=====> Detected Framework: Fixture",
		"-----> Compiling with fixture",
		"=====> Downloading Buildpack: "+testBuildpack(t, "exported"),
		"=====> Detected Framework: Exported check",
		"-----> FIXTURE_EXPORTED=yes",
		"       Using release configuration from last framework (Fixture).",
	)
	if !res.FromBuildpacksFile || len(res.Buildpacks) != 2 || res.Names[1] != "Exported check" {
		t.Errorf("Result = %+v", res)
	}
}

func TestRunFetchFails(t *testing.T) {
	t.Parallel()
	_, out, err := build(t, Build{BuildDir: newApp(t, nil), Buildpacks: []string{"no/such-buildpack"}, BaseDir: t.TempDir()})
	var be *BuildError
	if !errors.As(err, &be) || be.Buildpack != "no/such-buildpack" || !strings.HasPrefix(be.Reason, "fetching: no such file") {
		t.Fatalf("err = %v, want a BuildError naming the buildpack", err)
	}
	wantLines(t, out, " !     Push failed")
}

func TestRunStreamsOutput(t *testing.T) {
	t.Parallel()
	app := newApp(t, nil)
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), Build{
			BuildDir:   app,
			CacheDir:   filepath.Join(t.TempDir(), "cache"),
			Buildpacks: []string{testBuildpack(t, "wait")},
			Out:        &out,
		})
		done <- err
	}()
	// The compile waits for go-on, which is only written once its
	// first lines have arrived: buffered output would deadlock here.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), " !     a line on stderr\n") {
		if time.Now().After(deadline) {
			t.Fatalf("compile output did not stream:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantLines(t, out.String(), "-----> Waiting for go-on", " !     a line on stderr")
	if err := os.WriteFile(filepath.Join(app, "go-on"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantLines(t, out.String(), "       went on")
}

// readPid waits for a pid file a buildpack writes.
func readPid(t *testing.T, name string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(name)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && perr == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunCancelKillsCompile(t *testing.T) {
	t.Parallel()
	app := newApp(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Build{
			BuildDir:   app,
			CacheDir:   filepath.Join(t.TempDir(), "cache"),
			Buildpacks: []string{testBuildpack(t, "hang")},
		})
		done <- err
	}()
	child := readPid(t, filepath.Join(app, "child.pid"))
	compile := readPid(t, filepath.Join(app, "compile.pid"))
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want one wrapping context.Canceled", err)
		}
		var be *BuildError
		if errors.As(err, &be) {
			t.Errorf("a canceled build is not a failed one: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	testutil.WaitGone(t, compile, child)
}

func TestRunKillsLeftovers(t *testing.T) {
	t.Parallel()
	app := newApp(t, nil)
	_, out, err := build(t, Build{BuildDir: app, Buildpacks: []string{testBuildpack(t, "leave")}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	testutil.WaitGone(t, readPid(t, filepath.Join(app, "child.pid")))
}

func TestBuildErrorOneLine(t *testing.T) {
	t.Parallel()
	r := &builder{out: &lineWriter{w: &syncBuffer{}}}
	err := r.fail("bp", "first line\nsecond\tline")
	if got, want := err.Error(), "buildpack bp: first line second line"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// A bin/release that prints without end is stopped at the limit, and
// the build fails with one line naming the buildpack and the limit.
func TestRunHugeRelease(t *testing.T) {
	t.Parallel()
	bp := testBuildpack(t, "hugerelease")
	_, out, err := build(t, Build{BuildDir: newApp(t, nil), Buildpacks: []string{bp}})
	var be *BuildError
	if !errors.As(err, &be) || be.Buildpack != bp || !strings.Contains(be.Reason, "bin/release: printed more than 1 MiB") {
		t.Fatalf("err = %v, want a BuildError naming %s and the limit", err, bp)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error of more than one line: %q", err)
	}
	wantLines(t, out, " !     bin/release of "+bp+": printed more than 1 MiB, the most dyno reads of a release", " !     Push failed")
}

func TestParseReleaseBounds(t *testing.T) {
	t.Parallel()
	types := func(n int) string {
		var b strings.Builder
		b.WriteString("default_process_types:\n")
		for i := range n {
			fmt.Fprintf(&b, "  t%d: echo %d\n", i, i)
		}
		return b.String()
	}
	rel, err := parseRelease([]byte(types(MaxProcessTypes)))
	if err != nil || len(rel.DefaultProcessTypes) != MaxProcessTypes || rel.DefaultProcessTypes["t7"] != "echo 7" {
		t.Fatalf("%d types: %v, %d parsed", MaxProcessTypes, err, len(rel.DefaultProcessTypes))
	}
	for _, tc := range []struct{ in, want string }{
		{types(MaxProcessTypes + 1), "default_process_types: 101 entries, over the limit of 100"},
		{"addons: []\n" + strings.Repeat("#", MaxReleaseSize), "over the limit of 1 MiB"},
		{"default_process_types:\n  web: a\n  web: b\n", `line 3: key "web" is defined twice`},
		{"addons: []\naddons: []\n", `line 2: key "addons" is defined twice`},
		{"default_process_types:\n  <<: {web: a}\n", "merge keys (<<) are not supported"},
		{"default_process_types:\n  web: [a]\n", "line 2: want a string, not a list"},
		{"- a\n", "want a mapping"},
		{"addons: {a: b}\n", "addons: line 1: want a list, not a mapping"},
	} {
		_, err := parseRelease([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseRelease(%.40q): %v, want one line with %q", tc.in, err, tc.want)
		}
	}
	// Exactly at the size limit is fine.
	at := "addons: []\n"
	at += strings.Repeat("#", MaxReleaseSize-len(at))
	if _, err := parseRelease([]byte(at)); err != nil {
		t.Errorf("a release of exactly %d bytes: %v", MaxReleaseSize, err)
	}
	// What the yaml package would decode: aliases, numbers, nulls.
	rel, err = parseRelease([]byte("addons: [a, &x b, *x]\ndefault_process_types:\n  web: &c npm start\n  worker: *c\nconfig_vars:\n  PORT: 5000\n  EMPTY: ~\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rel.Addons, ","); got != "a,b,b" {
		t.Errorf("addons = %q", got)
	}
	if rel.DefaultProcessTypes["worker"] != "npm start" || rel.ConfigVars["PORT"] != "5000" || rel.ConfigVars["EMPTY"] != "" {
		t.Errorf("release = %+v", rel)
	}
}

// BenchmarkParseRelease shows the parse linear in the release's size:
// ns/entry stays flat from a hundred entries to fifty thousand (the
// yaml package's own decoding checked each key against every other).
func BenchmarkParseRelease(b *testing.B) {
	for _, n := range []int{MaxProcessTypes, 1000, 10000, 50000} {
		var out strings.Builder
		// Process types up to their bound, config vars (bounded by the
		// output's size only) beyond it.
		out.WriteString("default_process_types:\n")
		for i := range min(n, MaxProcessTypes) {
			fmt.Fprintf(&out, "  t%d: echo %d\n", i, i)
		}
		out.WriteString("config_vars:\n")
		for i := range n - min(n, MaxProcessTypes) {
			fmt.Fprintf(&out, "  V%d: %d\n", i, i)
		}
		data := []byte(out.String())
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := parseRelease(data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
		})
	}
}

// A bin/detect that prints without end is stopped at 64 KiB, whether it
// was named (the build fails, naming it) or tried in detection (it is
// skipped, and the next one is tried). Before the bound, dyno read all
// of it: exec yes grew dyno past 600 MB.
func TestRunHugeDetect(t *testing.T) {
	t.Parallel()
	// 8 MiB, then exit 0: without the bound, detection succeeds with
	// a name of 8 MiB.
	bp := scriptedBuildpack(t, map[string]string{
		"detect":  "yes AAAAAAA | head -c 8388608\n",
		"compile": "true\n",
	})
	_, out, err := build(t, Build{BuildDir: newApp(t, nil), Buildpacks: []string{bp}})
	var be *BuildError
	if !errors.As(err, &be) || be.Buildpack != bp || be.Reason != "bin/detect: printed more than 64 KiB, the most dyno reads of bin/detect's output" {
		t.Fatalf("err = %v, want a BuildError naming %s and the limit", err, bp)
	}
	wantLines(t, out, " !     bin/detect of "+bp+": printed more than 64 KiB, the most dyno reads of bin/detect's output", " !     Push failed")

	// One without end, in detection: stopped, skipped.
	endless := scriptedBuildpack(t, map[string]string{"detect": "exec yes AAAAAAA\n", "compile": "true\n"})
	res, out, err := build(t, Build{BuildDir: newApp(t, map[string]string{".fixture": ""}), Installed: []string{endless, fixture(t)}})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out, " !     Skipping buildpack "+endless+": bin/detect: printed more than 64 KiB, the most dyno reads of bin/detect's output", "-----> Fixture app detected")
	if res.Names[0] != "Fixture" {
		t.Errorf("Names = %q", res.Names)
	}

	// At the limit exactly is fine; the first line is the name.
	at := scriptedBuildpack(t, map[string]string{
		"detect":  "echo Exact; head -c $((65536 - 6)) /dev/zero | tr '\\0' x\n",
		"compile": "true\n",
	})
	res, out, err = build(t, Build{BuildDir: newApp(t, nil), Buildpacks: []string{at}})
	if err != nil || res.Names[0] != "Exact" {
		t.Fatalf("64 KiB of detect output: %v, %+v\n%.2000s", err, res, out)
	}
}

// The Procfile a build leaves is read only if it is a regular file of at
// most 1 MiB. A fifo there blocked dyno's read until a writer came,
// and no signal ended it; a sparse file of 100 GB was allocated whole.
func TestRunProcfileBounded(t *testing.T) {
	t.Parallel()
	bp := scriptedBuildpack(t, map[string]string{"detect": "echo Odd\n", "compile": "true\n"})

	// A Procfile of valid lines, one byte over the limit.
	big := "web: server\n" + strings.Repeat("# padding\n", MaxProcfileSize/10)
	_, out, err := build(t, Build{BuildDir: newApp(t, map[string]string{"Procfile": big[:MaxProcfileSize+1]}), Buildpacks: []string{bp}})
	var be *BuildError
	if !errors.As(err, &be) || be.Reason != "read Procfile: larger than 1 MiB, the most dyno reads of it" {
		t.Errorf("a Procfile over 1 MiB: err = %v, want a BuildError naming Procfile and the limit", err)
	}
	wantLines(t, out, "-----> Discovering process types", " !     read Procfile: larger than 1 MiB, the most dyno reads of it", " !     Push failed")
	res, out, err := build(t, Build{BuildDir: newApp(t, map[string]string{"Procfile": big[:MaxProcfileSize]}), Buildpacks: []string{bp}})
	if err != nil || res.ProcessTypes["web"] != "server" {
		t.Errorf("a Procfile of 1 MiB: %v, %v\n%s", err, res, out)
	}

	// A fifo. Were it opened to be read as a file, the open would
	// wait for the writer here, which then writes a valid Procfile.
	app := newApp(t, nil)
	fifo := filepath.Join(app, "Procfile")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.WriteString("web: from the fifo\n")
			f.Close()
		}
	}()
	t.Cleanup(func() {
		// Let a writer still waiting for a reader go.
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			<-wrote
			f.Close()
		}
	})
	res, out, err = build(t, Build{BuildDir: app, Buildpacks: []string{bp}})
	if !errors.As(err, &be) || be.Reason != "read Procfile: is a named pipe (fifo), not a regular file" {
		t.Errorf("a fifo Procfile: err = %v, result %+v, want a BuildError naming Procfile\n%s", err, res, out)
	}
}

// .buildpacks is the app's file: a regular file of at most 64 KiB.
func TestRunBuildpacksFileBounded(t *testing.T) {
	t.Parallel()
	list := "# the app's buildpacks\n" + fixture(t) + "\n"
	list += strings.Repeat("#\n", (64<<10-len(list))/2+1)
	_, out, err := build(t, Build{BuildDir: newApp(t, map[string]string{".fixture": "", ".buildpacks": list}), Installed: []string{testBuildpack(t, "nodetect")}})
	var be *BuildError
	if !errors.As(err, &be) || be.Reason != "read .buildpacks: larger than 64 KiB, the most dyno reads of it" {
		t.Errorf("a .buildpacks over 64 KiB: err = %v, want a BuildError naming .buildpacks and the limit\n%s", err, out)
	}
	wantLines(t, out, " !     read .buildpacks: larger than 64 KiB, the most dyno reads of it", " !     Push failed")
}

// Aliases count against the size bound as often as they are read: a
// release of 1 MiB must not mean 35 GB of strings. Addons and each
// process type's command have bounds of their own.
func TestParseReleaseAliasesBounded(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 850<<10)
	aliases := func(key string, n int, item func(i int) string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "x: &a %q\n%s:\n", big, key)
		for i := range n {
			b.WriteString(item(i))
		}
		return b.String()
	}
	// The reviewer's: 40,001 addons, each the 850 KiB string.
	bomb := fmt.Sprintf("x: &a %q\naddons: [*a%s]\n", big, strings.Repeat(",*a", 40000))
	if len(bomb) > MaxReleaseSize {
		t.Fatalf("the release is %d bytes, over the limit: the test must stay under it", len(bomb))
	}
	for _, tc := range []struct{ in, want string }{
		{bomb, "addons: 40001 entries, over the limit of 100"},
		// Within the addons' count, the bytes still add up.
		{aliases("addons", 3, func(int) string { return "  - *a\n" }), "addons: line 4: with its aliases expanded, the release is over 1 MiB"},
		{aliases("config_vars", 2, func(i int) string { return fmt.Sprintf("  V%d: *a\n", i) }), "config_vars: line 4: with its aliases expanded, the release is over 1 MiB"},
		{aliases("addons", MaxAddons+1, func(i int) string { return fmt.Sprintf("  - a%d\n", i) }), "addons: 101 entries, over the limit of 100"},
		{aliases("default_process_types", 1, func(int) string { return "  web: *a\n" }), `the command of process type "web" is 870400 bytes, over the limit of 32 KiB`},
		{"default_process_types:\n  web: " + strings.Repeat("y", MaxCommandSize+1) + "\n", `process type "web" is 32769 bytes, over the limit of 32 KiB`},
	} {
		_, err := parseRelease([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("parseRelease(%.40q): %v, want one line with %q", tc.in, err, tc.want)
		}
	}
	// At the bounds is fine, and one alias of the big string too.
	rel, err := parseRelease([]byte(aliases("addons", MaxAddons, func(i int) string { return fmt.Sprintf("  - a%d\n", i) })))
	if err != nil || len(rel.Addons) != MaxAddons {
		t.Errorf("%d addons: %v", MaxAddons, err)
	}
	rel, err = parseRelease([]byte("default_process_types:\n  web: " + strings.Repeat("y", MaxCommandSize) + "\naddons: [&b a, *b]\n"))
	if err != nil || len(rel.DefaultProcessTypes["web"]) != MaxCommandSize {
		t.Errorf("a command of %d bytes: %v", MaxCommandSize, err)
	}
	if _, err := parseRelease([]byte(aliases("config_vars", 1, func(int) string { return "  V: *a\n" }))); err != nil {
		t.Errorf("one alias of %d bytes: %v", len(big), err)
	}
}

// The parse does work in proportion to the release, measured as work,
// not time: the allocations (count and bytes) of a release of 64,000
// config vars are at most 8 times those of one of 8,000, with a margin
// of a quarter for map growth. A parser that copies what it has read
// for each entry read fails this. What it cannot see is quadratic work
// that allocates nothing, such as the yaml package's own decoding into
// Go maps, which compares each key with every other one (it measured
// 13.0 allocations per entry at 2,000 entries and at 16,000 alike);
// BenchmarkParseRelease shows that one in ns/entry. Counting
// instructions (perf_event_open) would, but needs a hardware PMU, which
// virtual machines often lack.
func TestParseReleaseLinear(t *testing.T) {
	// Not parallel: it counts the whole process's allocations.
	release := func(n int) []byte {
		var b strings.Builder
		b.WriteString("default_process_types:\n  web: server\naddons: [a]\nconfig_vars:\n")
		for i := range n {
			fmt.Fprintf(&b, "  V%d: %d\n", i, i)
		}
		return []byte(b.String())
	}
	type cost struct{ allocs, bytes float64 }
	measure := func(n int) cost {
		data := release(n)
		if len(data) > MaxReleaseSize {
			t.Fatalf("a release of %d entries is %d bytes, over the limit", n, len(data))
		}
		var parsed int
		allocs := testing.AllocsPerRun(3, func() {
			rel, err := parseRelease(data)
			if err != nil {
				t.Fatal(err)
			}
			parsed = len(rel.ConfigVars)
		})
		if parsed != n {
			t.Fatalf("%d config vars parsed of %d", parsed, n)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		parseRelease(data)
		runtime.ReadMemStats(&after)
		return cost{allocs, float64(after.TotalAlloc - before.TotalAlloc)}
	}
	const n = 8000
	small, large := measure(n), measure(8*n)
	if large.allocs > 8*1.25*small.allocs {
		t.Errorf("allocations: %.0f for %d entries, %.0f for %d: more than linear", small.allocs, n, large.allocs, 8*n)
	}
	if large.bytes > 8*1.25*small.bytes {
		t.Errorf("bytes allocated: %.0f for %d entries, %.0f for %d: more than linear", small.bytes, n, large.bytes, 8*n)
	}
}
