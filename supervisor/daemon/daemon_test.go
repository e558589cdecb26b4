package daemon

// The daemon's loop and API on a real unix socket, in this process: a
// daemon whose dynos are fakes (no isolation needed, so these tests are
// fast), and whose release phases are a function the test gives.
// cmd/dyno's daemon tests run the real binary with isolated dynos.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/internal/testutil"
	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor"
)

// fakeRunner starts fake dynos that run until signalled.
type fakeRunner struct {
	mu      sync.Mutex
	running map[*fakeProc]string
	starts  int
	specs   []supervisor.DynoSpec // every start, in order
}

func newFakeRunner() *fakeRunner { return &fakeRunner{running: map[*fakeProc]string{}} }

func (f *fakeRunner) Start(spec supervisor.DynoSpec) (supervisor.Process, error) {
	p := &fakeProc{f: f, done: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[p] = spec.Name
	f.starts++
	f.specs = append(f.specs, spec)
	return p, nil
}

// started returns the specs of every start so far.
func (f *fakeRunner) started() []supervisor.DynoSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.specs)
}

// names returns the names of the fakes running now, sorted.
func (f *fakeRunner) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.running {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// counts returns how many fakes run now and have ever started.
func (f *fakeRunner) counts() (running, starts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.running), f.starts
}

type fakeProc struct {
	f    *fakeRunner
	once sync.Once
	done chan struct{}
}

func (p *fakeProc) end() {
	p.once.Do(func() {
		p.f.mu.Lock()
		delete(p.f.running, p)
		p.f.mu.Unlock()
		close(p.done)
	})
}

func (p *fakeProc) Pid() int                        { return 0 }
func (p *fakeProc) Signal(sig syscall.Signal) error { p.end(); return nil }
func (p *fakeProc) Kill() error                     { p.end(); return nil }
func (p *fakeProc) Wait() (int, error)              { <-p.done; return 0, nil }

// syncBuffer is the daemon's log, read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testDaemon is a daemon serving its API on a socket in a temp home.
type testDaemon struct {
	t      *testing.T
	d      *Daemon
	home   app.Home
	sock   string
	log    *syncBuffer
	runner *fakeRunner
	read   atomic.Int64 // bytes the server has read from its connections
	phases atomic.Int64 // release phases run
	client *Client
	stop   context.CancelFunc
	done   chan struct{}
}

type daemonOptions struct {
	cfg     Config
	setup   func(h app.Home) // before the daemon starts
	phase   func(rel ledger.Release) int
	noStart bool
	// runner, when set, wraps the fake runner (routing_test.go's web
	// dynos that answer HTTP).
	runner func(*fakeRunner) supervisor.Runner
	// attachTTL, when set, is how long heroku run's secrets wait.
	attachTTL time.Duration
	// servers, when set, are the add-on servers (services_test.go).
	servers func() map[string]addons.Server
}

func startTestDaemon(t *testing.T, o daemonOptions) *testDaemon {
	t.Helper()
	// testutil.SharedDir, not t.TempDir: an unpacked slug's folders lose
	// their write bits, which only root's RemoveAll gets past.
	dir := testutil.SharedDir(t)
	td := &testDaemon{t: t, home: app.Home{Dir: dir}, log: &syncBuffer{}, runner: newFakeRunner(), done: make(chan struct{})}
	if o.setup != nil {
		o.setup(td.home)
	}
	cfg := o.cfg
	cfg.Home, cfg.Socket, cfg.Log = td.home, filepath.Join(dir, "dyno.sock"), td.log
	if cfg.Poll == 0 {
		cfg.Poll = time.Hour // turns come from nudges, as a test asks
	}
	td.d = newDaemon(cfg.withDefaults())
	if o.servers != nil {
		td.d.services.servers = o.servers
	}
	var runner supervisor.Runner = td.runner
	if o.runner != nil {
		runner = o.runner(td.runner)
	}
	td.d.newRunner = func(*app.App, map[string]cgroup.Size, *isolate.IDRange) supervisor.Runner { return runner }
	// Each test daemon its own ports, so that daemons side by side never
	// give two dynos the same one; all below Linux's ephemeral range
	// (ip_local_port_range, 32768 up), where a client socket of another
	// test could hold the port a dyno then fails to listen on. The pid
	// moves two test binaries run side by side apart.
	first := 30000 + int((testPorts.Add(1)+int64(os.Getpid()))%27)*100
	td.d.ports = [2]int{first, first + 99}
	td.d.runPhase = func(ctx context.Context, r *appRun, rel ledger.Release, lower string) (int, error) {
		td.phases.Add(1)
		if o.phase == nil {
			return 0, nil
		}
		return o.phase(rel), nil
	}
	ln, err := listen(cfg.Socket)
	if err != nil {
		t.Fatal(err)
	}
	td.sock = cfg.Socket
	if cfg.Router.Listen != "" {
		td.d.routing = newRouting(td.d)
		td.d.routing.start(cfg.Router.Listen, cfg.Router.TLSListen)
	}
	td.d.attachTTL = o.attachTTL
	if cfg.API.Listen != "" {
		if err := td.d.startAPI(); err != nil {
			t.Fatal(err)
		}
	}
	srv := td.d.server()
	go srv.Serve(&countingListener{Listener: ln, n: &td.read})
	ctx, cancel := context.WithCancel(context.Background())
	td.stop = cancel
	go func() {
		defer close(td.done)
		td.d.loop(ctx, srv)
	}()
	t.Cleanup(td.shutdown)
	td.client = NewClient(td.sock)
	td.turn() // the first converge has run
	return td
}

