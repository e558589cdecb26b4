package dashboard

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// fakeSource is an app store in memory: what the dashboard's own tests
// and benchmarks show, without a daemon.
type fakeSource struct {
	mu       sync.Mutex
	apps     map[string]*AppView
	config   map[string]map[string]string
	metrics  map[string]*Metrics
	logs     map[string][][]byte
	watchers map[string][]func(Change)
	watched  chan struct{} // a Watch began
	done     []string      // the actions taken, "scale web 3 basic by u"
}

func newFakeSource() *fakeSource {
	return &fakeSource{apps: map[string]*AppView{}, config: map[string]map[string]string{}, metrics: map[string]*Metrics{},
		logs: map[string][][]byte{}, watchers: map[string][]func(Change){}, watched: make(chan struct{}, 64)}
}

// addApp adds an app with n web dynos and a week of metrics.
func (f *fakeSource) addApp(name string, n int, now time.Time) *AppView {
	a := &AppView{Name: name, State: StateRunning, URL: "http://" + name + ".localhost:8080/", Release: 3,
		Formation:   []FormationRow{{Type: "web", Quantity: n, Size: "basic", Command: "bin/web"}, {Type: "worker", Quantity: 0, Size: "basic", Command: "bin/worker"}},
		ConfigNames: []string{"DATABASE_URL", "SECRET"}, Sizes: []string{"basic", "standard-1x"}}
	for i := 1; i <= n; i++ {
		a.Dynos = append(a.Dynos, DynoRow{Name: fmt.Sprintf("web.%d", i), Type: "web", Size: "basic", State: "up",
			Since: now.Add(-time.Hour), Memory: int64(100+i) << 20, Quota: 512 << 20, CPU: 0.05})
	}
	for v := 3; v >= 1; v-- {
		a.Releases = append(a.Releases, ReleaseRow{Version: v, Description: fmt.Sprintf("Deploy %d", v), User: "alice", Time: now.Add(-time.Duration(v) * time.Hour), Status: "succeeded", Current: v == 3})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps[name] = a
	f.config[name] = map[string]string{"DATABASE_URL": "postgres://u:p@localhost/db", "SECRET": "s3cret"}
	f.metrics[name] = weekOf(now, n)
	return a
}

// weekOf is a week of 10-minute points for an app of n web dynos.
func weekOf(now time.Time, n int) *Metrics {
	from := now.Add(-7 * 24 * time.Hour)
	m := &Metrics{From: from, To: now, Step: 10 * time.Minute}
	var mem, max, cpu, req, p50, p95, p99, c2, c5 []Point
	for t := from; t.Before(now); t = t.Add(10 * time.Minute) {
		x := float64(t.Unix()%86400) / 86400 * 2 * math.Pi
		mem = append(mem, Point{t, (200 + 50*math.Sin(x)) * (1 << 20)})
		max = append(max, Point{t, (300 + 80*math.Sin(x)) * (1 << 20)})
		cpu = append(cpu, Point{t, 0.2 + 0.1*math.Cos(x)})
		req = append(req, Point{t, float64(100*n) * (1.2 + math.Sin(x))})
		p50 = append(p50, Point{t, 20 + 5*math.Sin(x)})
		p95 = append(p95, Point{t, 120 + 40*math.Sin(x)})
		p99 = append(p99, Point{t, 400 + 100*math.Sin(x)})
		c2 = append(c2, Point{t, float64(95*n) * (1.2 + math.Sin(x))})
		c5 = append(c5, Point{t, float64(n)})
	}
	m.Types = []TypeMetrics{{Type: "web", Memory: mem, MemoryMax: max, Quota: 512 << 20, CPU: cpu, CPUMax: cpu}}
	m.Requests, m.P50, m.P95, m.P99 = req, p50, p95, p99
	m.Classes = []Series{{"2xx", c2}, {"5xx", c5}}
	m.Codes = []Series{{"H12", c5}}
	for i := range 20 {
		m.Events = append(m.Events, Event{Time: from.Add(time.Duration(i) * 8 * time.Hour), Kind: "release", Text: fmt.Sprintf("v%d Deploy by alice", i+1)})
	}
	return m
}

func (f *fakeSource) app(name string) (*AppView, error) {
	a, ok := f.apps[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, ErrNoApp)
	}
	return a, nil
}

