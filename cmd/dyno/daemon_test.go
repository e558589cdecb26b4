package main

// dyno daemon through the binary, as an unprivileged user: a real daemon
// on a temporary home and socket, apps built with the fixture buildpack.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/daemon"
)

// daemonProc is a running dyno daemon.
type daemonProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *strings.Builder
	done chan struct{}
}

func (e *isolatedEnv) startDaemon(t *testing.T) *daemonProc {
	t.Helper()
	return e.startDaemonCmd(t, e.command("daemon"))
}

// startDaemonCmd starts cmd, a dyno daemon command, and waits until its
// socket answers.
func (e *isolatedEnv) startDaemonCmd(t *testing.T, cmd *exec.Cmd) *daemonProc {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{t: t, cmd: cmd, out: &out, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	exited := p.done
	// Ready once its socket answers.
	sock := filepath.Join(e.home, "dyno.sock")
	e.eventually(t, "the daemon's socket", func() bool {
		select {
		case <-exited:
			t.Fatalf("the daemon exited:\n%s", out.String())
		default:
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return p
}

// stop signals the daemon and waits for it.
func (p *daemonProc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	<-p.done
}

// eventually polls cond until it holds; the states it waits for (a dyno
// up, a line logged) are events the daemon reaches asynchronously.
func (e *isolatedEnv) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPs waits until dyno ps matches all of res.
func (e *isolatedEnv) waitPs(t *testing.T, appName string, res ...string) string {
	t.Helper()
	var out string
	e.eventually(t, "ps to show "+strings.Join(res, ", "), func() bool {
		out, _ = e.dynoOut(t, "ps", "-a", appName)
		for _, r := range res {
			if !regexp.MustCompile(r).MatchString(out) {
				return false
			}
		}
		return true
	})
	return out
}

// waitLog waits until the app's logs hold a line matching re.
func (e *isolatedEnv) waitLog(t *testing.T, appName, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	e.eventually(t, "a log line matching "+re, func() bool {
		out, _ := e.dynoOut(t, "logs", "-a", appName, "-n", "1500")
		return rx.MatchString(out)
	})
}

// deployFixture creates app name and builds a release of it.
func (e *isolatedEnv) deployFixture(t *testing.T, name, procfile string) {
	t.Helper()
	e.must(t, "apps:create", name)
	src := source(t, map[string]string{".fixture": "", "Procfile": procfile})
	e.must(t, "build", src, "-a", name, "-b", fixtureBuildpack(t))
}

const daemonProcfile = "web: exec python3 -m http.server $PORT\nworker: echo \"worker FOO=$FOO\"; exec sleep 1000\n"

func TestDaemonFormation(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "demo", daemonProcfile)
	d := e.startDaemon(t)

	// First deploy: web at 1, the rest at 0, as on Heroku.
	out := e.waitPs(t, "demo", `(?m)^web\.1: up `)
	if strings.Contains(out, "worker.") {
		t.Errorf("worker started without being scaled:\n%s", out)
	}
	wantLines(t, out, "=== web (Standard-1X): exec python3 -m http.server $PORT (1)")

	wantLines(t, e.must(t, "ps:scale", "worker=2", "-a", "demo"),
		"Scaling dynos... done, now running web at 1:Standard-1X, worker at 2:Standard-1X.")
	e.waitPs(t, "demo", `(?m)^worker\.1: up `, `(?m)^worker\.2: up `)
	e.waitLog(t, "demo", `app\[api\]: Scaled to web@1:Standard-1X worker@2:Standard-1X by user `)

	// A config change restarts the dynos on the new environment.
	e.must(t, "config:set", "FOO=bar", "-a", "demo")
	e.waitLog(t, "demo", `app\[worker\.1\]: worker FOO=bar`)
	e.waitLog(t, "demo", `app\[api\]: Set FOO config vars by user `)

	// Rollback: the old environment again.
	e.must(t, "rollback", "-a", "demo")
	e.waitLog(t, "demo", `(?sm)worker FOO=bar.*app\[worker\.1\]: worker FOO=$`)

	e.must(t, "ps:scale", "worker=0", "-a", "demo")
	e.eventually(t, "workers to go", func() bool {
		out, _ := e.dynoOut(t, "ps", "-a", "demo")
		return !strings.Contains(out, "worker.")
	})

	// Log filters read the stored lines without the daemon's help.
	logs := e.must(t, "logs", "-a", "demo", "-p", "worker", "-n", "500")
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !regexp.MustCompile(`\[worker\.\d\]: `).MatchString(l) {
			t.Errorf("-p worker let through %q", l)
		}
	}
	heroku := e.must(t, "logs", "-a", "demo", "-s", "heroku", "-n", "500")
	if strings.Contains(heroku, "app[") || !strings.Contains(heroku, "heroku[web.1]: State changed from starting to up") {
		t.Errorf("-s heroku:\n%s", heroku)
	}

	d.stop(syscall.SIGTERM)
	if d.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("daemon exit %d:\n%s", d.cmd.ProcessState.ExitCode(), d.out)
	}
	e.waitLog(t, "demo", `heroku\[web\.1\]: Stopping all processes with SIGTERM`)
}

func TestDaemonRestartsCrashesAndOneOffs(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "crashy", "web: exec python3 -m http.server $PORT\ncrasher: echo boom; exit 1\n")
	e.startDaemon(t)
	e.waitPs(t, "crashy", `(?m)^web\.1: up `)
	e.must(t, "ps:scale", "crasher=1", "-a", "crashy")
	// First restart immediate, then the back-off: 1 s.
	e.waitLog(t, "crashy", `heroku\[crasher\.1\]: Restarting in 1s`)

	// ps:restart of a type, and a detached one-off.
	wantLines(t, e.must(t, "ps:restart", "web", "-a", "crashy"), "Restarting web dynos on ⬢ crashy... done")
	e.waitLog(t, "crashy", `heroku\[web\.1\]: Restarting`)
	out := e.must(t, "run", "--detached", "-a", "crashy", "echo detached-hi; exec sleep 1000")
	m := regexp.MustCompile(`up, (run\.\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("run --detached: %q", out)
	}
	e.waitPs(t, "crashy", `(?m)^=== run: one-off processes \(1\)`, regexp.QuoteMeta(m[1])+` \(Standard-1X\): up `)
	e.waitLog(t, "crashy", `app\[`+regexp.QuoteMeta(m[1])+`\]: detached-hi`)
	wantLines(t, e.must(t, "ps:stop", m[1], "-a", "crashy"), "Stopping "+m[1])
	e.eventually(t, "the one-off to end for good", func() bool {
		out, _ := e.dynoOut(t, "ps", "-a", "crashy")
		return !strings.Contains(out, m[1])
	})
}

// kill -9 of the daemon: nothing survives; a change made while it is down
// is picked up when it starts again, at the same formation.
func TestDaemonKill9AndRestart(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	marker := uniqueSleep()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "sturdy", "web: exec python3 -m http.server $PORT\nworker: exec sleep "+marker+"\n")
	d := e.startDaemon(t)
	e.must(t, "ps:scale", "worker=1", "-a", "sturdy")
	e.waitPs(t, "sturdy", `(?m)^worker\.1: up `, `(?m)^web\.1: up `)
	d.stop(syscall.SIGKILL)
	waitMarkerGone(t, marker, time.Second)

	// A second daemon on the same home is refused while one runs.
	d = e.startDaemon(t)
	out, st := e.dynoOut(t, "daemon")
	if st == 0 || !strings.Contains(out, "already runs on") {
		t.Errorf("second daemon: exit %d, %q", st, out)
	}
	e.waitPs(t, "sturdy", `(?m)^worker\.1: up `, `(?m)^web\.1: up `)
	d.stop(syscall.SIGTERM)

	e.must(t, "ps:scale", "worker=2", "-a", "sturdy")
	e.startDaemon(t)
	e.waitPs(t, "sturdy", `(?m)^worker\.1: up `, `(?m)^worker\.2: up `, `(?m)^web\.1: up `)
}

// A tail follows new lines live.
func TestDaemonLogsTail(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "tails", daemonProcfile)
	e.startDaemon(t)
	e.waitPs(t, "tails", `(?m)^web\.1: up `)
	cmd := e.command("logs", "--tail", "-a", "tails", "-p", "worker", "-n", "1")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	e.must(t, "ps:scale", "worker=1", "-a", "tails")
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("tail ended")
			}
			if strings.Contains(l, "heroku[web") || strings.Contains(l, "app[api]") {
				t.Errorf("tail filter let through %q", l)
			}
			if strings.Contains(l, "app[worker.1]: worker FOO=") {
				return
			}
		case <-deadline:
			t.Fatal("the worker's line never reached the tail")
		}
	}
}

// The API speaks the Platform API's shapes: formation and config vars
// change through it as through the CLI.
func TestDaemonAPI(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "api", daemonProcfile)
	e.startDaemon(t)
	e.waitPs(t, "api", `(?m)^web\.1: up `)
	c := daemon.NewClient(filepath.Join(e.home, "dyno.sock"))
	ctx := context.Background()
	var formation []struct {
		Type     string `json:"type"`
		Quantity int    `json:"quantity"`
		Size     string `json:"size"`
	}
	body := map[string]any{"updates": []map[string]any{{"type": "worker", "quantity": 1}}}
	if err := c.Do(ctx, http.MethodPatch, "/apps/api/formation", body, &formation); err != nil {
		t.Fatal(err)
	}
	if len(formation) != 2 || formation[1].Type != "worker" || formation[1].Quantity != 1 || formation[1].Size != "Standard-1X" {
		t.Errorf("formation = %+v", formation)
	}
	var vars map[string]string
	if err := c.Do(ctx, http.MethodPatch, "/apps/api/config-vars", map[string]any{"FOO": "api"}, &vars); err != nil || vars["FOO"] != "api" {
		t.Fatalf("config-vars = %v, %v", vars, err)
	}
	e.waitLog(t, "api", `app\[worker\.1\]: worker FOO=api`)
	err := c.Do(ctx, http.MethodPatch, "/apps/api/formation", map[string]any{"updates": []map[string]any{{"type": "nope", "quantity": 1}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "nope is not a process type") {
		t.Errorf("scaling a missing type: %v", err)
	}
	if err := c.Do(ctx, http.MethodGet, "/apps/missing/dynos", nil, nil); err == nil || !strings.Contains(err.Error(), "Couldn't find that app") {
		t.Errorf("missing app: %v", err)
	}

	// The Heroku CLI's string quantities; the limit, in the error shape,
	// with nothing recorded.
	body = map[string]any{"updates": []map[string]any{{"type": "worker", "quantity": "+1"}}}
	if err := c.Do(ctx, http.MethodPatch, "/apps/api/formation", body, &formation); err != nil || formation[1].Quantity != 2 {
		t.Fatalf("worker +1: %+v, %v", formation, err)
	}
	ledgerFile := filepath.Join(e.home, "apps", "api", "ledger.jsonl")
	before, _ := os.ReadFile(ledgerFile)
	st, answer := rawAPI(t, e, "PATCH", "/apps/api/formation", `{"updates":[{"type":"worker","quantity":99999999}]}`)
	if st != http.StatusUnprocessableEntity || !strings.Contains(answer, `"id":"invalid_params"`) || !strings.Contains(answer, "over the limit of 100") {
		t.Errorf("quantity 99999999: %d %s", st, answer)
	}
	// Invalid UTF-8 is refused, not stored as U+FFFD.
	st, answer = rawAPI(t, e, "PATCH", "/apps/api/config-vars", "{\"FOO\": \"caf\xe9\"}")
	if st != http.StatusUnprocessableEntity || !strings.Contains(answer, "UTF-8") {
		t.Errorf("invalid UTF-8: %d %s", st, answer)
	}
	// A body over 1 MB: 413 before it is sent.
	conn, err := net.Dial("unix", filepath.Join(e.home, "dyno.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "PATCH /apps/api/config-vars HTTP/1.1\r\nHost: dyno\r\nContent-Length: %d\r\n\r\n", 2<<20)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), `"id":"request_too_large"`) {
		t.Errorf("2 MB body: %s %s", resp.Status, b)
	}
	if after, _ := os.ReadFile(ledgerFile); string(after) != string(before) {
		t.Error("a refused request changed the ledger")
	}
}

// rawAPI sends body as it is and returns the status and the answer.
func rawAPI(t *testing.T, e *isolatedEnv, method, path, body string) (int, string) {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(e.home, "dyno.sock"))
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(method, "http://dyno"+path, strings.NewReader(body))
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// releaseStatus is release v's status, read over the API.
func releaseStatus(t *testing.T, e *isolatedEnv, appName string, v int) string {
	t.Helper()
	var rels []struct {
		Version int    `json:"version"`
		Status  string `json:"status"`
	}
	if err := daemon.NewClient(filepath.Join(e.home, "dyno.sock")).Do(context.Background(), http.MethodGet, "/apps/"+appName+"/releases", nil, &rels); err != nil {
		t.Fatal(err)
	}
	for _, r := range rels {
		if r.Version == v {
			return r.Status
		}
	}
	return ""
}

// Whatever makes a release runs its phase: a config change through the
// API runs it in the daemon (succeeded, or failed with the command's
// exit, the current release staying), and the next change is taken. A
// phase the CLI runs while the daemon watches runs once, in the CLI.
func TestDaemonReleasePhase(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "phased", "release: echo \"phase FOO=$FOO\"; [ \"$FOO\" != bad ]\nworker: exec sleep 1000\n")
	e.startDaemon(t)
	c := daemon.NewClient(filepath.Join(e.home, "dyno.sock"))
	ctx := context.Background()
	change := func(v string) int {
		t.Helper()
		if err := c.Do(ctx, http.MethodPatch, "/apps/phased/config-vars", map[string]string{"FOO": v}, nil); err != nil {
			t.Fatalf("FOO=%s: %v", v, err)
		}
		var rels []struct {
			Version int `json:"version"`
		}
		c.Do(ctx, http.MethodGet, "/apps/phased/releases", nil, &rels)
		last := 0
		for _, r := range rels {
			last = max(last, r.Version)
		}
		return last
	}
	v := change("one")
	e.eventually(t, "the release phase to pass", func() bool { return releaseStatus(t, e, "phased", v) == "succeeded" })
	e.waitLog(t, "phased", `app\[release\.`+strconv.Itoa(v)+`\]: phase FOO=one`)

	bad := change("bad")
	e.eventually(t, "the release phase to fail", func() bool { return releaseStatus(t, e, "phased", bad) == "failed" })
	var vars map[string]string
	if err := c.Do(ctx, http.MethodGet, "/apps/phased/config-vars", nil, &vars); err != nil || vars["FOO"] != "one" {
		t.Errorf("after a failed phase the config is %v, %v", vars, err)
	}
	next := change("two")
	e.eventually(t, "the next release phase to pass", func() bool { return releaseStatus(t, e, "phased", next) == "succeeded" })

	// The CLI runs its own release's phase; the daemon, polling all the
	// while, leaves it alone.
	out := e.must(t, "config:set", "FOO=cli", "-a", "phased")
	cli := strconv.Itoa(next + 1)
	if n := strings.Count(out, "release."+cli+" | phase FOO=cli"); n != 1 {
		t.Errorf("the CLI ran the phase %d times:\n%s", n, out)
	}
	e.eventually(t, "the CLI's release to pass", func() bool { return releaseStatus(t, e, "phased", next+1) == "succeeded" })
	logs := e.must(t, "logs", "-a", "phased", "-n", "1500")
	if strings.Contains(logs, "[release."+cli+"]") {
		t.Errorf("the daemon ran the CLI's phase too:\n%s", logs)
	}
}

// A formation already in the ledger past the limit (here: the limit was
// lowered in dyno.toml) is clamped by the daemon, with one line saying so.
func TestDaemonClampsFormation(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "many", "worker: exec sleep 1000\n")
	e.must(t, "ps:scale", "worker=3", "-a", "many")
	toml := filepath.Join(e.home, "dyno.toml")
	if err := os.WriteFile(toml, []byte("[formation]\nmax_quantity = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := e.startDaemon(t)
	out := e.waitPs(t, "many", `(?m)^worker\.2: up `)
	if strings.Contains(out, "worker.3") {
		t.Errorf("past the limit:\n%s", out)
	}
	e.waitLog(t, "many", `over the limit of 2 of a type; running 2`)
	d.stop(syscall.SIGTERM)
	if n := strings.Count(d.out.String(), "over the limit of 2"); n != 1 {
		t.Errorf("said %d times:\n%s", n, d.out)
	}
}

// A release phase whose CLI was killed mid-way is taken up by the daemon:
// the release is pending, nobody holds its phase lock (it went with the
// CLI), and the daemon runs the phase to its end.
func TestDaemonTakesUpAnOrphanedReleasePhase(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "orphan", "release: echo \"phase FOO=$FOO start\"; sleep 2; echo \"phase FOO=$FOO end\"\nworker: exec sleep 1000\n")
	cli := e.command("config:set", "FOO=x", "-a", "orphan")
	stdout, _ := cli.StdoutPipe()
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "| phase FOO=x start") {
	}
	cli.Process.Kill()
	cli.Wait()
	if out := e.must(t, "releases", "-a", "orphan"); !strings.Contains(out, "release command executing") {
		t.Fatalf("the killed CLI's release is not pending:\n%s", out)
	}

	e.startDaemon(t)
	e.waitLog(t, "orphan", `app\[release\.\d+\]: phase FOO=x end`)
	e.eventually(t, "the release to succeed", func() bool {
		var vars map[string]string
		daemon.NewClient(filepath.Join(e.home, "dyno.sock")).Do(context.Background(), http.MethodGet, "/apps/orphan/config-vars", nil, &vars)
		return vars["FOO"] == "x"
	})
}
