package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/dyno-run/dyno/supervisor/router"
)

// maintenance:on through the API: the router answers every request with
// the maintenance page (its own, then the one MAINTENANCE_PAGE_URL
// names, or its own again when that cannot be had), the web dyno keeps
// running, and the app's logs say who turned it on; off, requests reach
// the dyno again.
func TestMaintenanceMode(t *testing.T) {
	t.Parallel()
	td, addr := startRouted(t, &webRunner{}, func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "serve"})
	})
	td.awaitState("demo", router.Running)
	demo, _ := td.d.app("demo")
	api := demo.hub.Subscribe(logstore.Filter{Source: "app", Dyno: "api"}, 64)
	defer api.Close()
	routerLines := demo.hub.Subscribe(logstore.Filter{Source: "heroku", Dyno: "router"}, 256)
	defer routerLines.Close()
	ctx := context.Background()
	var before []Dyno
	if err := td.client.Do(ctx, http.MethodGet, "/apps/demo/dynos", nil, &before); err != nil || len(before) != 1 {
		t.Fatalf("dynos %+v, %v", before, err)
	}

	var got map[string]any
	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo", map[string]any{"maintenance": true}, &got); err != nil || got["maintenance"] != true {
		t.Fatalf("PATCH maintenance: %v, %v", got, err)
	}
	awaitLine(t, api, "Enable Maintenance mode by user ")
	td.eventually("the maintenance page", func() bool {
		status, body := get(t, addr, "demo.localhost")
		return status == 503 && strings.Contains(body, "Offline for maintenance")
	})
	awaitLine(t, routerLines, `at=info code=H80 desc="Maintenance mode"`)
	got = nil
	if err := td.client.Do(ctx, http.MethodGet, "/apps/demo", nil, &got); err != nil || got["maintenance"] != true {
		t.Errorf("GET app: %v, %v; want maintenance true", got, err)
	}
	// Setting it again changes nothing and logs nothing.
	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo", map[string]any{"maintenance": true}, nil); err != nil {
		t.Fatal(err)
	}

	// The app's own page, fetched once by the daemon.
	var fetches atomic.Int64
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.URL.Path == "/broken" {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("<h1>Back at noon</h1>"))
	}))
	defer pages.Close()
	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo/config-vars", map[string]any{"MAINTENANCE_PAGE_URL": pages.URL + "/page.html"}, nil); err != nil {
		t.Fatal(err)
	}
	td.eventually("the app's maintenance page", func() bool {
		status, body := get(t, addr, "demo.localhost")
		return status == 503 && body == "<h1>Back at noon</h1>"
	})
	get(t, addr, "demo.localhost")
	if n := fetches.Load(); n != 1 {
		t.Errorf("the page was fetched %d times, want once", n)
	}
	// A page that cannot be had: the router's own, and a line saying why.
	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo/config-vars", map[string]any{"MAINTENANCE_PAGE_URL": pages.URL + "/broken"}, nil); err != nil {
		t.Fatal(err)
	}
	awaitLine(t, routerLines, "the server answered 500 Internal Server Error")
	td.eventually("the built-in page again", func() bool {
		status, body := get(t, addr, "demo.localhost")
		return status == 503 && strings.Contains(body, "Offline for maintenance")
	})

	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo", map[string]any{"maintenance": false}, nil); err != nil {
		t.Fatal(err)
	}
	awaitLine(t, api, "Disable Maintenance mode by user ")
	td.eventually("requests reaching the dyno", func() bool {
		status, body := get(t, addr, "demo.localhost")
		return status == 200 && strings.HasPrefix(body, "web.")
	})

	// Bad input: a one-line error naming the fix, and nothing recorded.
	err := td.client.Do(ctx, http.MethodPatch, "/apps/demo", map[string]any{"name": "other"}, nil)
	if err == nil || !strings.Contains(err.Error(), `{"maintenance": true}`) {
		t.Errorf("PATCH without maintenance: %v", err)
	}
	if on, _ := demo.app.Maintenance(); on {
		t.Errorf("maintenance on after a refused PATCH")
	}
}

