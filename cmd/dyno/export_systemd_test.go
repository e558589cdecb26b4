package main

// dyno export systemd through the binary, on a real app: the units
// follow ps:scale and the sizes, keep config vars out, pass
// systemd-analyze verify, and an instance's ExecStart, run by hand as
// systemd would run it, serves HTTP on the instance's PORT.

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/attached"
)

// unitSettings returns the values of key's lines in a unit file.
func unitSettings(unit, key string) []string {
	var vals []string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

func TestExportSystemd(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "svc", "web: exec python3 -u -m http.server $PORT\nworker: exec sleep 1000\n")
	e.must(t, "ps:scale", "web=2", "worker=1:standard-2x", "-a", "svc")
	e.must(t, "config:set", "SECRET=hunter2", "-a", "svc")
	version := regexp.MustCompile(`(?m)^(v\d+) `).FindStringSubmatch(e.must(t, "releases", "-a", "svc"))[1]

	out := e.must(t, "export", "systemd", "-a", "svc", "-o", "units")
	dir := filepath.Join(e.project, "units")
	names := []string{
		"svc.target",
		"svc-web@.service", "svc-web@1.service.d/dyno.conf", "svc-web@2.service.d/dyno.conf",
		"svc-worker@.service", "svc-worker@1.service.d/dyno.conf",
	}
	want := "Wrote systemd units for ⬢ svc " + version + " to units:\n"
	for _, n := range names {
		want += "  units/" + n + "\n"
	}
	want += "Install and start them (as root):\n  cp -r units/. /etc/systemd/system/\n  systemctl daemon-reload\n  systemctl enable --now svc.target\n"
	if out != want {
		t.Errorf("export systemd said:\n%s\nwant:\n%s", out, want)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("hunter2")) {
			t.Errorf("%s holds a config var's value:\n%s", name, b)
		}
		return string(b)
	}
	for _, n := range names {
		read(n)
	}
	if extra, _ := filepath.Glob(filepath.Join(dir, "svc-*@3*")); len(extra) != 0 {
		t.Errorf("more instances than the formation: %q", extra)
	}

	// The formation: the instances ps:scale asked for.
	if got := unitSettings(read("svc.target"), "Wants"); !slices.Equal(got, []string{"svc-web@1.service", "svc-web@2.service", "svc-worker@1.service"}) {
		t.Errorf("svc.target wants %q", got)
	}
	// The sizes: memory.max as dyno enforces it, R15 at twice the quota.
	sizes := cgroup.DefaultSizes()
	web, worker := read("svc-web@.service"), read("svc-worker@.service")
	for unit, size := range map[string]cgroup.Size{web: sizes["standard-1x"], worker: sizes["standard-2x"]} {
		if got, want := unitSettings(unit, "MemoryMax"), strconv.FormatInt(size.Limits().MemoryMax, 10); !slices.Equal(got, []string{want}) || want != strconv.FormatInt(2*size.Memory, 10) {
			t.Errorf("%s: MemoryMax %q; want %s", size.Name, got, want)
		}
		if got := unitSettings(unit, "User"); !slices.Equal(got, []string{"nobody"}) {
			t.Errorf("User %q; want the exporting user, nobody", got)
		}
	}
	// The pinned release, the binary that exported it.
	exec0 := unitSettings(web, "ExecStart")
	if len(exec0) != 1 || exec0[0] != dynoBin+" run -a svc --release "+version+" --dyno web.%i --type web -s standard-1x -p ${PORT} --no-tty web" {
		t.Fatalf("web's ExecStart: %q", exec0)
	}
	if got := unitSettings(read("svc-worker@1.service.d/dyno.conf"), "Environment"); !slices.Equal(got, []string{"PORT=5100"}) {
		t.Errorf("worker.1's PORT: %q; want 5100", got)
	}

	// A second export of the same release writes the same bytes.
	before := web
	e.must(t, "export", "systemd", "-a", "svc", "-o", "units", "--release", version)
	if read("svc-web@.service") != before {
		t.Error("a second export of the same release differs")
	}
	// Refusals: one line, nothing written.
	if out, st := e.dynoOut(t, "export", "systemd", "-a", "svc", "-o", "other", "--release", "v1"); st == 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("--release v1 (no code): exit %d, %q", st, out)
	}
	if _, err := os.Stat(filepath.Join(e.project, "other")); err == nil {
		t.Error("a refused export wrote its folder")
	}

	// systemd-analyze verify warns of User=nobody ("not safe"), rightly:
	// verify an export for another user, which --user names.
	e.must(t, "export", "systemd", "-a", "svc", "-o", "as-root", "--user", "root")
	rootDir := filepath.Join(e.project, "as-root")
	if b, err := os.ReadFile(filepath.Join(rootDir, "svc-web@.service")); err != nil || string(b) != strings.Replace(web, "\nUser=nobody\n", "\nUser=root\n", 1) {
		t.Errorf("--user root: %v\n%s", err, b)
	}
	verifyUnits(t, rootDir, "svc.target", "svc-web@1.service", "svc-web@2.service", "svc-worker@1.service")
	runInstance(t, e, web, read("svc-web@1.service.d/dyno.conf"))
}

