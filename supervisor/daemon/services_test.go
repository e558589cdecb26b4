package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/supervisor/logstore"
)

// fakeServer is an add-on server made of sh: set up by writing a file,
// ready once it has written its pid, stopped cleanly by SIGTERM, on
// which it says bye.
type fakeServer struct {
	addons.Server // the provider's methods, which the daemon never calls
	dir           string
	refuse        error // what setting up fails with
}

func (f *fakeServer) path(name string) string { return filepath.Join(f.dir, name) }

func (f *fakeServer) IsSetUp() bool {
	_, err := os.Stat(f.path("server.json"))
	return err == nil
}

func (f *fakeServer) Foreground(ctx context.Context) (addons.Foreground, error) {
	if f.refuse != nil {
		return addons.Foreground{}, f.refuse
	}
	if err := os.WriteFile(f.path("server.json"), []byte("{}"), 0o600); err != nil {
		return addons.Foreground{}, err
	}
	script := `trap 'echo bye; exit 0' TERM; echo "serving as $$"; echo $$ > ` + f.path("ready") + `.tmp; mv ` + f.path("ready") + `.tmp ` + f.path("ready") + `
while :; do sleep 1000 & wait $!; done`
	return addons.Foreground{Argv: []string{"/bin/sh", "-c", script}, Stop: syscall.SIGTERM, Kill: syscall.SIGKILL}, nil
}

func (f *fakeServer) Ready(ctx context.Context, pid int) error {
	b, err := os.ReadFile(f.path("ready"))
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		return errors.New("not ready")
	}
	return nil
}

