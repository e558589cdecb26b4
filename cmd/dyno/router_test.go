package main

// The router through the binary, as a user meets it: dyno daemon with
// [router] listen in dyno.toml, an app's web dynos behind
// http://APP.localhost:PORT/, and the heroku[router] lines in its logs.

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
)

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// routerConfig writes dyno.toml's [router] table into e's home.
func (e *isolatedEnv) routerConfig(t *testing.T, table string) {
	t.Helper()
	path := filepath.Join(e.home, "dyno.toml")
	if err := os.WriteFile(path, []byte("[router]\n"+table), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.GiveToNobody(t, path)
}

func TestRouterThroughTheDaemon(t *testing.T) {
	// Not parallel: its web binds a daemon port, and every daemon hands them out from 20000.
	e := newIsolatedEnv(t, nil)
	addr := freeAddr(t)
	e.routerConfig(t, "listen = \""+addr+"\"\n")
	e.deployFixture(t, "demo", "web: exec python3 -m http.server $PORT\n")
	e.must(t, "ps:scale", "web=2", "-a", "demo")
	e.startDaemon(t)
	e.waitPs(t, "demo", `(?m)^web\.1: up `, `(?m)^web\.2: up `)

	_, port, _ := net.SplitHostPort(addr)
	client := &http.Client{Timeout: 30 * time.Second}
	served := map[string]bool{}
	for i := 0; i < 40 && len(served) < 2; i++ {
		// curl http://demo.localhost:PORT/ resolves to loopback; Go's
		// resolver may not, so dial the address and name the host.
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = "demo.localhost:" + port
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Directory listing") {
			t.Fatalf("GET http://demo.localhost:%s/: %d %q", port, resp.StatusCode, body)
		}
		e.waitLog(t, "demo", `heroku\[router\]: at=info method=GET path="/" host=demo\.localhost request_id=\S+ fwd="127\.0\.0\.1" dyno=web\.\d connect=\d+ms service=\d+ms status=200 bytes=\d+ protocol=http`)
		logs, _ := e.dynoOut(t, "logs", "-a", "demo", "-d", "router", "-n", "1500")
		for _, m := range regexp.MustCompile(`dyno=(web\.\d)`).FindAllStringSubmatch(logs, -1) {
			served[m[1]] = true
		}
	}
	if !served["web.1"] || !served["web.2"] {
		t.Errorf("40 requests reached %v, want web.1 and web.2", served)
	}

	// A host no app has: 404.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = "nobody.localhost"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("nobody.localhost: %d, want 404", resp.StatusCode)
	}

	// No web dynos: H14, its page and its line.
	e.must(t, "ps:scale", "web=0", "-a", "demo")
	e.eventually(t, "H14 from the router", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		req.Host = "demo.localhost"
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 503 && strings.Contains(string(body), "H14")
	})
	e.waitLog(t, "demo", `heroku\[router\]: at=error code=H14 desc="No web processes running" method=GET path="/" host=demo\.localhost request_id=\S+ fwd="127\.0\.0\.1" dyno= connect= service= status=503 bytes= protocol=http`)
}
