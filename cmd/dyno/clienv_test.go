package main

// auth:token, auth:regenerate and cli-env heroku through the binary, as
// this user, with no daemon: they read settings and files only. The
// authority is made as the daemon makes it, with apitls.

import (
	"bytes"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/daemon/apitls"
)

// apiEnv is a DYNO_HOME with dyno.toml and a config folder of its own.
type apiEnv struct {
	home, config, userHome string
}

// newAPIEnv writes settings to dyno.toml of a new home under a folder
// named dir (a name with a quote in it tests the shell quoting) and,
// unless settings is "", makes the daemon's authority.
func newAPIEnv(t *testing.T, dir, settings string) *apiEnv {
	t.Helper()
	e := &apiEnv{home: filepath.Join(t.TempDir(), dir), config: t.TempDir(), userHome: t.TempDir()}
	if err := os.MkdirAll(e.home, 0o700); err != nil {
		t.Fatal(err)
	}
	if settings != "" {
		if err := os.WriteFile(filepath.Join(e.home, "dyno.toml"), []byte(settings), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := apitls.NewIssuer(daemon.APIDir(e.home), apitls.Names("127.0.0.1", nil), nil); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *apiEnv) environ(extra ...string) []string {
	return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "DYNO_HOME=" + e.home, "XDG_CONFIG_HOME=" + e.config,
		"HOME=" + e.userHome, "NO_COLOR=1", "DYNO=" + dynoBin, "GIT_CONFIG_NOSYSTEM=1"}, extra...)
}

// dyno runs the binary and returns its stdout, stderr and exit status.
func (e *apiEnv) dyno(t *testing.T, extra []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(dynoBin, args...)
	cmd.Env = e.environ(extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func (e *apiEnv) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, st := e.dyno(t, nil, args...)
	if st != 0 {
		t.Fatalf("dyno %s: exit %d: %s%s", strings.Join(args, " "), st, out, errOut)
	}
	return out
}

// fails runs dyno, wants it to fail with one line on stderr holding
// each of want.
func (e *apiEnv) fails(t *testing.T, want []string, args ...string) {
	t.Helper()
	out, errOut, st := e.dyno(t, nil, args...)
	line := strings.TrimSuffix(errOut, "\n")
	ok := st != 0 && out == "" && strings.HasPrefix(line, "dyno: ") && !strings.Contains(line, "\n")
	for _, w := range want {
		ok = ok && strings.Contains(line, w)
	}
	if !ok {
		t.Errorf("dyno %s: exit %d, %q %q; want one line with %q", strings.Join(args, " "), st, out, errOut, want)
	}
}

// evalEnv evals cli-env heroku in sh with extra in the environment,
// runs then, and returns the variables env prints after, and then's
// output.
func (e *apiEnv) evalEnv(t *testing.T, extra []string, then string) (map[string]string, string) {
	t.Helper()
	script := `set -e; eval "$("$DYNO" cli-env heroku)"; env; echo '--- then'; ` + then
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = e.environ(extra...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	before, after, _ := strings.Cut(string(out), "--- then\n")
	vars := map[string]string{}
	for _, line := range strings.Split(before, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	return vars, after
}

func TestAuthTokenIsMadeOnce(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, "home", "")
	tok := e.must(t, "auth:token")
	if len(strings.TrimSpace(tok)) != 43 {
		t.Fatalf("auth:token: %q", tok)
	}
	if again := e.must(t, "auth", "token"); again != tok {
		t.Errorf("auth:token again: %q, want %q", again, tok)
	}
	clientPath := filepath.Join(e.config, "dyno", "api-token")
	if fi, err := os.Stat(clientPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v", clientPath, fi, err)
	}
	fresh := e.must(t, "auth:regenerate")
	if fresh == tok || e.must(t, "auth:token") != fresh {
		t.Errorf("auth:regenerate: %q, then auth:token %q", fresh, e.must(t, "auth:token"))
	}
	if out := e.must(t, "auth:whoami"); out != daemon.AccountEmail+"\n" {
		t.Errorf("auth:whoami: %q", out)
	}
	// The token's hash without the token: another user's, or another
	// machine's.
	os.Remove(clientPath)
	e.fails(t, []string{clientPath, "dyno auth:regenerate makes a new token"}, "auth:token")
}

func TestCliEnvHeroku(t *testing.T) {
	t.Parallel()
	// A quote in the home's path: every value must reach the shell whole.
	e := newAPIEnv(t, "it's home", "[api]\nlisten = \"127.0.0.1:5055\"\n")
	vars, then := e.evalEnv(t, nil, `git config --get-urlmatch http.sslCAInfo https://127.0.0.1:5055/demo.git; git config --get-urlmatch http.sslCAInfo https://example.com/x.git || echo none`)
	ca := apitls.CAPath(daemon.APIDir(e.home))
	tok := strings.TrimSpace(e.must(t, "auth:token"))
	for k, want := range map[string]string{
		"HEROKU_HOST": "https://127.0.0.1:5055", "HEROKU_PARTICLEBOARD_URL": "https://127.0.0.1:5055",
		"HEROKU_API_KEY": tok, "DISABLE_TELEMETRY": "true", "HEROKU_SKIP_NEW_VERSION_CHECK": "true",
		"HEROKU_DISABLE_AUTOUPDATE": "true", "NODE_EXTRA_CA_CERTS": ca,
		"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.https://127.0.0.1:5055/.sslCAInfo", "GIT_CONFIG_VALUE_0": ca,
	} {
		if vars[k] != want {
			t.Errorf("%s=%q, want %q", k, vars[k], want)
		}
	}
	if _, err := exec.LookPath("git"); err == nil && then != ca+"\nnone\n" {
		t.Errorf("git's sslCAInfo for the daemon's URL, then another's: %q, want %s alone", then, ca)
	}
	out := e.must(t, "cli-env", "heroku")
	if !strings.HasPrefix(out, "# eval \"$(dyno cli-env heroku)\"") || strings.Count(out, "\nexport ") != 10 {
		t.Errorf("cli-env heroku:\n%s", out)
	}
}

// The user's NODE_EXTRA_CA_CERTS and GIT_CONFIG_* are kept: Node gets a
// bundle of their certificates and the authority, git one entry more.
func TestCliEnvKeepsTheUsersSettings(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, "home", "[api]\nlisten = \"localhost:5055\"\n")
	now := time.Now()
	certPEM, keyPEM := testutil.SelfSigned(t, now, now.Add(time.Hour), "corp.example")
	theirs := filepath.Join(t.TempDir(), "corp.pem")
	os.WriteFile(theirs, append(certPEM, keyPEM...), 0o644)
	extra := []string{"NODE_EXTRA_CA_CERTS=" + theirs, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=Someone"}
	vars, then := e.evalEnv(t, extra, `git config user.name; eval "$("$DYNO" cli-env heroku)"; echo "$GIT_CONFIG_COUNT $NODE_EXTRA_CA_CERTS"`)

	bundle := filepath.Join(daemon.APIDir(e.home), "ca-bundle-"+strconv.Itoa(os.Getuid())+".pem")
	ca := apitls.CAPath(daemon.APIDir(e.home))
	if vars["HEROKU_HOST"] != "https://localhost:5055" || vars["NODE_EXTRA_CA_CERTS"] != bundle ||
		vars["GIT_CONFIG_COUNT"] != "2" || vars["GIT_CONFIG_KEY_1"] != "http.https://localhost:5055/.sslCAInfo" || vars["GIT_CONFIG_VALUE_1"] != ca {
		t.Errorf("HEROKU_HOST=%s NODE_EXTRA_CA_CERTS=%s GIT_CONFIG_COUNT=%s KEY_1=%s VALUE_1=%s",
			vars["HEROKU_HOST"], vars["NODE_EXTRA_CA_CERTS"], vars["GIT_CONFIG_COUNT"], vars["GIT_CONFIG_KEY_1"], vars["GIT_CONFIG_VALUE_1"])
	}
	// A second eval in the same shell: git one more, the bundle the same.
	if _, err := exec.LookPath("git"); err == nil && then != "Someone\n3 "+bundle+"\n" {
		t.Errorf("the user's git config, then a second eval: %q", then)
	}
	b, err := os.ReadFile(bundle)
	fi, _ := os.Stat(bundle)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("bundle: %v, %v", fi, err)
	}
	caPEM, _ := os.ReadFile(ca)
	var blocks [][]byte
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Errorf("the bundle holds a %s", block.Type)
		}
		blocks = append(blocks, pem.EncodeToMemory(block))
	}
	if len(blocks) != 2 || !bytes.Equal(blocks[0], certPEM) || !bytes.Equal(blocks[1], caPEM) {
		t.Errorf("bundle: %d certificates, want the user's then the authority:\n%s", len(blocks), b)
	}
}

