package addons

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/ledger/app"
)

// needRedis skips a test that needs the real redis-server and
// redis-cli (Debian's redis-server package; .ci/run installs it):
// dyno's Redis add-ons are that server, never a stand-in.
func needRedis(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install redis-server): the Redis add-on tests run the real server", bin)
		}
	}
}

// redisCLI runs redis-cli against url, as an app would connect.
func redisCLI(t *testing.T, url string, args ...string) string {
	t.Helper()
	out, err := exec.Command("redis-cli", append([]string{"--no-auth-warning", "-u", url}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// With the real redis-server: create attaches REDIS_URL in a release;
// the add-on's user reads and writes its own prefix only, and another
// add-on's user cannot read it; data outlives a server restart; destroy
// detaches in a release and removes the user and the keys.
func TestRedisAddon(t *testing.T) {
	needRedis(t)
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
	ad, at, rel, err := m.Create(ctx, a, "heroku-redis", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^redis-[a-z]+-[0-9]{5}$`).MatchString(ad.Name) || ad.Plan != "mini" || ad.Owner != "ann" {
		t.Errorf("add-on %+v", ad)
	}
	if at.Name != "REDIS" || rel.Description != "Attach REDIS (@ref:"+ad.Name+")" {
		t.Errorf("attachment %+v, release %q", at, rel.Description)
	}
	url := rel.ConfigVars["REDIS_URL"]
	if !strings.HasPrefix(url, "redis://"+ad.Name+":") || !strings.Contains(url, "@127.0.0.1:") {
		t.Fatalf("REDIS_URL %q", url)
	}
	if got := redisCLI(t, url, "SET", ad.Name+":greeting", "hello"); got != "OK" {
		t.Errorf("SET: %q", got)
	}
	if got := redisCLI(t, url, "GET", ad.Name+":greeting"); got != "hello" {
		t.Errorf("GET: %q", got)
	}
	if got := redisCLI(t, url, "SET", "greeting", "x"); !strings.Contains(got, "NOPERM") {
		t.Errorf("SET outside the prefix: %q, want NOPERM", got)
	}
	if got := redisCLI(t, url, "FLUSHALL"); !strings.Contains(got, "NOPERM") {
		t.Errorf("FLUSHALL: %q, want NOPERM", got)
	}

	// A second add-on, bob's: its credentials cannot read ann's keys.
	bad, _, brel, err := m.Create(ctx, b, "redis:mini", "", "bob")
	if err != nil {
		t.Fatal(err)
	}
	burl := brel.ConfigVars["REDIS_URL"]
	if got := redisCLI(t, burl, "GET", ad.Name+":greeting"); !strings.Contains(got, "NOPERM") {
		t.Errorf("bob's user read ann's key: %q, want NOPERM", got)
	}
	if got := redisCLI(t, burl, "SET", bad.Name+":k", "v"); got != "OK" {
		t.Errorf("bob SET: %q", got)
	}
	// A second Redis on one app is HEROKU_REDIS_COLOR.
	_, at2, _, err := m.Create(ctx, a, "heroku-redis", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^HEROKU_REDIS_[A-Z]+$`).MatchString(at2.Name) {
		t.Errorf("second attachment named %q", at2.Name)
	}

	// The server restarts on next use with the data and users it had.
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := m.Provider("heroku-redis")
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Credentials(ctx, ad.Name)
	if err != nil || again != url {
		t.Fatalf("credentials after stop: %q, %v; want %q", again, err, url)
	}
	if _, err := p.Info(ctx, ad.Name); err != nil { // starts it
		t.Fatal(err)
	}
	if got := redisCLI(t, url, "GET", ad.Name+":greeting"); got != "hello" {
		t.Errorf("GET after restart: %q", got)
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
	if s.Current.Description != "Detach REDIS (@ref:"+ad.Name+")" || s.Current.ConfigVars["REDIS_URL"] != "" || len(s.Attachments) != 1 {
		t.Errorf("after destroy: release %q, vars %v, attachments %+v", s.Current.Description, s.Current.ConfigVars, s.Attachments)
	}
	if got := redisCLI(t, url, "PING"); !strings.Contains(got, "WRONGPASS") {
		t.Errorf("the destroyed add-on's user still logs in: %q", got)
	}
	if _, err := m.Get(ad.Name); !errors.Is(err, ErrNoAddon) {
		t.Errorf("record after destroy: %v", err)
	}
	c, _, err := p.(*redisProvider).admin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := c.do("EXISTS", ad.Name+":greeting"); err != nil || n != int64(0) {
		t.Errorf("the destroyed add-on's key: %v, %v; want gone", n, err)
	}
}

// A Manager's Starter is asked before a server is started detached:
// its error is the provision's, and the server's files are the
// starter's to make; ErrNoSupervisor (no daemon) starts the server
// detached; a server that answers is not asked about.
func TestStarterIsAskedFirst(t *testing.T) {
	needRedis(t)
	ctx := context.Background()
	home := app.Home{Dir: t.TempDir()}
	var asked []string
	var answer error
	m := &Manager{Home: home, Starter: func(ctx context.Context, service string) error {
		asked = append(asked, service)
		return answer
	}}
	t.Cleanup(func() {
		if err := m.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	a, err := home.Create("ann", "ann")
	if err != nil {
		t.Fatal(err)
	}
	answer = errors.New("the daemon refuses")
	if _, _, _, err := m.Create(ctx, a, "heroku-redis", "", "ann"); err == nil || !strings.Contains(err.Error(), "the daemon refuses") {
		t.Fatalf("create with a refusing starter: %v", err)
	}
	if m.Servers()["redis"].IsSetUp() {
		t.Error("the provider set the server up itself while a starter runs it")
	}
	answer, asked = fmt.Errorf("ask: %w", ErrNoSupervisor), nil
	ad, _, _, err := m.Create(ctx, a, "heroku-redis", "", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "redis" {
		t.Errorf("starter asked %q; want redis once", asked)
	}
	if pid, err := m.Servers()["redis"].Running(ctx); err != nil || pid <= 0 {
		t.Errorf("detached server running: pid %d, %v", pid, err)
	}
	p, err := m.Provider("heroku-redis")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Info(ctx, ad.Name); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 {
		t.Errorf("starter asked again while the server answers: %q", asked)
	}
	if alias, err := m.ServerOf(ad.Name); err != nil || alias != "redis" {
		t.Errorf("ServerOf(%s) = %q, %v", ad.Name, alias, err)
	}
	if alias, err := m.ServerOf("heroku-postgresql"); err != nil || alias != "postgresql" {
		t.Errorf("ServerOf(heroku-postgresql) = %q, %v", alias, err)
	}
	if _, err := m.ServerOf("redis-none-00000"); err == nil {
		t.Error("ServerOf an add-on that is not there")
	}
}