// awaitLine waits for a line containing want on tail.
func awaitLine(t *testing.T, tail *logstore.Tail, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line := <-tail.Lines():
			if strings.Contains(string(line), want) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line with %q", want)
		}
	}
}

// The features API lists dyno's features, enables and disables one with
// an API line each, and names the known ones for an unknown one.
func TestFeaturesAPI(t *testing.T) {
	t.Parallel()
	td, _ := startRouted(t, &webRunner{}, func(h app.Home) {
		h.Create("demo", "test")
	})
	td.eventually("demo taken up", func() bool { _, ok := td.d.app("demo"); return ok })
	demo, _ := td.d.app("demo")
	api := demo.hub.Subscribe(logstore.Filter{Source: "app", Dyno: "api"}, 64)
	defer api.Close()
	ctx := context.Background()
	var list []map[string]any
	if err := td.client.Do(ctx, http.MethodGet, "/apps/demo/features", nil, &list); err != nil || len(list) != 2 ||
		list[0]["name"] != "preboot" || list[1]["name"] != "log-runtime-metrics" || list[0]["enabled"] != false || list[0]["description"] != "Provide seamless web dyno deploys" {
		t.Fatalf("features = %v, %v", list, err)
	}
	var f map[string]any
	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo/features/preboot", map[string]any{"enabled": true}, &f); err != nil || f["enabled"] != true {
		t.Fatalf("enable: %v, %v", f, err)
	}
	awaitLine(t, api, "Enable preboot by user ")
	f = nil
	if err := td.client.Do(ctx, http.MethodGet, "/apps/demo/features/preboot", nil, &f); err != nil || f["enabled"] != true {
		t.Errorf("GET preboot: %v, %v", f, err)
	}
	if on, _ := demo.app.EnabledFeatures(); len(on) != 1 || on[0] != "preboot" {
		t.Errorf("ledger features %q", on)
	}
	err := td.client.Do(ctx, http.MethodPatch, "/apps/demo/features/spaces-dns-discovery", map[string]any{"enabled": true}, nil)
	if err == nil || !strings.Contains(err.Error(), "preboot") {
		t.Errorf("unknown feature: %v", err)
	}
	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo/features/preboot", map[string]any{"enabled": nil}, nil); err == nil || !strings.Contains(err.Error(), `{"enabled": true}`) {
		t.Errorf("enabled as a string: %v", err)
	}
	if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo/features/preboot", map[string]any{"enabled": false}, nil); err != nil {
		t.Fatal(err)
	}
	awaitLine(t, api, "Disable preboot by user ")
}

// A fetch that began before maintenance mode went off and on again is
// stale: its page is dropped and a new fetch starts.
func TestMaintenancePageGenerations(t *testing.T) {
	var m maintenance
	m.set(true, "http://pages.example/m.html")
	on, page, fetch, gen := m.state()
	if !on || page != "" || fetch != "http://pages.example/m.html" {
		t.Fatalf("first state: %v %q %q", on, page, fetch)
	}
	if _, _, again, _ := m.state(); again != "" {
		t.Errorf("a second fetch started while one runs")
	}
	m.set(false, "http://pages.example/m.html")
	m.set(true, "http://pages.example/m.html")
	m.done("http://pages.example/m.html", gen, "<p>old</p>")
	_, page, fetch, gen2 := m.state()
	if page != "" || fetch == "" || gen2 == gen {
		t.Errorf("after a stale fetch: page %q, fetch %q, gen %d then %d; want no page and a new fetch", page, fetch, gen, gen2)
	}
	m.done(fetch, gen2, "<p>new</p>")
	if _, page, fetch, _ := m.state(); page != "<p>new</p>" || fetch != "" {
		t.Errorf("after the new fetch: page %q, fetch %q", page, fetch)
	}
}