// Running is the pid in detached, a server "started by a command".
func (f *fakeServer) Running(ctx context.Context) (int, error) {
	b, err := os.ReadFile(f.path("detached"))
	if err != nil {
		return 0, nil
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if syscall.Kill(pid, 0) != nil {
		return 0, nil
	}
	return pid, nil
}

func (f *fakeServer) Stop(ctx context.Context) error {
	pid, _ := f.Running(ctx)
	if pid == 0 {
		return nil
	}
	os.Remove(f.path("detached"))
	p, _ := os.FindProcess(pid)
	return p.Kill()
}

// serverPid is the pid the running fake server wrote.
func (f *fakeServer) serverPid(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(f.path("ready"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func startServiceDaemon(t *testing.T, f *fakeServer) *testDaemon {
	td := startTestDaemon(t, daemonOptions{servers: func() map[string]addons.Server {
		return map[string]addons.Server{"fake": f}
	}})
	td.d.services.logsDir = func(name string) string { return filepath.Join(f.dir, "logs") }
	return td
}

// serviceLogs waits until the fake's logs hold want, and returns them.
func (td *testDaemon) serviceLogs(f *fakeServer, want string) string {
	td.t.Helper()
	var out string
	td.eventually("the service's logs to say "+want, func() bool {
		lines, err := logstore.Read(filepath.Join(f.dir, "logs"), logstore.Filter{}, 1500)
		if err != nil {
			return false
		}
		var b strings.Builder
		for _, l := range lines {
			b.Write(l.Raw)
			b.WriteByte('\n')
		}
		out = b.String()
		return strings.Contains(out, want)
	})
	return out
}

// A command's first use has the daemon set the server up and start it,
// answering once it is ready; a server killed is restarted, at once the
// first time, and said so in the daemon's log and the service's; the
// daemon's shutdown stops it with its stop signal.
func TestServiceStartedOnFirstUse(t *testing.T) {
	f := &fakeServer{dir: t.TempDir()}
	td := startServiceDaemon(t, f)
	if f.IsSetUp() {
		t.Fatal("set up before first use")
	}
	if err := td.client.StartService(context.Background(), "fake"); err != nil {
		t.Fatal(err)
	}
	pid := f.serverPid(t)
	if pgid, _ := syscall.Getpgid(pid); pgid != pid {
		t.Errorf("the server is in process group %d, not one of its own", pgid)
	}
	logs := td.serviceLogs(f, "heroku[fake]: State changed from starting to up")
	for _, want := range []string{"heroku[fake]: Starting process with command `/bin/sh -c", "app[fake]: serving as " + strconv.Itoa(pid)} {
		if !strings.Contains(logs, want) {
			t.Errorf("service logs lack %q:\n%s", want, logs)
		}
	}
	// Asked again while it runs: nothing starts.
	if err := td.client.StartService(context.Background(), "fake"); err != nil {
		t.Fatal(err)
	}
	if got := f.serverPid(t); got != pid {
		t.Errorf("a second ask restarted the server: pid %d, then %d", pid, got)
	}

	syscall.Kill(pid, syscall.SIGKILL)
	td.serviceLogs(f, "heroku[fake]: Process exited with status 137")
	td.eventually("the daemon's log to say it restarts the server", func() bool {
		return strings.Contains(td.log.String(), "fake: the add-on server exited with status 137; restarting it in 0s")
	})
	if err := td.client.StartService(context.Background(), "fake"); err != nil {
		t.Fatal(err)
	}
	again := f.serverPid(t)
	if again == pid {
		t.Fatal("no new server")
	}

	err := td.client.StartService(context.Background(), "nope")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		t.Errorf("an unknown service: %v", err)
	}

	td.shutdown()
	logs = td.serviceLogs(f, "app[fake]: bye")
	for _, want := range []string{"heroku[fake]: Stopping process with SIGTERM", "heroku[fake]: Process exited with status 0", "heroku[fake]: State changed from starting to down"} {
		if !strings.Contains(logs, want) && !strings.Contains(logs, strings.Replace(want, "starting", "up", 1)) {
			t.Errorf("service logs lack %q:\n%s", want, logs)
		}
	}
	if syscall.Kill(again, 0) == nil {
		t.Errorf("the server (pid %d) outlived the daemon's shutdown", again)
	}
}

// A setup that fails (PostgreSQL refusing root) is the answer of the
// first use, and is not retried.
func TestServiceSetupFails(t *testing.T) {
	f := &fakeServer{dir: t.TempDir(), refuse: errors.New("initdb: cannot be run as root")}
	td := startServiceDaemon(t, f)
	err := td.client.StartService(context.Background(), "fake")
	if err == nil || !strings.Contains(err.Error(), "cannot be run as root") {
		t.Fatalf("start: %v", err)
	}
	td.eventually("the service to be gone", func() bool {
		td.d.services.mu.Lock()
		defer td.d.services.mu.Unlock()
		return len(td.d.services.running) == 0
	})
	if !strings.Contains(td.log.String(), "fake: setting up the add-on server failed: initdb: cannot be run as root") {
		t.Errorf("daemon log:\n%s", td.log)
	}
}

// At boot a set-up server starts; one running detached is stopped
// first, and the daemon's log says so.
func TestServiceTakesOverADetachedServer(t *testing.T) {
	f := &fakeServer{dir: t.TempDir()}
	if err := os.WriteFile(f.path("server.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	detached := exec.Command("sleep", "1000")
	if err := detached.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- detached.Wait() }()
	t.Cleanup(func() { detached.Process.Kill() })
	if err := os.WriteFile(f.path("detached"), []byte(strconv.Itoa(detached.Process.Pid)), 0o600); err != nil {
		t.Fatal(err)
	}
	td := startServiceDaemon(t, f)
	td.d.services.boot()
	td.d.services.awaitBoot(serviceWait)
	if err := <-waited; err == nil {
		t.Error("the detached server was not stopped")
	}
	want := "fake: an add-on server the daemon did not start runs (pid " + strconv.Itoa(detached.Process.Pid) + "); stopping it cleanly to run it under the daemon"
	if !strings.Contains(td.log.String(), want) {
		t.Errorf("daemon log lacks %q:\n%s", want, td.log)
	}
	td.serviceLogs(f, "heroku[fake]: State changed from starting to up")
}
