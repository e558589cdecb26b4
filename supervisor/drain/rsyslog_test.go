package drain

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
)

// gtlsDriver is where Debian's rsyslog-gnutls puts rsyslog's TLS
// network stream driver, under the architecture's library folder.
const gtlsDriver = "/usr/lib/*/rsyslog/lmnsd_gtls.so"

// A real collector: rsyslogd, run as a child on a loopback port with
// imtcp (octet-counted framing) and a file of what it parsed, over
// plain TCP (syslog://) and over TLS with a test certificate
// (syslog+tls://, rsyslog's gtls driver). Its RFC 5424 parser must find
// the token as HOSTNAME, the source as APP-NAME and the dyno as PROCID;
// a drain down until rsyslogd starts delivers the L10 then its kept
// lines, and one up delivers every line once, in order.
func TestRsyslog(t *testing.T) {
	t.Parallel()
	t.Run("syslog", func(t *testing.T) { t.Parallel(); rsyslogCase(t, false) })
	t.Run("syslog+tls", func(t *testing.T) { t.Parallel(); rsyslogCase(t, true) })
}

func rsyslogCase(t *testing.T, useTLS bool) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/rsyslogd"); serr != nil {
			t.Skip("rsyslogd is not installed (apt-get install rsyslog); the Go receivers above stand in for it")
		}
		rsyslogd = "/usr/sbin/rsyslogd"
	}
	dir := t.TempDir()
	addr := unusedAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	// rsyslogd forwards what it parsed, one line each, over TCP to the
	// test, which waits on lines rather than polling a file, and whose
	// slowness holds rsyslogd back rather than making it drop lines
	// (as a full FIFO would).
	parsedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer parsedLn.Close()
	_, parsedPort, _ := net.SplitHostPort(parsedLn.Addr().String())
	scheme, opts := "syslog", func(buffer int) Options { return fast(t, buffer) }
	global, imtcp := `global(workDirectory="`+dir+`")`, `module(load="imtcp")`
	if useTLS {
		if m, _ := filepath.Glob(gtlsDriver); len(m) == 0 {
			t.Skipf("%s is missing (apt-get install rsyslog-gnutls): rsyslogd's TLS is that module", gtlsDriver)
		}
		certPEM, keyPEM := testutil.SelfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), "localhost")
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		global = `global(workDirectory="` + dir + `" DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="` + cert +
			`" DefaultNetstreamDriverCertFile="` + cert + `" DefaultNetstreamDriverKeyFile="` + key + `")`
		imtcp = `module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")`
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(certPEM)
		scheme, addr = "syslog+tls", "localhost:"+port
		opts = func(buffer int) Options {
			o := fast(t, buffer)
			o.RootCAs = pool
			return o
		}
	}
	// What rsyslogd parsed goes to the test in plain TCP (ptcp), whatever
	// the default driver.
	conf := global + "\n" + imtcp + `
template(name="fields" type="string" string="%hostname% %app-name% %procid% %msgid% %structured-data% %msg%\n")
ruleset(name="drain") { action(type="omfwd" target="127.0.0.1" port="` + parsedPort + `" protocol="tcp" StreamDriver="ptcp" template="fields") }
input(type="imtcp" address="127.0.0.1" port="` + port + `" ruleset="drain")
`
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	// Down until rsyslogd listens: 150 of its 250 lines are dropped.
	down, err := New(scheme+"://"+addr, "d.down", opts(100))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close(t.Context())
	send(down, 1, 250)

	cmd := exec.CommandContext(t.Context(), rsyslogd, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslogd.pid"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd said: %s", stderr.String())
		}
	}()

	up, err := New(scheme+"://"+addr, "d.up", opts(10000))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close(t.Context())
	const n = 5000
	send(up, 1, n)

	frames := map[string]chan string{"d.down": make(chan string, n+10), "d.up": make(chan string, n+10)}
	go func() {
		f, err := parsedLn.Accept()
		if err != nil {
			frames["d.down"] <- err.Error() // collect fails on it
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := sc.Text()
			tok, rest, _ := strings.Cut(l, " ")
			ch, ok := frames[tok]
			if !ok {
				// collect fails on it.
				frames["d.down"] <- fmt.Sprintf("rsyslogd parsed %q: HOSTNAME is not a drain's token", l)
				return
			}
			// As the frame would be, for collect's patterns.
			ch <- "<190>1 - " + tok + " " + rest
		}
	}()
	first := <-frames["d.down"]
	if m := l10Msg.FindStringSubmatch(first); m == nil || m[2] != "150" {
		t.Fatalf("first line of the drain that was down: %q; want heroku logplex L10 with 150", first)
	}
	nums, l10 := collect(t, frames["d.down"], 250)
	inOrder(t, nums)
	if len(nums) != 100 || nums[0] != 151 || len(l10) != 0 {
		t.Errorf("after the L10: %d lines from %d, L10s %v; want 151..250", len(nums), nums[0], l10)
	}
	nums, l10 = collect(t, frames["d.up"], n)
	inOrder(t, nums)
	if len(nums) != n || len(l10) != 0 {
		t.Errorf("drain up: %d lines, L10s %v; want all %d once, in order", len(nums), l10, n)
	}
}