func TestCliEnvRefusals(t *testing.T) {
	t.Parallel()
	none := newAPIEnv(t, "home", "")
	toml := filepath.Join(none.home, "dyno.toml")
	none.fails(t, []string{toml, "has no [api] listen", `add [api] listen = "127.0.0.1:5055"`}, "cli-env", "heroku")
	none.fails(t, []string{"dyno cli-env heroku"}, "cli-env")
	none.fails(t, []string{`"foreman" is not a CLI`, "dyno cli-env heroku"}, "cli-env", "foreman")

	// [api] listen set, but no daemon has started with it yet.
	os.WriteFile(toml, []byte("[api]\nlisten = \"127.0.0.1:5055\"\n"), 0o644)
	none.fails(t, []string{filepath.Join(none.home, "api", "ca.pem"), "is not there yet", "start it"}, "cli-env", "heroku")

	// An address the Heroku CLI does not take.
	os.WriteFile(toml, []byte("[api]\nlisten = \"127.0.0.2:5055\"\n"), 0o644)
	none.fails(t, []string{toml, `"127.0.0.2:5055"`, `listen on "127.0.0.1:5055"`}, "cli-env", "heroku")

	e := newAPIEnv(t, "home", "[api]\nlisten = \"127.0.0.1:5055\"\n")
	out, errOut, st := e.dyno(t, []string{"GIT_CONFIG_COUNT=x"}, "cli-env", "heroku")
	if st == 0 || out != "" || !strings.Contains(errOut, `GIT_CONFIG_COUNT is "x"`) {
		t.Errorf("a bad GIT_CONFIG_COUNT: %d %q %q", st, out, errOut)
	}
	// GIT_SSL_CAINFO would hide the URL's sslCAInfo from git: said on
	// stderr, which eval does not swallow.
	out, errOut, st = e.dyno(t, []string{"GIT_SSL_CAINFO=/etc/ssl/certs/ca-certificates.crt"}, "cli-env", "heroku")
	if st != 0 || !strings.Contains(out, "export HEROKU_HOST=") || !strings.Contains(errOut, "GIT_SSL_CAINFO is set") {
		t.Errorf("GIT_SSL_CAINFO set: %d %q %q", st, out, errOut)
	}
}
