package release

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/logmux"
)

func testRelease() *ledger.Release {
	return &ledger.Release{
		Version: 7, Slug: "sha256:ab",
		ProcessTypes: map[string]string{"web": "serve", "worker": "work", "release": "migrate", "clock": "tick"},
		ConfigVars:   map[string]string{"FOO": "bar"},
	}
}

func names(cs []supervisor.DynoConfig) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// Dynos: web first, then by name, release never; quantities from the
// formation; each config carries the release and its environment.
func TestDynos(t *testing.T) {
	t.Parallel()
	rel := testRelease()
	f := ledger.Formation{"web": {Quantity: 2, Size: "standard-2x"}, "worker": {Quantity: 1}, "release": {Quantity: 3}}
	got := Dynos(rel, f, Options{Lower: "/slug", Quota: func(size string) int64 { return int64(len(size)) }})
	if want := []string{"web.1", "web.2", "worker.1"}; !slices.Equal(names(got), want) {
		t.Fatalf("dynos %v, want %v", names(got), want)
	}
	w := got[1]
	if w.Type != "web" || w.Command != "serve" || !w.Web || w.Port != 0 || w.Lower != "/slug" ||
		w.Size != "standard-2x" || w.MemoryQuota != int64(len("standard-2x")) || w.Release != 7 || w.Dir != "/app" {
		t.Errorf("web.2: %+v", w)
	}
	for _, kv := range []string{"FOO=bar", "DYNO=web.2", "HOME=/app"} {
		if !slices.Contains(w.Env, kv) {
			t.Errorf("web.2's env lacks %s: %v", kv, w.Env)
		}
	}
	if got[2].Web {
		t.Error("worker.1 is web")
	}
	// Fixed ports as Foreman numbers them: 100 per type in port order.
	fixed := Dynos(rel, ledger.Formation{"web": {Quantity: 2}, "worker": {Quantity: 2}}, Options{BasePort: 5000})
	var ports []int
	for _, c := range fixed {
		ports = append(ports, c.Port)
		if !slices.Contains(c.Env, "PORT="+strconv.Itoa(c.Port)) {
			t.Errorf("%s: PORT not %d in %v", c.Name, c.Port, c.Env)
		}
	}
	if want := []int{5000, 5001, 5200, 5201}; !slices.Equal(ports, want) {
		t.Errorf("ports %v, want %v (clock is type 1)", ports, want)
	}
}

// The same release at the same formation makes the same configs (so no
// dyno restarts); a new release of the same slug and config does not.
func TestDynosSameAndNewRelease(t *testing.T) {
	t.Parallel()
	rel := testRelease()
	f := ledger.Formation{"web": {Quantity: 1}}
	a, b := Dynos(rel, f, Options{Lower: "/l"}), Dynos(rel, f, Options{Lower: "/l"})
	if !configsEqual(a, b) {
		t.Fatal("the same release made different configs")
	}
	next := *rel
	next.Version++
	if configsEqual(a, Dynos(&next, f, Options{Lower: "/l"})) {
		t.Fatal("a new release with the same slug made the same configs: its dynos would not restart")
	}
}

func configsEqual(a, b []supervisor.DynoConfig) bool {
	return slices.EqualFunc(a, b, func(x, y supervisor.DynoConfig) bool {
		return slices.Equal(x.Env, y.Env) && x.Name == y.Name && x.Release == y.Release && x.Lower == y.Lower && x.Command == y.Command
	})
}

func TestOneOff(t *testing.T) {
	t.Parallel()
	rel := testRelease()
	name := regexp.MustCompile(`^run\.[1-9]\d{3}$`)
	for _, tc := range []struct{ line, want string }{
		{"bash", "bash"},
		{"worker", "work"},
		{"worker --verbose 'a b'", "work --verbose 'a b'"},
		{"workers", "workers"},
		{"echo worker", "echo worker"},
	} {
		c := OneOff(rel, tc.line, "eco", Options{BasePort: 5000, Lower: "/l"})
		if c.Command != tc.want {
			t.Errorf("%q runs %q, want %q", tc.line, c.Command, tc.want)
		}
		if !name.MatchString(c.Name) || c.Type != "run" || c.Size != "eco" || c.Release != 7 || c.Lower != "/l" ||
			!slices.Contains(c.Env, "DYNO="+c.Name) || !slices.Contains(c.Env, "PORT=5000") {
			t.Errorf("%+v", c)
		}
	}
}

