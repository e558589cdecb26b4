package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
)

// needPostgresTools skips a test that needs Debian's PostgreSQL server
// and its client programs: the pg: commands run the real ones.
func needPostgresTools(t *testing.T) {
	t.Helper()
	needAddonServers(t)
	for _, prog := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("%s is not installed (apt-get install postgresql-client): the pg: tests run it", prog)
		}
	}
}

// withStdin runs dyno with stdin from a pipe and returns its output
// and exit status.
func (e *isolatedEnv) withStdin(stdin string, args ...string) (string, int) {
	cmd := e.command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// The pg: commands through the binary, as uid 65534, with the real
// server: psql with -c, a pipe and a named attachment, pg:info's shape,
// and backups: a capture, a restore that brings the data back, a failed
// capture that leaves nothing, info, download and delete.
func TestPgCommands(t *testing.T) {
	t.Parallel()
	needPostgresTools(t)
	e := newIsolatedEnv(t, nil)
	t.Cleanup(func() { stopPostgresOf(t, e.home) })
	e.must(t, "apps:create", "demo")
	if out := e.must(t, "pg:info", "-a", "demo"); out != "⬢ demo has no heroku-postgresql databases.\n" {
		t.Errorf("pg:info with none: %q", out)
	}
	e.failLine(t, "⬢ demo has no heroku-postgresql add-on; dyno addons:create heroku-postgresql -a demo makes one", "pg:psql", "-a", "demo")
	if out := e.must(t, "pg:backups", "-a", "demo"); out != "=== Backups\nNo backups. Capture one with dyno pg:backups:capture\n" {
		t.Errorf("pg:backups with none: %q", out)
	}

	out := e.must(t, "addons:create", "heroku-postgresql", "-a", "demo")
	m := regexp.MustCompile(`Created (postgresql-[a-z]+-[0-9]{5}) as DATABASE_URL\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("addons:create:\n%s", out)
	}
	name := m[1]
	e.failLine(t, "no backups yet", "pg:backups:restore", "-a", "demo", "--confirm", "demo")

	out = e.must(t, "pg:psql", "-a", "demo", "-c", "create table t(x int); insert into t values (42)")
	wantLines(t, out, "--> Connecting to "+name+"\n", "INSERT 0 1")
	wantLines(t, e.must(t, "pg:psql", "-a", "demo", "-c", "select 1 as one"), " one \n", "(1 row)")
	out, st := e.withStdin("select x * 2 as doubled from t;\n", "pg:psql", "-a", "demo")
	if st != 0 || !strings.Contains(out, "doubled") || !strings.Contains(out, "84") {
		t.Errorf("pg:psql from a pipe: exit %d:\n%s", st, out)
	}
	// psql's exit status is dyno's.
	if out, st := e.dynoOut(t, "pg:psql", "DATABASE_URL", "-a", "demo", "-c", "select nope"); st != 1 || !strings.Contains(out, `column "nope" does not exist`) {
		t.Errorf("pg:psql with an error: exit %d:\n%s", st, out)
	}
	e.failLine(t, "⬢ demo has no heroku-postgresql add-on NOPE; give one of DATABASE", "pg:psql", "NOPE", "-a", "demo")

	out = e.must(t, "pg:info", "-a", "demo")
	for _, re := range []string{`^=== DATABASE_URL\n`, `\nPlan: +Essential 0\n`, `\nStatus: +Available\n`, `\nConnections: +[1-9][0-9]*/[0-9]+\n`,
		`\nPG Version: +[0-9]+\.[0-9]+\n`, `\nCreated: +\d{4}-\d\d-\d\d \d\d:\d\d UTC\n`, `\nData Size: +[0-9.]+ [KMG]?B\n`,
		`\nTables: +1\n`, `\nFork/Follow: +Unsupported\n`, `\nAdd-on: +` + name + `\n$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("pg:info does not match %s:\n%s", re, out)
		}
	}

	// A backup, the data changed, the backup restored: the data is back.
	backups := filepath.Join(e.home, "apps", "demo", "backups")
	out = e.must(t, "pg:backups:capture", "-a", "demo")
	if out != "Starting backup of "+name+"... done\n\nBacking up DATABASE to b001... done\n" {
		t.Errorf("pg:backups:capture: %q", out)
	}
	e.must(t, "pg:psql", "-a", "demo", "-c", "drop table t; create table t(y text); insert into t values ('changed')")
	e.failLine(t, "to proceed, re-run with --confirm demo", "pg:backups:restore", "-a", "demo")
	e.failLine(t, "--confirm other is not the app's name", "pg:backups:restore", "b001", "-a", "demo", "--confirm", "other")
	e.failLine(t, "no backup b009; dyno pg:backups lists the app's backups", "pg:backups:restore", "b009", "-a", "demo", "--confirm", "demo")
	e.failLine(t, `"latest" is not a backup ID`, "pg:backups:restore", "latest", "DATABASE", "-a", "demo", "--confirm", "demo")
	out = e.must(t, "pg:backups:restore", "b001", "DATABASE_URL", "-a", "demo", "--confirm", "demo")
	if out != "Starting restore of b001 to "+name+"... done\n\nRestoring... done\n" {
		t.Errorf("pg:backups:restore: %q", out)
	}
	wantLines(t, e.must(t, "pg:psql", "-a", "demo", "-c", "select count(*) || ':' || sum(x) as rows from t"), " 1:42\n")

	// A capture that fails (pg_dump may not read a table) says why in
	// one line and leaves no bNNN files.
	e.must(t, "pg:psql", "-a", "demo", "-c", "create table secret(x int); revoke all on secret from current_user")
	e.failLine(t, "permission denied for table secret", "pg:backups:capture", "DATABASE", "-a", "demo")
	if got := testutil.Names(t, backups); !slices.Equal(got, []string{"b001.dump", "b001.json"}) {
		t.Errorf("backups after a failed capture: %v", got)
	}
	e.must(t, "pg:psql", "-a", "demo", "-c", "drop table secret")
	wantLines(t, e.must(t, "pg:backups:capture", name, "-a", "demo"), "Backing up DATABASE to b002... done\n")

	out = e.must(t, "pg:backups", "-a", "demo")
	row := `b00%d  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000  Completed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000  [0-9.]+ [KM]?B +DATABASE\n`
	if !regexp.MustCompile(`^=== Backups\nID +Created at +Status +Size +Database\n[─ ]+\n` + strings.ReplaceAll(row, "%d", "2") + strings.ReplaceAll(row, "%d", "1") + `$`).MatchString(out) {
		t.Errorf("pg:backups:\n%s", out)
	}
	out = e.must(t, "pg:backups:info", "-a", "demo")
	for _, re := range []string{`^=== Backup b002\n`, `\nDatabase: +DATABASE\n`, `\nStatus: +Completed\n`, `\nBackup Size: +[0-9.]+ [KM]?B \([0-9]+% compression\)\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("pg:backups:info does not match %s:\n%s", re, out)
		}
	}
	wantLines(t, e.must(t, "pg:backups:download", "b001", "-a", "demo", "-o", "b1.dump"), "Downloading b001 to b1.dump... done")
	got, err := os.ReadFile(filepath.Join(e.project, "b1.dump"))
	want, err2 := os.ReadFile(filepath.Join(backups, "b001.dump"))
	if err != nil || err2 != nil || !bytes.Equal(got, want) || !bytes.HasPrefix(got, []byte("PGDMP")) {
		t.Errorf("download: %d bytes, %v, %v; want the custom-format dump of %d bytes", len(got), err, err2, len(want))
	}
	e.failLine(t, "re-run with --confirm demo", "pg:backups:delete", "b002", "-a", "demo")
	wantLines(t, e.must(t, "pg:backups:delete", "b002", "-a", "demo", "--confirm", "demo"), "Deleting backup b002 on ⬢ demo... done\n")
	if got := testutil.Names(t, backups); !slices.Equal(got, []string{"b001.dump", "b001.json"}) {
		t.Errorf("backups after delete: %v", got)
	}

	// A second database is named by its attachment, and pg:info shows
	// both.
	out = e.must(t, "addons:create", "heroku-postgresql", "-a", "demo")
	m = regexp.MustCompile(`Created (postgresql-[a-z]+-[0-9]{5}) as (HEROKU_POSTGRESQL_[A-Z]+)_URL\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("addons:create:\n%s", out)
	}
	wantLines(t, e.must(t, "pg:psql", m[2], "-a", "demo", "-c", "select current_user"), "--> Connecting to "+m[1]+"\n", " "+m[1]+"\n")
	wantLines(t, e.must(t, "pg", "-a", "demo"), "=== DATABASE_URL\n", "\n\n=== "+m[2]+"_URL\n", "Add-on:      "+m[1]+"\n")
}
