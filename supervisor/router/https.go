package router

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"
)

// ServeHTTP serves a request that net/http's server read: the HTTPS
// listener's, HTTP/1.1 or HTTP/2 over TLS. It routes, picks, retries and
// logs as the plain HTTP path does (protocol=https), with the headers
// Rewrite gives, and speaks HTTP/1.1 to the dyno over the same pooled
// connections.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	app, ok := r.table.Load().Lookup(req.Host)
	if !ok {
		writeHTTPPage(w, http.StatusNotFound, NoSuchAppPage(req.Host))
		return
	}
	f := Forward{Proto: "https", Start: start, Version: "1.1"}
	f.ClientIP, _, _ = net.SplitHostPort(req.RemoteAddr)
	if a, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			f.Port = port
		}
	}
	switch {
	case req.ProtoMajor == 2:
		f.Version = "2"
	case req.ProtoMinor == 0:
		f.Version = "1.0"
	}
	upgrade := req.ProtoMajor == 1 && isWebSocketUpgrade(req.Header)
	path := req.RequestURI
	if path == "" || path != "*" && path[0] != '/' {
		// An absolute-form target (RFC 9112 section 3.2.2): net/http
		// took req.Host from it, as the plain path does; the dyno gets
		// origin-form with that Host.
		path = req.URL.RequestURI()
	}
	if !validTarget(path) {
		// An HTTP/2 :path is not a request line: a space or a control
		// byte in it would split the line the dyno reads.
		writeHTTPPage(w, http.StatusBadRequest, H26.Page())
		return
	}
	line := LogLine{Method: req.Method, Path: path, Host: req.Host, Connect: -1, Service: -1, Bytes: -1, Protocol: "https"}
	line.RequestID, line.Fwd = Rewrite(req.Header, f)
	x := httpExchange{r: r, w: w, req: req, app: app, line: &line}
	defer x.log()

	// The head for the dyno; the body follows with its own framing.
	req.Header.Del("Content-Length")
	req.Header.Del("Transfer-Encoding")
	req.Header.Del("Host")
	// net/http answers 100 Continue itself when the body is first read,
	// as the plain path does: the dyno sees no Expect.
	req.Header.Del("Expect")
	var head []byte
	head = append(head, req.Method...)
	head = append(head, ' ')
	head = append(head, path...)
	head = append(head, " HTTP/1.1\r\nHost: "...)
	head = append(head, req.Host...)
	head = append(head, "\r\n"...)
	for k, vs := range req.Header {
		for _, v := range vs {
			head = append(head, k...)
			head = append(head, ": "...)
			head = append(head, v...)
			head = append(head, "\r\n"...)
		}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
	switch {
	case !hasBody:
	case req.ContentLength > 0:
		head = append(head, "Content-Length: "...)
		head = strconv.AppendInt(head, req.ContentLength, 10)
		head = append(head, "\r\n"...)
	default:
		head = append(head, "Transfer-Encoding: chunked\r\n"...)
	}
	head = append(head, "\r\n"...)
	idempotent := req.Method == "GET" || req.Method == "HEAD" || req.Method == "OPTIONS" || req.Method == "TRACE"
	retryable := idempotent && !hasBody

	deadline := start.Add(r.cfg.BootWait)
	refused, redial, redialed := false, false, false
	var backend Backend
	for attempt := 0; ; attempt++ {
		if !redial {
			var code Code
			backend, code = app.Pick(req.Context(), deadline, refused)
			if code != OK {
				x.fail(code)
				return
			}
			line.Dyno = backend.Dyno
		}
		t0 := time.Now()
		var bc *backendConn
		if !redial {
			bc = r.pools.get(backend.Addr)
		}
		redial = false
		if bc == nil {
			var how dialOutcome
			var derr error
			bc, how, derr = r.pools.dialErr(req.Context(), backend.Addr, r.cfg.Connect)
			switch how {
			case dialLocal:
				line.Cause = localCause(derr)
				x.fail(H99)
				return
			case dialTimeout:
				line.Connect = time.Since(t0)
				x.fail(H19)
				return
			case dialRefused:
				app.Quarantine(backend)
				refused = true
				if attempt+1 >= maxAttempts {
					line.Dyno = ""
					x.fail(H21)
					return
				}
				continue
			}
		}
		line.Connect = time.Since(t0)
		x.sent = time.Now()
		if _, err := bc.nc.Write(head); err != nil {
			bc.nc.Close()
			if bc.fresh && isReset(err) && attempt+1 < maxAttempts {
				app.Quarantine(backend)
				refused = true
				continue
			}
			if !bc.fresh && retryable && !redialed {
				redial, redialed = true, true
				continue
			}
			x.fail(H13)
			return
		}
		if hasBody {
			if err := sendHTTPBody(bc.nc, req.Body, req.ContentLength); err != nil {
				bc.nc.Close()
				if errors.Is(err, errClientBody) {
					x.fail(H27)
				} else {
					x.fail(H18)
				}
				return
			}
		}
		var resp Response
		buf, hn, got, err := readResponseHead(bc.nc, make([]byte, 16<<10), &resp, r.cfg.FirstByte)
		if deadEarly(err) && !bc.fresh && retryable && !redialed {
			bc.nc.Close()
			redial, redialed = true, true
			continue
		}
		if err == errReset && bc.fresh && retryable && attempt+1 < maxAttempts {
			// A fresh connection reset unanswered: as a refusal.
			bc.nc.Close()
			app.Quarantine(backend)
			refused = true
			continue
		}
		if err != nil {
			bc.nc.Close()
			code := H13
			var he *HeadError
			switch {
			case errors.As(err, &he):
				code = he.Code
			case isTimeout(err):
				code = H12
			}
			x.fail(code)
			return
		}
		x.respond(bc, &resp, buf[:hn], buf[hn:got], upgrade)
		return
	}
}