// testPorts hands each test daemon its own range of ports.
var testPorts atomic.Int64

// shutdown stops the daemon and waits for its loop to end.
func (td *testDaemon) shutdown() {
	td.stop()
	<-td.done
}

// turn nudges the main loop and waits for a whole converge after it.
func (td *testDaemon) turn() {
	td.t.Helper()
	td.d.mu.Lock()
	next := td.d.nextTurn
	td.d.mu.Unlock()
	td.d.Nudge()
	select {
	case <-next:
	case <-td.done:
	case <-time.After(20 * time.Second):
		td.t.Fatal("the main loop made no turn")
	}
}

// eventually waits for cond, turning the loop between looks.
func (td *testDaemon) eventually(what string, cond func() bool) {
	td.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			td.t.Fatalf("timed out waiting for %s\ndaemon log:\n%s", what, td.log)
		}
		td.turn()
	}
}

// countingListener counts what the server reads from its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// deploy creates app name with a release of a one-file slug and the
// given process types, its release phase (if any) recorded as passed.
func deploy(t *testing.T, h app.Home, name string, types map[string]string) *app.App {
	t.Helper()
	a, err := h.Create(name, "test")
	if err != nil {
		t.Fatal(err)
	}
	deployTo(t, h, a, types)
	return a
}

