package daemon

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/logstore"
)

// A tail over the API shows the lines other processes append to the
// store (the CLI's app[api] events), not only the daemon's own, and
// each line once.
func TestAPILogStreamTailsTheStore(t *testing.T) {
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { h.Create("demo", "test") }})
	a, _ := td.d.app("demo")
	a.logs.Line("api", []byte("before the tail"))
	req, _ := http.NewRequest(http.MethodGet, "http://dyno/apps/demo/log-stream?tail=true&lines=1", nil)
	resp, err := td.client.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// A line that never comes fails the test rather than hang it.
	stop := time.AfterFunc(20*time.Second, func() { resp.Body.Close() })
	defer stop.Stop()
	r := bufio.NewReader(resp.Body)
	readLine := func() string {
		t.Helper()
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%q, %v", l, err)
		}
		return l
	}
	if l := readLine(); !strings.Contains(l, "app[api]: before the tail") {
		t.Fatalf("history: %q", l)
	}
	if err := logstore.AppendLines(a.app.LogsDir(), "app", "api", time.Now(), "Set FOO config vars by user ann"); err != nil {
		t.Fatal(err)
	}
	if l := readLine(); !strings.Contains(l, "app[api]: Set FOO config vars by user ann") {
		t.Errorf("appended by another process: %q", l)
	}
	a.logs.Line("api", []byte("the daemon's own"))
	if l := readLine(); !strings.Contains(l, "app[api]: the daemon's own") {
		t.Errorf("the daemon's line: %q", l)
	}
	logstore.AppendLines(a.app.LogsDir(), "app", "api", time.Now(), "last")
	if l := readLine(); !strings.Contains(l, "app[api]: last") {
		t.Errorf("after the daemon's line: %q (a line twice?)", l)
	}
}
