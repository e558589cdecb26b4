package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"
)

// realisticConfig returns the ~20 config vars of a typical app at release
// v: add-on URLs, secrets, settings, a few of which change over time.
func realisticConfig(v int) map[string]string {
	return map[string]string{
		"DATABASE_URL":             fmt.Sprintf("postgres://u%x:p%016x@ec2-52-1-2-3.compute-1.amazonaws.com:5432/d%x", v/50, v/50*7919, v/50),
		"REDIS_URL":                "rediss://:p0a1b2c3d4e5f60718293a4b5c6d7e8f9@ec2-3-4-5-6.compute-1.amazonaws.com:27850",
		"REDIS_TLS_URL":            "rediss://:p0a1b2c3d4e5f60718293a4b5c6d7e8f9@ec2-3-4-5-6.compute-1.amazonaws.com:27850",
		"SECRET_KEY_BASE":          fmt.Sprintf("%064x", v/10*104729),
		"RAILS_ENV":                "production",
		"RACK_ENV":                 "production",
		"NODE_ENV":                 "production",
		"LANG":                     "en_US.UTF-8",
		"WEB_CONCURRENCY":          fmt.Sprint(2 + v%3),
		"RAILS_MAX_THREADS":        "5",
		"RAILS_LOG_TO_STDOUT":      "enabled",
		"RAILS_SERVE_STATIC_FILES": "enabled",
		"SENTRY_DSN":               "https://0123456789abcdef0123456789abcdef@o123456.ingest.sentry.io/1234567",
		"PAPERTRAIL_API_TOKEN":     "aBcDeFgHiJkLmNoPqRsT",
		"AWS_ACCESS_KEY_ID":        "AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY":    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"S3_BUCKET":                "example-app-uploads-production",
		"STRIPE_SECRET_KEY":        "sk_live_51H8ExampleExampleExampleExample",
		"FEATURE_NEW_CHECKOUT":     fmt.Sprint(v%2 == 0),
		"APP_VERSION":              fmt.Sprintf("v%d", v),
	}
}

// history returns n records shaped like the history of a busy app:
// mostly releases (deploys and config changes, each with ~20 config vars
// and three process types), a third of them pending until a status
// record settles them (one in ten of those fails), and a scale every 150
// records. With recent, the buildpacks are set again near the end;
// without, only at the start, as most apps do, so State must look back
// all the way for them.
func history(n int, recent bool) []Record {
	types := map[string]string{"web": "bin/puma -C config/puma.rb", "worker": "bundle exec sidekiq -C config/sidekiq.yml", "release": "bin/rails db:migrate"}
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := []Record{
		{Type: TypeRelease, Release: &Release{Version: 1, Description: "Initial release", Status: StatusSucceeded}},
		{Type: TypeBuildpacks, Buildpacks: []string{"heroku/nodejs", "heroku/ruby"}},
		{Type: TypeFormation, Formation: Formation{"web": {1, "standard-1x"}, "worker": {1, "standard-1x"}}},
	}
	v := 1
	for len(recs) < n {
		i := len(recs)
		switch {
		case recent && i == n-5:
			recs = append(recs, Record{Type: TypeBuildpacks, Buildpacks: []string{"heroku/nodejs", "heroku/ruby"}})
		case i%150 == 0:
			recs = append(recs, Record{Type: TypeFormation, Formation: Formation{"web": {1 + i%4, "standard-2x"}, "worker": {1 + i%3, "standard-1x"}}})
		default:
			v++
			rel := &Release{
				Version:       v,
				Description:   fmt.Sprintf("Deploy %08x", uint32(v*2654435761)),
				Status:        StatusSucceeded,
				Slug:          fmt.Sprintf("sha256:%064x", v*31337),
				ProcessTypes:  types,
				ConfigVars:    realisticConfig(v),
				Buildpacks:    []string{"heroku/nodejs", "heroku/ruby"},
				SourceVersion: fmt.Sprintf("%040x", v*7),
				Addons:        []string{"heroku-postgresql:standard-0", "heroku-redis:premium-0"},
			}
			if v%4 == 0 {
				rel.Description = "Set FEATURE_NEW_CHECKOUT, APP_VERSION config vars"
				rel.Slug = fmt.Sprintf("sha256:%064x", (v-1)*31337)
			}
			recs = append(recs, Record{Type: TypeRelease, Release: rel})
			if v%3 == 0 && len(recs) < n {
				rel.Status = StatusPending
				st := StatusSucceeded
				if v%30 == 0 {
					st = StatusFailed
				}
				recs = append(recs, Record{Type: TypeStatus, Status: &Status{Version: v, Status: st}})
			}
		}
	}
	for i := range recs {
		recs[i].Time = t0.Add(time.Duration(i) * time.Hour)
		recs[i].User = "dev@example.com"
	}
	return recs
}

