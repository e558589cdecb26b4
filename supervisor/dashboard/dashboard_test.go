package dashboard

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/logstore"
)

const token = "tok-0123456789"

type harness struct {
	t      *testing.T
	src    *fakeSource
	tokens *fakeTokens
	srv    *httptest.Server
	base   string
	client *http.Client
}

func newHarness(t *testing.T, base string) *harness {
	t.Helper()
	h := &harness{t: t, src: newFakeSource(), tokens: &fakeTokens{token: token}, base: base}
	h.src.addApp("shop", 2, time.Now())
	s, err := New(Config{Source: h.src, Tokens: h.tokens, KeyDir: t.TempDir(), Base: base})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(s)
	t.Cleanup(h.srv.Close)
	jar, _ := cookiejar.New(nil)
	h.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h
}

func (h *harness) url(path string) string { return h.srv.URL + h.base + path }

func (h *harness) get(path string) (*http.Response, string) {
	h.t.Helper()
	resp, err := h.client.Get(h.url(path))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (h *harness) post(path string, form url.Values, header ...string) (*http.Response, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (h *harness) login() {
	h.t.Helper()
	resp, body := h.post("/login", url.Values{"token": {token}})
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("login: %s %s", resp.Status, body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (h *harness) csrf() string {
	h.t.Helper()
	_, body := h.get("/apps/shop")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		h.t.Fatal("no CSRF token on the app page")
	}
	return m[1]
}

func TestLoginSetsAStrictHttpOnlyCookie(t *testing.T) {
	for _, base := range []string{"", "/dashboard"} {
		h := newHarness(t, base)
		resp, _ := h.get("/")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != base+"/login" {
			t.Fatalf("%q: signed out, / = %s to %q; want 303 to the login page", base, resp.Status, resp.Header.Get("Location"))
		}
		resp, body := h.post("/login", url.Values{"token": {"wrong"}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "dyno auth:token") {
			t.Fatalf("%q: a wrong token: %s, the page says %q", base, resp.Status, body)
		}
		resp, _ = h.post("/login", url.Values{"token": {token}})
		var c *http.Cookie
		for _, k := range resp.Cookies() {
			if k.Name == sessionCookie {
				c = k
			}
		}
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != base+"/" || strings.Contains(c.Value, token) {
			t.Fatalf("%q: session cookie %+v; want HttpOnly, SameSite=Strict, path %s/, without the token", base, c, base)
		}
		resp, body = h.get("/")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "shop") {
			t.Fatalf("%q: signed in, / = %s", base, resp.Status)
		}
	}
}

func TestANewTokenEndsEverySession(t *testing.T) {
	h := newHarness(t, "")
	h.login()
	h.tokens.set("another")
	if resp, _ := h.get("/apps/shop"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the token changed, the app page = %s; want sent to sign in", resp.Status)
	}
	h.tokens.set("")
	if resp, _ := h.post("/login", url.Values{"token": {""}}); resp.StatusCode == http.StatusSeeOther {
		t.Fatal("signed in with no token at all")
	}
}

func TestForgedSessionIsRefused(t *testing.T) {
	h := newHarness(t, "")
	h.login()
	u, _ := url.Parse(h.srv.URL)
	c := h.client.Jar.Cookies(u)[0]
	payload, sig, _ := strings.Cut(c.Value, ".")
	// Flip a byte of the signed payload (its expiry).
	b := []byte(payload)
	b[3] ^= 1
	h.client.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: string(b) + "." + sig, Path: "/"}})
	if resp, _ := h.get("/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a forged cookie: / = %s; want sent to sign in", resp.Status)
	}
}