// deployTo deploys a release of a slug with types to existing app a.
func deployTo(t *testing.T, h app.Home, a *app.App, types map[string]string) {
	t.Helper()
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "Procfile"), []byte("x"), 0o644)
	sl, _, err := h.Slugs().Pack(src, slug.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rel, err := a.Deploy(sl.Digest, "", types, nil, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RunReleasePhase(context.Background(), rel, io.Discard, func(context.Context, ledger.Release, string) (int, error) { return 0, nil }); err != nil {
		t.Fatal(err)
	}
}

// rawRequest sends head (and body) on a new connection and returns it.
func (td *testDaemon) dial() net.Conn {
	td.t.Helper()
	c, err := net.Dial("unix", td.sock)
	if err != nil {
		td.t.Fatal(err)
	}
	td.t.Cleanup(func() { c.Close() })
	// A guard against a hang, not a timing: every wait below is for an
	// event the server causes.
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

// apiErr reads an answer in the Platform API's error shape.
func readAPIError(t *testing.T, r *bufio.Reader, req *http.Request) (*http.Response, APIError) {
	t.Helper()
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e APIError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.ID == "" || e.Message == "" {
		t.Fatalf("%s: not the API's error shape: %+v, %v", resp.Status, e, err)
	}
	return resp, e
}

// closedByServer reads on until the server closes the connection: EOF,
// or a reset when it closed with bytes of ours unread. A timeout (the
// dial's guard) says it stayed open.
func closedByServer(r *bufio.Reader) bool {
	_, err := io.Copy(io.Discard, r)
	return err == nil || errors.Is(err, syscall.ECONNRESET)
}

func ledgerBytes(t *testing.T, h app.Home, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Dir, "apps", name, "ledger.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A body declared over 1 MB is answered 413 before a byte of it is sent,
// and the connection is closed rather than drained.
func TestAPIRefusesDeclaredLargeBody(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { h.Create("demo", "test") }})
	before := ledgerBytes(t, td.home, "demo")
	c := td.dial()
	head := "PATCH /apps/demo/config-vars HTTP/1.1\r\nHost: dyno\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	td.read.Store(0)
	r := bufio.NewReader(c)
	resp, e := readAPIError(t, r, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || e.ID != "request_too_large" || !strings.Contains(e.Message, "1 MB") {
		t.Fatalf("%s %+v", resp.Status, e)
	}
	// The server stopped there: it closes the connection, and the body
	// sent now is never read.
	c.Write(bytes.Repeat([]byte("x"), 64<<10))
	if !closedByServer(r) {
		t.Error("the connection stayed open")
	}
	if n := td.read.Load(); n > 64<<10 {
		t.Errorf("the server read %d bytes of a body it refused", n)
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "demo")) {
		t.Error("the ledger changed")
	}
}

// A body sent in chunks, so of no declared length, is cut at 1 MB: 413,
// and the rest is not read (the client's writes fail once the server has
// closed the connection).
func TestAPIRefusesChunkedLargeBody(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { h.Create("demo", "test") }})
	before := ledgerBytes(t, td.home, "demo")
	c := td.dial()
	io.WriteString(c, "PATCH /apps/demo/config-vars HTTP/1.1\r\nHost: dyno\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	wrote := make(chan error, 1)
	go func() {
		chunk := append([]byte(fmt.Sprintf("%x\r\n", 32<<10)), append(bytes.Repeat([]byte(" "), 32<<10), "\r\n"...)...)
		for range 2 << 20 / (32 << 10) {
			if _, err := c.Write(chunk); err != nil {
				wrote <- err
				return
			}
		}
		_, err := io.WriteString(c, "0\r\n\r\n")
		wrote <- err
	}()
	resp, e := readAPIError(t, bufio.NewReader(c), nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || e.ID != "request_too_large" {
		t.Fatalf("%s %+v", resp.Status, e)
	}
	if err := <-wrote; err == nil {
		t.Error("the whole 2 MB body was taken")
	}
	// 1 MB, then at most net/http's post-handler read (256 KB) and a
	// buffer's worth.
	if n := td.read.Load(); n > maxBody+(256<<10)+(64<<10) {
		t.Errorf("the server read %d bytes", n)
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "demo")) {
		t.Error("the ledger changed")
	}
}

// Half a header, or half a body, holds no connection past its timeout.
func TestAPIClosesSlowRequests(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{
		cfg:   Config{HeaderTimeout: 200 * time.Millisecond, BodyTimeout: 300 * time.Millisecond},
		setup: func(h app.Home) { h.Create("demo", "test") },
	})
	before := ledgerBytes(t, td.home, "demo")

	c := td.dial()
	io.WriteString(c, "PATCH /apps/demo/config-vars HTTP/1.1\r\nHost: dyno\r\nContent-Le")
	// net/http answers a request whose headers timed out with a plain
	// 400 (the handler never runs), or nothing, and closes.
	r := bufio.NewReader(c)
	if resp, err := http.ReadResponse(r, nil); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("half a header: %s", resp.Status)
		}
	}
	if !closedByServer(r) {
		t.Error("half a header: the connection stayed open")
	}

	c = td.dial()
	io.WriteString(c, "PATCH /apps/demo/config-vars HTTP/1.1\r\nHost: dyno\r\nContent-Length: 100\r\n\r\n{\"A\": \"")
	r = bufio.NewReader(c)
	resp, e := readAPIError(t, r, nil)
	if resp.StatusCode != http.StatusRequestTimeout || e.ID != "request_timeout" {
		t.Errorf("half a body: %s %+v", resp.Status, e)
	}
	if !closedByServer(r) {
		t.Error("half a body: the connection stayed open")
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "demo")) {
		t.Error("the ledger changed")
	}
}

// The stream's history is bounded as Heroku's is: 0 lines is none,
// more than 1,500 is 1,500, never the whole store.
func TestAPILogStreamLines(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { h.Create("demo", "test") }})
	a, _ := td.d.app("demo")
	for i := range 1600 {
		a.logs.Line("api", []byte(fmt.Sprintf("line %d", i)))
	}
	for _, tc := range []struct {
		lines string
		want  int
	}{{"0", 0}, {"-5", 100}, {"", 100}, {"7", 7}, {"99999", 1500}} {
		resp, err := td.client.http.Get("http://dyno/apps/demo/log-stream?lines=" + tc.lines)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Count(string(body), "\n"); got != tc.want {
			t.Errorf("lines=%s: %d lines, want %d", tc.lines, got, tc.want)
		}
	}
}