// validTarget reports whether a target can go into a request line: no
// space, control byte or DEL, as Request.Parse requires of the plain path.
func validTarget(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// errClientBody marks a request body the client did not finish.
var errClientBody = errors.New("router: client request body interrupted")

// sendHTTPBody sends a request body read by net/http: as it is when its
// length is known, else chunked.
func sendHTTPBody(dst net.Conn, body io.Reader, length int64) error {
	if length > 0 {
		n, err := io.Copy(dst, io.LimitReader(clientReader{body}, length))
		if err == nil && n < length {
			err = errClientBody
		}
		return err
	}
	cw := httputil.NewChunkedWriter(dst)
	if _, err := io.Copy(cw, clientReader{body}); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	_, err := io.WriteString(dst, "\r\n")
	return err
}

// clientReader marks the client's read errors as errClientBody.
type clientReader struct{ r io.Reader }

func (c clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = errors.Join(errClientBody, err)
	}
	return n, err
}

type httpExchange struct {
	r      *Router
	w      http.ResponseWriter
	req    *http.Request
	app    *App
	line   *LogLine
	sent   time.Time
	logged bool
}

func (x *httpExchange) fail(code Code) {
	x.line.Code, x.line.Status = code, code.Status()
	if code != H27 && x.line.Bytes < 0 {
		writeHTTPPage(x.w, code.Status(), x.app.Page(code))
	}
}

func (x *httpExchange) log() {
	if x.logged {
		return
	}
	x.logged = true
	if !x.sent.IsZero() && x.line.Dyno != "" {
		x.line.Service = time.Since(x.sent)
	}
	x.app.traffic.count(0, x.line.Code, x.line.Status, x.line.Service)
	if x.r.cfg.Journal != nil {
		x.r.cfg.Journal.Add(x.app.Name(), x.line.Append(nil))
	}
}

// respond relays the dyno's response through net/http's writer.
func (x *httpExchange) respond(bc *backendConn, resp *Response, head, rest []byte, upgrade bool) {
	r := x.r
	x.line.Status = resp.Status
	if resp.Status == 101 {
		if !upgrade {
			bc.nc.Close()
			x.fail(H25)
			return
		}
		x.tunnel(bc, resp, head, rest)
		return
	}
	h := x.w.Header()
	vias := ""
	for _, f := range resp.Fields {
		name, value := string(f.Name.In(head)), string(f.Value.In(head))
		switch {
		case f.kind.hopByHop(), f.kind == fContentLength && resp.Chunked:
			continue
		case f.kind == fVia:
			vias += value + ", "
			continue
		case resp.listed && !f.kind.framing() && listedIn(head, resp.Fields, f.Name.In(head)):
			continue
		}
		h.Add(name, value)
	}
	h.Set("Via", vias+"1.1 "+Via)
	x.w.WriteHeader(resp.Status)
	x.line.Bytes = 0
	reuse := !resp.Close
	var src io.Reader
	switch {
	case resp.Bodiless(x.req.Method == "HEAD"):
		reuse = reuse && len(rest) == 0
	case resp.Chunked:
		src = newChunkedReader(io.MultiReader(bytesReader(rest), &deadlineReader{bc.nc, r.cfg.Idle}))
		reuse = false
	case resp.ContentLength >= 0:
		if int64(len(rest)) > resp.ContentLength {
			rest, reuse = rest[:resp.ContentLength], false
		}
		src = io.LimitReader(io.MultiReader(bytesReader(rest), &deadlineReader{bc.nc, r.cfg.Idle}), resp.ContentLength)
	default:
		src = io.MultiReader(bytesReader(rest), &deadlineReader{bc.nc, r.cfg.Idle})
		reuse = false
	}
	if src != nil {
		// The head goes out now: a stream (SSE) may send its first event
		// much later.
		rc := http.NewResponseController(x.w)
		rc.Flush()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				w, werr := x.w.Write(buf[:n])
				x.line.Bytes += int64(w)
				if werr != nil {
					bc.nc.Close()
					return
				}
				rc.Flush() // streams: SSE and long polls arrive as they come
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				bc.nc.Close()
				if isTimeout(err) {
					x.line.Code, x.line.Status = H15, H15.Status()
				} else {
					x.line.Code, x.line.Status = H18, H18.Status()
				}
				panic(http.ErrAbortHandler) // cut the client's stream: the body is incomplete
			}
		}
		if resp.ContentLength >= 0 && !resp.Chunked && x.line.Bytes < resp.ContentLength {
			reuse = false
		}
	}
	if reuse {
		r.pools.put(bc)
	} else {
		bc.nc.Close()
	}
}

// tunnel hands an HTTP/1.1 client connection over to a WebSocket.
func (x *httpExchange) tunnel(bc *backendConn, resp *Response, head, rest []byte) {
	cc, brw, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		bc.nc.Close()
		x.fail(H99)
		return
	}
	out := resp.AppendForward(nil, head, ClientFraming{Minor: 1, Upgrade: true})
	out = append(out, rest...)
	if _, err := cc.Write(out); err != nil {
		cc.Close()
		bc.nc.Close()
		return
	}
	x.line.Bytes = int64(len(out))
	x.log() // now: the tunnel may last hours
	var pending []byte
	if n := brw.Reader.Buffered(); n > 0 {
		pending, _ = brw.Reader.Peek(n)
	}
	c := &conn{r: x.r, nc: cc}
	c.tunnel(bc, pending)
}

func writeHTTPPage(w http.ResponseWriter, status int, page string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-store")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	io.WriteString(w, page)
}
