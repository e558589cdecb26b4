package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon/apitls"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
)

// startTCPDaemon starts a test daemon with app web and the API on TCP,
// on a port of its own; it returns the port.
func startTCPDaemon(t *testing.T) (*testDaemon, string) {
	t.Helper()
	td := startTestDaemon(t, daemonOptions{
		cfg:   Config{API: APISettings{Listen: "127.0.0.1:0"}},
		setup: func(h app.Home) { deploy(t, h, "web", map[string]string{"web": "x"}) },
	})
	select {
	case <-td.d.tcp.listening:
	case <-time.After(20 * time.Second):
		t.Fatalf("the API does not listen on TCP\ndaemon log:\n%s", td.log)
	}
	_, port, _ := net.SplitHostPort(td.d.tcp.listenAddr().String())
	return td, port
}

// trustingClient is an HTTP client that trusts ca.pem alone, as the
// Heroku CLI does with NODE_EXTRA_CA_CERTS and git with http.sslCAInfo.
func trustingClient(t *testing.T, home string) *http.Client {
	t.Helper()
	b, err := os.ReadFile(apitls.CAPath(APIDir(home)))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		t.Fatal("ca.pem holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

type tcpAnswer struct {
	status int
	body   string
	auth   string // WWW-Authenticate
}

func tcpGet(t *testing.T, c *http.Client, url string, set func(*http.Request)) tcpAnswer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	if set != nil {
		set(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return tcpAnswer{resp.StatusCode, strings.TrimSpace(string(b)), resp.Header.Get("WWW-Authenticate")}
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

const unauthorized = `{"id":"unauthorized","message":"Invalid credentials provided."}`

func TestAPIOverTCPNeedsTheToken(t *testing.T) {
	t.Parallel()
	td, port := startTCPDaemon(t)
	apiDir := APIDir(td.home.Dir)
	clientPath := filepath.Join(t.TempDir(), "dyno", "api-token")
	tok, err := apitoken.Token(apiDir, clientPath)
	if err != nil {
		t.Fatal(err)
	}
	c := trustingClient(t, td.home.Dir)
	base := "https://127.0.0.1:" + port

	if a := tcpGet(t, c, base+"/apps", bearer(tok)); a.status != http.StatusOK || !strings.Contains(a.body, `"name":"web"`) {
		t.Fatalf("with the token: %+v", a)
	}
	// The certificate is for localhost too, the Heroku CLI's other name.
	if a := tcpGet(t, c, "https://localhost:"+port+"/account", bearer(tok)); a.status != http.StatusOK || !strings.Contains(a.body, AccountEmail) {
		t.Errorf("localhost, /account: %+v", a)
	}
	for what, set := range map[string]func(*http.Request){
		"no header":                     nil,
		"Bearer undefined":              bearer("undefined"),
		"an empty token":                func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") },
		"a wrong token":                 bearer(tok[:len(tok)-1] + "x"),
		"Basic, the token as user name": func(r *http.Request) { r.SetBasicAuth(tok, "") },
		"the token bare":                func(r *http.Request) { r.Header.Set("Authorization", tok) },
	} {
		a := tcpGet(t, c, base+"/apps", set)
		if a.status != http.StatusUnauthorized || a.body != unauthorized || a.auth != `Basic realm="dyno"` {
			t.Errorf("%s: %+v, want 401 %s with WWW-Authenticate", what, a, unauthorized)
		}
	}
	// git's credential helper: Basic, the token as the password.
	if a := tcpGet(t, c, base+"/apps/web", func(r *http.Request) { r.SetBasicAuth("heroku", tok) }); a.status != http.StatusOK {
		t.Errorf("Basic with the token: %+v", a)
	}
	if a := tcpGet(t, c, base+"/apps/web", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+tok) }); a.status != http.StatusOK {
		t.Errorf("a lower-case scheme: %+v", a)
	}

	// A new token takes effect at the next request, without a restart.
	fresh, err := apitoken.Regenerate(apiDir, clientPath)
	if err != nil {
		t.Fatal(err)
	}
	if a := tcpGet(t, c, base+"/apps", bearer(tok)); a.status != http.StatusUnauthorized || a.body != unauthorized {
		t.Errorf("the old token after regenerate: %+v", a)
	}
	if a := tcpGet(t, c, base+"/apps", bearer(fresh)); a.status != http.StatusOK {
		t.Errorf("the new token: %+v", a)
	}

	// The socket needs no token.
	var apps []map[string]any
	if err := td.client.Do(context.Background(), http.MethodGet, "/apps", nil, &apps); err != nil || len(apps) != 1 {
		t.Errorf("the socket: %v, %v", apps, err)
	}

	// The listener ends with the daemon.
	td.shutdown()
	if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
		c.Close()
		t.Error("the API still listens on TCP after shutdown")
	}
}

func TestAPIOverTCPRefusesWhatIsNotTLS12(t *testing.T) {
	t.Parallel()
	td, port := startTCPDaemon(t)
	tok, err := apitoken.Token(APIDir(td.home.Dir), filepath.Join(t.TempDir(), "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	// A client that connects and says nothing holds up no other: the
	// handshake is not in Accept's way.
	silent, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	c := trustingClient(t, td.home.Dir)
	if a := tcpGet(t, c, "https://127.0.0.1:"+port+"/apps", bearer(tok)); a.status != http.StatusOK {
		t.Fatalf("beside a silent client: %+v", a)
	}

	old := trustingClient(t, td.home.Dir)
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
	if _, err := old.Get("https://127.0.0.1:" + port + "/apps"); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	// Plain HTTP gets no answer from the API.
	plain := &http.Client{Timeout: 20 * time.Second}
	if resp, err := plain.Get("http://127.0.0.1:" + port + "/apps"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP answered 200")
		}
	}
	// A client that does not trust the authority refuses the server.
	var unknown x509.UnknownAuthorityError
	if _, err := (&http.Client{Timeout: 20 * time.Second}).Get("https://127.0.0.1:" + port + "/apps"); !errors.As(err, &unknown) {
		t.Errorf("a client with the system's roots: %v, want an unknown authority", err)
	}
}
