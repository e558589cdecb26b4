package daemon

// heroku run's POST and rendezvous on the API's TCP port, against a
// daemon whose dynos cannot start (these tests run none): the secret's
// life, the listener's sniff, the log lines and ps. cmd/dyno's
// herokurun_test.go runs real dynos through it.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/dyno-run/dyno/supervisor/rendezvous"
)

type attachEnv struct {
	td   *testDaemon
	port string
	tok  string
	c    *http.Client
}

func newAttachEnv(t *testing.T, ttl time.Duration) *attachEnv {
	t.Helper()
	td := startTestDaemon(t, daemonOptions{
		cfg:       Config{API: APISettings{Listen: "127.0.0.1:0"}},
		setup:     func(h app.Home) { deploy(t, h, "web", map[string]string{"web": "x"}) },
		attachTTL: ttl,
	})
	select {
	case <-td.d.tcp.listening:
	case <-time.After(20 * time.Second):
		t.Fatalf("the API does not listen on TCP\ndaemon log:\n%s", td.log)
	}
	tok, err := apitoken.Token(APIDir(td.home.Dir), filepath.Join(t.TempDir(), "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(td.d.tcp.listenAddr().String(), ":")
	return &attachEnv{td: td, port: port, tok: tok, c: trustingClient(t, td.home.Dir)}
}

// post is heroku run's POST, with host as the request's Host.
func (e *attachEnv) post(t *testing.T, host, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://127.0.0.1:"+e.port+"/apps/web/dynos", strings.NewReader(body))
	req.Host = host
	req.Header.Set("Authorization", "Bearer "+e.tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *attachEnv) dial(attachURL string) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return rendezvous.Dial(ctx, attachURL, e.c.Transport.(*http.Transport).TLSClientConfig)
}

// dynos are the names GET /apps/web/dynos lists over TCP.
func (e *attachEnv) dynos(t *testing.T) string {
	t.Helper()
	a := tcpGet(t, e.c, "https://127.0.0.1:"+e.port+"/apps/web/dynos", bearer(e.tok))
	return a.body
}

func appLog(t *testing.T, td *testDaemon, name string) string {
	t.Helper()
	a, _ := td.d.app(name)
	lines, cur, err := logstore.Follow(a.app.LogsDir(), logstore.Filter{}, 1500)
	if err != nil {
		t.Fatal(err)
	}
	cur.Close()
	var b strings.Builder
	for _, l := range lines {
		b.Write(l.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

var attachURL = regexp.MustCompile(`^rendezvous://([^/]+)/([0-9a-f]{64})$`)

func TestHerokuRunAttachesOverTCP(t *testing.T) {
	t.Parallel()
	e := newAttachEnv(t, time.Minute)
	// Through a tunnel the client's Host is the tunnel's end: the URL
	// says it, not the daemon's bind address.
	status, out := e.post(t, "127.0.0.1:5055", `{"attach":true,"command":"echo hi","env":{"TERM":"xterm","COLUMNS":80,"LINES":24},"size":"Standard-2X"}`)
	url, _ := out["attach_url"].(string)
	name, _ := out["name"].(string)
	if status != http.StatusCreated || !regexp.MustCompile(`^run\.\d{4}$`).MatchString(name) || out["state"] != "starting" ||
		out["size"] != "Standard-2X" || out["type"] != "run" || !strings.HasPrefix(url, "rendezvous://127.0.0.1:5055/") {
		t.Fatalf("POST: %d %v", status, out)
	}
	secret := attachURL.FindStringSubmatch(url)[2]
	if ps := e.dynos(t); !strings.Contains(ps, `"name":"`+name+`"`) {
		t.Errorf("ps lacks %s while it waits for its client: %s", name, ps)
	}

	// HTTP on the same port, and a wrong secret: closed, with no HTTP
	// answer (a 400 would say it reached the server).
	if a := tcpGet(t, e.c, "https://127.0.0.1:"+e.port+"/apps", bearer(e.tok)); a.status != http.StatusOK {
		t.Errorf("HTTP beside the rendezvous: %+v", a)
	}
	raw, err := tls.Dial("tcp", "127.0.0.1:"+e.port, e.c.Transport.(*http.Transport).TLSClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(raw, strings.Repeat("0", 64)+"\r\n")
	if b, err := io.ReadAll(raw); len(b) != 0 || err != nil {
		t.Errorf("a wrong secret got %q, %v; want the connection closed", b, err)
	}
	raw.Close()

	// The right one, at the daemon's real port. These tests' daemon
	// starts no dyno: the client is told on its terminal, after the
	// handshake, and the logs say it crashed.
	real := "rendezvous://127.0.0.1:" + e.port + "/" + secret
	c, err := e.dial(real)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if want := "dyno: " + name + " could not start: this daemon runs no dynos\r\n"; string(b) != want {
		t.Errorf("the terminal: %q, want %q", b, want)
	}
	if _, err := e.dial(real); !errors.Is(err, io.EOF) {
		t.Errorf("the secret a second time: %v, want the connection closed", err)
	}
	e.td.eventually("run.N to leave ps", func() bool { return !strings.Contains(e.dynos(t), name) })
	log := appLog(t, e.td, "web")
	for _, want := range []string{
		"app[api]: Starting process with command `echo hi` by user " + AccountEmail,
		"heroku[" + name + "]: Starting process with command `echo hi`",
		"heroku[" + name + "]: Error starting process: this daemon runs no dynos",
		"heroku[" + name + "]: State changed from starting to crashed",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if !strings.Contains(e.td.log.String(), "rendezvous from 127.0.0.1:") {
		t.Errorf("the daemon's log does not say it refused a secret:\n%s", e.td.log)
	}
}

func TestHerokuRunSecretExpires(t *testing.T) {
	t.Parallel()
	e := newAttachEnv(t, 100*time.Millisecond)
	status, out := e.post(t, "localhost:"+e.port, `{"attach":true,"command":"bash"}`)
	name, _ := out["name"].(string)
	url, _ := out["attach_url"].(string)
	if status != http.StatusCreated || !strings.HasPrefix(url, "rendezvous://localhost:"+e.port+"/") {
		t.Fatalf("POST: %d %v", status, out)
	}
	e.td.eventually("the R13", func() bool {
		return strings.Contains(appLog(t, e.td, "web"), "heroku["+name+"]: Error R13 (Attach error) -> Failed to attach to process")
	})
	e.td.eventually("run.N to leave ps", func() bool { return !strings.Contains(e.dynos(t), name) })
	if _, err := e.dial(url); !errors.Is(err, io.EOF) {
		t.Errorf("an expired secret: %v, want the connection closed", err)
	}
}

func TestHerokuRunStoppedBeforeItsClient(t *testing.T) {
	t.Parallel()
	e := newAttachEnv(t, time.Minute)
	_, out := e.post(t, "127.0.0.1:"+e.port, `{"attach":true,"command":"bash","force_no_tty":true,"type":"worker"}`)
	name, _ := out["name"].(string)
	url, _ := out["attach_url"].(string)
	if out["type"] != "worker" {
		t.Errorf("type: %v", out)
	}
	if err := e.td.client.Do(context.Background(), http.MethodPost, "/apps/web/dynos/"+name+"/actions/stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dial(url); !errors.Is(err, io.EOF) {
		t.Errorf("a stopped run's secret: %v, want the connection closed", err)
	}
	if log := appLog(t, e.td, "web"); !strings.Contains(log, "heroku["+name+"]: Stopped before a client attached") || strings.Contains(e.dynos(t), name) {
		t.Errorf("after ps:stop:\n%s", log)
	}
}

// Over the socket, attached runs stay dyno run's; detached ones take
// heroku run:detached's env and type.
func TestCreateDynoOverTheSocket(t *testing.T) {
	t.Parallel()
	e := newAttachEnv(t, time.Minute)
	err := e.td.client.Do(context.Background(), http.MethodPost, "/apps/web/dynos", map[string]any{"attach": true, "command": "bash"}, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnprocessableEntity || !strings.Contains(apiErr.Message, "dyno run") {
		t.Errorf("attach over the socket: %v", err)
	}
	status, out := e.post(t, "127.0.0.1:"+e.port, `{"attach":false,"command":"echo hi","env":{"TERM":"xterm","A":"1"},"type":"worker"}`)
	if status != http.StatusCreated || out["attach_url"] != nil || out["type"] != "worker" || !strings.HasPrefix(out["name"].(string), "run.") {
		t.Fatalf("run:detached: %d %v", status, out)
	}
	e.td.eventually("the detached run's start", func() bool { return len(e.td.runner.started()) > 1 })
	for _, spec := range e.td.runner.started() {
		if spec.Name == out["name"] && !slices.Contains(spec.Env, "A=1") {
			t.Errorf("run:detached's env did not reach the dyno: %v", spec.Env)
		}
	}
}