// The log stream is a long answer: the server's timeouts do not end it.
func TestAPILogStreamOutlivesRequestTimeouts(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{
		cfg:   Config{HeaderTimeout: 200 * time.Millisecond, BodyTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond},
		setup: func(h app.Home) { h.Create("demo", "test") },
	})
	req, _ := http.NewRequest(http.MethodGet, "http://dyno/apps/demo/log-stream?tail=true&lines=0", nil)
	resp, err := td.client.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// A connection opened after the stream's request was read, closed
	// by its header timeout: the stream's request deadlines (read and
	// write, as long) have passed too.
	c := td.dial()
	io.WriteString(c, "GET /apps HTTP/1.1\r\n")
	io.ReadAll(c)

	a, _ := td.d.app("demo")
	a.logs.Line("api", []byte("still streaming"))
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, "app[api]: still streaming") {
		t.Fatalf("%q, %v", line, err)
	}
}

// Text that is not UTF-8 is refused as the CLI refuses it, not stored
// as U+FFFD.
func TestAPIRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { h.Create("demo", "test") }})
	before := ledgerBytes(t, td.home, "demo")
	for _, body := range []string{"{\"A\": \"caf\xe9\"}", `{"A": "\udead"}`} {
		req, _ := http.NewRequest(http.MethodPatch, "http://dyno/apps/demo/config-vars", strings.NewReader(body))
		resp, err := td.client.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e APIError
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || e.ID != "invalid_params" || !strings.Contains(e.Message, "UTF-8") {
			t.Errorf("%q: %s %+v", body, resp.Status, e)
		}
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "demo")) {
		t.Error("the ledger changed")
	}
	// A NUL is valid UTF-8, but no process environment can carry it.
	if status, body := td.patch("/apps/demo/config-vars", `{"A": "x\u0000y"}`); status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "NUL") {
		t.Errorf("a NUL in a value: %d %s", status, body)
	}
	// The user goes into every record: bounded.
	req, _ := http.NewRequest(http.MethodPatch, "http://dyno/apps/demo/config-vars", strings.NewReader(`{"A": "1"}`))
	req.Header.Set("X-Dyno-User", strings.Repeat("u", 10000))
	if resp, err := td.client.http.Do(req); err != nil || resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("a 10,000-byte X-Dyno-User: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "demo")) {
		t.Error("the ledger changed")
	}
	var vars map[string]string
	if err := td.client.Do(context.Background(), http.MethodPatch, "/apps/demo/config-vars", map[string]string{"A": "café"}, &vars); err != nil || vars["A"] != "café" {
		t.Errorf("valid UTF-8: %v, %v", vars, err)
	}
}

// patch sends a PATCH with a raw body and returns the status and the
// answer.
func (td *testDaemon) patch(path, body string) (int, []byte) {
	td.t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, "http://dyno"+path, strings.NewReader(body))
	resp, err := td.client.http.Do(req)
	if err != nil {
		td.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A quantity past the limit is refused with 422 in the Platform API's
// shape and nothing recorded; the Heroku CLI's string quantities work.
func TestAPIFormationLimitAndStrings(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"worker": "w"})
	}})
	before := ledgerBytes(t, td.home, "demo")
	st, b := td.patch("/apps/demo/formation", `{"updates":[{"type":"worker","quantity":99999999}]}`)
	var e APIError
	json.Unmarshal(b, &e)
	if st != http.StatusUnprocessableEntity || e.ID != "invalid_params" || !strings.Contains(e.Message, "over the limit of 100") {
		t.Fatalf("%d %s", st, b)
	}
	if !bytes.Equal(before, ledgerBytes(t, td.home, "demo")) {
		t.Fatal("the ledger changed")
	}
	if _, starts := td.runner.counts(); starts != 0 {
		t.Fatalf("%d dynos started", starts)
	}

	st, b = td.patch("/apps/demo/formation", `{"updates":[{"type":"worker","quantity":"2"}]}`)
	if st != http.StatusOK || !strings.Contains(string(b), `"quantity":2`) {
		t.Fatalf("%d %s", st, b)
	}
	st, b = td.patch("/apps/demo/formation", `{"updates":[{"type":"worker","quantity":"+1"}]}`)
	if st != http.StatusOK || !strings.Contains(string(b), `"quantity":3`) {
		t.Fatalf("%d %s", st, b)
	}
	st, b = td.patch("/apps/demo/formation", `{"updates":[{"type":"worker","quantity":"-2"}]}`)
	if st != http.StatusOK || !strings.Contains(string(b), `"quantity":1`) {
		t.Fatalf("%d %s", st, b)
	}
	td.eventually("one worker", func() bool { n, _ := td.runner.counts(); return n == 1 })
}

