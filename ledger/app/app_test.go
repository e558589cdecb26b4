package app

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/ledger"
)

func newApp(t *testing.T) *App {
	t.Helper()
	// testutil.SharedDir, not t.TempDir: an unpacked slug's folders lose
	// their write bits, which only root's RemoveAll gets past.
	h := Home{Dir: testutil.SharedDir(t)}
	a, err := h.Create("demo", "ann")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func current(t *testing.T, a *App) *ledger.Release {
	t.Helper()
	s, err := a.Ledger.State()
	if err != nil {
		t.Fatal(err)
	}
	return s.Current
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"demo": true, "my-app-2": true, "abc": true, strings.Repeat("a", 30): true,
		"ab": false, strings.Repeat("a", 31): false, "Demo": false, "2app": false,
		"app-": false, "my_app": false, "": false, "a--b": true, "-ab": false, "aé1": false,
		"a-0": true, "a\x00b": false, "ab.": false, "ab/": false,
	} {
		if err := ValidName(name); (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}

func TestCreateOpenListDestroy(t *testing.T) {
	t.Parallel()
	h := Home{Dir: t.TempDir()}
	if _, err := h.Create("demo", "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Create("demo", "ann"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second create: %v", err)
	}
	h.Create("other", "ann")
	if names, _ := h.List(); strings.Join(names, ",") != "demo,other" {
		t.Errorf("List = %v", names)
	}
	a, err := h.Open("demo")
	if err != nil {
		t.Fatal(err)
	}
	if c := current(t, a); c == nil || c.Version != 1 || c.Description != "Initial release" {
		t.Errorf("v1 = %+v", c)
	}
	if err := h.Destroy("demo"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Open("demo"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after Destroy: %v", err)
	}
}

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		vars map[string]string
		bad  string
	}{
		{map[string]string{"A": "1", "_B2": "x", "lower": "y"}, ""},
		{map[string]string{"1A": "x"}, `"1A"`},
		{map[string]string{"A-B": "x"}, `"A-B"`},
		{map[string]string{"": "x"}, `""`},
		{map[string]string{"BIG": strings.Repeat("x", MaxConfigBytes)}, "over the limit"},
		{map[string]string{"FIT": strings.Repeat("x", MaxConfigBytes-3)}, ""},
		{map[string]string{"NUL": "x\x00y"}, "config var NUL holds a NUL byte"},
	} {
		err := ValidateConfig(tc.vars)
		if tc.bad == "" && err != nil || tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)) {
			t.Errorf("ValidateConfig(%d vars) = %v, want %q", len(tc.vars), err, tc.bad)
		}
	}
}

func TestConfigReleases(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	rel, err := a.SetConfig(map[string]string{"B": "2", "A": "1"}, "ann")
	if err != nil || rel.Version != 2 || rel.Description != "Set A, B config vars" || rel.Status != ledger.StatusSucceeded {
		t.Fatalf("SetConfig = %+v, %v", rel, err)
	}
	rel, err = a.UnsetConfig([]string{"A"}, "ann")
	if err != nil || rel.Description != "Remove A config vars" || rel.ConfigVars["B"] != "2" || rel.ConfigVars["A"] != "" {
		t.Fatalf("UnsetConfig = %+v, %v", rel, err)
	}
	if _, err := a.UnsetConfig([]string{"NOPE"}, "ann"); err == nil {
		t.Error("unsetting only missing vars made a release")
	}
	if _, err := a.SetConfig(map[string]string{"9X": "y"}, "ann"); err == nil {
		t.Error("bad key accepted")
	}
	if c := current(t, a); c.Version != 3 {
		t.Errorf("refused changes moved the current release to v%d", c.Version)
	}
}

