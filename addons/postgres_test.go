package addons

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/ledger/app"
)

// needPostgres skips a test that needs Debian's PostgreSQL server
// (postgresql-VERSION) and psql: dyno's PostgreSQL add-ons are that
// server, never a stand-in.
func needPostgres(t *testing.T) {
	t.Helper()
	if _, err := newestPostgres(); err != nil {
		t.Skipf("%v: the PostgreSQL add-on tests run the real server", err)
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql is not installed (apt-get install postgresql-client): the PostgreSQL add-on tests run it")
	}
}

// asNobody reruns the test as testutil.Nobody when the tests run as
// root, and reports whether it did: initdb and postgres refuse root, and
// a provider is in-process, so the whole test binary changes user, as
// cmd/dyno's tests run dyno as Nobody.
func asNobody(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	dir := testutil.SharedDir(t)
	bin := filepath.Join(dir, "addons.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent", "TMPDIR=" + os.TempDir()}
	testutil.AsNobody(cmd)
	out, err := cmd.CombinedOutput()
	t.Logf("as uid %d:\n%s", testutil.Nobody, out)
	if err != nil {
		t.Fatalf("%s as uid %d: %v", t.Name(), testutil.Nobody, err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skip("skipped as uid 65534")
	}
	return true
}

// psql runs psql against url, as an app would connect, and returns
// what it printed and its error.
func psql(url string, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// As root, the provider refuses with initdb's own message and what to
// do about it.
func TestPostgresRefusesRoot(t *testing.T) {
	needPostgres(t)
	if os.Geteuid() != 0 {
		t.Skip("not root")
	}
	p := &postgresProvider{dir: filepath.Join(t.TempDir(), "postgresql")}
	_, err := p.Provision(context.Background(), "postgresql-flat-12345", "essential-0")
	if err == nil || !strings.Contains(err.Error(), "cannot be run as root") || !strings.Contains(err.Error(), "run as its own user") {
		t.Fatalf("provision as root: %v", err)
	}
}

// With the real server: create attaches DATABASE_URL in a release; the
// add-on's role makes tables in its database, and another add-on's
// role cannot connect to it; data outlives a server restart; destroy
// detaches in a release and drops the role and the database.
func TestPostgresAddon(t *testing.T) {
	needPostgres(t)
	if asNobody(t) {
		return
	}
	ctx := context.Background()
	home := app.Home{Dir: t.TempDir()}
	m := &Manager{Home: home}
	t.Cleanup(func() {
		if err := m.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	a, err := home.Create("ann", "ann")
	if err != nil {
		t.Fatal(err)
	}
	b, err := home.Create("bob", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ad, at, rel, err := m.Create(ctx, a, "heroku-postgresql", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^postgresql-[a-z]+-[0-9]{5}$`).MatchString(ad.Name) || ad.Plan != "essential-0" || ad.Owner != "ann" {
		t.Errorf("add-on %+v", ad)
	}
	if at.Name != "DATABASE" || rel.Description != "Attach DATABASE (@ref:"+ad.Name+")" {
		t.Errorf("attachment %+v, release %q", at, rel.Description)
	}
	dbURL := rel.ConfigVars["DATABASE_URL"]
	if !strings.HasPrefix(dbURL, "postgres://"+ad.Name+":") || !strings.Contains(dbURL, "@127.0.0.1:") || !strings.HasSuffix(dbURL, "/"+ad.Name) {
		t.Fatalf("DATABASE_URL %q", dbURL)
	}
	if got, err := psql(dbURL, "create table t(x int); insert into t values (42); select x from t"); err != nil || got != "42" {
		t.Fatalf("psql: %q, %v", got, err)
	}
	if got, err := psql(dbURL, "create database other"); err == nil || !strings.Contains(got, "permission denied") {
		t.Errorf("create database: %q, %v; want permission denied", got, err)
	}
	st, err := os.Stat(filepath.Join(home.Dir, "addons", "postgresql", "superuser.pw"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("superuser.pw: %v, %v", st, err)
	}

	// A second add-on, bob's: its credentials cannot connect to ann's
	// database.
	_, _, brel, err := m.Create(ctx, b, "postgresql:essential-1", "", "bob")
	if err != nil {
		t.Fatal(err)
	}
	bu, err := url.Parse(brel.ConfigVars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	if got, err := psql(bu.String(), "select 1"); err != nil || got != "1" {
		t.Errorf("bob in his own database: %q, %v", got, err)
	}
	bu.Path = "/" + ad.Name
	if got, err := psql(bu.String(), "select x from t"); err == nil || !strings.Contains(got, "permission denied for database") || !strings.Contains(got, "CONNECT") {
		t.Errorf("bob's role in ann's database: %q, %v; want permission denied (CONNECT)", got, err)
	}
	bu.Path = "/postgres"
	if got, err := psql(bu.String(), "select 1"); err == nil {
		t.Errorf("bob's role in the postgres database: %q", got)
	}
	// A second database on one app is HEROKU_POSTGRESQL_COLOR.
	_, at2, _, err := m.Create(ctx, a, "heroku-postgresql", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^HEROKU_POSTGRESQL_[A-Z]+$`).MatchString(at2.Name) {
		t.Errorf("second attachment named %q", at2.Name)
	}

	// The server restarts on next use with the data and roles it had.
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := psql(dbURL, "select 1"); err == nil {
		t.Fatalf("psql with the server stopped: %q", got)
	}
	p, err := m.Provider("heroku-postgresql")
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Credentials(ctx, ad.Name)
	if err != nil || again != dbURL {
		t.Fatalf("credentials after stop: %q, %v; want %q", again, err, dbURL)
	}
	if _, err := p.Info(ctx, ad.Name); err != nil { // starts it
		t.Fatal(err)
	}
	if got, err := psql(dbURL, "select x from t"); err != nil || got != "42" {
		t.Errorf("select after restart: %q, %v", got, err)
	}

	if _, err := m.Destroy(ctx, ad.Name, "bob", "bob"); err == nil || !strings.Contains(err.Error(), "belongs to ⬢ ann") {
		t.Errorf("destroy by another app: %v", err)
	}
	if _, err := m.Destroy(ctx, ad.Name, "ann", "ann"); err != nil {
		t.Fatal(err)
	}
	s, err := a.Ledger.State()
	if err != nil {
		t.Fatal(err)
	}
	if s.Current.Description != "Detach DATABASE (@ref:"+ad.Name+")" || s.Current.ConfigVars["DATABASE_URL"] != "" || len(s.Attachments) != 1 {
		t.Errorf("after destroy: release %q, vars %v, attachments %+v", s.Current.Description, s.Current.ConfigVars, s.Attachments)
	}
	if got, err := psql(dbURL, "select 1"); err == nil || !strings.Contains(got, "authentication failed") {
		t.Errorf("the destroyed add-on's role still logs in: %q, %v", got, err)
	}
	if _, err := m.Get(ad.Name); !errors.Is(err, ErrNoAddon) {
		t.Errorf("record after destroy: %v", err)
	}
	pp := p.(*postgresProvider)
	srv, err := pp.server(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := pp.sql(ctx, srv, "postgres", "SELECT count(*) FROM pg_database WHERE datname = "+quoteLiteral(ad.Name)); err != nil || n != "0" {
		t.Errorf("the destroyed add-on's database: %q, %v; want gone", n, err)
	}
	if err := pp.Deprovision(ctx, ad.Name); err != nil {
		t.Errorf("deprovision again: %v", err)
	}
}

// Under a DYNO_HOME so deep that the server's unix socket would not fit
// in sun_path (107 bytes), the server runs with none, and add-ons work
// over TCP all the same.
func TestPostgresInADeepHome(t *testing.T) {
	needPostgres(t)
	if asNobody(t) {
		return
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), strings.Repeat("deep", 20))
	home := app.Home{Dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Home: home}
	t.Cleanup(func() {
		if err := m.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	a, err := home.Create("ann", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(filepath.Join(dir, "addons", "postgresql", "data", ".s.PGSQL.12345")); n <= maxSocketPath {
		t.Fatalf("the socket path is %d bytes: not deep enough to test", n)
	}
	_, _, rel, err := m.Create(ctx, a, "heroku-postgresql", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := psql(rel.ConfigVars["DATABASE_URL"], "select 1"); err != nil || got != "1" {
		t.Errorf("psql: %q, %v", got, err)
	}
}
