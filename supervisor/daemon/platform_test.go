package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
	"github.com/dyno-run/dyno/supervisor/logstore"
)

type answer struct {
	status int
	header http.Header
	body   string
}

// do sends a request on the socket with a raw body ("" for none).
func (td *testDaemon) do(method, path, body string, header map[string]string) answer {
	td.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://dyno"+path, rd)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := td.client.http.Do(req)
	if err != nil {
		td.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, strings.TrimSpace(string(b))}
}

func TestParseReleaseRange(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]releaseRange{
		"version ..; max=15, order=desc":      {max: 15, desc: true},
		"version ..; order=desc,max=1":        {max: 1, desc: true},
		"version ]12..; max=10, order=desc":   {first: 12, exclusive: true, max: 10, desc: true},
		"version 2..5":                        {first: 2, last: 5, max: defaultRange},
		"id ..; max=1000;":                    {max: 1000},
		"version ..; max=5000, order=asc":     {max: maxRange},
		"  version ..;  max=2 ,  order=desc ": {max: 2, desc: true},
	} {
		got, err := parseReleaseRange(in)
		if err != nil || got != want {
			t.Errorf("parseReleaseRange(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "name ..", "version", "version ..; max=0", "version ..; order=up", "version x..", "version ..; size=2"} {
		if got, err := parseReleaseRange(bad); err == nil {
			t.Errorf("parseReleaseRange(%q) = %+v, took it", bad, got)
		}
	}
}

// Releases page as the Heroku CLI asks (newest first, 206 while more
// follow), one is read by version, and a rollback is a new release;
// a rollback to a release that is not there records nothing.
func TestAPIReleasesRangeAndRollback(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		a := deploy(t, h, "web", map[string]string{"web": "x"})
		deployTo(t, h, a, map[string]string{"web": "y"})
	}})
	desc := map[string]string{"Range": "version ..; order=desc,max=1"}
	a := td.do(http.MethodGet, "/apps/web/releases", "", desc)
	var rels []map[string]any
	json.Unmarshal([]byte(a.body), &rels)
	if a.status != http.StatusPartialContent || len(rels) != 1 || rels[0]["version"] != 3.0 || rels[0]["current"] != true {
		t.Fatalf("max=1, desc: %d %s", a.status, a.body)
	}
	if cr, nr := a.header.Get("Content-Range"), a.header.Get("Next-Range"); cr != "version 3..3; max=1, order=desc" || nr != "version ]3..; max=1, order=desc" {
		t.Errorf("Content-Range %q, Next-Range %q", cr, nr)
	}
	a = td.do(http.MethodGet, "/apps/web/releases", "", map[string]string{"Range": a.header.Get("Next-Range")})
	if json.Unmarshal([]byte(a.body), &rels); a.status != http.StatusPartialContent || len(rels) != 1 || rels[0]["version"] != 2.0 {
		t.Errorf("the next page: %d %s", a.status, a.body)
	}
	a = td.do(http.MethodGet, "/apps/web/releases", "", map[string]string{"Range": "version ..; max=15, order=desc"})
	if json.Unmarshal([]byte(a.body), &rels); a.status != http.StatusOK || len(rels) != 3 || a.header.Get("Next-Range") != "" {
		t.Errorf("max=15: %d %v %s", a.status, a.header, a.body)
	}
	if e := rels[1]; e["eligible_for_rollback"] != true || e["user"].(map[string]any)["email"] != "test" {
		t.Errorf("v2: %v", e)
	}
	if a := td.do(http.MethodGet, "/apps/web/releases", "", map[string]string{"Range": "bytes=0-1"}); a.status != http.StatusRequestedRangeNotSatisfiable || !strings.Contains(a.body, `"id":"invalid_range"`) {
		t.Errorf("a bad range: %d %s", a.status, a.body)
	}

	if a := td.do(http.MethodGet, "/apps/web/releases/2", "", nil); a.status != http.StatusOK || !strings.Contains(a.body, `"version":2`) {
		t.Errorf("GET release 2: %d %s", a.status, a.body)
	}
	if a := td.do(http.MethodGet, "/apps/web/releases/9", "", nil); a.status != http.StatusNotFound || !strings.Contains(a.body, `"id":"not_found"`) {
		t.Errorf("GET release 9: %d %s", a.status, a.body)
	}

	before := ledgerBytes(t, td.home, "web")
	for body, status := range map[string]int{`{"release":"9"}`: 404, `{"release":"1"}`: 422, `{}`: 422, `{"release":"x"}`: 404} {
		if a := td.do(http.MethodPost, "/apps/web/releases", body, nil); a.status != status {
			t.Errorf("POST %s: %d %s, want %d", body, a.status, a.body, status)
		}
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "web")) {
		t.Error("a refused rollback changed the ledger")
	}
	a = td.do(http.MethodPost, "/apps/web/releases", `{"release":"2"}`, nil)
	if a.status != http.StatusCreated || !strings.Contains(a.body, `"version":4`) || !strings.Contains(a.body, `"description":"Rollback to v2"`) ||
		!strings.Contains(a.body, `"email":"`+AccountEmail+`"`) {
		t.Errorf("rollback to v2: %d %s", a.status, a.body)
	}
}

