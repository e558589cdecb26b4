package main

// The dashboard in a real browser, through the binary: dyno daemon
// with the router on, headless Chromium driven over the DevTools
// protocol (chromedp), signing in with the API token, watching an app
// change without reloading, and scaling it from the page.

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dyno-run/dyno/internal/headless"
	"github.com/dyno-run/dyno/internal/testutil"
)

// chromium is Debian's Chromium, or the reason a test cannot have it.
func chromium(t *testing.T) string {
	t.Helper()
	p := headless.Chromium()
	if p == "" {
		t.Skip("no Chromium on PATH: the dashboard's browser tests need Debian's chromium package, which .ci/run installs")
	}
	return p
}

// browser starts headless Chromium and returns its context. Every
// request the pages make is recorded, for the check that none goes to
// another origin.
func browser(t *testing.T, path string) (context.Context, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var requests []string
	ctx, stop := headless.Start(path, t.TempDir(), chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	}))
	t.Cleanup(stop)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), requests...)
	}
}

// step runs browser actions with a deadline of their own.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		pageFatal(t, ctx, what, err)
	}
}

// get runs one browser action that gives a value.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		pageFatal(t, ctx, what, err)
	}
	return v
}

// waitTrue waits until expr, run in the page, is true.
func waitTrue(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	get(t, ctx, what, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second)))
}

func pageFatal(t *testing.T, ctx context.Context, what string, err error) {
	t.Helper()
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(hctx, chromedp.OuterHTML(chromedp.CSS("body")))
	t.Fatalf("%s: %v\npage: %.3000s", what, err, body)
}

// saveScreenshot writes the page as a PNG under DYNO_SCREENSHOTS, when
// it names a folder (make screenshots: docs/).
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("DYNO_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// apiToken makes the daemon's API token, as its user would.
func (e *isolatedEnv) apiToken(t *testing.T) string {
	t.Helper()
	// Beside the home, where the daemon's user can reach it.
	config := filepath.Join(filepath.Dir(e.home), "config")
	if err := os.MkdirAll(config, 0o700); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, config)
	cmd := e.command("auth:token")
	cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+config)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dyno auth:token: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDashboardInABrowser(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	chrome := chromium(t)
	e := newIsolatedEnv(t, nil)
	addr := freeAddr(t)
	e.routerConfig(t, "listen = \""+addr+"\"\n")
	e.deployFixture(t, "demo", daemonProcfile)
	token := e.apiToken(t)
	e.startDaemon(t)
	e.waitPs(t, "demo", `(?m)^web\.1: up `)

	_, port, _ := net.SplitHostPort(addr)
	// Chromium resolves every *.localhost name to loopback itself.
	origin := "http://dashboard.localhost:" + port
	ctx, requests := browser(t, chrome)

	// Signed out, the dashboard asks for the token.
	step(t, ctx, "open the dashboard", chromedp.Navigate(origin+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	saveScreenshot(t, ctx, "dashboard-login.png")
	step(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS(`table.apps a[href="/apps/demo"]`)))
	appsText := get(t, ctx, "read the apps page", chromedp.Text(chromedp.CSS("table.apps")))
	if !strings.Contains(appsText, "demo") || !strings.Contains(appsText, "running") || !strings.Contains(appsText, "web=1") {
		t.Fatalf("apps page: %q", appsText)
	}
	saveScreenshot(t, ctx, "dashboard-apps.png")

	// The app page: its dyno up, live.
	step(t, ctx, "open the app",
		chromedp.Click(chromedp.CSS(`table.apps a[href="/apps/demo"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[id="dyno-web.1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live="on"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#logpane[data-live="on"]`)),
		// A mark that a reload would wipe.
		chromedp.Evaluate[chromedp.Void](`window.stayed = true; undefined`))

	// A release made by the CLI appears as a marker and in the
	// releases, without a reload.
	e.must(t, "config:set", "FOO=bar", "-a", "demo")
	waitTrue(t, ctx, "see the release marker appear",
		`[...document.querySelectorAll("#metrics path.marker.m-release title")].some(t => t.textContent.includes("Set FOO config vars"))`)
	waitTrue(t, ctx, "see the release in the list",
		`document.querySelector("#releases tr.current").textContent.includes("Set FOO config vars")`)
	// The log pane follows the app's logs live.
	waitTrue(t, ctx, "see the release in the log pane",
		`document.getElementById("logpane").textContent.includes("Set FOO config vars by user")`)
	// The stream starts with the lines the page drew: none twice, the
	// page's own (the first release) or the stream's.
	for _, line := range []string{"Initial release by user", "Set FOO config vars by user"} {
		if n := get(t, ctx, "count a line in the pane", chromedp.Evaluate[int](
			`document.getElementById("logpane").textContent.split("`+line+`").length - 1`)); n != 1 {
			t.Errorf("the log pane shows %q %d times", line, n)
		}
	}
	if !get(t, ctx, "check there was no reload", chromedp.Evaluate[bool](`window.stayed === true`)) {
		t.Fatal("the page reloaded to show the release")
	}

	// Scale from the page: a confirmation, then the formation.
	step(t, ctx, "scale web to 2",
		chromedp.SetValue(chromedp.ID("quantity-web"), "2"),
		chromedp.Click(chromedp.ID("scale-web")),
		chromedp.WaitVisible(chromedp.ID("confirm")))
	if say := get(t, ctx, "read the confirmation", chromedp.Text(chromedp.CSS("h1"))); !strings.Contains(say, "Scale demo to web=2") {
		t.Fatalf("confirmation says %q", say)
	}
	step(t, ctx, "confirm",
		chromedp.Click(chromedp.ID("confirm")),
		chromedp.WaitVisible(chromedp.CSS(`[id="dyno-web.1"]`)))
	e.waitPs(t, "demo", `(?m)^web\.1: up `, `(?m)^web\.2: up `)
	e.waitLog(t, "demo", `app\[api\]: Scaled to web@2:\S+ worker@0:\S+ by user dyno@localhost`)
	step(t, ctx, "wait for the page to listen again", chromedp.WaitVisible(chromedp.CSS(`body[data-live="on"]`)))
	waitTrue(t, ctx, "see web.2 up on the page",
		`(r => r !== null && r.textContent.includes("up"))(document.getElementById("dyno-web.2"))`)

	// Metrics: requests through the router and the dynos' memory are
	// sampled every 10 s, and the open page draws them as they come.
	client := &http.Client{Timeout: 10 * time.Second}
	for range 20 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = "demo.localhost:" + port
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// A response time exists only for a period with requests in it.
	waitTrue(t, ctx, "see the requests' response times on their chart",
		`document.querySelector("svg#latency path.line, svg#latency circle.dot") !== null`)
	waitTrue(t, ctx, "see web's memory on its chart, under its quota",
		`document.querySelector("svg#memory-web path.line") !== null && document.querySelector("svg#memory-web path.limit") !== null`)
	waitTrue(t, ctx, "see web.2's memory in the dyno table",
		`!document.getElementById("dyno-web.2").textContent.includes("–")`)
	saveScreenshot(t, ctx, "dashboard-app.png")

	for _, u := range requests() {
		if p, err := url.Parse(u); err != nil || p.Scheme+"://"+p.Host != origin {
			t.Errorf("a page asked another origin: %s", u)
		}
	}
	if len(requests()) < 5 {
		t.Errorf("recorded %d requests; the check above saw too few to mean anything", len(requests()))
	}
}