// A one-off's -e values go over the config vars, for it alone; DYNO and
// PORT stay the dyno manager's.
func TestOneOffEnv(t *testing.T) {
	t.Parallel()
	rel := testRelease()
	c := OneOff(rel, "env", "", Options{BasePort: 5000, Env: map[string]string{"FOO": "over", "A": "1", "DYNO": "x", "PORT": "1"}})
	for _, kv := range []string{"FOO=over", "A=1", "DYNO=" + c.Name, "PORT=5000"} {
		if !slices.Contains(c.Env, kv) {
			t.Errorf("env lacks %s: %v", kv, c.Env)
		}
	}
	if rel.ConfigVars["FOO"] != "bar" || rel.ConfigVars["A"] != "" {
		t.Errorf("the release changed: %v", rel.ConfigVars)
	}
}

func TestSize(t *testing.T) {
	t.Parallel()
	sizes := map[string]cgroup.Size{"standard-1x": {}, "eco": {}}
	for in, want := range map[string]string{"": "standard-1x", "Eco": "eco", "standard-1x": "standard-1x"} {
		if got, err := Size(sizes, in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Size(sizes, "huge"); err == nil || err.Error() != `unknown dyno size "huge"; use one of eco, standard-1x` {
		t.Errorf("huge: %v", err)
	}
}

func TestCurrent(t *testing.T) {
	t.Parallel()
	if _, err := Current("demo", &ledger.State{Current: &ledger.Release{Version: 1}}); err == nil ||
		err.Error() != "demo has no release with code yet; build one with dyno build -a demo" {
		t.Errorf("v1 without code: %v", err)
	}
	if rel, err := Current("demo", &ledger.State{Current: testRelease()}); err != nil || rel.Version != 7 {
		t.Errorf("%v, %v", rel, err)
	}
}

// recordingRunner records the specs it starts; each process exits with
// status at once.
type recordingRunner struct {
	mu     sync.Mutex
	specs  []supervisor.DynoSpec
	status int
}

func (r *recordingRunner) Start(spec supervisor.DynoSpec) (supervisor.Process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.specs = append(r.specs, spec)
	return exited(r.status), nil
}

type exited int

func (e exited) Pid() int                    { return 1 }
func (e exited) Signal(syscall.Signal) error { return nil }
func (e exited) Kill() error                 { return nil }
func (e exited) Wait() (int, error)          { return int(e), nil }

// RunPhase runs release.N with the release command and returns its
// status, with Heroku's lines in the log.
func TestRunPhase(t *testing.T) {
	t.Parallel()
	rel := testRelease()
	r := &recordingRunner{status: 3}
	var out strings.Builder
	logs := logmux.New(&syncWriter{w: &out}, logmux.Options{Format: logmux.FormatLogplex})
	status, err := RunPhase(context.Background(), r, logs, *rel, Options{BasePort: 5000, Lower: "/l"}, 0)
	if err != nil || status != 3 {
		t.Fatalf("status %d, %v", status, err)
	}
	s := r.specs[0]
	if s.Name != "release.7" || s.Command != "migrate" || s.Lower != "/l" || !slices.Contains(s.Env, "DYNO=release.7") || !slices.Contains(s.Env, "PORT=5000") {
		t.Errorf("%+v", s)
	}
	for _, want := range []string{"heroku[release.7]: Starting process with command `migrate`", "heroku[release.7]: Process exited with status 3", "heroku[release.7]: State changed from up to complete"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// A dyno's environment: the config vars (PATH too), what -e adds, then
// what the dyno manager sets, sorted; nothing of the host's.
func TestEnv(t *testing.T) {
	t.Parallel()
	rel := &ledger.Release{ConfigVars: map[string]string{"B": "1", "HOME": "/root", "DYNO": "no"}}
	want := []string{"B=1", "DYNO=web.1", "HOME=/app", "PATH=/usr/local/bin:/usr/bin:/bin", "PORT=5000"}
	if got := Env(rel, "web.1", 5000, nil); !slices.Equal(got, want) {
		t.Errorf("Env: %v, want %v", got, want)
	}
	rel.ConfigVars["PATH"] = "/app/bin:/usr/bin"
	got := Env(rel, "run.1234", 0, map[string]string{"B": "2", "C": "3"})
	want = []string{"B=2", "C=3", "DYNO=run.1234", "HOME=/app", "PATH=/app/bin:/usr/bin", "PORT=0"}
	if !slices.Equal(got, want) {
		t.Errorf("Env with -e: %v, want %v", got, want)
	}
}