// verifyUnits runs systemd-analyze verify on units in dir and fails on
// any complaint: a non-zero exit or a line of output.
func verifyUnits(t *testing.T, dir string, units ...string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the units are not verified")
		return
	}
	var paths []string
	for _, u := range units {
		paths = append(paths, filepath.Join(dir, u))
	}
	cmd := exec.Command(sa, append([]string{"verify", "--man=no"}, paths...)...)
	// The templates and drop-ins are found on the unit path; ":" at the
	// end keeps systemd's own directories on it.
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// runInstance runs instance 1 of template as systemd would: its
// ExecStart with %i and ${PORT} expanded, as its User= with its
// Environment=, and checks that the dyno serves HTTP there, that ps
// names it web.1, and that it stops on SIGTERM with the status
// SuccessExitStatus= takes as clean.
func runInstance(t *testing.T, e *isolatedEnv, template, dropIn string) {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NO_COLOR=1", "HOME=/nonexistent"}
	for _, v := range append(unitSettings(template, "Environment"), unitSettings(dropIn, "Environment")...) {
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		env = append(env, v)
	}
	port := ""
	for _, v := range env {
		if p, ok := strings.CutPrefix(v, "PORT="); ok {
			port = p
		}
	}
	// The drop-in's port may be another test's now; the unit passes
	// ${PORT} on whatever it is, so a free one shows the same.
	if supervisor.PortTaken(atoi(t, port)) {
		port = freePort(t)
		env = append(env, "PORT="+port)
	}
	line := unitSettings(template, "ExecStart")[0]
	line = strings.ReplaceAll(strings.ReplaceAll(line, "%i", "1"), "${PORT}", port)
	argv := strings.Fields(line)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir = env, "/"
	testutil.AsNobody(cmd)
	s := startSession(t, cmd)
	s.waitFor(`^Running ` + "`web`" + ` on ⬢ svc\.\.\. up, web\.1 \(Standard-1X\)$`)
	s.waitFor(`^Serving HTTP on .* port ` + port + ` `)
	resp, err := http.Get("http://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatalf("the dyno on PORT %s: %v", port, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the dyno on PORT %s answered %s", port, resp.Status)
	}
	// What ps reads for a dyno run outside the daemon: its entry, under
	// the name and type the daemon would give web.1.
	e.eventually(t, "web.1's entry to say it is up", func() bool {
		runs, err := attached.List(attached.Dir(filepath.Join(e.home, "apps", "svc")))
		return err == nil && len(runs) == 1 && runs[0].Name == "web.1" && runs[0].Type == "web" && runs[0].State == supervisor.Up
	})
	s.signal(syscall.SIGTERM)
	if st := s.wait(); st != 143 {
		t.Errorf("dyno run exited %d on SIGTERM; want 143, which the unit's SuccessExitStatus= counts as clean", st)
	}
}
