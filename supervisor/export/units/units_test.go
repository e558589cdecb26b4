package units

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/supervisor/export"
)

func testPlan() *export.Plan {
	sizes := cgroup.DefaultSizes()
	sizes["capped"] = cgroup.Size{Name: "capped", Memory: 256 << 20, KillRatio: 1.5, Pids: 64, CPUWeight: 50, CPUQuota: 0.5}
	return &export.Plan{
		App: "shop",
		Release: ledger.Release{
			Version: 7, Status: ledger.StatusSucceeded, Slug: "sha256:00",
			ProcessTypes: map[string]string{"web": "bin/web", "worker": "bin/work", "clock": "bin/clock", "release": "bin/migrate"},
			ConfigVars:   map[string]string{"SECRET": "hunter2"},
		},
		Formation: ledger.Formation{
			"web":    {Quantity: 2, Size: "standard-2x"},
			"worker": {Quantity: 1, Size: "capped"},
			"clock":  {Quantity: 0},
		},
		Sizes:       sizes,
		StopTimeout: 30 * time.Second,
		Restart:     export.RestartPolicy{Initial: time.Second, Max: 20 * time.Minute},
		Hosts:       []string{"shop.localhost"},
	}
}

var testOptions = Options{Binary: "/usr/local/bin/dyno", Home: "/var/lib/dyno home", User: "dyno"}

func filesByName(t *testing.T, files []File) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, f := range files {
		if _, dup := m[f.Name]; dup {
			t.Fatalf("two files named %s", f.Name)
		}
		m[f.Name] = string(f.Data)
	}
	return m
}

// settings returns the lines of a unit that set key, values only.
func settings(unit, key string) []string {
	var vals []string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			vals = append(vals, v)
		}
	}
	return vals
}