// A ledger that already holds a quantity past the limit (written by an
// older dyno, or by hand) is clamped: the daemon runs the limit, never
// sizes anything by the number, and says so once per change.
func TestDaemonClampsRecordedFormation(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		os.WriteFile(h.SizesFile(), []byte("[formation]\nmax_quantity = 3\n"), 0o644)
		a := deploy(t, h, "demo", map[string]string{"worker": "w"})
		_, err := a.Ledger.Append(func(*ledger.State) ([]ledger.Record, error) {
			return []ledger.Record{{Type: ledger.TypeFormation, User: "hand", Formation: ledger.Formation{"worker": {Quantity: 500, Size: app.DefaultSize}}}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}})
	td.eventually("three workers", func() bool { n, _ := td.runner.counts(); return n == 3 })
	td.turn()
	td.turn()
	if n, starts := td.runner.counts(); n != 3 || starts != 3 {
		t.Errorf("%d running, %d started", n, starts)
	}
	const said = "demo: the formation has worker at 500, over the limit of 3 of a type; running 3"
	if c := strings.Count(td.log.String(), said); c != 1 {
		t.Errorf("said %d times:\n%s", c, td.log)
	}
}

// A request for an app created since the loop's last turn nudges the loop
// and waits for it (the loop's Poll is an hour here); one for no app is
// answered 404.
func TestAPIWaitsForTheLoopToTakeUpANewApp(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{})
	if _, err := td.home.Create("late", "test"); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := td.client.Do(context.Background(), http.MethodGet, "/apps/late", nil, &got); err != nil || got["name"] != "late" {
		t.Fatalf("%v, %v", got, err)
	}
	for _, name := range []string{"missing", "..%2F..%2Fetc"} {
		err := td.client.Do(context.Background(), http.MethodGet, "/apps/"+name+"/config-vars", nil, nil)
		if err == nil || !strings.Contains(err.Error(), "Couldn't find that app") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Shutdown racing requests for a new app: no app is taken up after
// shutdown took its list, so afterwards no dyno runs. (Run with -race.)
func TestShutdownRacesANewApp(t *testing.T) {
	t.Parallel()
	for i := range 10 {
		td := startTestDaemon(t, daemonOptions{})
		name := fmt.Sprintf("late-%d", i)
		a := deploy(t, td.home, name, map[string]string{"worker": "w"})
		if _, err := a.ApplyScale([]app.Scale{{Type: "worker", Op: '=', N: 2}}, []string{app.DefaultSize}, "test"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				td.client.Do(context.Background(), http.MethodGet, "/apps/"+name+"/dynos", nil, nil)
			}()
		}
		td.shutdown()
		wg.Wait()
		if n, _ := td.runner.counts(); n != 0 {
			t.Fatalf("round %d: %d dynos run after shutdown", i, n)
		}
		td.d.mu.Lock()
		for _, r := range td.d.apps {
			r.mu.Lock()
			if st := r.sup.Status(); len(st) > 0 && st[0].State != supervisor.Down {
				t.Errorf("round %d: %s still %s", i, st[0].Name, st[0].State)
			}
			r.mu.Unlock()
		}
		td.d.mu.Unlock()
	}
}

