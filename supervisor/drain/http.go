package drain

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// userAgent is what an HTTPS drain's requests say they come from;
// Logplex sends "Logplex/vNN".
const userAgent = "Logplex/dyno"

// httpTransport POSTs batches as Logplex's HTTPS drains do.
type httpTransport struct {
	url    string
	token  string
	client *http.Client
	buf    bytes.Buffer
	frame  []Line // the batch frameID names
	id     string
}

func newHTTPTransport(u *url.URL, token string, roots *x509.CertPool) *httpTransport {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 1,
		ForceAttemptHTTP2:   true,
		Proxy:               nil, // a drain goes where its URL says
	}
	return &httpTransport{url: u.String(), token: token, client: &http.Client{Transport: tr, Timeout: ioTimeout}}
}

func (t *httpTransport) connect(context.Context) error { return nil }

func (t *httpTransport) send(ctx context.Context, lines []Line) error {
	// A batch sent again keeps its Logplex-Frame-Id, so that the
	// receiver can drop a copy it has already taken.
	if len(t.frame) == 0 || &t.frame[0] != &lines[0] {
		var b [16]byte
		rand.Read(b[:])
		t.id, t.frame = hex.EncodeToString(b[:]), lines
	}
	t.buf.Reset()
	var fb []byte
	for i := range lines {
		fb = appendHTTP(fb[:0], &lines[i])
		t.buf.Write(fb)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.buf.Bytes()))
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	req.Header.Set("Content-Type", "application/logplex-1")
	req.Header.Set("Logplex-Msg-Count", strconv.Itoa(len(lines)))
	req.Header.Set("Logplex-Frame-Id", t.id)
	req.Header.Set("Logplex-Drain-Token", t.token)
	req.Header.Set("User-Agent", userAgent)
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post: %s", resp.Status)
	}
	return nil
}

func (t *httpTransport) close() { t.client.CloseIdleConnections() }