func TestUnits(t *testing.T) {
	p := testPlan()
	files, err := Units(p, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	// Web first, then the others by name, as dyno gives them ports; no
	// unit for the release phase; a template for a type at 0.
	want := []string{
		"shop.target",
		"shop-web@.service", "shop-web@1.service.d/dyno.conf", "shop-web@2.service.d/dyno.conf",
		"shop-clock@.service",
		"shop-worker@.service", "shop-worker@1.service.d/dyno.conf",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("files %q; want %q", names, want)
	}
	m := filesByName(t, files)

	if got := settings(m["shop.target"], "Wants"); !slices.Equal(got, []string{"shop-web@1.service", "shop-web@2.service", "shop-worker@1.service"}) {
		t.Errorf("target wants %q", got)
	}
	if got := settings(m["shop.target"], "WantedBy"); !slices.Equal(got, []string{"multi-user.target"}) {
		t.Errorf("target wanted by %q", got)
	}

	// Ports as dyno start numbers them: 5000 + 100 × type index + n − 1.
	for name, port := range map[string]string{"shop-web@1.service.d/dyno.conf": "5000", "shop-web@2.service.d/dyno.conf": "5001", "shop-worker@1.service.d/dyno.conf": "5200"} {
		if got := settings(m[name], "Environment"); !slices.Equal(got, []string{"PORT=" + port}) || !strings.Contains(m[name], "[Service]\n") {
			t.Errorf("%s: Environment %q; want PORT=%s in [Service]", name, got, port)
		}
	}

	web := m["shop-web@.service"]
	for key, want := range map[string]string{
		"ExecStart":             `/usr/local/bin/dyno run -a shop --release v7 --dyno web.%i --type web -s standard-2x -p ${PORT} --no-tty web`,
		"Environment":           `"DYNO_HOME=/var/lib/dyno home"`,
		"User":                  "dyno",
		"PartOf":                "shop.target",
		"After":                 "network-online.target",
		"StartLimitIntervalSec": "0",
		"Restart":               "always",
		"RestartSec":            "1s",
		"TimeoutStopSec":        "30s",
		"KillMode":              "mixed",
		"Delegate":              "yes",
		"MemoryMax":             "2147483648", // standard-2x: 1 GiB quota, R15 at twice it
		"MemorySwapMax":         "0",
		"TasksMax":              "512",
		"CPUWeight":             "200",
		"#RestartSteps":         "11", // 1 s doubled 11 times passes 20 min
		"#RestartMaxDelaySec":   "1200s",
	} {
		if got := settings(web, key); !slices.Equal(got, []string{want}) {
			t.Errorf("web template: %s=%q; want %q", key, got, want)
		}
	}
	if got := settings(web, "CPUQuota"); got != nil {
		t.Errorf("web template: CPUQuota %q for a size without one", got)
	}
	worker := m["shop-worker@.service"]
	for key, want := range map[string]string{
		"ExecStart": `/usr/local/bin/dyno run -a shop --release v7 --dyno worker.%i --type worker -s capped -p ${PORT} --no-tty worker`,
		"MemoryMax": "402653184", // 256 MiB × 1.5
		"TasksMax":  "64",
		"CPUWeight": "50",
		"CPUQuota":  "50%",
	} {
		if got := settings(worker, key); !slices.Equal(got, []string{want}) {
			t.Errorf("worker template: %s=%q; want %q", key, got, want)
		}
	}

	for name, text := range m {
		// Config vars stay in the ledger: unit files are world-readable.
		if strings.Contains(text, "hunter2") || strings.Contains(text, "SECRET") {
			t.Errorf("%s holds a config var:\n%s", name, text)
		}
		// The release phase is the release's, not a dyno of the formation.
		if strings.Contains(text, "migrate") {
			t.Errorf("%s runs the release phase:\n%s", name, text)
		}
	}

	// The same plan gives the same bytes.
	again, err := Units(testPlan(), testOptions)
	if err != nil || !slices.EqualFunc(files, again, func(a, b File) bool { return a.Name == b.Name && bytes.Equal(a.Data, b.Data) }) {
		t.Errorf("a second export differs (%v)", err)
	}
}

func TestUnitsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*export.Plan, *Options)
		want string
	}{
		{"no code", func(p *export.Plan, o *Options) { p.Release.Slug = "" }, "shop v7 has no code"},
		{"unknown size", func(p *export.Plan, o *Options) {
			p.Formation["web"] = ledger.FormationEntry{Quantity: 1, Size: "huge"}
		}, `scaled to size "huge"`},
		{"relative binary", func(p *export.Plan, o *Options) { o.Binary = "dyno" }, `the dyno binary "dyno" is not an absolute path`},
		{"relative home", func(p *export.Plan, o *Options) { o.Home = "home" }, `DYNO_HOME "home" is not an absolute path`},
		{"no user", func(p *export.Plan, o *Options) { o.User = "" }, "no user"},
		{"size with a blank", func(p *export.Plan, o *Options) {
			p.Sizes["big one"] = cgroup.Size{Name: "big one", Memory: 1 << 30, KillRatio: 2}
			p.Formation["web"] = ledger.FormationEntry{Quantity: 1, Size: "big one"}
		}, `"big one" cannot be a word of a unit's command line`},
	} {
		p, o := testPlan(), testOptions
		tc.edit(p, &o)
		if _, err := Units(p, o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error with %q", tc.name, err, tc.want)
		}
	}
}

// Written files are what Units returns, 0644, and systemd-analyze
// verify finds nothing to say about them where it runs.
func TestWriteAndVerify(t *testing.T) {
	p := testPlan()
	dir := filepath.Join(t.TempDir(), "units")
	o := testOptions
	o.Binary = "/bin/true" // verify checks that the program exists
	o.User = "root"
	files, err := Units(p, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	// Writing again replaces the files in place.
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		b, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(b, f.Data) {
			t.Errorf("%s: %v, does not hold the unit", path, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v; want 0644", path, fi.Mode())
		}
		if !strings.Contains(f.Name, "/") {
			paths = append(paths, path)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %q", left)
	}
	verify(t, dir, append(paths, filepath.Join(dir, "shop-web@1.service"), filepath.Join(dir, "shop-worker@1.service")))
}

// verify runs systemd-analyze verify on units in dir, and fails the test
// on any complaint: a non-zero exit or a line of output.
func verify(t *testing.T, dir string, units []string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the units are not verified")
	}
	cmd := exec.Command(sa, append([]string{"verify", "--man=no"}, units...)...)
	// The directory of the units, for the templates behind the
	// instances and their drop-ins; ":" appends the usual path.
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
