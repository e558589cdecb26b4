package ledger

import (
	"os"
	"testing"
	"time"
)

// fixtureRecords returns the records of the fixtures in testdata: every
// record type, batches, a cleared buildpack list, an empty formation, and
// config vars holding what JSON escapes (quotes, backslashes, control
// characters, <, >, &, U+2028, U+2029) and what it does not (unicode).
func fixtureRecords(t0 time.Time) ([]Record, [][]Record) {
	cv := map[string]string{
		"DATABASE_URL":      "postgres://u:p@db:5432/app?sslmode=require&x=<y>",
		"GREETING":          "h\u00e9llo w\u00f6rld \u65e5\u672c \U0001F680",
		"QUOTED":            "say \"hi\" \\ back\\slash",
		"CONTROL":           "tab\there\nnewline\rcr\x01\x1f\x7f",
		"SEPARATORS":        "line\u2028para\u2029end",
		"EMPTY":             "",
		"\u00dcNICODE_NAME": "v",
	}
	first := []Record{
		{Type: TypeRelease, Time: t0, User: "ann@example.com", Release: &Release{Version: 1, Description: "Initial release", Status: StatusSucceeded}},
		{Type: TypeBuildpacks, Time: t0, User: "ann@example.com", Buildpacks: []string{"heroku/go", "https://github.com/heroku/heroku-buildpack-nodejs.git#v1"}},
	}
	later := [][]Record{
		{{Type: TypeRelease, Time: t0.Add(time.Minute), User: "ann@example.com", Release: &Release{Version: 2, Description: "Set DATABASE_URL, GREETING, QUOTED, CONTROL, SEPARATORS, EMPTY, \u00dcNICODE_NAME config vars", Status: StatusSucceeded, ConfigVars: cv}}},
		{{Type: TypeFormation, Time: t0.Add(2 * time.Minute), User: "bob", Formation: Formation{"web": {2, "standard-1x"}, "worker": {1, "performance-m"}}}},
		{
			{Type: TypeRelease, Time: t0.Add(3 * time.Minute), User: "bob", Release: &Release{Version: 3, Description: "Deploy 1a2b3c4d", Status: StatusPending, Slug: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ProcessTypes: map[string]string{"web": "bin/web --port $PORT", "worker": "bin/worker", "release": "bin/migrate && echo 'done' > /dev/null"}, ConfigVars: cv, Buildpacks: []string{"heroku/go"}, SourceVersion: "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", Addons: []string{"heroku-postgresql:essential-0"}}},
		},
		{{Type: TypeStatus, Time: t0.Add(4 * time.Minute), User: "bob", Status: &Status{Version: 3, Status: StatusSucceeded}}},
		{
			{Type: TypeRelease, Time: t0.Add(5 * time.Minute), User: "bob", Release: &Release{Version: 4, Description: "Deploy 5e6f7081", Status: StatusPending, Slug: "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", ProcessTypes: map[string]string{"web": "bin/web", "release": "bin/migrate"}, ConfigVars: cv}},
			{Type: TypeStatus, Time: t0.Add(5 * time.Minute), User: "bob", Status: &Status{Version: 4, Status: StatusFailed}},
		},
		{{Type: TypeBuildpacks, Time: t0.Add(6 * time.Minute), User: "bob"}},
		{{Type: TypeFormation, Time: t0.Add(7 * time.Minute), User: "bob", Formation: Formation{}}},
	}
	return first, later
}

// TestGenFixture writes the fixture ledger to $DYNO_GEN_FIXTURE, and its
// head beside it; it is skipped without it. testdata/format0.jsonl was
// written by it with the code of commit 9aefe48, before records had a
// format version (and ledgers a head); testdata/format1.jsonl and
// format1.head with the code that introduced format 1.
func TestGenFixture(t *testing.T) {
	out := os.Getenv("DYNO_GEN_FIXTURE")
	if out == "" {
		t.Skip()
	}
	first, later := fixtureRecords(time.Date(2026, 12, 2, 8, 0, 0, 123456789, time.UTC))
	os.Remove(out)
	os.Remove(headPath(out))
	l, err := Create(out, first...)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range later {
		mustAppend(t, l, b...)
	}
	mustVerify(t, l)
}
