package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/ledger/app"
)

// The Platform API's domains: list (default hostname first), create,
// delete, with a host another app holds refused and nothing recorded.
func TestAPIDomains(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{cfg: Config{Router: RouterSettings{Domain: "apps.test"}}, setup: func(h app.Home) {
		h.Create("demo", "test")
		h.Create("other", "test")
	}})
	ctx := context.Background()
	var created map[string]any
	if err := td.client.Do(ctx, http.MethodPost, "/apps/demo/domains", map[string]string{"hostname": "WWW.Example.com"}, &created); err != nil {
		t.Fatal(err)
	}
	if created["hostname"] != "www.example.com" || created["kind"] != "custom" || created["cname"] != "demo.apps.test" || created["status"] != "succeeded" {
		t.Errorf("created: %v", created)
	}
	var list []map[string]any
	if err := td.client.Do(ctx, http.MethodGet, "/apps/demo/domains", nil, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0]["hostname"] != "demo.apps.test" || list[0]["kind"] != "heroku" || list[0]["cname"] != nil ||
		list[1]["hostname"] != "www.example.com" || list[1]["created_at"] == "" {
		t.Errorf("list: %v", list)
	}

	// Taken by demo, and demo's default hostname: refused for other.
	before := ledgerBytes(t, td.home, "other")
	for host, want := range map[string]string{
		"www.example.com": "www.example.com is already added to ⬢ demo",
		"demo.apps.test":  "demo.apps.test is the default hostname of ⬢ demo",
		"*.com":           "is not a domain",
	} {
		body, _ := json.Marshal(map[string]string{"hostname": host})
		req, _ := http.NewRequest(http.MethodPost, "http://dyno/apps/other/domains", bytes.NewReader(body))
		resp, err := td.client.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e APIError
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || e.ID != "invalid_params" || !strings.Contains(e.Message, want) {
			t.Errorf("%s: %d %+v, want 422 saying %q", host, resp.StatusCode, e, want)
		}
	}
	if st, b := td.patch("/apps/other/domains", `{}`); st != http.StatusMethodNotAllowed {
		t.Errorf("PATCH: %d %s", st, b)
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "other")) {
		t.Error("refused domains changed the ledger")
	}

	var removed map[string]any
	if err := td.client.Do(ctx, http.MethodDelete, "/apps/demo/domains/www.example.com", nil, &removed); err != nil || removed["hostname"] != "www.example.com" {
		t.Fatalf("delete: %v, %v", removed, err)
	}
	if err := td.client.Do(ctx, http.MethodDelete, "/apps/demo/domains/www.example.com", nil, nil); err == nil || !strings.Contains(err.Error(), "Couldn't find that domain") {
		t.Errorf("deleting it again: %v", err)
	}
	// Now other may have it.
	if err := td.client.Do(ctx, http.MethodPost, "/apps/other/domains", map[string]string{"hostname": "www.example.com"}, nil); err != nil {
		t.Errorf("other adds the freed host: %v", err)
	}
}

// A domain or certificate change is a ledger change the daemon takes
// up, but not a release: the app's dynos keep running.
func TestDomainChangeRestartsNothing(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "w"})
	}})
	td.eventually("one web dyno", func() bool { n, _ := td.runner.counts(); return n == 1 })
	_, starts := td.runner.counts()
	if err := td.client.Do(context.Background(), http.MethodPost, "/apps/demo/domains", map[string]string{"hostname": "www.example.com"}, nil); err != nil {
		t.Fatal(err)
	}
	a, err := td.home.Open("demo")
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.Ledger.State()
	if err != nil {
		t.Fatal(err)
	}
	td.eventually("the domains record taken up", func() bool {
		r, ok := td.d.app("demo")
		if !ok {
			return false
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.seq == st.Seq
	})
	if n, s := td.runner.counts(); n != 1 || s != starts {
		t.Errorf("after domains:add: %d running, %d starts; want 1 and %d", n, s, starts)
	}
}
