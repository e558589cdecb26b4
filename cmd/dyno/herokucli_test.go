package main

// The official Heroku CLI (npm's heroku@11) against a real dyno daemon
// with its API on TCP: each command the daemon claims to serve, its
// output and exit status. make test-heroku-cli installs the CLI into
// .cache/heroku-cli and runs this test in a loopback-only network
// namespace, with DYNO_HEROKU_CLI naming the CLI's bin/heroku; without
// it the test is skipped (the install is 395 MB, not for make test).

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/daemon/apitls"
)

// herokuCLI runs the Heroku CLI with the exports of dyno cli-env heroku,
// a scratch HOME and the CLI's own folder first on PATH (git's
// credential helper, which the CLI writes into HOME's .gitconfig, runs
// "heroku git:credentials").
type herokuCLI struct {
	bin string
	env []string
}

// run runs heroku args in dir and returns its output (stdout and
// stderr) and exit status. A command that hangs is killed after a
// minute: the CLI itself takes 2 to 9 s.
func (h *herokuCLI) run(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Dir, cmd.Env = dir, h.env
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// want runs heroku args, wants exit status 0 and output matching each
// of res, and returns the output.
func (h *herokuCLI) want(t *testing.T, dir string, args []string, res ...string) string {
	t.Helper()
	out, st := h.run(t, dir, args...)
	if st != 0 {
		t.Fatalf("heroku %s: exit %d:\n%s", strings.Join(args, " "), st, out)
	}
	for _, re := range res {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("heroku %s: output does not match %q:\n%s", strings.Join(args, " "), re, out)
		}
	}
	return out
}

// freePort is a loopback TCP port no one listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// cliEnv runs dyno cli-env heroku as the daemon's user and reads its
// export lines into NAME=VALUE pairs, as eval would.
func (e *isolatedEnv) cliEnv(t *testing.T, config string) []string {
	t.Helper()
	cmd := e.command("cli-env", "heroku")
	cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+config)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dyno cli-env heroku: %v\n%s", err, stderr.String())
	}
	var env []string
	for _, line := range strings.Split(string(out), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		// Every value is single-quoted, a quote in it written '\''.
		v = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(v, "'"), "'"), `'\''`, "'")
		env = append(env, k+"="+v)
	}
	return env
}