func TestDeployRollbackAndReleasePhase(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.SetConfig(map[string]string{"K": "v1"}, "ann")
	d1, err := a.Deploy("sha256:"+strings.Repeat("a", 64), "0123456789abcdef", map[string]string{"web": "w"}, []string{"heroku/go"}, []string{"pg"}, "ann")
	if err != nil || d1.Version != 3 || d1.Description != "Deploy 01234567" || d1.ConfigVars["K"] != "v1" || len(d1.Addons) != 1 {
		t.Fatalf("Deploy = %+v, %v", d1, err)
	}
	// A release phase leaves the release pending until Finish.
	// bin/release's add-ons apply on the first deploy only; the app
	// keeps the ones it has.
	d2, _ := a.Deploy("sha256:"+strings.Repeat("b", 64), "", map[string]string{"web": "w", "release": "r"}, nil, []string{"redis"}, "ann")
	if d2.Status != ledger.StatusPending || d2.Description != "Deploy bbbbbbbb" || strings.Join(d2.Addons, ",") != "pg" {
		t.Fatalf("second Deploy = %+v", d2)
	}
	if c := current(t, a); c.Version != 3 {
		t.Fatalf("pending release became current: v%d", c.Version)
	}
	a.Finish(d2.Version, false, "ann")
	if c := current(t, a); c.Version != 3 {
		t.Fatalf("failed release became current: v%d", c.Version)
	}
	a.SetConfig(map[string]string{"K": "v2"}, "ann") // v5, on v3's slug
	rb, err := a.Rollback(0, "ann")
	if err != nil || rb.Description != "Rollback to v3" || rb.ConfigVars["K"] != "v1" || rb.Slug != d1.Slug {
		t.Fatalf("Rollback = %+v, %v", rb, err)
	}
	if _, err := a.Rollback(4, "ann"); err == nil || !strings.Contains(err.Error(), "failed") {
		t.Errorf("rollback to a failed release: %v", err)
	}
	if _, err := a.Rollback(42, "ann"); err == nil || !strings.Contains(err.Error(), "v42") {
		t.Errorf("rollback to a missing release: %v", err)
	}
}

func TestEditBuildpacks(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	if l, _ := a.Buildpacks(); l != nil {
		t.Fatalf("new app has buildpacks %v", l)
	}
	a.EditBuildpacks("ann", func(cur []string) ([]string, error) { return append(cur, "a", "b"), nil })
	if l, _ := a.Buildpacks(); strings.Join(l, ",") != "a,b" {
		t.Errorf("after add: %v", l)
	}
	if _, err := a.EditBuildpacks("ann", func([]string) ([]string, error) { return nil, errors.New("no") }); err == nil {
		t.Error("an edit's error was lost")
	}
	a.EditBuildpacks("ann", func([]string) ([]string, error) { return nil, nil })
	if l, _ := a.Buildpacks(); len(l) != 0 {
		t.Errorf("after clear: %v", l)
	}
}

// While a release phase runs, no other release is made: it would be based
// on the release before, and the new code would never run.
func TestNoReleaseWhilePending(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	d, _ := a.Deploy("sha256:"+strings.Repeat("c", 64), "", map[string]string{"web": "w", "release": "r"}, nil, nil, "ann")
	if _, err := a.SetConfig(map[string]string{"A": "1"}, "ann"); !errors.Is(err, ErrReleasePending) {
		t.Fatalf("config change during a release phase: %v", err)
	}
	a.Finish(d.Version, true, "ann")
	if rel, err := a.SetConfig(map[string]string{"A": "1"}, "ann"); err != nil || rel.Slug != d.Slug {
		t.Fatalf("after the release phase: %+v, %v", rel, err)
	}
	// v1 has no code: rolling back to it would stop the app.
	if _, err := a.Rollback(1, "ann"); err == nil || !strings.Contains(err.Error(), "no code") {
		t.Errorf("rollback to v1: %v", err)
	}
}

// An app name becomes a path: every way in goes through Open, which must
// refuse a name that leaves apps/ before reading or writing anything.
func TestOpenRefusesPathNames(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	h := Home{Dir: filepath.Join(root, "home")}
	if _, err := h.Create("alpha", "ann"); err != nil {
		t.Fatal(err)
	}
	// A second home beside the first, whose app a traversal would reach.
	other := Home{Dir: filepath.Join(root, "other")}
	if _, err := other.Create("beta", "ann"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../../other/apps/beta", "../alpha", "alpha/../alpha", "/etc", ".", "..", "alpha/", "ALPHA"} {
		_, err := h.Open(name)
		if err == nil || !strings.Contains(err.Error(), "invalid app name "+strconv.Quote(name)) {
			t.Errorf("Open(%q) = %v, want invalid app name", name, err)
		}
		if err := h.Destroy(name); err == nil {
			t.Errorf("Destroy(%q) succeeded", name)
		}
	}
	if _, err := other.Open("beta"); err != nil {
		t.Errorf("the other home's app is gone: %v", err)
	}
}

