package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// drains, drains:add and drains:remove without a daemon: recorded in
// the ledger, Heroku's wording, a bad URL refused in one line with
// nothing recorded, no release made.
func TestDrainsCommands(t *testing.T) {
	t.Parallel()
	e := newIsolatedEnv(t, nil)
	e.must(t, "apps:create", "demo")
	if out := e.must(t, "drains", "-a", "demo"); out != "⬢ demo has no drains\n" {
		t.Errorf("drains: %q", out)
	}
	wantLines(t, e.must(t, "drains:add", "syslog+tls://logs.example.com:6514", "-a", "demo"),
		"Successfully added drain syslog+tls://logs.example.com:6514\n", "dyno: no daemon runs ⬢ demo")
	out := e.must(t, "drains", "-a", "demo")
	if !regexp.MustCompile(`^=== Drains\nsyslog\+tls://logs\.example\.com:6514 \(d\.[0-9a-f-]{36}\)\n$`).MatchString(out) {
		t.Errorf("drains after add:\n%q", out)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.must(t, "drains", "--json", "-a", "demo")), &list); err != nil || len(list) != 1 || list[0]["url"] != "syslog+tls://logs.example.com:6514" {
		t.Fatalf("drains --json: %v, %v", list, err)
	}
	for _, k := range []string{"id", "url", "token", "created_at", "updated_at", "addon"} {
		if _, ok := list[0][k]; !ok {
			t.Errorf("drains --json lacks %q: %v", k, list[0])
		}
	}
	e.failLine(t, `"http://logs.example.com/x" would send the app's logs unencrypted; use https://logs.example.com/x`, "drains:add", "http://logs.example.com/x", "-a", "demo")
	e.failLine(t, "already been taken", "drains:add", "syslog+tls://logs.example.com:6514", "-a", "demo")
	e.failLine(t, "give the drain's URL", "drains:add", "-a", "demo")
	e.failLine(t, `has no drain with URL or token "d.nope"`, "drains:remove", "d.nope", "-a", "demo")
	if n := strings.Count(e.must(t, "drains", "-a", "demo"), "\n"); n != 2 {
		t.Errorf("a refused drains:add or :remove changed the list")
	}
	token := list[0]["token"].(string)
	wantLines(t, e.must(t, "drains:remove", token, "-a", "demo"), "Successfully removed drain syslog+tls://logs.example.com:6514\n")
	if out := e.must(t, "drains", "-a", "demo"); out != "⬢ demo has no drains\n" {
		t.Errorf("drains after remove: %q", out)
	}
	if out := e.must(t, "releases", "-a", "demo"); strings.Contains(out, "v2") {
		t.Errorf("a drain made a release:\n%s", out)
	}
}

// Through the binary: a drain added before the daemon starts gets the
// dyno's own output and the dyno manager's lines, framed for syslog.
func TestDaemonDrain(t *testing.T) {
	// Not parallel, as the other daemon tests: every daemon hands out
	// dyno ports from 20000.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	frames := make(chan string, 1000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			go func() {
				br := bufio.NewReader(c)
				for {
					s, err := br.ReadString(' ')
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(strings.TrimSpace(s))
					b := make([]byte, n)
					if _, err := io.ReadFull(br, b); err != nil {
						return
					}
					frames <- string(b)
				}
			}()
		}
	}()

	e := newIsolatedEnv(t, nil)
	e.deployFixture(t, "drained", "web: echo hello from the dyno; exec python3 -m http.server $PORT\n")
	e.must(t, "drains:add", "syslog://"+ln.Addr().String(), "-a", "drained")
	var list []map[string]any
	json.Unmarshal([]byte(e.must(t, "drains", "--json", "-a", "drained")), &list)
	token, _ := list[0]["token"].(string)
	e.startDaemon(t)

	want := map[string]bool{
		"<190>1 %s " + token + " app web.1 - - hello from the dyno":                  false,
		"<134>1 %s " + token + " heroku web.1 - - State changed from starting to up": false,
	}
	timeout := time.After(30 * time.Second)
	for left := len(want); left > 0; {
		select {
		case f := <-frames:
			// The time is the stored line's.
			fields := strings.SplitN(f, " ", 3)
			if len(fields) < 3 {
				t.Fatalf("frame %q", f)
			}
			key := fields[0] + " %s " + fields[2]
			if seen, ok := want[key]; ok && !seen {
				want[key] = true
				left--
			}
		case <-timeout:
			t.Fatalf("the drain did not get %v in 30s", want)
		}
	}
	e.waitPs(t, "drained", `(?m)^web\.1: up `)
}