// POST /apps makes the app, its v1 and its git repository; a taken
// name is Heroku's 422 and nothing changes; no name is a made-up one.
func TestAPICreatesApps(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{})
	a := td.do(http.MethodPost, "/apps", `{"name":"newapp"}`, nil)
	if a.status != http.StatusCreated || !strings.Contains(a.body, `"name":"newapp"`) || !strings.Contains(a.body, `"email":"`+AccountEmail+`"`) {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	h := td.home
	made, err := h.Open("newapp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(made.RepoDir(), "HEAD")); err != nil {
		t.Errorf("no git repository: %v", err)
	}
	before := ledgerBytes(t, h, "newapp")
	a = td.do(http.MethodPost, "/apps", `{"name":"newapp"}`, nil)
	if a.status != http.StatusUnprocessableEntity || a.body != `{"id":"invalid_params","message":"Name newapp is already taken"}` {
		t.Errorf("a taken name: %d %s", a.status, a.body)
	}
	if !bytes.Equal(before, ledgerBytes(t, h, "newapp")) {
		t.Error("a refused create changed the ledger")
	}
	for _, bad := range []string{`{"name":"Bad_Name"}`, `{"region":"eu"}`, `{"stack":"cedar-14"}`, `[]`} {
		if a := td.do(http.MethodPost, "/apps", bad, nil); a.status != http.StatusUnprocessableEntity || !strings.Contains(a.body, `"id":"invalid_params"`) {
			t.Errorf("%s: %d %s", bad, a.status, a.body)
		}
	}
	if names, _ := h.List(); len(names) != 1 {
		t.Errorf("refused creates made apps: %v", names)
	}
	if a := td.do(http.MethodPost, "/apps", `{}`, nil); a.status != http.StatusCreated {
		t.Errorf("a made-up name: %d %s", a.status, a.body)
	}
	if a := td.do(http.MethodGet, "/users/~/apps", "", nil); a.status != http.StatusOK || strings.Count(a.body, `"git_url"`) != 2 {
		t.Errorf("/users/~/apps: %d %s", a.status, a.body)
	}
}

// A GET's JSON has an ETag, and naming it in If-None-Match is a 304.
func TestAPIETags(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { deploy(t, h, "web", map[string]string{"web": "x"}) }})
	a := td.do(http.MethodGet, "/apps/web", "", nil)
	tag := a.header.Get("ETag")
	if a.status != http.StatusOK || !strings.HasPrefix(tag, `"`) {
		t.Fatalf("GET: %d, ETag %q", a.status, tag)
	}
	if b := td.do(http.MethodGet, "/apps/web", "", map[string]string{"If-None-Match": `"other", W/` + tag}); b.status != http.StatusNotModified || b.body != "" {
		t.Errorf("If-None-Match the tag: %d %q", b.status, b.body)
	}
	td.do(http.MethodPatch, "/apps/web", `{"maintenance":true}`, nil)
	if b := td.do(http.MethodGet, "/apps/web", "", map[string]string{"If-None-Match": tag}); b.status != http.StatusOK || b.header.Get("ETag") == tag {
		t.Errorf("after a change: %d, ETag %q", b.status, b.header.Get("ETag"))
	}
	if b := td.do(http.MethodGet, "/apps/nope", "", nil); b.header.Get("ETag") != "" {
		t.Error("an error has an ETag")
	}
}