func (f *fakeSource) Apps(ctx context.Context) ([]AppSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []AppSummary
	for _, n := range slices.Sorted(maps.Keys(f.apps)) {
		a := f.apps[n]
		out = append(out, AppSummary{Name: n, State: a.State, Release: a.Release, Formation: "web=1:basic", URL: a.URL})
	}
	return out, nil
}

func (f *fakeSource) App(ctx context.Context, name string) (*AppView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.app(name)
	if err != nil {
		return nil, err
	}
	c := *a
	return &c, nil
}

func (f *fakeSource) ConfigVars(ctx context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.app(name); err != nil {
		return nil, err
	}
	return f.config[name], nil
}

func (f *fakeSource) Metrics(ctx context.Context, name string, r Range) (*Metrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.app(name); err != nil {
		return nil, err
	}
	return f.metrics[name], nil
}

func (f *fakeSource) did(format string, args ...any) {
	f.mu.Lock()
	f.done = append(f.done, fmt.Sprintf(format, args...))
	f.mu.Unlock()
}

func (f *fakeSource) Restart(ctx context.Context, app, dyno, user string) error {
	f.did("restart %s %q by %s", app, dyno, user)
	return nil
}

func (f *fakeSource) Scale(ctx context.Context, app, typ string, q int, size, user string) error {
	if q > 100 {
		return fmt.Errorf("%s would have %d dynos, over the limit of 100 of a type", typ, q)
	}
	f.did("scale %s %s=%d:%s by %s", app, typ, q, size, user)
	return nil
}

func (f *fakeSource) Rollback(ctx context.Context, app string, v int, user string) (int, error) {
	f.did("rollback %s v%d by %s", app, v, user)
	return 4, nil
}

func (f *fakeSource) Maintenance(ctx context.Context, app string, on bool, user string) error {
	f.did("maintenance %s %v by %s", app, on, user)
	return nil
}

func (f *fakeSource) actions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.done)
}

func (f *fakeSource) Watch(ctx context.Context, app string, changed func(Change)) error {
	f.mu.Lock()
	f.watchers[app] = append(f.watchers[app], changed)
	f.mu.Unlock()
	f.watched <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// change tells the app's watchers c, once one watches.
func (f *fakeSource) change(app string, c Change) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watchers[app] {
		w(c)
	}
	return len(f.watchers[app])
}

func (f *fakeSource) Logs(ctx context.Context, app string, n int, send func([][]byte) bool) error {
	f.mu.Lock()
	lines := f.logs[app]
	f.mu.Unlock()
	if n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	if !send(lines) {
		return nil
	}
	// Nothing more comes: the stream hears from the source as the
	// contract says, more often than the daemon's 25 s.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if !send(nil) {
				return nil
			}
		}
	}
}

func (f *fakeSource) User(ctx context.Context) (string, error) { return "dyno@localhost", nil }

// fakeTokens is one token.
type fakeTokens struct {
	mu    sync.Mutex
	token string
}

func (t *fakeTokens) Verify(tok string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tok != "" && tok == t.token
}

func (t *fakeTokens) Hash() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == "" {
		return nil
	}
	h := sha256.Sum256([]byte(t.token))
	return h[:]
}

func (t *fakeTokens) set(tok string) {
	t.mu.Lock()
	t.token = tok
	t.mu.Unlock()
}

// hostile is text an app's owner controls (a config var name, a release
// description, a log line) that tries to become markup.
const hostile = `</script><script>alert(1)</script><img src=x onerror=alert(2)>"'`

func contains(s string, subs ...string) string {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return sub
		}
	}
	return ""
}