func TestScaleLimit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	if _, err := a.Deploy("sha256:"+strings.Repeat("a", 64), "", map[string]string{"web": "w", "worker": "k"}, nil, nil, "ann"); err != nil {
		t.Fatal(err)
	}
	sizes := []string{DefaultSize}
	for i := 0; i < 2; i++ {
		if _, err := a.ApplyScale([]Scale{{Type: "worker", Op: '+', N: 50}}, sizes, "ann"); err != nil {
			t.Fatalf("worker+50 #%d: %v", i+1, err)
		}
	}
	before, _ := os.ReadFile(a.ledgerPath())
	for _, c := range []Scale{{Type: "worker", Op: '+', N: 1}, {Type: "web", Op: '=', N: 101}, {Type: "web", Op: '=', N: 99999999}} {
		_, err := a.ApplyScale([]Scale{c}, sizes, "ann")
		if !errors.Is(err, ErrFormationLimit) || !strings.Contains(err.Error(), "over the limit of 100 of a type") {
			t.Errorf("%s%c%d: %v, want the limit", c.Type, c.Op, c.N, err)
		}
	}
	if after, _ := os.ReadFile(a.ledgerPath()); string(after) != string(before) {
		t.Error("a refused scale changed the ledger")
	}

	// dyno.toml raises it; a bad value is an error naming the file.
	os.WriteFile(a.home.SizesFile(), []byte("[formation]\nmax_quantity = 150\n"), 0o600)
	if f, err := a.ApplyScale([]Scale{{Type: "worker", Op: '+', N: 50}}, sizes, "ann"); err != nil || f["worker"].Quantity != 150 {
		t.Errorf("with max_quantity 150: %v %v", f, err)
	}
	os.WriteFile(a.home.SizesFile(), []byte("[formation]\nmax_quantity = -3\n"), 0o600)
	if _, err := a.ApplyScale([]Scale{{Type: "worker", Op: '=', N: 1}}, sizes, "ann"); err == nil || !strings.Contains(err.Error(), "dyno.toml: formation.max_quantity: -3") {
		t.Errorf("bad max_quantity: %v", err)
	}
}

func TestClampFormation(t *testing.T) {
	t.Parallel()
	f, cut := ClampFormation(ledger.Formation{"web": {Quantity: 99999999, Size: "x"}, "worker": {Quantity: 3}}, 100)
	if f["web"].Quantity != 100 || f["web"].Size != "x" || f["worker"].Quantity != 3 || len(cut) != 1 || cut[0] != "web" {
		t.Errorf("ClampFormation = %v, %v", f, cut)
	}
}

// An app's slice of ids is free for another app only once nothing of the
// app is left: a destroyed app's dynos may still run until the daemon's
// next look, and its trash is removed after the rename that makes it gone.
func TestHolds(t *testing.T) {
	t.Parallel()
	h := Home{Dir: t.TempDir()}
	if _, err := h.Create("alpha", "ann"); err != nil {
		t.Fatal(err)
	}
	if !h.Holds("alpha") {
		t.Error("an app that exists does not hold its ids")
	}
	if err := h.Destroy("alpha"); err != nil {
		t.Fatal(err)
	}
	if h.Holds("alpha") {
		t.Error("a destroyed app with nothing left holds its ids")
	}
	for _, left := range []string{"dynos/alpha/web.1-ab12cd34", "trash/alpha-123456", "builds/alpha-987654"} {
		t.Run(left, func(t *testing.T) {
			dir := filepath.Join(h.Dir, left)
			os.MkdirAll(dir, 0o700)
			defer os.RemoveAll(filepath.Dir(dir))
			if !h.Holds("alpha") {
				t.Errorf("with %s left, alpha does not hold its ids", left)
			}
			if h.Holds("alph") {
				t.Errorf("with %s left, alph holds ids", left)
			}
		})
	}
	// Another app's leftovers are not alpha's: alpha-x is an app name.
	os.MkdirAll(filepath.Join(h.Dir, "trash", "alpha-x-123456"), 0o700)
	if h.Holds("alpha") {
		t.Error("alpha-x's trash holds alpha's ids")
	}
}

