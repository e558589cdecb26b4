package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLoadSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if s, err := LoadSettings(filepath.Join(dir, "missing.toml")); err != nil || !reflect.DeepEqual(s, DefaultSettings()) {
		t.Fatalf("missing file: %+v, %v", s, err)
	}
	path := filepath.Join(dir, "dyno.toml")
	os.WriteFile(path, []byte("[sizes.tiny]\nmemory = \"64MB\"\n\n[daemon]\nrestart_cap = \"5m\"\ncycle = \"off\"\n"), 0o644)
	s, err := LoadSettings(path)
	if err != nil || s.RestartCap != 5*time.Minute || s.Cycle >= 0 || s.StopTimeout != 30*time.Second {
		t.Fatalf("%+v, %v", s, err)
	}
	for content, want := range map[string]string{
		"[daemon]\nrestart_kap = \"5m\"\n":  "daemon.restart_kap is not a setting",
		"[daemon]\ncycle = \"daily\"\n":     `daemon.cycle: "daily" is not a duration`,
		"[daemon]\nstop_timeout = \"0s\"\n": "daemon.stop_timeout",
	} {
		os.WriteFile(path, []byte(content), 0o644)
		if _, err := LoadSettings(path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: %v, want %q naming the file", content, err, want)
		}
	}
}

func TestSocketPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "/h/dyno.sock"},
		{[]string{"XDG_RUNTIME_DIR=/run/user/1000"}, "/run/user/1000/dyno/dyno.sock"},
		{[]string{"XDG_RUNTIME_DIR=/run/user/1000", "DYNO_SOCKET=/x.sock"}, "/x.sock"},
	} {
		if got := SocketPath("/h", tc.env); got != tc.want {
			t.Errorf("SocketPath(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// A client finds a daemon whichever unit runs it: a system service's
// socket in DYNO_HOME from a login shell (XDG_RUNTIME_DIR set), and a
// user service's in /run/user/UID from sudo -u (XDG_RUNTIME_DIR unset).
// Not parallel: it moves runUser.
func TestClientSocketPath(t *testing.T) {
	home, run := t.TempDir(), t.TempDir()
	defer func(old string) { runUser = old }(runUser)
	runUser = run
	rt := filepath.Join(run, strconv.Itoa(os.Getuid()))
	userSock := filepath.Join(rt, "dyno", "dyno.sock")
	homeSock := filepath.Join(home, "dyno.sock")
	touch := func(p string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	check := func(env []string, want string) {
		t.Helper()
		if got := ClientSocketPath(home, env); got != want {
			t.Errorf("ClientSocketPath(%v) = %q, want %q", env, got, want)
		}
	}
	session := []string{"XDG_RUNTIME_DIR=" + rt}
	// No daemon: where this environment's own daemon would listen.
	check(nil, homeSock)
	check(session, userSock)
	// A user service's daemon, from a session and from sudo -u.
	touch(userSock)
	check(session, userSock)
	check(nil, userSock)
	check([]string{"XDG_RUNTIME_DIR="}, userSock)
	// DYNO_SOCKET names the one socket to use.
	check([]string{"DYNO_SOCKET=/x.sock"}, "/x.sock")
	// A system service's daemon, in DYNO_HOME, wins when both are there
	// and no XDG_RUNTIME_DIR is set, as it has no runtime directory.
	touch(homeSock)
	check(nil, homeSock)
	check(session, userSock)
	os.Remove(userSock)
	check(session, homeSock)
}

func TestLoadRouterSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "dyno.toml")
	load := func(content string) (Settings, error) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return LoadSettings(path)
	}
	// No [router] table: loopback 8080, APP.localhost; [daemon] still read.
	s, err := load("[daemon]\ncycle = \"off\"\n")
	if err != nil || s.Router != (RouterSettings{Listen: "127.0.0.1:8080", Domain: "localhost"}) || s.Cycle >= 0 {
		t.Fatalf("%+v, %v", s, err)
	}
	if got := s.Router.URL("node-hello"); got != "http://node-hello.localhost:8080/" {
		t.Errorf("URL = %q", got)
	}
	s, err = load("[router]\nlisten = \":80\"\ntls_listen = \":443\"\ndomain = \"Apps.Example.COM\"\n[daemon]\nstop_timeout = \"5s\"\n")
	if err != nil || s.Router != (RouterSettings{Listen: ":80", TLSListen: ":443", Domain: "apps.example.com"}) || s.StopTimeout != 5*time.Second {
		t.Fatalf("%+v, %v", s, err)
	}
	if got := s.Router.URL("web"); got != "http://web.apps.example.com/" {
		t.Errorf("URL on port 80 = %q, want no port", got)
	}
	s, err = load("[router]\nlisten = \"OFF\"\n")
	if err != nil || s.Router.Listen != RouterOff || s.Router.URL("web") != "" {
		t.Fatalf("off: %+v %q, %v", s.Router, s.Router.URL("web"), err)
	}
	s, err = load("[router]\nlisten = \"[::1]:8080\"\n")
	if err != nil || s.Router.URL("web") != "http://web.localhost:8080/" {
		t.Fatalf("IPv6: %+v, %v", s.Router, err)
	}
	for content, want := range map[string]string{
		"[router]\nlisten = \"8080\"\n":                          `router.listen: "8080" is not host:port; write it like "127.0.0.1:8080"`,
		"[router]\nlisten = \":99999\"\n":                        `router.listen: ":99999" has no port from 1 to 65535`,
		"[router]\nlisten = \"example.com:80\"\n":                `router.listen: "example.com:80" has a host that is not an IP address`,
		"[router]\nlisten = 8080\n":                              `router.listen: 8080 is not a string; write it in quotes, like listen = "127.0.0.1:8080"`,
		"[router]\ntls_listen = \"x\"\n":                         `router.tls_listen: "x" is not host:port`,
		"[router]\nlisten = \":8443\"\ntls_listen = \":8443\"\n": `router.tls_listen: ":8443" is router.listen's address too`,
		"[router]\ndomain = \"*.example.com\"\n":                 `router.domain: "*.example.com" is not a hostname`,
		"[router]\ndomain = \"\"\n":                              `router.domain: "" is not a hostname`,
		"[router]\nport = \"80\"\n":                              "router.port is not a setting; use listen, tls_listen or domain",
	} {
		_, err := load(content)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), path+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line naming the file with %q", content, err, want)
		}
	}
}

func TestLoadAPISettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dyno.toml")
	load := func(content string) (APISettings, error) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := LoadSettings(path)
		return s.API, err
	}
	// Off by default.
	if a, err := load("[router]\nlisten = \"off\"\n"); err != nil || a.Listen != "" {
		t.Fatalf("no [api]: %+v, %v", a, err)
	}
	for _, listen := range []string{"127.0.0.1:5055", "localhost:5055", "[::1]:5055", "127.0.0.2:5055"} {
		if a, err := load("[api]\nlisten = \"" + listen + "\"\n"); err != nil || a.Listen != listen {
			t.Errorf("%s: %+v, %v", listen, a, err)
		}
	}
	a, err := load("[api]\nlisten = \":5055\"\npublic = true\nhostnames = [\"Dyno.Example.org.\", \"192.0.2.1\"]\n")
	if err != nil || a.Listen != ":5055" || !a.Public || !slices.Equal(a.Hostnames, []string{"dyno.example.org", "192.0.2.1"}) {
		t.Fatalf("public: %+v, %v", a, err)
	}
	for content, want := range map[string]string{
		"[api]\nlisten = \":5055\"\n":                                                 `api.listen: ":5055" is not a loopback address, so other machines could reach the API; listen on "127.0.0.1:PORT" and reach it through ssh -L, or set public = true in [api]`,
		"[api]\nlisten = \"0.0.0.0:5055\"\npublic = false\n":                          `api.listen: "0.0.0.0:5055" is not a loopback address`,
		"[api]\nlisten = \"192.0.2.1:5055\"\n":                                        `api.listen: "192.0.2.1:5055" is not a loopback address`,
		"[api]\nlisten = \"5055\"\n":                                                  `api.listen: "5055" is not host:port; write it like "127.0.0.1:5055"`,
		"[api]\nlisten = 5055\n":                                                      `api.listen: 5055 is not a string; write it in quotes`,
		"[api]\npublic = \"yes\"\n":                                                   `api.public: yes is not true or false`,
		"[api]\nhostnames = \"dyno.example.org\"\n":                                   `api.hostnames: dyno.example.org is not a list; write it like hostnames = ["dyno.example.org"]`,
		"[api]\nhostnames = [\"*.example.org\"]\n":                                    `api.hostnames: "*.example.org" is not a hostname or IP address`,
		"[api]\nhostnames = [5]\n":                                                    `api.hostnames: 5 is not a string`,
		"[api]\nport = 5055\n":                                                        "api.port is not a setting; use listen, public or hostnames",
		"[router]\nlisten = \"127.0.0.1:5055\"\n[api]\nlisten = \"127.0.0.1:5055\"\n": `api.listen: "127.0.0.1:5055" is the router's address too`,
	} {
		_, err := load(content)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), path+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v, want one line naming the file with %q", content, err, want)
		}
	}
}