func TestEveryResponseForbidsOtherOrigins(t *testing.T) {
	h := newHarness(t, "")
	check := func(path string, resp *http.Response) {
		t.Helper()
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
	for _, p := range []string{"/login", "/assets/dash.css", "/assets/live.js", "/nothing"} {
		resp, _ := h.get(p)
		check(p, resp)
	}
	h.login()
	for _, p := range []string{"/", "/apps/shop", "/apps/shop/config", "/apps/none"} {
		resp, body := h.get(p)
		check(p, resp)
		if strings.Contains(body, "style=") || strings.Contains(body, "<style") || regexp.MustCompile(`<script>`).MatchString(body) {
			t.Errorf("%s: inline style or script, which the CSP would block", p)
		}
		// A link to the app's web URL is no request; what the page loads
		// or posts to is.
		if m := regexp.MustCompile(`(?:src|action)="(https?:)?//|<link[^>]*href="(https?:)?//`).FindString(body); m != "" {
			t.Errorf("%s: refers to another origin: %s", p, m)
		}
	}
	if resp, _ := h.get("/apps/none"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown app: %s, want 404", resp.Status)
	}
}

func TestActionsAreConfirmedAndNeedTheCSRFToken(t *testing.T) {
	h := newHarness(t, "")
	h.login()
	csrf := h.csrf()
	form := url.Values{"type": {"web"}, "quantity": {"3"}, "size": {"basic"}}

	if resp, _ := h.post("/apps/shop/scale", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("scale without the CSRF token: %s, want 403", resp.Status)
	}
	form.Set("csrf", csrf)
	if resp, _ := h.post("/apps/shop/scale", form, "Origin", "http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("scale from another origin: %s, want 403", resp.Status)
	}
	if resp, _ := h.post("/apps/shop/scale", form, "Sec-Fetch-Site", "cross-site"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("scale from another site: %s, want 403", resp.Status)
	}
	resp, body := h.post("/apps/shop/scale", form)
	if resp.StatusCode != http.StatusOK || contains(body, "Scale shop to web=3:basic?", `name="confirm" value="yes"`, `name="quantity" value="3"`) != "" {
		t.Fatalf("scale unconfirmed: %s; want the confirmation page: %s", resp.Status, body)
	}
	if got := h.src.actions(); len(got) != 0 {
		t.Fatalf("done before it was confirmed: %v", got)
	}
	form.Set("confirm", "yes")
	resp, _ = h.post("/apps/shop/scale", form)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/apps/shop" {
		t.Fatalf("scale confirmed: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, f := range []url.Values{
		{"csrf": {csrf}, "confirm": {"yes"}, "dyno": {"web.2"}},
		{"csrf": {csrf}, "confirm": {"yes"}, "version": {"v2"}},
		{"csrf": {csrf}, "confirm": {"yes"}, "on": {"true"}},
	} {
		act := map[string]string{"dyno": "restart", "version": "rollback", "on": "maintenance"}
		for k := range f {
			if a, ok := act[k]; ok {
				if resp, body := h.post("/apps/shop/"+a, f); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("%s: %s %s", a, resp.Status, body)
				}
			}
		}
	}
	want := []string{"scale shop web=3:basic by dyno@localhost", `restart shop "web.2" by dyno@localhost`, "rollback shop v2 by dyno@localhost", "maintenance shop true by dyno@localhost"}
	if got := h.src.actions(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("actions %q, want %q", got, want)
	}
	// Refused input: one line that says what is wrong, nothing done.
	resp, body = h.post("/apps/shop/scale", url.Values{"csrf": {csrf}, "confirm": {"yes"}, "type": {"web"}, "quantity": {"lots"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `The quantity &#34;lots&#34; is not a whole number`) {
		t.Fatalf("a bad quantity: %s %s", resp.Status, body)
	}
	resp, body = h.post("/apps/shop/scale", url.Values{"csrf": {csrf}, "confirm": {"yes"}, "type": {"web"}, "quantity": {"500"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "over the limit") {
		t.Fatalf("over the limit: %s %s", resp.Status, body)
	}
	if resp, _ := h.post("/apps/shop/destroy", url.Values{"csrf": {csrf}, "confirm": {"yes"}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an action the dashboard does not have: %s", resp.Status)
	}
	if got := h.src.actions(); len(got) != 4 {
		t.Fatalf("refused actions were done: %v", got)
	}
}

func TestOwnersTextIsEscaped(t *testing.T) {
	h := newHarness(t, "")
	a := h.src.addApp("evil", 1, time.Now())
	h.src.mu.Lock()
	a.ConfigNames = []string{hostile}
	a.Releases[0].Description = hostile
	h.src.config["evil"] = map[string]string{hostile: hostile}
	h.src.logs["evil"] = [][]byte{[]byte("2026-12-03T10:00:00.000000+00:00 app[web.1]: " + hostile)}
	h.src.metrics["evil"].Events = append(h.src.metrics["evil"].Events, Event{Time: time.Now().Add(-time.Hour), Kind: "release", Text: hostile})
	h.src.mu.Unlock()
	h.login()
	for _, p := range []string{"/apps/evil", "/apps/evil/config", "/"} {
		_, body := h.get(p)
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s: the owner's text became markup", p)
		}
	}
	_, body := h.get("/apps/evil")
	if !strings.Contains(body, "&lt;/script&gt;&lt;script&gt;alert(1)") {
		t.Error("the hostile text is not on the page, escaped")
	}
}

func TestConfigValuesOnlyWhenAsked(t *testing.T) {
	h := newHarness(t, "")
	h.login()
	_, page := h.get("/apps/shop")
	if strings.Contains(page, "s3cret") || !strings.Contains(page, "SECRET") {
		t.Fatal("the app page shows a config value, or not the names")
	}
	_, cfg := h.get("/apps/shop/config")
	if !strings.Contains(cfg, "s3cret") {
		t.Fatal("the config page does not show the values")
	}
}

// readEvent reads one SSE event's lines, comments skipped.
func readEvent(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var lines []string
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		l = strings.TrimSuffix(l, "\n")
		switch {
		case l == "" && len(lines) > 0:
			return lines
		case l == "" || strings.HasPrefix(l, ":"):
		default:
			lines = append(lines, l)
		}
	}
}

func TestStreams(t *testing.T) {
	h := newHarness(t, "")
	if resp, _ := h.get("/apps/shop/events"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("events signed out: %s, want 401", resp.Status)
	}
	h.src.mu.Lock()
	h.src.logs["shop"] = [][]byte{[]byte("2026-12-03T10:00:00.000000+00:00 app[web.1]: hello")}
	h.src.mu.Unlock()
	h.login()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(path string) *bufio.Reader {
		req, _ := http.NewRequestWithContext(ctx, "GET", h.url(path), nil)
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
			t.Fatalf("%s: %s %s", path, resp.Status, ct)
		}
		return bufio.NewReader(resp.Body)
	}
	events := open("/apps/shop/events")
	// The watch starts with the stream; tell it once it is there.
	<-h.src.watched
	h.src.change("shop", ChangeRelease|ChangeDynos)
	if ev := readEvent(t, events); strings.Join(ev, "|") != "event: change|data: dynos release" {
		t.Fatalf("change event %q", ev)
	}
	logs := open("/apps/shop/logs?lines=1")
	ev := readEvent(t, logs)
	want := "data: " + strconv.Itoa(logstore.ColorOf("web.1")) + " 2026-12-03T10:00:00.000000+00:00 app[web.1]: hello"
	if len(ev) != 1 || ev[0] != want {
		t.Fatalf("log event %q, want %q", ev, want)
	}
}

// The token crosses the network only encrypted: over plain HTTP, only
// a browser on this machine may sign in.
func TestSignInOverPlainHTTPOnlyFromThisMachine(t *testing.T) {
	h := newHarness(t, "")
	for _, c := range []struct {
		fwd, proto string
		ok         bool
	}{
		{"", "", true}, // straight from loopback
		{"127.0.0.1", "http", true},
		{"203.0.113.9", "http", false},
		{"127.0.0.1, 203.0.113.9", "http", false}, // the router's entry is the last
		{"203.0.113.9, 127.0.0.1", "http", true},
		{"203.0.113.9", "https", true},
	} {
		var hdr []string
		if c.fwd != "" {
			hdr = []string{"X-Forwarded-For", c.fwd, "X-Forwarded-Proto", c.proto}
		}
		resp, body := h.post("/login", url.Values{"token": {token}}, hdr...)
		if got := resp.StatusCode == http.StatusSeeOther; got != c.ok {
			t.Errorf("from %q over %q: %s %.200s", c.fwd, c.proto, resp.Status, body)
		}
		if !c.ok && !strings.Contains(body, "Sign in over HTTPS") {
			t.Errorf("from %q: the refusal does not say why", c.fwd)
		}
	}
	// Nor is the form shown there: the browser would send the token
	// before the refusal.
	req, _ := http.NewRequest("GET", h.url("/login"), nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "http")
	r2, err := http.DefaultTransport.RoundTrip(req) // no cookie
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if strings.Contains(string(b), `name="token"`) || !strings.Contains(string(b), "Sign in over HTTPS") {
		t.Errorf("the login page over plain HTTP from afar offers the form: %.300s", b)
	}
}

// An open stream ends when its session does: a new token, here.
func TestStreamsEndWithTheSession(t *testing.T) {
	h := newHarness(t, "")
	h.login()
	req, _ := http.NewRequest("GET", h.url("/apps/shop/logs"), nil)
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h.tokens.set("regenerated")
	// The first send after the change (the history, or a keep-alive)
	// finds the session gone and ends the stream.
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("the log stream outlived its session")
	}
}
