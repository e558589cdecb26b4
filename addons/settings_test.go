package addons

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/ledger/app"
)

func writeSettings(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "dyno.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// dyno.toml's [addons.SERVICE] tables: a service by its alias or name,
// url its only key, a URL of the service's scheme with host, port, user
// and password; anything else is one line naming the key and the fix.
func TestLoadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if st, err := LoadSettings(filepath.Join(dir, "none.toml")); err != nil || len(st) != 0 {
		t.Errorf("no file: %v, %v", st, err)
	}
	path := writeSettings(t, dir, "[addons.heroku-postgresql]\nurl = \"postgres://dyno:pw@db.internal:5432/postgres?sslmode=require\"\n[addons.redis]\nurl = \"redis://default:pw@cache:6379\"\n[router]\nlisten = \"off\"\n")
	st, err := LoadSettings(path)
	if err != nil {
		t.Fatal(err)
	}
	if u := st["postgresql"].URL; u == nil || u.Host != "db.internal:5432" || u.Query().Get("sslmode") != "require" {
		t.Errorf("postgresql: %+v", st["postgresql"])
	}
	if u := st["redis"].URL; u == nil || u.Host != "cache:6379" {
		t.Errorf("redis: %+v", st["redis"])
	}
	for text, want := range map[string]string{
		"[addons.mysql]\nurl = \"mysql://x\"\n":                               "[addons.mysql]: no such service; dyno provides redis, postgresql",
		"[addons.redis]\nhost = \"x\"\n":                                      "addons.redis.host: unknown key; a service takes url",
		"[addons.redis]\nurl = 5\n":                                           "addons.redis.url: not a string",
		"[addons.redis]\nurl = \"postgres://a:b@h:1/x\"\n":                    "is not a redis URL",
		"[addons.postgresql]\nurl = \"postgres://db.internal/x\"\n":           "names no host:port",
		"[addons.postgresql]\nurl = \"postgres://dyno@db.internal:5432/x\"\n": "has no user and password",
		"[addons.postgresql]\nurl = \"postgres://a:b@h:1\"\n[addons.heroku-postgresql]\nurl = \"postgres://a:b@h:1\"\n": "set twice",
	} {
		_, err := LoadSettings(writeSettings(t, dir, text))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), path+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v; want one line with %q", text, err, want)
		}
		if err != nil && strings.Contains(err.Error(), ":b@") {
			t.Errorf("%q: the error shows the password: %v", text, err)
		}
	}
}

// Pointed at an operator's servers (here another dyno home's, with an
// operator role that is no superuser), add-ons are made there and dyno
// runs no server of its own; an add-on made on one server is never
// looked for on another after the setting changes.
func TestPointedAtOperatorsServers(t *testing.T) {
	needPostgres(t)
	if asNobody(t) {
		return
	}
	ctx := context.Background()
	// The operator's servers: a dyno home's own, started by a first
	// add-on.
	ops := &Manager{Home: app.Home{Dir: t.TempDir()}}
	t.Cleanup(func() { ops.Stop(context.Background()) })
	pgOps := &postgresProvider{dir: ops.ServiceDir("postgresql")}
	srv, err := pgOps.server(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pgOps.sql(ctx, srv, "", "CREATE ROLE operator LOGIN CREATEROLE CREATEDB PASSWORD 'op-secret'"); err != nil {
		t.Fatal(err)
	}
	redisOps := &redisProvider{dir: ops.ServiceDir("redis")}
	rc, rsrv, err := redisOps.admin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()

	home := app.Home{Dir: t.TempDir()}
	isPointed := true
	m := &Manager{Home: home, Starter: func(context.Context, string) error {
		if isPointed {
			t.Error("a pointed service asked for its server to be started")
		}
		return ErrNoSupervisor
	}}
	pointed := "[addons.postgresql]\nurl = \"postgres://operator:op-secret@" + srv.addr() + "/postgres\"\n" +
		"[addons.redis]\nurl = \"redis://default:" + rsrv.Password + "@" + rsrv.addr() + "\"\n"
	writeSettings(t, home.Dir, pointed)
	t.Cleanup(func() {
		writeSettings(t, home.Dir, "")
		m.Stop(context.Background())
		if _, err := os.Stat(filepath.Join(home.Dir, "addons", "postgresql", "data")); err == nil {
			t.Error("a local server was made for an add-on that was refused")
		}
	})
	if n := len(m.Servers()); n != 0 {
		t.Errorf("Servers() has %d servers for the daemon to run; want none", n)
	}
	a, err := home.Create("ann", "ann")
	if err != nil {
		t.Fatal(err)
	}
	ad, _, rel, err := m.Create(ctx, a, "heroku-postgresql", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	dbURL := rel.ConfigVars["DATABASE_URL"]
	if !strings.Contains(dbURL, "@"+srv.addr()+"/"+ad.Name) {
		t.Errorf("DATABASE_URL %q is not on the operator's server %s", dbURL, srv.addr())
	}
	if got, err := psql(dbURL, "create table t(x int); insert into t values (7); select x from t"); err != nil || got != "7" {
		t.Errorf("psql on the operator's server: %q, %v", got, err)
	}
	rad, _, rrel, err := m.Create(ctx, a, "heroku-redis", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if u := rrel.ConfigVars["REDIS_URL"]; !strings.HasSuffix(u, "@"+rsrv.addr()) {
		t.Errorf("REDIS_URL %q is not on the operator's server %s", u, rsrv.addr())
	}
	for _, dir := range []string{"postgresql/data", "postgresql/server.json", "redis/server.json", "redis/redis.conf"} {
		if _, err := os.Stat(filepath.Join(home.Dir, "addons", dir)); err == nil {
			t.Errorf("addons/%s made while pointed at an operator's server", dir)
		}
	}

	// The setting gone, nothing touches the add-ons made elsewhere.
	writeSettings(t, home.Dir, "")
	isPointed = false
	b, err := home.Create("bob", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := m.Create(ctx, b, "heroku-postgresql", "", "bob"); err == nil || !strings.Contains(err.Error(), ad.Name+" is on "+srv.addr()) {
		t.Errorf("a local add-on beside one on the operator's server: %v", err)
	}
	if _, err := m.Destroy(ctx, ad.Name, "ann", "ann"); err == nil || !strings.Contains(err.Error(), "point the setting back") {
		t.Errorf("destroy with the setting gone: %v", err)
	}

	writeSettings(t, home.Dir, pointed)
	isPointed = true
	for _, name := range []string{ad.Name, rad.Name} {
		if _, err := m.Destroy(ctx, name, "ann", "ann"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := pgOps.sql(ctx, srv, "", "SELECT count(*) FROM pg_roles WHERE rolname = "+quoteLiteral(ad.Name)); err != nil || got != "0" {
		t.Errorf("the role on the operator's server after destroy: %q, %v", got, err)
	}
}
