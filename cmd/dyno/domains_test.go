package main

// Custom domains, certificates, the app's URL and dyno open, through
// the binary as an unprivileged user.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dyno-run/dyno/internal/testutil"
)

// failLine runs dyno, wants it to fail with one line holding want, and
// returns the line.
func (e *isolatedEnv) failLine(t *testing.T, want string, args ...string) string {
	t.Helper()
	out, st := e.dynoOut(t, args...)
	if st == 0 || !strings.Contains(out, want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("dyno %s: exit %d, %q; want one line with %q", strings.Join(args, " "), st, out, want)
	}
	return out
}

func TestDomainsCommands(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	wantLines(t, e.must(t, "apps:create", "demo"), "Creating ⬢ demo... done\nhttp://demo.localhost:8080/ | "+filepath.Join(e.home, "apps", "demo", "repo.git")+"\n")
	e.must(t, "apps:create", "other")
	wantLines(t, e.must(t, "apps:info", "-a", "demo"), "\nWeb URL:         http://demo.localhost:8080/\n")
	if out := e.must(t, "open", "-a", "demo"); out != "http://demo.localhost:8080/\n" {
		t.Errorf("open: %q", out)
	}
	if out := e.must(t, "domains", "-a", "demo"); out != "=== demo Heroku Domain\ndemo.localhost\n" {
		t.Errorf("domains with none custom: %q", out)
	}

	wantLines(t, e.must(t, "domains:add", "WWW.Example.com", "-a", "demo"),
		"Adding www.example.com to ⬢ demo... done\n",
		"point www.example.com at this machine (DNS Target demo.localhost); the router listens on 127.0.0.1:8080",
		"dyno: no daemon runs ⬢ demo; the change applies when it starts")
	e.must(t, "domains:add", "*.example.org", "-a", "demo")
	e.must(t, "domains", "add", "example.net", "-a", "demo")
	want := "=== demo Heroku Domain\ndemo.localhost\n\n=== demo Custom Domains\n" +
		"Domain Name      DNS Record Type  DNS Target      SNI Endpoint\n" +
		"───────────────  ───────────────  ──────────────  ────────────\n" +
		"*.example.org    CNAME            demo.localhost\n" +
		"example.net      ALIAS or ANAME   demo.localhost\n" +
		"www.example.com  CNAME            demo.localhost\n"
	if out := e.must(t, "domains", "-a", "demo"); out != want {
		t.Errorf("domains:\n%s\nwant:\n%s", out, want)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.must(t, "domains", "--json", "-a", "demo")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 || list[0]["kind"] != "heroku" || list[0]["hostname"] != "demo.localhost" || list[3]["hostname"] != "www.example.com" || list[3]["cname"] != "demo.localhost" {
		t.Errorf("domains --json: %v", list)
	}

	// Refused with one line, the ledger unchanged.
	ledgerPath := filepath.Join(e.home, "apps", "other", "ledger.jsonl")
	before, _ := os.ReadFile(ledgerPath)
	e.failLine(t, "dyno: www.example.com is already added to ⬢ demo; remove it there first (dyno domains:remove www.example.com -a demo)", "domains:add", "www.example.com", "-a", "other")
	e.failLine(t, "dyno: demo.localhost is the default hostname of ⬢ demo", "domains:add", "demo.localhost", "-a", "other")
	e.failLine(t, `dyno: "*.com" is not a domain`, "domains:add", "*.com", "-a", "other")
	e.failLine(t, "Domain already added to this app", "domains:add", "example.net", "-a", "demo")
	e.failLine(t, "give the domain: dyno domains:add www.example.com -a APP", "domains:add", "-a", "other")
	if after, _ := os.ReadFile(ledgerPath); string(after) != string(before) {
		t.Error("a refused domain changed the ledger")
	}
	// An app named so that its default hostname is another's domain.
	e.must(t, "domains:add", "blog.localhost", "-a", "other")
	e.failLine(t, "dyno: blog.localhost is a custom domain of ⬢ other", "apps:create", "blog")

	wantLines(t, e.must(t, "domains:remove", "www.example.com", "-a", "demo"), "Removing www.example.com from ⬢ demo... done\n")
	e.failLine(t, "Couldn't find that domain: www.example.com is not a domain of ⬢ demo", "domains:remove", "www.example.com", "-a", "demo")
	e.must(t, "domains:add", "www.example.com", "-a", "other")
	wantLines(t, e.must(t, "domains:clear", "-a", "demo"), "Removing all domains from ⬢ demo... done\n")
	if out := e.must(t, "domains", "-a", "demo"); out != "=== demo Heroku Domain\ndemo.localhost\n" {
		t.Errorf("domains after clear: %q", out)
	}
	e.must(t, "releases:verify", "-a", "demo")

	// The router's settings change the URLs; a bad one is one line.
	toml := filepath.Join(e.home, "dyno.toml")
	if err := os.WriteFile(toml, []byte("[router]\nlisten = \":80\"\ndomain = \"apps.test\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.must(t, "open", "-a", "demo", "/a/b?c=d"); out != "http://demo.apps.test/a/b?c=d\n" {
		t.Errorf("open on port 80: %q", out)
	}
	wantLines(t, e.must(t, "domains", "-a", "demo"), "=== demo Heroku Domain\ndemo.apps.test\n")
	os.WriteFile(toml, []byte("[router]\nlisten = \"off\"\n"), 0o644)
	e.failLine(t, "the router is off", "open", "-a", "demo")
	if out := e.must(t, "apps:info", "-a", "demo"); strings.Contains(out, "Web URL") {
		t.Errorf("apps:info with the router off: %q", out)
	}
	os.WriteFile(toml, []byte("[router]\nlisten = \"8080\"\n"), 0o644)
	e.failLine(t, toml+`: router.listen: "8080" is not host:port`, "domains", "-a", "demo")
}

// writeCert writes a self-signed certificate for names and its key to
// files the unprivileged user can read, and returns their paths. Keys
// are made by the test, never kept in the repository.
func writeCert(t *testing.T, dir, base string, notAfter time.Time, names ...string) (crt, key string) {
	t.Helper()
	certPEM, keyPEM := testutil.SelfSigned(t, time.Now().Add(-48*time.Hour), notAfter, names...)
	crt, key = filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	os.WriteFile(crt, certPEM, 0o644)
	os.WriteFile(key, keyPEM, 0o644)
	return crt, key
}

func TestCertsCommands(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "demo")
	e.must(t, "domains:add", "www.example.com", "-a", "demo")
	dir := e.project
	later := time.Now().Add(90 * 24 * time.Hour)
	crt, key := writeCert(t, dir, "www", later, "www.example.com")
	defCrt, defKey := writeCert(t, dir, "default", later, "demo.localhost")
	oldCrt, oldKey := writeCert(t, dir, "old", time.Now().Add(-time.Hour), "www.example.com")
	_, otherKey := writeCert(t, dir, "other", later, "www.example.com")
	wildCrt, wildKey := writeCert(t, dir, "wild", later, "*.example.com")

	if out := e.must(t, "certs", "-a", "demo"); out != "⬢ demo has no SSL certificates.\n" {
		t.Errorf("certs with none: %q", out)
	}
	e.failLine(t, "say which domain the certificate is for: --domain demo.localhost", "certs:add", crt, key, "-a", "demo")
	e.failLine(t, "the key does not match the certificate", "certs:add", crt, otherKey, "--domain", "www.example.com", "-a", "demo")
	e.failLine(t, "the certificate expired on", "certs:add", oldCrt, oldKey, "--domain", "www.example.com", "-a", "demo")
	e.failLine(t, "the certificate does not cover demo.localhost: it is for www.example.com", "certs:add", crt, key, "--domain", "demo.localhost", "-a", "demo")
	e.failLine(t, "shop.example.com is not a domain of ⬢ demo; add it first", "certs:add", wildCrt, wildKey, "--domain", "shop.example.com", "-a", "demo")
	e.failLine(t, "read the certificate: open "+filepath.Join(dir, "none.crt"), "certs:add", filepath.Join(dir, "none.crt"), key, "--domain", "www.example.com", "-a", "demo")

	out := e.must(t, "certs:add", crt, key, "--domain", "www.example.com", "-a", "demo")
	wantLines(t, out, "Adding SSL certificate for www.example.com to ⬢ demo... done\n", "Common Name: www.example.com\n",
		"HTTPS is off: set [router] tls_listen")
	fp := regexp.MustCompile(`Fingerprint: (sha256:[0-9a-f]{64})\n`).FindStringSubmatch(out)
	if fp == nil {
		t.Fatalf("no fingerprint in %q", out)
	}
	e.must(t, "certs:add", defCrt, defKey, "--domain", "demo.localhost", "-a", "demo")
	list := e.must(t, "certs", "-a", "demo")
	wantLines(t, list, "=== demo SSL Certificates\nDomain           Common Name      Expires               Fingerprint\n",
		"\nwww.example.com  www.example.com  "+later.UTC().Format("2006-01-02 15:04 UTC")+"  "+fp[1]+"\n", "\ndemo.localhost   demo.localhost   ")
	wantLines(t, e.must(t, "domains", "-a", "demo"), "www.example.com  CNAME            demo.localhost  "+fp[1][:23]+"\n")

	// The key is in a private file of the app, not in the ledger.
	keyFile := filepath.Join(e.home, "apps", "demo", "certs", strings.TrimPrefix(fp[1], "sha256:")+".key")
	var st unix.Stat_t
	if err := unix.Stat(keyFile, &st); err != nil || st.Mode&0o777 != 0o600 {
		t.Errorf("%s: mode %o, %v; want 0600", keyFile, st.Mode&0o777, err)
	}
	ledger, _ := os.ReadFile(filepath.Join(e.home, "apps", "demo", "ledger.jsonl"))
	if strings.Contains(string(ledger), "PRIVATE KEY") || !strings.Contains(string(ledger), fp[1]) {
		t.Error("the ledger holds the key, or not the fingerprint")
	}

	wantLines(t, e.must(t, "certs:remove", "--domain", "demo.localhost", "-a", "demo"), "Removing SSL certificate for demo.localhost from ⬢ demo... done\n")
	e.failLine(t, "⬢ demo has no certificate for demo.localhost", "certs:remove", "--domain", "demo.localhost", "-a", "demo")
	// Removing the domain removes its certificate, and its files.
	e.must(t, "domains:remove", "www.example.com", "-a", "demo")
	if out := e.must(t, "certs", "-a", "demo"); out != "⬢ demo has no SSL certificates.\n" {
		t.Errorf("certs after the domain went: %q", out)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", keyFile, err)
	}
	e.must(t, "releases:verify", "-a", "demo")
}

// On a desktop, open hands the URL to xdg-open and does not wait for
// it; elsewhere it only prints it.
func TestOpenOnADesktop(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "demo")
	bin := e.project
	fifo := filepath.Join(bin, "opened")
	if err := unix.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(fifo, 0o666)
	script := "#!/bin/sh\necho \"$*\" > " + fifo + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(path string, env ...string) {
		t.Helper()
		cmd := e.command("open", "-a", "demo", path)
		cmd.Env = append(cmd.Env, env...)
		for i, v := range cmd.Env {
			if strings.HasPrefix(v, "PATH=") {
				cmd.Env[i] = "PATH=" + bin + ":" + strings.TrimPrefix(v, "PATH=")
			}
		}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "http://demo.localhost:8080/"+path+"\n" {
			t.Fatalf("open %v: %q, %v", env, out, err)
		}
	}
	// No display: xdg-open is on PATH but not run. Had it run, it would
	// wait to open the FIFO until it is read below, and its line would
	// be read too.
	run("no-display")
	run("x", "WAYLAND_DISPLAY=wayland-0")
	got := make(chan string, 1)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- string(b)
	}()
	select {
	case line := <-got:
		if line != "http://demo.localhost:8080/x\n" {
			t.Errorf("xdg-open got %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("xdg-open was not run within 10 s")
	}
}