// An app is in the foreground while a holder keeps its mark, several
// holders may, and a look takes nothing.
func TestForeground(t *testing.T) {
	t.Parallel()
	h := Home{Dir: t.TempDir()}
	a, err := h.Create("demo", "test")
	if err != nil {
		t.Fatal(err)
	}
	in := func() bool {
		t.Helper()
		ok, err := a.InForeground()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if in() {
		t.Fatal("in the foreground before any holder")
	}
	one, err := a.HoldForeground()
	if err != nil {
		t.Fatal(err)
	}
	two, err := a.HoldForeground()
	if err != nil {
		t.Fatal(err)
	}
	if !in() || !in() {
		t.Fatal("not in the foreground with two holders")
	}
	one.Close()
	if !in() {
		t.Fatal("not in the foreground with one holder left")
	}
	two.Close()
	if in() {
		t.Fatal("in the foreground after every holder closed")
	}
}

// A Lister reads apps/ again only when it may have changed: a settled,
// unchanged folder gives back the last names; a folder that changed, or
// holds an app half made, is read again.
func TestLister(t *testing.T) {
	t.Parallel()
	h := Home{Dir: t.TempDir()}
	later := func() time.Time { return time.Now().Add(time.Minute) }
	l := &Lister{Home: h, now: later}
	if names, err := l.List(); err != nil || len(names) != 0 {
		t.Fatalf("no apps/ yet: %v, %v", names, err)
	}
	h.Create("demo", "ann")
	first, err := l.List()
	if err != nil || strings.Join(first, ",") != "demo" {
		t.Fatalf("List = %v, %v", first, err)
	}
	again, _ := l.List()
	if len(again) != 1 || &again[0] != &first[0] {
		t.Errorf("an unchanged, settled apps/ was read again")
	}
	// Right after a change the stamp is not trusted, whatever it is.
	l.now = time.Now
	h.Create("other", "ann")
	if names, _ := l.List(); strings.Join(names, ",") != "demo,other" {
		t.Errorf("after a create: %v", names)
	}
	// A folder with an app's name but no ledger yet, as Create leaves it
	// for a moment: its ledger appears without apps/ changing.
	l.now = later
	if err := os.Mkdir(filepath.Join(h.Dir, "apps", "third"), 0o700); err != nil {
		t.Fatal(err)
	}
	if names, _ := l.List(); strings.Join(names, ",") != "demo,other" {
		t.Errorf("with a half-made app: %v", names)
	}
	if _, err := ledger.Create(filepath.Join(h.Dir, "apps", "third", "ledger.jsonl"), ledger.Record{Type: ledger.TypeRelease, Release: &ledger.Release{Version: 1, Description: "Initial release", Status: ledger.StatusSucceeded}}); err != nil {
		t.Fatal(err)
	}
	if names, _ := l.List(); strings.Join(names, ",") != "demo,other,third" {
		t.Errorf("once its ledger is there: %v", names)
	}
	if err := h.Destroy("demo"); err != nil {
		t.Fatal(err)
	}
	l.now = time.Now
	if names, _ := l.List(); strings.Join(names, ",") != "other,third" {
		t.Errorf("after a destroy: %v", names)
	}
}

func TestTheDashboardsNameIsKept(t *testing.T) {
	h := Home{Dir: t.TempDir()}
	_, err := h.Create(ReservedName, "test")
	if err == nil || !strings.Contains(err.Error(), "pick another name") {
		t.Fatalf("create %s: %v; want refused with the fix", ReservedName, err)
	}
	if names, _ := h.List(); len(names) != 0 {
		t.Errorf("apps after the refusal: %v", names)
	}
}
