package main

// heroku run through the daemon: its POST over the API's TCP port and
// the rendezvous on the same port, done as the Heroku CLI does them
// (rendezvous.Dial), against real isolated dynos on real PTYs.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/daemon/apitls"
	"github.com/dyno-run/dyno/supervisor/rendezvous"
)

// herokuRunEnv is a daemon with [api] listen on a loopback port of its
// own and app name deployed, and what the Heroku CLI would hold: the
// token and a TLS config that trusts the daemon's authority alone
// (NODE_EXTRA_CA_CERTS).
type herokuRunEnv struct {
	*isolatedEnv
	app  string
	addr string
	tok  string
	tls  *tls.Config
}

func newHerokuRunEnv(t *testing.T, app string) *herokuRunEnv {
	t.Helper()
	e := newIsolatedEnv(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.WriteFile(filepath.Join(e.home, "dyno.toml"), []byte("[api]\nlisten = \""+addr+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.deployFixture(t, app, "web: exec sleep 1000\n")
	e.startDaemon(t)
	h := &herokuRunEnv{isolatedEnv: e, app: app, addr: addr}
	cmd := e.command("auth:token")
	cmd.Env = append(cmd.Env, "XDG_CONFIG_HOME="+filepath.Join(e.home, "client"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("auth:token: %v", err)
	}
	h.tok = strings.TrimSpace(string(out))
	e.eventually(t, "the API on TCP", func() bool {
		pemBytes, err := os.ReadFile(apitls.CAPath(daemon.APIDir(e.home)))
		if err != nil {
			return false
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pemBytes)
		h.tls = &tls.Config{RootCAs: roots}
		c, err := tls.Dial("tcp", addr, h.tls)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return h
}

// create is heroku run's POST /apps/APP/dynos.
func (h *herokuRunEnv) create(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "https://"+h.addr+"/apps/"+h.app+"/dynos", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+h.tok)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{TLSClientConfig: h.tls}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s: %d %v", b, resp.StatusCode, out)
	}
	return out
}

// attach creates a run and joins it as the CLI does.
func (h *herokuRunEnv) attach(t *testing.T, body map[string]any) (string, *tls.Conn) {
	t.Helper()
	body["attach"] = true
	out := h.create(t, body)
	url, _ := out["attach_url"].(string)
	if !strings.HasPrefix(url, "rendezvous://"+h.addr+"/") {
		t.Fatalf("attach_url %q", url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := rendezvous.Dial(ctx, url, h.tls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return out["name"].(string), c
}

// run attaches, sends input, and returns all the run printed.
func (h *herokuRunEnv) run(t *testing.T, body map[string]any, input string) string {
	t.Helper()
	_, c := h.attach(t, body)
	if input != "" {
		io.WriteString(c, input)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, b)
	}
	return string(b)
}

func TestHerokuRunThroughTheDaemon(t *testing.T) {
	t.Parallel()
	h := newHerokuRunEnv(t, "hkrun")
	term := map[string]any{"TERM": "xterm", "COLUMNS": 100, "LINES": 30}

	// A PTY, at the client's size.
	out := h.run(t, map[string]any{"command": "echo hello; tty; stty size; echo $TERM", "env": term}, "")
	for _, want := range []string{"hello\r\n", "/dev/pts/", "\r\n30 100\r\n", "\r\nxterm\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("on a PTY: %q lacks %q", out, want)
		}
	}

	// --no-tty: the client's EOT is end of file; -e's variables are set.
	out = h.run(t, map[string]any{"command": "cat; echo; echo \"A=$A\"; tty || true", "force_no_tty": true,
		"env": map[string]any{"TERM": "xterm", "A": "1"}}, "abc\x04")
	if out != "abc\nA=1\nnot a tty\n" {
		t.Errorf("--no-tty: %q", out)
	}

	// --exit-code's wrapper, as dyno.js writes it: the command goes
	// through a shell.
	out = h.run(t, map[string]any{"command": `sh -c 'exit 3'; echo "` + "\uFFFF" + ` heroku-command-exit-status: $?"`, "force_no_tty": true}, "")
	if out != "\uFFFF heroku-command-exit-status: 3\n" {
		t.Errorf("--exit-code: %q", out)
	}

	// ps lists it while it runs; the client gone, it gets SIGHUP.
	name, c := h.attach(t, map[string]any{"command": "echo ready; exec sleep 1000", "env": term})
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "ready\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	h.waitPs(t, h.app, `(?m)^=== run: one-off processes \(1\)$`, `(?m)^`+regexp.QuoteMeta(name)+` \(Standard-1X\): up `)
	c.Close()
	q := regexp.QuoteMeta(name)
	h.waitLog(t, h.app, `heroku\[`+q+`\]: Process exited with status 129`)
	logs := h.must(t, "logs", "-a", h.app, "-n", "1500")
	wantInOrder(t, logs,
		`app\[api\]: Starting process with command `+"`echo ready; exec sleep 1000`"+` by user `,
		`heroku\[`+q+`\]: Starting process with command `,
		`heroku\[`+q+`\]: State changed from starting to up$`,
		`heroku\[`+q+`\]: Client disconnected; stopping all processes with SIGHUP$`,
		`heroku\[`+q+`\]: Process exited with status 129$`,
		`heroku\[`+q+`\]: State changed from up to complete$`)
	if ps := h.must(t, "ps", "-a", h.app); strings.Contains(ps, name) {
		t.Errorf("ps after the run:\n%s", ps)
	}

	// run:detached: a name, and its output in the app's logs.
	d := h.create(t, map[string]any{"attach": false, "command": "echo \"detached A=$A\"", "env": map[string]any{"TERM": "xterm", "A": "2"}})
	dn, _ := d["name"].(string)
	if !regexp.MustCompile(`^run\.\d{4}$`).MatchString(dn) || d["attach_url"] != nil {
		t.Fatalf("run:detached: %v", d)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.must(t, "logs", "-a", h.app, "-n", "1500"))
		}
	})
	h.waitLog(t, h.app, `(?m)app\[`+regexp.QuoteMeta(dn)+`\]: detached A=2$`)
}
