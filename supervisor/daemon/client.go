package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// ErrNotRunning says no daemon answers on the socket.
var ErrNotRunning = errors.New("the dyno daemon is not running; start it with dyno daemon (or systemctl start dyno)")

// Client talks to a daemon's API over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client of the daemon listening on socket.
func NewClient(socket string) *Client {
	return &Client{socket: socket, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", socket)
		},
	}}}
}

// Do sends a request with body as JSON and decodes the answer into out
// (when not nil). An answer of 300 or over comes back as an *APIError
// with its status, id and message.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeAPIError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

// decodeAPIError is the *APIError of an answer of 300 or over. A body
// that is not the API's error (a proxy's page, a cut connection) still
// gives the status.
func decodeAPIError(resp *http.Response) *APIError {
	e := &APIError{}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(e)
	e.Status = resp.StatusCode
	return e
}

func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://dyno"+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, ErrNotRunning
		}
		return nil, err
	}
	return resp, nil
}

// Nudge asks a running daemon to act on a ledger change now; without a
// daemon it is a no-op (the change waits in the ledger for the next start).
func (c *Client) Nudge() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Do(ctx, http.MethodPost, "/dyno/reconcile", nil, nil)
}

// StartService asks the daemon to set up and run the add-on server of
// service (its alias: postgresql, redis) and returns once it accepts
// connections, or the daemon's reason why not. Without a daemon it
// returns ErrNotRunning; a daemon too old to run add-on servers answers
// 404.
func (c *Client) StartService(ctx context.Context, service string) error {
	return c.Do(ctx, http.MethodPost, "/dyno/services/"+url.PathEscape(service), nil, nil)
}

// Running reports whether a daemon accepts connections on the socket.
func (c *Client) Running(ctx context.Context) bool {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