func TestHerokuCLI(t *testing.T) {
	bin := os.Getenv("DYNO_HEROKU_CLI")
	if bin == "" {
		t.Skip("DYNO_HEROKU_CLI does not name the Heroku CLI's bin/heroku; make test-heroku-cli installs heroku@11 and sets it")
	}
	e := newIsolatedEnv(t, nil)
	port := freePort(t)
	settings := filepath.Join(e.home, "dyno.toml")
	if err := os.WriteFile(settings, []byte(fmt.Sprintf("[api]\nlisten = \"127.0.0.1:%s\"\n", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, settings)
	d := e.startDaemon(t)
	base := "https://127.0.0.1:" + port
	ca := apitls.CAPath(daemon.APIDir(e.home))
	e.eventually(t, "the API on TCP", func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			return false
		}
		c.Close()
		_, err = os.Stat(ca)
		return err == nil
	})
	e.deployFixture(t, "demo", "web: exec python3 -m http.server $PORT\nworker: echo worker up; exec sleep 1000\n")
	e.waitPs(t, "demo", `web\.1: up`)

	config := testutil.SharedDir(t)
	testutil.GiveToNobody(t, config)
	home := t.TempDir()
	h := &herokuCLI{bin: bin, env: append([]string{
		"PATH=" + filepath.Dir(bin) + ":/usr/local/bin:/usr/bin:/bin", "HOME=" + home,
		"NO_COLOR=1", "COLUMNS=120", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost",
	}, e.cliEnv(t, config)...)}
	var token string
	for _, kv := range h.env {
		if v, ok := strings.CutPrefix(kv, "HEROKU_API_KEY="); ok {
			token = v
		}
	}
	if token == "" {
		t.Fatalf("dyno cli-env heroku exports no HEROKU_API_KEY: %q", h.env)
	}
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, h.env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	work := t.TempDir() // not a git repository
	repo := t.TempDir()
	git(repo, "init", "-q", "-b", "main")
	defer func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.out.String())
		}
	}()

	// Each command a subtest, in order: later ones build on what
	// earlier ones made, and a failure is reported and the rest go on.
	step := func(name string, f func(t *testing.T)) { t.Run(name, f) }
	step("apps", func(t *testing.T) {
		h.want(t, work, []string{"apps"}, `=== `+regexp.QuoteMeta(daemon.AccountEmail)+` Apps`, `(?m)^demo$`)
		// Heroku's error body, as the CLI prints it.
		if out, st := h.run(t, work, "config", "-a", "nope"); st == 0 || !strings.Contains(out, "Couldn't find that app") || !strings.Contains(out, "Error ID: not_found") {
			t.Errorf("an app that is not there: exit %d:\n%s", st, out)
		}
	})
	step("apps:create", func(t *testing.T) {
		h.want(t, repo, []string{"apps:create", "newapp"}, `Creating newapp\.\.\. done`, regexp.QuoteMeta(base+"/newapp.git"))
		if url := git(repo, "remote", "get-url", "heroku"); url != base+"/newapp.git" {
			t.Errorf("the heroku remote is %q", url)
		}
		out, st := h.run(t, work, "apps:create", "newapp")
		if st == 0 || !strings.Contains(out, "Name newapp is already taken") {
			t.Errorf("a taken name: exit %d:\n%s", st, out)
		}
	})
	step("apps:info", func(t *testing.T) {
		h.want(t, work, []string{"apps:info", "-a", "demo"}, `=== demo`, `Owner:\s+`+regexp.QuoteMeta(daemon.AccountEmail), `Git URL:\s+`+regexp.QuoteMeta(base+"/demo.git"), `Dynos:\s+web: 1`)
	})
	step("config:set", func(t *testing.T) {
		h.want(t, work, []string{"config:set", "FOO=bar", "BAZ=qux", "-a", "demo"}, `Setting FOO, BAZ and restarting demo\.\.\. done, v3`, `FOO:\s+bar`)
	})
	step("config", func(t *testing.T) {
		h.want(t, work, []string{"config", "-a", "demo"}, `=== demo Config Vars`, `BAZ:\s+qux`, `FOO:\s+bar`)
	})
	step("config:unset", func(t *testing.T) {
		h.want(t, work, []string{"config:unset", "BAZ", "-a", "demo"}, `Unsetting BAZ and restarting demo\.\.\. done, v4`)
	})
	step("releases", func(t *testing.T) {
		h.want(t, work, []string{"releases", "-a", "demo"}, `=== demo Releases - Current: v4`, `v4\s+Remove BAZ config vars\s+`+regexp.QuoteMeta(daemon.AccountEmail), `v1\s+Initial release`)
	})
	step("releases:info", func(t *testing.T) {
		h.want(t, work, []string{"releases:info", "v3", "-a", "demo"}, `=== Release v3`, `Eligible for Rollback\?:\s+Yes`, `FOO:\s+bar`)
	})
	step("rollback", func(t *testing.T) {
		h.want(t, work, []string{"releases:rollback", "-a", "demo"}, `Rolling back demo to v3\.\.\. done, v5`)
		h.want(t, work, []string{"rollback", "v2", "-a", "demo"}, `Rolling back demo to v2\.\.\. done, v6`)
		// v2 is the deploy, before any config var was set.
		if out := h.want(t, work, []string{"config", "-a", "demo"}, `=== demo Config Vars`); strings.Contains(out, "FOO") {
			t.Errorf("config after rolling back to v2 still has FOO:\n%s", out)
		}
	})
	step("ps", func(t *testing.T) {
		e.waitPs(t, "demo", `web\.1: up`)
		h.want(t, work, []string{"ps", "-a", "demo"}, `=== web \(Standard-1X\): exec python3 -m http\.server \$PORT \(1\)`, `web\.1: (up|starting)`)
	})
	step("ps:scale", func(t *testing.T) {
		h.want(t, work, []string{"ps:scale", "-a", "demo"}, `web=1:Standard-1X worker=0:Standard-1X`)
		h.want(t, work, []string{"ps:scale", "web=1", "worker+1", "-a", "demo"}, `Scaling dynos\.\.\. done, now running (worker at 1:Standard-1X, web at 1:Standard-1X|web at 1:Standard-1X, worker at 1:Standard-1X)`)
		e.waitPs(t, "demo", `worker\.1: up`)
	})
	step("ps:restart", func(t *testing.T) {
		h.want(t, work, []string{"ps:restart", "-a", "demo"}, `Restarting all dynos on demo\.\.\. done`)
		h.want(t, work, []string{"ps:restart", "--process-type", "web", "-a", "demo"}, `Restarting all web dynos on demo\.\.\. done`)
		e.waitPs(t, "demo", `web\.1: up`)
		h.want(t, work, []string{"ps:restart", "--dyno-name", "web.1", "-a", "demo"}, `Restarting dyno web\.1 on demo\.\.\. done`)
	})
	step("ps:stop", func(t *testing.T) {
		e.waitPs(t, "demo", `worker\.1: up`)
		h.want(t, work, []string{"ps:stop", "worker.1", "-a", "demo"}, `Stopping dyno worker\.1 on demo\.\.\. done`)
		h.want(t, work, []string{"ps:stop", "--process-type", "worker", "-a", "demo"}, `Stopping all worker dynos on demo\.\.\. done`)
	})
	step("logs", func(t *testing.T) {
		// Far enough back for config:set's line, past the dynos' own.
		h.want(t, work, []string{"logs", "-n", "500", "-a", "demo"}, `app\[api\]: Set (FOO, BAZ|BAZ, FOO) config vars by user `+regexp.QuoteMeta(daemon.AccountEmail), `heroku\[web\.1\]: State changed from starting to up`)
		h.want(t, work, []string{"logs", "-n", "1", "-p", "worker", "-a", "demo"}, `^\S+ (app|heroku)\[worker\.1\]: [^\n]*\n$`)
	})
	step("logs --tail", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, h.bin, "logs", "--tail", "-n", "1", "-a", "demo")
		cmd.Dir, cmd.Env = work, h.env
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Kill()
			cmd.Wait()
		}()
		lines := bufio.NewScanner(out)
		// The one line of history, then a line made after the stream
		// opened: maintenance:on logs one.
		if !lines.Scan() {
			t.Fatalf("logs --tail printed nothing: %v", lines.Err())
		}
		h.want(t, work, []string{"maintenance:on", "-a", "demo"}, `Enabling maintenance mode for demo\.\.\. done`)
		var seen []string
		for lines.Scan() {
			seen = append(seen, lines.Text())
			if strings.Contains(lines.Text(), "app[api]: Enable Maintenance mode by user") {
				return
			}
		}
		t.Errorf("logs --tail ended without the new line: %v\n%s", lines.Err(), strings.Join(seen, "\n"))
	})
	step("maintenance", func(t *testing.T) {
		h.want(t, work, []string{"maintenance", "-a", "demo"}, `(?m)^on$`)
		h.want(t, work, []string{"maintenance:off", "-a", "demo"}, `Disabling maintenance mode for demo\.\.\. done`)
		h.want(t, work, []string{"maintenance", "-a", "demo"}, `(?m)^off$`)
	})
	step("domains", func(t *testing.T) {
		h.want(t, work, []string{"domains:add", "www.example.com", "-a", "demo"}, `Adding www\.example\.com to demo\.\.\. done`, `DNS Target demo\.`)
		h.want(t, work, []string{"domains", "-a", "demo"}, `=== demo Heroku Domain`, `www\.example\.com`)
	})
	step("features", func(t *testing.T) {
		h.want(t, work, []string{"features", "-a", "demo"}, `\[ \] preboot`)
		h.want(t, work, []string{"features:enable", "preboot", "-a", "demo"}, `Enabling preboot for demo\.\.\. done`)
		h.want(t, work, []string{"features", "-a", "demo"}, `\[\+\] preboot`)
	})
	step("addons", func(t *testing.T) {
		if _, err := exec.LookPath("redis-server"); err != nil {
			t.Skip("redis-server is not installed (apt-get install redis-server): the add-on runs the real server")
		}
		t.Cleanup(func() { (&addons.Manager{Home: app.Home{Dir: e.home}}).Stop(context.Background()) })
		m := regexp.MustCompile(`Created (redis-[a-z]+-[0-9]{5}) as REDIS_URL`).FindStringSubmatch(e.must(t, "addons:create", "heroku-redis", "-a", "demo"))
		if m == nil {
			t.Fatal("addons:create printed no add-on name")
		}
		h.want(t, work, []string{"addons", "-a", "demo"}, regexp.QuoteMeta(m[1]), `heroku-redis`, `mini`, `free`, `as REDIS`, `created`)
	})
	step("git:remote", func(t *testing.T) {
		h.want(t, repo, []string{"git:remote", "-a", "demo", "-r", "demo"}, `set git remote demo to `+regexp.QuoteMeta(base+"/demo.git"))
		if url := git(repo, "remote", "get-url", "demo"); url != base+"/demo.git" {
			t.Errorf("the demo remote is %q", url)
		}
	})
	step("run:detached", func(t *testing.T) {
		h.want(t, work, []string{"run:detached", "-a", "demo", "--", "echo", "detached-hello"}, `Running echo detached-hello on demo\.\.\. done, run\.\d+`, `heroku logs --app demo --dyno run\.\d+`)
		e.waitLog(t, "demo", `app\[run\.\d+\]: detached-hello`)
	})
	// heroku run needs the daemon to make attached runs (the TLS
	// rendezvous); until it does, it answers 422 with the words below.
	step("run", func(t *testing.T) {
		out, st := h.run(t, work, "run", "-a", "demo", "--", "echo", "attached-hello")
		if st != 0 || !regexp.MustCompile(`Running echo attached-hello on demo\.\.\. up, run\.\d+`).MatchString(out) || !strings.Contains(out, "attached-hello\n") {
			t.Fatalf("heroku run: exit %d:\n%s", st, out)
		}
		out, st = h.run(t, work, "run", "--exit-code", "-a", "demo", "--", "sh", "-c", "exit 3")
		if st != 3 {
			t.Errorf("heroku run --exit-code: exit %d, want 3:\n%s", st, out)
		}
		// No PTY: the CLI sends the end of its stdin as 0x04.
		cmd := exec.Command(h.bin, "run", "--no-tty", "-a", "demo", "--", "sh", "-c", "cat; echo done")
		cmd.Dir, cmd.Env, cmd.Stdin = work, h.env, strings.NewReader("abc\n")
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "abc\ndone") {
			t.Errorf("heroku run --no-tty: %v\n%s", err, out)
		}
	})
	// git push heroku main: git's smart HTTP on the API's port, the
	// token from the credential helper the CLI wrote.
	step("git push", func(t *testing.T) {
		e.must(t, "buildpacks:set", fixtureBuildpack(t), "-a", "newapp")
		os.WriteFile(filepath.Join(repo, ".fixture"), nil, 0o644)
		os.WriteFile(filepath.Join(repo, "Procfile"), []byte("web: exec python3 -m http.server $PORT\n"), 0o644)
		git(repo, "add", "-A")
		git(repo, "commit", "-q", "-m", "first")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "git", "push", "heroku", "main")
		cmd.Dir, cmd.Env = repo, h.env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Compiling with fixture") {
			t.Fatalf("git push heroku main: %v\n%s", err, out)
		}
		h.want(t, work, []string{"releases", "-a", "newapp"}, `v2\s+Deploy`)
	})
}
