package main

import (
	"archive/tar"
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
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
)

// exportHome is a DYNO_HOME with an app, gohello, whose v2 is
// examples/go-hello built with go build (the go buildpack's way, without
// its minute) plus a .profile.d script, and v3 a config var.
func exportHome(t *testing.T) (home string, env []string) {
	t.Helper()
	home = t.TempDir()
	tree := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(tree, "bin", "go-hello"), ".")
	build.Dir = "../../examples/go-hello"
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build go-hello: %v\n%s", err, out)
	}
	os.MkdirAll(filepath.Join(tree, ".profile.d"), 0o755)
	os.WriteFile(filepath.Join(tree, ".profile.d", "path.sh"), []byte("export PATH=/app/bin:$PATH GREETING=from-profile\n"), 0o644)
	h := app.Home{Dir: home}
	a, err := h.Create("gohello", "tester")
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := h.Slugs().Pack(tree, slug.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deploy(s.Digest, "0123abcd", map[string]string{"web": "go-hello", "worker": "id -u"}, nil, nil, "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetConfig(map[string]string{"SECRET_TOKEN": "do-not-bake"}, "tester"); err != nil {
		t.Fatal(err)
	}
	return home, []string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "DYNO_HOME=" + home, "HOME=" + home, "NO_COLOR=1"}
}

func exportRun(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(dynoBin, args...)
	cmd.Env = env
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

var exportedDigest = regexp.MustCompile(`\((sha256:[0-9a-f]{64}), `)

func TestExportOCIBadInput(t *testing.T) {
	_, env := exportHome(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "oci", "-a", "gohello"}, "-o FILE.tar is required"},
		{[]string{"export", "oci", "-a", "gohello", "--release", "v9", "-o", dir + "/x.tar"}, "--release v9"},
		{[]string{"export", "oci", "-a", "gohello", "--release", "v1", "-o", dir + "/x.tar"}, "has no code"},
		{[]string{"export", "oci", "-a", "gohello", "-o", dir + "/missing/x.tar"}, "-o " + dir + "/missing/x.tar"},
		{[]string{"export", "oci", "-a", "gohello", "--base", "/etc/hostname", "-o", dir + "/x.tar"}, "base image /etc/hostname"},
	} {
		out, code := exportRun(t, env, c.args...)
		if code == 0 || !strings.Contains(out, c.want) || strings.Count(strings.TrimSpace(out), "\n") > 0 {
			t.Errorf("dyno %s: exit %d, output %q; want one line with %q", strings.Join(c.args, " "), code, out, c.want)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) > 0 {
		t.Errorf("failed exports left %v behind", left)
	}
}

// podmanArgs are the flags every podman run here needs: runc where it is
// installed (Debian 12's crun refuses a hybrid cgroup hierarchy), and
// limits under what a container's root may set on such a machine.
func podmanArgs() []string {
	// Under the hard limits of a machine like this one, which runc may
	// not raise; harmless elsewhere.
	args := []string{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"}
	if _, err := exec.LookPath("runc"); err == nil {
		args = append(args, "--runtime", "runc")
	}
	return args
}

func TestExportOCIRunsUnderPodman(t *testing.T) {
	for _, tool := range []string{"podman", "skopeo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install podman skopeo runc)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("podman's own storage is root's here; run as root")
	}
	_, env := exportHome(t)
	dir := t.TempDir()

	// A base of bash and its libraries, made and saved by podman itself.
	rootfs := filepath.Join(dir, "rootfs.tar")
	writeRootfs(t, rootfs, "/bin/bash", "/usr/bin/id")
	tag := fmt.Sprintf("localhost/dyno-test-base:%d", os.Getpid())
	mustRun(t, "podman", "import", rootfs, tag)
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", tag).Run() })
	base := filepath.Join(dir, "base.tar")
	mustRun(t, "podman", "save", "--format", "oci-archive", "-o", base, tag)

	image := filepath.Join(dir, "gohello.tar")
	out, code := exportRun(t, env, "export", "oci", "-a", "gohello", "--base", base, "-o", image)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	m := exportedDigest.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("export said no digest:\n%s", out)
	}
	again, _ := exportRun(t, env, "export", "oci", "-a", "gohello", "--base", base, "-o", filepath.Join(dir, "again.tar"))
	if m2 := exportedDigest.FindStringSubmatch(again); m2 == nil || m2[1] != m[1] {
		t.Errorf("the same release twice: %s, then %q", m[1], again)
	}

	inspect := mustRun(t, "skopeo", "inspect", "oci-archive:"+image)
	for _, want := range []string{`"PORT=5000"`, `"org.opencontainers.image.version": "v3"`, m[1]} {
		if !strings.Contains(inspect, want) {
			t.Errorf("skopeo inspect lacks %s:\n%s", want, inspect)
		}
	}
	if strings.Contains(inspect, "do-not-bake") {
		t.Errorf("a config var is in the image:\n%s", inspect)
	}
	mustRun(t, "podman", "load", "-i", image)
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", "localhost/gohello:v3").Run() })

	// One-offs: the user, the profile, PORT's default, no config var.
	oneOff := append(append([]string{"run", "--rm"}, podmanArgs()...), "localhost/gohello:v3")
	got := mustRun(t, "podman", append(oneOff, `id -u; echo "$HOME $PORT $GREETING ${SECRET_TOKEN:-unset}"`)...)
	if want := "12345\n/app 5000 from-profile unset\n"; got != want {
		t.Errorf("one-off printed %q, want %q", got, want)
	}
	if got := mustRun(t, "podman", append(oneOff, "worker")...); got != "12345\n" {
		t.Errorf("worker printed %q", got)
	}

	// web answers HTTP on the PORT it is given, and stops on SIGTERM.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	name := fmt.Sprintf("dyno-test-web-%d", os.Getpid())
	web := exec.Command("podman", append(append([]string{"run", "--rm", "--name", name, "--network", "host", "-e", fmt.Sprintf("PORT=%d", port)}, podmanArgs()...), "localhost/gohello:v3", "web")...)
	stdout, _ := web.StdoutPipe()
	web.Stderr = web.Stdout
	if err := web.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", name).Run() })
	sc := bufio.NewScanner(stdout)
	listening := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			listening = true
			break
		}
	}
	if !listening {
		t.Fatalf("web never said it listens")
	}
	// go-hello says it listens just before it binds: the socket is the
	// event, polled until it accepts.
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Hello") {
		t.Errorf("web answered %d %q", resp.StatusCode, body)
	}
	go io.Copy(io.Discard, stdout)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "podman", "stop", "-t", "20", name).CombinedOutput(); err != nil {
		t.Errorf("podman stop: %v\n%s", err, out)
	}
	if err := web.Wait(); err != nil {
		// go-hello exits 0 on SIGTERM: a kill after the timeout would
		// mean the signal never reached it past the launcher.
		t.Errorf("web after podman stop: %v", err)
	}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// writeRootfs writes a tar of the programs and the libraries ldd says
// they load, at their paths, plus /tmp.
func writeRootfs(t *testing.T, path string, programs ...string) {
	t.Helper()
	files := map[string]bool{}
	for _, p := range programs {
		files[p] = true
		out, err := exec.Command("ldd", p).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", p, err)
		}
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "/") {
				files[f] = true
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	dirs := map[string]bool{}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	for p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for d := filepath.Dir(p); d != "/" && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755})
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: 0o755, Size: int64(len(b))})
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}
