package rendezvous

// The server's side and the client's over real TLS (the daemon's own
// authority, apitls), with real processes on real PTYs and pipes.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/dyno-run/dyno/supervisor/daemon/apitls"
)

// testServer serves rendezvous on a loopback port as the daemon does:
// TLS, then Sniff; a claimed secret to its attach, an unknown one
// closed, anything else answered as HTTP with the first line it sent.
type testServer struct {
	t     *testing.T
	table *Table
	addr  string
	roots *x509.CertPool
}

func newTestServer(t *testing.T, ttl time.Duration) *testServer {
	t.Helper()
	dir := t.TempDir()
	issuer, err := apitls.NewIssuer(dir, apitls.Names("127.0.0.1", nil), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(apitls.CAPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, table: NewTable(ttl), addr: ln.Addr().String(), roots: roots}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.table.Close()
		wg.Wait()
	})
	config := &tls.Config{GetCertificate: issuer.GetCertificate}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(tls.Server(c, config)) })
		}
	})
	return s
}

func (s *testServer) serve(c *tls.Conn) {
	br := bufio.NewReader(c)
	secret, ok, err := Sniff(br)
	if err != nil {
		c.Close()
		return
	}
	if !ok {
		line, _ := br.ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(line))+"\r\nConnection: close\r\n\r\n"+line)
		c.Close()
		return
	}
	attach, ok := s.table.Claim(secret)
	if !ok {
		c.Close()
		return
	}
	attach(c)
}

// process is an attach that runs command under sh on a PTY of rows x
// cols, or on pipes; hung says when Hangup was called, exited when the
// process has been waited for.
type process struct {
	command    string
	tty        bool
	rows, cols uint16
	hung       chan struct{}
	exited     chan struct{}
}

func newProcess(command string, tty bool) *process {
	return &process{command: command, tty: tty, hung: make(chan struct{}), exited: make(chan struct{})}
}

func (p *process) attach(t *testing.T) func(net.Conn) {
	return func(conn net.Conn) {
		defer conn.Close()
		defer close(p.exited)
		cmd := exec.Command("/bin/sh", "-c", p.command)
		var stream Stream
		var hangOnce sync.Once
		hangup := func() {
			hangOnce.Do(func() {
				cmd.Process.Signal(syscall.SIGHUP)
				close(p.hung)
			})
		}
		if p.tty {
			master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: p.rows, Cols: p.cols})
			if err != nil {
				t.Error(err)
				return
			}
			defer master.Close()
			stream = Stream{In: master, Out: master, TTY: true, Hangup: hangup}
		} else {
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Error(err)
				return
			}
			outR, outW, _ := os.Pipe()
			cmd.Stdout, cmd.Stderr = outW, outW
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			outW.Close()
			defer outR.Close()
			stream = Stream{In: in, Out: outR, CloseIn: in.Close, Hangup: hangup}
		}
		if err := Handshake(conn, 5*time.Second); err != nil {
			t.Error(err)
		}
		Bridge(conn, stream)
		cmd.Wait()
	}
}

// dial is the Heroku CLI's side, trusting the server's authority alone.
func (s *testServer) dial(secret string) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return Dial(ctx, "rendezvous://"+s.addr+"/"+secret, &tls.Config{RootCAs: s.roots})
}

// run attaches to p and returns all it printed, sending input first.
func (s *testServer) run(t *testing.T, p *process, input string) string {
	t.Helper()
	secret, err := s.table.Add(p.attach(t), func() { t.Error("expired") })
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.dial(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if input != "" {
		io.WriteString(c, input)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, out)
	}
	return string(out)
}

func TestRunOnAPTY(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, time.Minute)
	p := newProcess("echo hello; tty; stty size", true)
	p.rows, p.cols = 40, 132
	out := s.run(t, p, "")
	for _, want := range []string{"hello\r\n", "/dev/pts/", "\r\n40 132\r\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}

func TestRunWithoutATerminal(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, time.Minute)
	// The client's stdin, then its EOT: cat sees end of file. Bytes after
	// the EOT are not the dyno's.
	out := s.run(t, newProcess("cat; echo; tty || echo no-tty", false), "abc\x04ignored")
	if out != "abc\nnot a tty\nno-tty\n" {
		t.Errorf("output %q", out)
	}
}

// heroku run --exit-code's wrapper, as dyno.js writes it.
func TestExitCodeWrapper(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, time.Minute)
	out := s.run(t, newProcess(`sh -c 'exit 3'; echo "`+"\uFFFF"+` heroku-command-exit-status: $?"`, false), "")
	if out != "\uFFFF heroku-command-exit-status: 3\n" {
		t.Errorf("output %q", out)
	}
}

func TestSecretsAreSingleUse(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, time.Minute)
	p := newProcess("echo once", false)
	secret, err := s.table.Add(p.attach(t), func() { t.Error("expired") })
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != SecretLen {
		t.Fatalf("secret %q", secret)
	}
	wrong := strings.Repeat("0", SecretLen)
	for _, bad := range []string{wrong, secret[:SecretLen-1], "abc"} {
		if c, err := s.dial(bad); !errors.Is(err, io.EOF) {
			t.Errorf("secret %q: %v, want the connection closed", bad, err)
			if c != nil {
				c.Close()
			}
		}
	}
	c, err := s.dial(secret)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(c)
	c.Close()
	<-p.exited
	if c, err := s.dial(secret); !errors.Is(err, io.EOF) {
		t.Errorf("the secret again: %v, want the connection closed", err)
		if c != nil {
			c.Close()
		}
	}
}

func TestHTTPIsLeftIntact(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, time.Minute)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.roots}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get("https://" + s.addr + "/apps")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "GET /apps HTTP/1.1\r\n" {
		t.Errorf("the server read %q", b)
	}
}

func TestSecretsExpire(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, 50*time.Millisecond)
	expired := make(chan struct{})
	secret, err := s.table.Add(func(net.Conn) { t.Error("attached") }, func() { close(expired) })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-expired:
	case <-time.After(20 * time.Second):
		t.Fatal("the secret never expired")
	}
	if c, err := s.dial(secret); !errors.Is(err, io.EOF) {
		t.Errorf("an expired secret: %v, want the connection closed", err)
		if c != nil {
			c.Close()
		}
	}
	// Revoked: neither runs.
	secret, _ = s.table.Add(func(net.Conn) { t.Error("attached") }, func() { t.Error("expired") })
	if !s.table.Revoke(secret) || s.table.Revoke(secret) || s.table.Len() != 0 {
		t.Error("revoke")
	}
}

// A client gone is a hangup: the process gets SIGHUP.
func TestClientGoneHangsUp(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, time.Minute)
	p := newProcess("echo ready; exec sleep 1000", true)
	secret, _ := s.table.Add(p.attach(t), func() { t.Error("expired") })
	c, err := s.dial(secret)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || line != "ready\r\n" {
		t.Fatalf("%q %v", line, err)
	}
	c.Close()
	for _, ch := range []chan struct{}{p.hung, p.exited} {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatal("no hangup")
		}
	}
}
