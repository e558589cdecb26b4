package rendezvous

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// Dial joins the dyno at attachURL (rendezvous://HOST:PORT/SECRET) as
// the Heroku CLI does: TLS to HOST:PORT, verified with config; the
// secret and "\r\n"; then the first chunk received, dropped. What the
// connection reads afterwards is the dyno's output, and what is
// written to it the dyno's input.
//
// Where the CLI drops that chunk whatever it holds, Dial insists that
// it is the handshake line alone, so that a test sees output the CLI
// would have lost. The server closing the connection instead (an
// unknown secret) is an error that wraps io.EOF.
func Dial(ctx context.Context, attachURL string, config *tls.Config) (*tls.Conn, error) {
	u, err := url.Parse(attachURL)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: dial: %w", err)
	}
	if u.Scheme != "rendezvous" || u.Port() == "" {
		return nil, fmt.Errorf("rendezvous: dial %s: want rendezvous://HOST:PORT/SECRET", attachURL)
	}
	d := tls.Dialer{Config: config}
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: dial %s: %w", u.Host, err)
	}
	c := nc.(*tls.Conn)
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	// The CLI's line: the path without its "/", and the query.
	line := strings.TrimPrefix(u.Path, "/")
	if u.RawQuery != "" {
		line += "?" + u.RawQuery
	}
	if _, err := io.WriteString(c, line+"\r\n"); err != nil {
		c.Close()
		return nil, fmt.Errorf("rendezvous: dial %s: %w", u.Host, err)
	}
	// One Read is one TLS record at most: the first chunk, as Node's
	// first "data" event is.
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("rendezvous: dial %s: no handshake: %w", u.Host, err)
	}
	if string(buf[:n]) != HandshakeLine {
		c.Close()
		return nil, fmt.Errorf("rendezvous: dial %s: first chunk %q, want the handshake line %q alone", u.Host, buf[:n], HandshakeLine)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