// Over TCP a log session is a capability URL on the client's host, read
// without the token as Server-Sent Events; a tail that reconnects with
// Last-Event-ID goes on after that event.
func TestAPILogSessionOverTCP(t *testing.T) {
	t.Parallel()
	td, port := startTCPDaemon(t)
	tok, err := apitoken.Token(APIDir(td.home.Dir), filepath.Join(t.TempDir(), "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	c := trustingClient(t, td.home.Dir)
	a, _ := td.d.app("web")
	// web.1's start lines first, or one could land after the test's and
	// be the last line a session reads. (The fake dyno binds no port, so
	// nothing more comes before the boot timeout.)
	td.eventually("web.1's start stored", func() bool {
		lines, err := logstore.Read(a.app.LogsDir(), logstore.Filter{}, 100)
		return err == nil && slices.ContainsFunc(lines, func(l logstore.Line) bool {
			return strings.Contains(l.Text, "Starting process with command")
		})
	})
	if err := logstore.AppendLines(a.app.LogsDir(), "app", "api", time.Now(), "first line", "second line"); err != nil {
		t.Fatal(err)
	}
	session := func(body string) string {
		req, _ := http.NewRequest(http.MethodPost, "https://localhost:"+port+"/apps/web/log-sessions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			URL string `json:"logplex_url"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(out.URL, "https://localhost:"+port+"/log-stream/") {
			t.Fatalf("log-sessions: %d %q", resp.StatusCode, out.URL)
		}
		return out.URL
	}
	open := func(url, lastID string) (*http.Response, *bufio.Reader) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept", "text/event-stream")
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, bufio.NewReader(resp.Body)
	}

	url := session(`{"lines":1,"tail":false}`)
	resp, _ := open(url, "")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || !strings.HasPrefix(string(b), "retry: 50\n\nid: 0\ndata: ") ||
		!strings.HasSuffix(string(b), "app[api]: second line\n\n") || strings.Contains(string(b), "first line") {
		t.Errorf("history: %s\n%q", resp.Status, b)
	}
	if resp, _ := open(url, "0"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a history read twice: %s", resp.Status)
	}

	url = session(`{"lines":1,"tail":true}`)
	resp, r := open(url, "")
	event := func(r *bufio.Reader) string {
		t.Helper()
		var ev []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("the stream ended: %v (%q)", err, ev)
			}
			if line == "\n" && len(ev) > 0 && ev[0] != "retry: 50" {
				return strings.Join(ev, "|")
			}
			if line == "\n" {
				ev = nil
				continue
			}
			ev = append(ev, strings.TrimSuffix(line, "\n"))
		}
	}
	if e := event(r); !strings.HasPrefix(e, "id: 0|data: ") || !strings.HasSuffix(e, "second line") {
		t.Fatalf("first event: %q", e)
	}
	a.logs.Line("api", []byte("third line"))
	if e := event(r); !strings.HasPrefix(e, "id: 1|") || !strings.HasSuffix(e, "third line") {
		t.Fatalf("tailed event: %q", e)
	}
	resp.Body.Close()
	a.logs.Line("api", []byte("fourth line"))
	// The session is free once its stream has gone.
	for {
		resp, r = open(url, "1")
		if resp.StatusCode != http.StatusConflict {
			break
		}
		resp.Body.Close()
		time.Sleep(10 * time.Millisecond)
	}
	defer resp.Body.Close()
	if e := event(r); !strings.HasPrefix(e, "id: 2|") || !strings.HasSuffix(e, "fourth line") {
		t.Errorf("after Last-Event-ID 1: %q", e)
	}
	if resp, _ := open("https://localhost:"+port+"/log-stream/nope", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown session: %s", resp.Status)
	}
}
