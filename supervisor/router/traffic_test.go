package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLatencyBucket(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {time.Millisecond, 0}, {time.Millisecond + 1, 1}, {5 * time.Millisecond, 3},
		{999 * time.Millisecond, 17}, {time.Second, 17}, {10 * time.Second, 22}, {time.Hour, LatencyBuckets - 1},
	} {
		if got := latencyBucket(c.d); got != c.want {
			t.Errorf("latencyBucket(%v) = %d, want %d", c.d, got, c.want)
		}
		if b := LatencyBound(c.want); b >= 0 && c.d > b {
			t.Errorf("%v is over its bucket's bound %v", c.d, b)
		}
	}
}

func TestTakeTrafficCountsAndResets(t *testing.T) {
	a := NewApp("web", time.Now)
	a.traffic.count(0, OK, 200, 3*time.Millisecond)
	a.traffic.count(3, OK, 404, 40*time.Millisecond)
	a.traffic.count(trafficShards+1, H12, 503, -1)
	got := a.TakeTraffic()
	if got.Requests != 3 || got.Classes[1] != 1 || got.Classes[3] != 1 || got.Classes[4] != 1 {
		t.Errorf("requests %d, classes %v; want 3, one 2xx, one 4xx, one 5xx", got.Requests, got.Classes)
	}
	if got.Codes[H12] != 1 || got.Codes[OK] != 0 {
		t.Errorf("codes %v; want one H12 and no OK counted", got.Codes)
	}
	if got.Latency[2] != 1 || got.Latency[9] != 1 {
		t.Errorf("latency %v; want one in bucket 2 (3 ms) and one in 9 (<=50 ms), the H12 in none", got.Latency)
	}
	if again := a.TakeTraffic(); again.Requests != 0 || again.Latency[2] != 0 {
		t.Errorf("second take %+v; want zero", again)
	}
}

// Both engines count what they log: the event loop and the goroutine
// path each write lines of their own.
func TestEnginesCountTraffic(t *testing.T) {
	for name, serve := range map[string]serveFunc{"goroutines": serveGoroutines, "loops": serveLoops} {
		t.Run(name, func(t *testing.T) {
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/missing" {
					http.NotFound(w, r)
					return
				}
				io.WriteString(w, "ok")
			}))
			defer be.Close()
			e := newEnv(t, serve, Config{})
			e.app.Update(Running, []Backend{{Dyno: "web.1", Addr: strings.TrimPrefix(be.URL, "http://")}})
			for _, path := range []string{"/", "/", "/missing"} {
				req, _ := http.NewRequest("GET", "http://"+e.addr+path, nil)
				req.Host = "app.localhost"
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				e.line("status=")
			}
			got := e.app.TakeTraffic()
			var timed uint64
			for _, n := range got.Latency {
				timed += n
			}
			if got.Requests != 3 || got.Classes[1] != 2 || got.Classes[3] != 1 || timed != 3 {
				t.Fatalf("counted %+v; want 3 requests, two 2xx, one 4xx, three timed", got)
			}
		})
	}
}