// createHistory writes a ledger of n records of history.
func createHistory(tb testing.TB, n int, recent bool) *Ledger {
	tb.Helper()
	l, err := Create(ledgerPath(tb), history(n, recent)...)
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// foldAll folds a whole ledger forwards, the obvious way, for checking
// the backward readers against. It returns the state and all releases,
// newest first.
func foldAll(recs []Record) (*State, []Release) {
	final := make(map[int]string) // each release's last status record
	for _, r := range recs {
		if r.Type == TypeStatus {
			final[r.Status.Version] = r.Status.Status
		}
	}
	s := &State{}
	var rels []Release
	for _, r := range recs {
		s.Seq, s.Hash = r.Seq, r.Hash
		switch r.Type {
		case TypeRelease:
			rel := *r.Release
			rel.Time, rel.User = r.Time, r.User
			if st, ok := final[rel.Version]; ok {
				rel.Status = st
			}
			s.LastVersion = max(s.LastVersion, rel.Version)
			if rel.Status == StatusSucceeded {
				current := rel
				s.Current = &current
			}
			rels = append(rels, rel)
		case TypeFormation:
			s.Formation = r.Formation
			if s.Formation == nil {
				s.Formation = Formation{}
			}
		case TypeBuildpacks:
			s.Buildpacks = r.Buildpacks
			if s.Buildpacks == nil {
				s.Buildpacks = []string{}
			}
		}
	}
	slices.Reverse(rels)
	return s, rels
}

// checkAgainstFoldAll checks State, Releases and Release against foldAll.
func checkAgainstFoldAll(t *testing.T, l *Ledger) {
	t.Helper()
	data, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	wantState, wantRels := foldAll(recs)
	s, err := l.State()
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Errorf("%s:\n got %s\nwant %s", what, g, w)
		}
	}
	same("State", s, wantState)
	for _, n := range []int{1, 15, 0} {
		rels, err := l.Releases(n)
		if err != nil {
			t.Fatal(err)
		}
		want := wantRels
		if n > 0 && n < len(want) {
			want = want[:n]
		}
		same(fmt.Sprintf("Releases(%d)", n), rels, want)
	}
	for _, i := range []int{0, 1, len(wantRels) / 2, len(wantRels) - 1} {
		if i < 0 || i >= len(wantRels) {
			continue
		}
		rel, err := l.Release(wantRels[i].Version)
		if err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("Release(%d)", wantRels[i].Version), rel, &wantRels[i])
	}
}

func TestState10k(t *testing.T) {
	t.Parallel()
	for _, recent := range []bool{false, true} {
		l := createHistory(t, 10000, recent)
		fi, _ := os.Stat(l.Path())
		start := time.Now()
		s, err := l.State()
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d records, %d bytes, buildpacks set recently: %v; State took %v", s.Seq, fi.Size(), recent, took)
		if s.Seq != 10000 {
			t.Errorf("seq %d, want 10000", s.Seq)
		}
		// The newest release that is succeeded once the status records
		// after it are applied.
		recs := history(10000, recent)
		var want int
		for i := len(recs) - 1; i >= 0 && want == 0; i-- {
			r := recs[i]
			if r.Type != TypeRelease {
				continue
			}
			st := r.Release.Status
			for _, later := range recs[i+1:] {
				if later.Type == TypeStatus && later.Status.Version == r.Release.Version {
					st = later.Status.Status
				}
			}
			if st == StatusSucceeded {
				want = r.Release.Version
			}
		}
		if s.Current == nil || s.Current.Version != want {
			t.Errorf("current = %+v, want v%d", s.Current, want)
		}
		if len(s.Current.ConfigVars) != 20 || s.Current.ConfigVars["APP_VERSION"] != fmt.Sprintf("v%d", want) {
			t.Errorf("current config vars = %v", s.Current.ConfigVars)
		}
		checkAgainstFoldAll(t, l)
		mustVerify(t, l)
	}
}

func TestStateFollowsStatus(t *testing.T) {
	t.Parallel()
	// The newest releases pending or failed: Current is further back.
	l := createHistory(t, 300, false)
	s := mustState(t, l)
	last := s.LastVersion
	mustAppend(t, l, releaseRecord(last+1, StatusPending, nil))
	mustAppend(t, l, releaseRecord(last+2, StatusFailed, nil))
	mustAppend(t, l, releaseRecord(last+3, StatusPending, nil))
	mustAppend(t, l, Record{Type: TypeStatus, Status: &Status{Version: last + 3, Status: StatusFailed}})
	if got := mustState(t, l); got.Current == nil || got.Current.Version != s.Current.Version || got.LastVersion != last+3 {
		t.Errorf("current %+v last v%d, want v%d, v%d", got.Current, got.LastVersion, s.Current.Version, last+3)
	}
	mustAppend(t, l, Record{Type: TypeStatus, Status: &Status{Version: last + 1, Status: StatusSucceeded}})
	if got := mustState(t, l); got.Current == nil || got.Current.Version != last+1 {
		t.Errorf("current %+v, want v%d", got.Current, last+1)
	}
	checkAgainstFoldAll(t, l)
}

func benchmarkState(b *testing.B, recent bool) {
	l := createHistory(b, 10000, recent)
	fi, _ := os.Stat(l.Path())
	b.ReportMetric(float64(fi.Size()), "file-bytes")
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.State(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkState10k: buildpacks set only at the start, as most apps
// have them, so State walks back over the whole file, decoding only the
// records it needs.
func BenchmarkState10k(b *testing.B) { benchmarkState(b, false) }

// BenchmarkState10kRecent: every record State needs is near the end.
func BenchmarkState10kRecent(b *testing.B) { benchmarkState(b, true) }

func BenchmarkReleases15of10k(b *testing.B) {
	l := createHistory(b, 10000, false)
	for b.Loop() {
		rels, err := l.Releases(15)
		if err != nil || len(rels) != 15 {
			b.Fatal(len(rels), err)
		}
	}
}

func BenchmarkReleaseOld10k(b *testing.B) {
	l := createHistory(b, 10000, false)
	for b.Loop() {
		if _, err := l.Release(2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify10k(b *testing.B) {
	l := createHistory(b, 10000, false)
	for b.Loop() {
		if err := l.Verify(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend10k includes the fsync(2), which is most of it.
func BenchmarkAppend10k(b *testing.B) {
	l := createHistory(b, 10000, false)
	for b.Loop() {
		_, err := l.Append(func(s *State) ([]Record, error) {
			rec := releaseRecord(s.LastVersion+1, StatusSucceeded, realisticConfig(s.LastVersion+1))
			return []Record{rec}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