// The socket is 0600 from its creation, without the process's umask ever
// changing (another goroutine's files would get the socket's mode).
func TestListenKeepsTheUmask(t *testing.T) {
	t.Parallel()
	umask := func() string {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			t.Skip(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				return strings.TrimSpace(v)
			}
		}
		t.Skip("no Umask in /proc/self/status")
		return ""
	}
	before := umask()
	stop := make(chan struct{})
	seen := make(chan string, 1)
	go func() {
		defer close(seen)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if u := umask(); u != before {
				seen <- u
				return
			}
		}
	}()
	dir := t.TempDir()
	for i := range 200 {
		path := filepath.Join(dir, "run", fmt.Sprintf("d%d.sock", i))
		ln, err := listen(path)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		ln.Close()
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("socket %s: %v, %v", path, fi.Mode(), err)
		}
	}
	close(stop)
	if u, ok := <-seen; ok {
		t.Errorf("the umask changed from %s to %s while listening", before, u)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "run")); fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir %v", fi.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "run")); len(entries) != 200 {
		t.Errorf("%d entries: a bind folder was left", len(entries))
	}
}

// releaseStatus reads release v's status from the ledger.
func releaseStatus(t *testing.T, h app.Home, name string, v int) string {
	t.Helper()
	a, err := h.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := a.Ledger.Release(v)
	if err != nil {
		t.Fatal(err)
	}
	return rel.Status
}

// A config change through the API on an app with a release phase: the
// daemon runs the phase, the release succeeds (or fails with the phase's
// exit, and the current release stays), and the next change is taken.
func TestAPIConfigChangeRunsReleasePhase(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{
		setup: func(h app.Home) { deploy(t, h, "demo", map[string]string{"worker": "w", "release": "migrate"}) },
		phase: func(rel ledger.Release) int {
			if rel.ConfigVars["FOO"] == "bad" {
				return 1
			}
			return 0
		},
	})
	var vars map[string]string
	change := func(v string) int {
		t.Helper()
		if err := td.client.Do(context.Background(), http.MethodPatch, "/apps/demo/config-vars", map[string]string{"FOO": v}, &vars); err != nil {
			t.Fatalf("FOO=%s: %v", v, err)
		}
		a, _ := td.home.Open("demo")
		st, _ := a.Ledger.State()
		return st.LastVersion
	}
	v := change("1")
	td.eventually("v"+fmt.Sprint(v)+" to succeed", func() bool { return releaseStatus(t, td.home, "demo", v) == ledger.StatusSucceeded })
	bad := change("bad")
	td.eventually("the bad release to fail", func() bool { return releaseStatus(t, td.home, "demo", bad) == ledger.StatusFailed })
	a, _ := td.home.Open("demo")
	if st, _ := a.Ledger.State(); st.Current.Version != v {
		t.Errorf("current is v%d after a failed phase, want v%d", st.Current.Version, v)
	}
	next := change("2")
	td.eventually("the next release to succeed", func() bool { return releaseStatus(t, td.home, "demo", next) == ledger.StatusSucceeded })
	if n := td.phases.Load(); n != 3 {
		t.Errorf("%d phases ran, want 3", n)
	}
}

// A pending release found in the ledger is run by the daemon when no one
// else runs it (its maker died), and never while another holds its
// phase lock (a CLI running it now).
func TestDaemonRunsAnOrphanedPhaseOnce(t *testing.T) {
	t.Parallel()
	var lock *os.File
	var v int
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		a := deploy(t, h, "demo", map[string]string{"worker": "w", "release": "migrate"})
		recs, err := a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
			rel := *s.Current
			rel.Version, rel.Status, rel.Description = s.LastVersion+1, ledger.StatusPending, "Set A config vars"
			rel.ConfigVars = map[string]string{"A": "1"}
			return []ledger.Record{{Type: ledger.TypeRelease, User: "cli", Release: &rel}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		v = recs[0].Release.Version
		// Another process runs its phase: it holds the lock.
		if lock, err = os.OpenFile(filepath.Join(a.Dir, "release.lock"), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
	}})
	for range 3 {
		td.turn()
	}
	if n := td.phases.Load(); n != 0 || releaseStatus(t, td.home, "demo", v) != ledger.StatusPending {
		t.Fatalf("the daemon ran a phase another process runs (%d runs)", n)
	}
	lock.Close() // that process dies
	td.eventually("the orphaned phase to succeed", func() bool { return releaseStatus(t, td.home, "demo", v) == ledger.StatusSucceeded })
	td.turn()
	td.turn()
	if n := td.phases.Load(); n != 1 {
		t.Errorf("%d phases ran, want 1", n)
	}
	td.eventually("a worker-less app on the new release", func() bool {
		a, _ := td.d.app("demo")
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.rel != nil && a.rel.Version == v
	})
}
