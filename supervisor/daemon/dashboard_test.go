package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
	"github.com/dyno-run/dyno/supervisor/dashboard"
)

// The dashboard on the API's TCP listener: under /dashboard, signed in
// with the token into a cookie that is Secure there (TLS), while the
// API beside it still wants the token itself.
func TestDashboardOnTheAPIListener(t *testing.T) {
	t.Parallel()
	td, port := startTCPDaemon(t)
	td.waitRunning("web.1")
	tok, err := apitoken.Token(APIDir(td.home.Dir), filepath.Join(t.TempDir(), "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	c := trustingClient(t, td.home.Dir)
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := "https://127.0.0.1:" + port

	resp, err := c.Get(base + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/login" {
		t.Fatalf("signed out: %s to %q; want the login page, not the API's 401", resp.Status, resp.Header.Get("Location"))
	}
	resp, err = c.PostForm(base+"/dashboard/login", url.Values{"token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, k := range resp.Cookies() {
		session = k
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.Path != "/dashboard/" {
		t.Fatalf("session cookie over TLS: %+v; want Secure, HttpOnly, path /dashboard/", session)
	}
	resp, err = c.Get(base + "/dashboard/apps/web")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `id="dyno-web.1"`) {
		t.Fatalf("the app page: %s", resp.Status)
	}
	// The cookie opens the dashboard, not the API.
	if a := tcpGet(t, c, base+"/apps", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("the API with the dashboard's cookie: %+v; want 401", a)
	}
}

// A crash is marked on the app's charts; a restart by the API too, with
// who asked, and both say so to an open page.
func TestDashboardMarksCrashesAndRestarts(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { deploy(t, h, "web", map[string]string{"web": "x"}) }})
	td.waitRunning("web.1")
	a, ok := td.d.app("web")
	if !ok {
		t.Fatal("no app web")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan dashboard.Change, 100)
	go dashSource{td.d}.Watch(ctx, "web", func(c dashboard.Change) { changes <- c })
	kinds := func() string {
		ev, err := a.events(time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		var k []string
		for _, e := range ev {
			k = append(k, e.Kind+": "+e.Text)
		}
		return strings.Join(k, "\n")
	}
	// The fake ends on its own: a crash.
	td.runner.mu.Lock()
	for p := range td.runner.running {
		go p.end()
	}
	td.runner.mu.Unlock()
	td.eventually("a crash marker", func() bool { return strings.Contains(kinds(), "crash: web.1 crashed") })
	td.waitRunning("web.1") // restarted, as a crashed dyno is

	if err := td.client.Do(ctx, http.MethodDelete, "/apps/web/dynos", nil, nil); err != nil {
		t.Fatal(err)
	}
	td.eventually("a restart marker", func() bool { return strings.Contains(kinds(), "restart: Restart all dynos by ") })
	// The ledger's: the releases made at deploy.
	if k := kinds(); !strings.Contains(k, "release: v2 ") {
		t.Errorf("markers:\n%s\nwant the deploy's release", k)
	}
	seen := dashboard.Change(0)
	for seen&dashboard.ChangeDynos == 0 || seen&dashboard.ChangeRelease == 0 {
		select {
		case c := <-changes:
			seen |= c
		case <-time.After(10 * time.Second):
			t.Fatalf("the page heard %b; want dynos and a marker", seen)
		}
	}
}
