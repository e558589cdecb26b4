package main

// git push deploys, through the binary as a user runs it: over a local
// path as an unprivileged user, and over SSH through a real sshd on
// loopback.

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/internal/testutil"
	"golang.org/x/sys/unix"
)

// git runs git in dir as e's user, with an author and no global config.
func (e *isolatedEnv) gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "DYNO_HOME=" + e.home, "HOME=/nonexistent",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=Ann", "GIT_AUTHOR_EMAIL=ann@example.com",
		"GIT_COMMITTER_NAME=Ann", "GIT_COMMITTER_EMAIL=ann@example.com", "LC_ALL=C"}
	testutil.AsNobody(cmd)
	return cmd
}

func (e *isolatedEnv) git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := e.gitCmd(dir, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// push runs git push in e's project and returns its output and status.
func (e *isolatedEnv) push(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := e.gitCmd(e.project, append([]string{"push"}, args...)...)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// commitAll commits everything in e's project.
func (e *isolatedEnv) commitAll(t *testing.T, msg string) string {
	t.Helper()
	e.git(t, e.project, "add", "-A")
	e.git(t, e.project, "commit", "-q", "-m", msg)
	return strings.TrimSpace(e.git(t, e.project, "rev-parse", "HEAD"))
}

// copyExample copies examples/NAME into dir, owned by the unprivileged
// user.
func copyExample(t *testing.T, name, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fsutil.CopyTree(filepath.Join("..", "..", "examples", name), dir, nil); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, dir)
}

// A push of main deploys examples/go-hello with Heroku's output:
// apps:create in the repository added the dyno remote, and every later
// command finds the app from it, without -a.
func TestGitPushDeploysOverAPath(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	copyExample(t, "go-hello", e.project)
	e.git(t, e.project, "init", "-q", "-b", "main")
	sha := e.commitAll(t, "go-hello")

	out := e.must(t, "apps:create", "pushed-go")
	repo := filepath.Join(e.home, "apps", "pushed-go", "repo.git")
	if !strings.Contains(out, "http://pushed-go.localhost:8080/ | "+repo) {
		t.Errorf("apps:create does not say where to push:\n%s", out)
	}
	if remotes := e.git(t, e.project, "remote", "-v"); !strings.Contains(remotes, "dyno\t"+repo+" (push)") {
		t.Fatalf("no dyno remote after apps:create in a repository:\n%s", remotes)
	}

	out, st := e.push(t, "dyno", "main")
	if st != 0 {
		t.Fatalf("git push: exit %d:\n%s", st, out)
	}
	for _, want := range []string{
		`(?m)^remote: Building source:`,
		`(?m)^remote: -----> Building on the Heroku-24 stack`,
		`(?m)^remote: -----> Go app detected`,
		`(?m)^remote:        Procfile declares types -> web`,
		`(?m)^remote: -----> Launching\.\.\.`,
		`(?m)^remote:        Released v2`,
		`(?m)^remote:        http://pushed-go\.localhost:8080/ deployed to dyno`,
		`(?m)^remote: Verifying deploy\.\.\. done\.`,
		`(?m)^ \* \[new branch\]\s+main -> main$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("git push output lacks %s:\n%s", want, out)
		}
	}
	// No -a: the remote names the app.
	rels := e.must(t, "releases")
	if !strings.Contains(rels, "Current: v2") || !strings.Contains(rels, "Deploy "+sha[:8]) {
		t.Errorf("releases after the push:\n%s", rels)
	}
	if got := e.oneOff(t, "-a", "pushed-go", "--", "ls", "bin"); !strings.Contains(got, "go-hello") {
		t.Errorf("the release's slug lacks the built binary: %q", got)
	}
}

// fastApp sets e's project up as a git repository of a one-line app
// built by a buildpack of scripts, pushed to app by its dyno remote.
func fastApp(t *testing.T, e *isolatedEnv, app, compile string) {
	t.Helper()
	bp := buildpackDir(t, map[string]string{
		"detect":  "echo Plain\n",
		"compile": compile,
		"release": "echo '--- {}'\n",
	})
	if err := os.WriteFile(filepath.Join(e.project, "Procfile"), []byte("web: sleep 1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, e.project)
	e.git(t, e.project, "init", "-q", "-b", "main")
	e.commitAll(t, "first")
	e.must(t, "apps:create", app)
	e.must(t, "buildpacks:set", bp, "-a", app)
}

// Heroku's rules: another branch is refused and builds nothing, a
// branch deploys when pushed to main, a failed build rejects the push
// and keeps the release, a force push deploys.
func TestGitPushRules(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	fastApp(t, e, "push-rules", "echo \"-----> compiled $(cat $1/version 2>/dev/null)\"\ntest ! -e $1/fail\n")

	e.git(t, e.project, "checkout", "-q", "-b", "feature")
	out, st := e.push(t, "dyno", "feature")
	if st == 0 || !strings.Contains(out, "remote:  !     Pushed to non-main branch, skipping build.") ||
		!strings.Contains(out, "git push dyno feature:main") ||
		!strings.Contains(out, "! [remote rejected] feature -> feature (pre-receive hook declined)") {
		t.Errorf("a push of another branch: exit %d:\n%s", st, out)
	}
	if strings.Contains(out, "compiled") {
		t.Errorf("a refused push built:\n%s", out)
	}
	e.wantNoRelease(t, "push-rules")

	os.WriteFile(filepath.Join(e.project, "version"), []byte("two"), 0o644)
	testutil.GiveToNobody(t, e.project)
	e.commitAll(t, "two")
	if out, st := e.push(t, "dyno", "feature:main"); st != 0 || !strings.Contains(out, "remote: -----> compiled two") ||
		!strings.Contains(out, "remote:        Released v2") {
		t.Fatalf("git push dyno feature:main: exit %d:\n%s", st, out)
	}

	// A failed build: rejected, v2 still current.
	os.WriteFile(filepath.Join(e.project, "fail"), nil, 0o644)
	testutil.GiveToNobody(t, e.project)
	e.commitAll(t, "broken")
	out, st = e.push(t, "dyno", "feature:main")
	if st == 0 || !strings.Contains(out, "remote:  !     Push rejected to push-rules.") ||
		!strings.Contains(out, "! [remote rejected] feature -> main (pre-receive hook declined)") {
		t.Errorf("a failed build's push: exit %d:\n%s", st, out)
	}
	if rels := e.must(t, "releases", "-a", "push-rules"); !strings.Contains(rels, "Current: v2") || strings.Contains(rels, "v3") {
		t.Errorf("a failed build changed the releases:\n%s", rels)
	}

	// History rewritten: a force push deploys it.
	e.git(t, e.project, "reset", "-q", "--hard", "HEAD~2")
	os.WriteFile(filepath.Join(e.project, "version"), []byte("three"), 0o644)
	testutil.GiveToNobody(t, e.project)
	e.commitAll(t, "three")
	if out, st := e.push(t, "dyno", "feature:main"); st == 0 || !strings.Contains(out, "non-fast-forward") && !strings.Contains(out, "fetch first") {
		t.Errorf("a push that is not a fast-forward was not refused by git: exit %d:\n%s", st, out)
	}
	if out, st := e.push(t, "-f", "dyno", "feature:main"); st != 0 || !strings.Contains(out, "remote: -----> compiled three") ||
		!strings.Contains(out, "(forced update)") {
		t.Errorf("git push -f: exit %d:\n%s", st, out)
	}
	if rels := e.must(t, "releases", "-a", "push-rules"); !strings.Contains(rels, "Current: v3") {
		t.Errorf("after the force push:\n%s", rels)
	}
}

// pushSession starts git push in e's project in a process group of its
// own, with its output readable line by line.
type pushSession struct {
	cmd   *exec.Cmd
	lines chan string
	all   strings.Builder
	done  chan struct{}
}

func (e *isolatedEnv) startPush(t *testing.T, dir string, args ...string) *pushSession {
	t.Helper()
	cmd := e.gitCmd(dir, append([]string{"push", "--progress"}, args...)...)
	if cmd.SysProcAttr == nil {
		// Run as the test's own user: AsNobody set nothing.
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &pushSession{cmd: cmd, lines: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		cmd.Wait()
		pw.Close()
	}()
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.all.WriteString(sc.Text() + "\n")
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return p
}

// waitFor reads lines until one holds s.
func (p *pushSession) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("git push ended without %q:\n%s", s, p.all.String())
			}
			if strings.Contains(line, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no %q from git push:\n%s", s, p.all.String())
		}
	}
}

func (p *pushSession) wait(t *testing.T) (string, int) {
	t.Helper()
	for range p.lines {
	}
	<-p.done
	return p.all.String(), p.cmd.ProcessState.ExitCode()
}

// A gate holds a build's compile until the test opens it: the compile
// connects to the gate's socket (builds share the host's network) and
// waits for a line.
type gate struct {
	ln   net.Listener
	conn net.Conn
}

func newGate(t *testing.T) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &gate{ln: ln}
}

// compile is the buildpack's bin/compile.
func (g *gate) compile() string {
	_, port, _ := net.SplitHostPort(g.ln.Addr().String())
	return "echo '-----> compiling, gated'\nexec 3<>/dev/tcp/127.0.0.1/" + port + "\nread -r _ <&3\necho '-----> compiled'\n"
}

// reached waits until a compile waits at the gate.
func (g *gate) reached(t *testing.T) {
	t.Helper()
	c, err := g.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g.conn = c
}

func (g *gate) open(t *testing.T) {
	t.Helper()
	if _, err := g.conn.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
}

// Two pushes to one app at once build one after the other; the second,
// which pushed from the same old main, is refused before it builds, as
// git would refuse its ref update after.
func TestGitPushesSerialised(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	g := newGate(t)
	fastApp(t, e, "push-twice", g.compile())

	clone := testutil.SharedDir(t)
	os.Remove(clone)
	e.git(t, filepath.Dir(clone), "clone", "-q", e.project, clone)
	e.git(t, clone, "remote", "add", "dyno", filepath.Join(e.home, "apps", "push-twice", "repo.git"))
	os.WriteFile(filepath.Join(clone, "other"), nil, 0o644)
	testutil.GiveToNobody(t, clone)
	e.git(t, clone, "add", "-A")
	e.git(t, clone, "commit", "-q", "-m", "other")

	first := e.startPush(t, e.project, "dyno", "main")
	g.reached(t)
	second := e.startPush(t, clone, "dyno", "main")
	second.waitFor(t, "Waiting for the deploy of push-twice in progress to finish...")
	g.open(t)
	if out, st := first.wait(t); st != 0 || !strings.Contains(out, "Released v2") {
		t.Errorf("the first push: exit %d:\n%s", st, out)
	}
	out, st := second.wait(t)
	if st == 0 || !strings.Contains(out, "main moved while this push waited") || strings.Contains(out, "compiling") {
		t.Errorf("the second push: exit %d:\n%s", st, out)
	}
	if rels := e.must(t, "releases", "-a", "push-twice"); !strings.Contains(rels, "Current: v2") || strings.Contains(rels, "v3") {
		t.Errorf("releases:\n%s", rels)
	}
}

// Ctrl-C in the pushing terminal (SIGINT to git push's process group,
// which holds git receive-pack and the hook on a local push) ends the
// push, but the build goes on and releases.
func TestGitPushInterruptedStillBuilds(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	g := newGate(t)
	fastApp(t, e, "push-cut", g.compile())

	p := e.startPush(t, e.project, "dyno", "main")
	p.waitFor(t, "compiling, gated")
	g.reached(t)
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	if _, st := p.wait(t); st == 0 {
		t.Fatal("git push survived SIGINT")
	}
	g.open(t)
	// The build holds the app's push lock until it ends.
	lock, err := os.OpenFile(filepath.Join(e.home, "apps", "push-cut", "push.lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := fsutil.Flock(lock, unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if rels := e.must(t, "releases", "-a", "push-cut"); !strings.Contains(rels, "Current: v2") {
		t.Errorf("the interrupted push's build released nothing:\n%s", rels)
	}
}

// keys:add lets a key push over SSH through the system's sshd, which
// runs dyno git-shell for it and nothing else: examples/node-hello
// deploys with Heroku's output, and the release names the key's owner.
func TestGitPushOverSSH(t *testing.T) {
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/sshd"); err != nil {
			t.Skip("no sshd: install openssh-server (.ci/run does)")
		}
		sshd = "/usr/sbin/sshd"
	}
	if testutil.UserNSOff() != "" {
		t.Skip(testutil.UserNSOff())
	}
	// sshd runs a forced command with the login user's shell: this
	// test logs in as the user it runs as.
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if shell := loginShell(me.Username); shell == "" || strings.HasSuffix(shell, "nologin") || strings.HasSuffix(shell, "false") {
		t.Skipf("uid %s's login shell is %q; sshd could not run dyno git-shell as it", me.Uid, shell)
	}
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "dynohome")
	userHome := filepath.Join(dir, "user")
	project := filepath.Join(dir, "project")
	copyExample(t, "node-hello", project)
	if os.Getuid() == 0 {
		os.Chown(project, 0, 0)
		filepath.Walk(project, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, 0, 0) })
	}
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "DYNO_HOME=" + home, "HOME=" + userHome, "NO_COLOR=1", "LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=Ann", "GIT_AUTHOR_EMAIL=ann@example.com",
		"GIT_COMMITTER_NAME=Ann", "GIT_COMMITTER_EMAIL=ann@example.com"}
	run := func(dir string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(dir, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey"))
	run(dir, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ann@laptop", "-f", filepath.Join(dir, "ann"))
	run(dir, dynoBin, "apps:create", "ssh-node")
	if out := run(dir, dynoBin, "keys:add", filepath.Join(dir, "ann.pub")); !strings.Contains(out, "SSH key... done") {
		t.Errorf("keys:add: %s", out)
	}
	if out := run(dir, dynoBin, "keys"); !strings.Contains(out, "ann@laptop") {
		t.Errorf("keys lists no ann@laptop:\n%s", out)
	}

	_, portText, _ := strings.Cut(freeAddr(t), ":")
	port, _ := strconv.Atoi(portText)
	conf := filepath.Join(dir, "sshd_config")
	os.WriteFile(conf, []byte("ListenAddress 127.0.0.1:"+strconv.Itoa(port)+"\n"+
		"HostKey "+filepath.Join(dir, "hostkey")+"\n"+
		"AuthorizedKeysFile "+filepath.Join(userHome, ".ssh", "authorized_keys")+"\n"+
		"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"+
		"PermitRootLogin prohibit-password\nPidFile none\nLogLevel VERBOSE\n"), 0o600)
	if os.Getuid() == 0 {
		// sshd's privilege separation folder, which the package's
		// service makes at boot.
		os.MkdirAll("/run/sshd", 0o755)
	}
	d := exec.Command(sshd, "-D", "-e", "-f", conf)
	d.Env = env
	stderr, _ := d.StderrPipe()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	listening := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "Server listening") {
				close(listening)
			}
		}
	}()
	select {
	case <-listening:
	case <-time.After(20 * time.Second):
		t.Fatalf("sshd did not listen")
	}

	sshCmd := "ssh -i " + filepath.Join(dir, "ann") + " -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o IdentitiesOnly=yes -o BatchMode=yes"
	env = append(env, "GIT_SSH_COMMAND="+sshCmd)
	run(project, "git", "init", "-q", "-b", "main")
	run(project, "git", "add", "-A")
	run(project, "git", "commit", "-q", "-m", "node-hello")
	url := "ssh://" + me.Username + "@127.0.0.1:" + strconv.Itoa(port) + "/ssh-node.git"
	run(project, "git", "remote", "add", "dyno", url)
	cmd := exec.Command("git", "push", "dyno", "main")
	cmd.Dir, cmd.Env = project, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git push over ssh: %v\n%s\nsshd:\n%s", err, out, log.String())
	}
	for _, want := range []string{"remote: -----> Node.js app detected", "remote:        Released v2",
		"remote: Verifying deploy... done.", "* [new branch]      main -> main"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("git push over ssh lacks %q:\n%s", want, out)
		}
	}
	// The remote names the app here too, and the release its pusher.
	if rels := run(project, dynoBin, "releases"); !strings.Contains(rels, "Current: v2") || !strings.Contains(rels, "ann@laptop") {
		t.Errorf("releases:\n%s", rels)
	}

	// The key reaches nothing else: no shell, no other path.
	for _, args := range [][]string{{"id"}, {"git-receive-pack", "'../../etc.git'"}, {"git-receive-pack", "'no-such-app.git'"}} {
		c := exec.Command("ssh", append(append(strings.Fields(sshCmd)[1:], "-p", strconv.Itoa(port), me.Username+"@127.0.0.1"), args...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err == nil || strings.Contains(string(out), "uid=") {
			t.Errorf("ssh %s: ran (%v):\n%s", strings.Join(args, " "), err, out)
		}
	}
	run(dir, dynoBin, "keys:remove", "ann@laptop")
	cmd = exec.Command("git", "ls-remote", "dyno")
	cmd.Dir, cmd.Env = project, env
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("a removed key still reaches the repository:\n%s", out)
	}
}

// loginShell is name's shell from the user database, or "".
func loginShell(name string) string {
	out, err := exec.Command("getent", "passwd", name).Output()
	if err != nil {
		return ""
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	return f[len(f)-1]
}

// With [api] listen, the daemon's TCP port takes git push over HTTPS,
// the remote the Heroku CLI writes (https://HOST:PORT/APP.git), behind
// the API's token given as git's Basic password.
func TestGitPushOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	fastApp(t, e, "push-https", "echo '-----> compiled over https'\n")
	addr := freeAddr(t)
	if err := os.WriteFile(filepath.Join(e.home, "dyno.toml"), []byte("[api]\nlisten = \""+addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	config := testutil.SharedDir(t)
	testutil.GiveToNobody(t, e.home, config)
	tokenCmd := e.command("auth:token")
	tokenCmd.Env = append(tokenCmd.Env, "XDG_CONFIG_HOME="+config)
	out, err := tokenCmd.Output()
	if err != nil {
		t.Fatalf("auth:token: %v", err)
	}
	token := strings.TrimSpace(string(out))
	d := e.startDaemon(t)
	e.eventually(t, "the API's TCP port", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	ca := "http.sslCAInfo=" + filepath.Join(e.home, "api", "ca.pem")

	push := e.gitCmd(e.project, "-c", ca, "push", "https://heroku:"+token+"@"+addr+"/push-https.git", "main")
	if out, err := push.CombinedOutput(); err != nil || !strings.Contains(string(out), "remote: -----> compiled over https") ||
		!strings.Contains(string(out), "remote:        Released v2") || !strings.Contains(string(out), "remote: Verifying deploy... done.") {
		t.Fatalf("git push over https: %v\n%s\ndaemon:\n%s", err, out, d.out.String())
	}
	if rels := e.must(t, "releases", "-a", "push-https"); !strings.Contains(rels, "Current: v2") {
		t.Errorf("releases:\n%s", rels)
	}
	// A wrong token, and an app that is not there.
	if out, err := e.gitCmd(e.project, "-c", ca, "ls-remote", "https://heroku:wrong@"+addr+"/push-https.git").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "Authentication failed") {
		t.Errorf("a wrong token: %v\n%s", err, out)
	}
	if out, err := e.gitCmd(e.project, "-c", ca, "ls-remote", "https://heroku:"+token+"@"+addr+"/no-such-app.git").CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "not found") && !strings.Contains(string(out), "404") {
		t.Errorf("an unknown app: %v\n%s", err, out)
	}
}
