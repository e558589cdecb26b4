package drain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"
)

// ioTimeout bounds one connect or write, so that a drain whose peer
// stopped reading is found down rather than waited on for ever.
const ioTimeout = 10 * time.Second

// syslogTransport sends octet-counted RFC 5424 frames over one TCP
// connection, with TLS for syslog+tls.
type syslogTransport struct {
	addr  string
	host  string // for TLS verification
	tls   bool
	token string
	roots *x509.CertPool

	conn net.Conn
	buf  []byte
}

func (t *syslogTransport) connect(ctx context.Context) error {
	if t.conn != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	var (
		c   net.Conn
		err error
	)
	if t.tls {
		dl := &tls.Dialer{Config: &tls.Config{ServerName: t.host, RootCAs: t.roots, MinVersion: tls.VersionTLS12}}
		c, err = dl.DialContext(ctx, "tcp", t.addr)
	} else {
		var dl net.Dialer
		c, err = dl.DialContext(ctx, "tcp", t.addr)
	}
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	t.conn = c
	return nil
}

func (t *syslogTransport) send(ctx context.Context, lines []Line) error {
	t.buf = t.buf[:0]
	for i := range lines {
		t.buf = appendSyslog(t.buf, &lines[i], t.token)
	}
	deadline := time.Now().Add(ioTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	t.conn.SetWriteDeadline(deadline)
	// Close's deadline ends a write blocked on a peer that stopped
	// reading.
	stop := context.AfterFunc(ctx, func() { t.conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := t.conn.Write(t.buf)
	stop()
	if cap(t.buf) > 1<<20 {
		t.buf = nil
	}
	if err != nil {
		t.close()
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (t *syslogTransport) close() {
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}
