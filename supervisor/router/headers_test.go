package router

import (
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestRewrite(t *testing.T) {
	start := time.UnixMilli(1764684000123)
	f := Forward{ClientIP: "10.0.0.9", Proto: "http", Port: "8080", Version: "1.1", Start: start}
	goodID := "client-request-id-0123456789"
	tests := []struct {
		name string
		in   http.Header
		f    Forward
		want http.Header // without X-Request-Id when a new one is expected
		id   string      // the id expected kept, "" for a new one
	}{
		{
			name: "plain request",
			in:   http.Header{"Accept": {"*/*"}},
			want: http.Header{"Accept": {"*/*"}, "X-Forwarded-For": {"10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Port": {"8080"}, "X-Request-Start": {"1764684000123"}, "Via": {"1.1 dyno"}},
		},
		{
			name: "client's X-Forwarded-For appended to, its id kept",
			in:   http.Header{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8", "9.9.9.9"}, "X-Request-Id": {goodID}},
			want: http.Header{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8, 9.9.9.9, 10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Port": {"8080"}, "X-Request-Start": {"1764684000123"}, "Via": {"1.1 dyno"}, "X-Request-Id": {goodID}},
			id: goodID,
		},
		{
			name: "client's forwarding claims replaced, short id replaced",
			in: http.Header{"X-Forwarded-Proto": {"https"}, "X-Forwarded-Port": {"443"}, "X-Request-Start": {"1"},
				"X-Request-Id": {"short"}},
			want: http.Header{"X-Forwarded-For": {"10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Port": {"8080"}, "X-Request-Start": {"1764684000123"}, "Via": {"1.1 dyno"}},
		},
		{
			name: "hop-by-hop headers and those Connection names removed",
			in: http.Header{"Connection": {"keep-alive, X-Secret", " x-other ,"}, "Keep-Alive": {"timeout=5"},
				"Proxy-Connection": {"keep-alive"}, "Te": {"trailers"}, "Trailer": {"Expires"},
				"Transfer-Encoding": {"chunked"}, "Upgrade": {"h2c"}, "X-Secret": {"s"}, "X-Other": {"o"}, "Cookie": {"a=b"}},
			want: http.Header{"Cookie": {"a=b"}, "X-Forwarded-For": {"10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Port": {"8080"}, "X-Request-Start": {"1764684000123"}, "Via": {"1.1 dyno"}},
		},
		{
			name: "WebSocket upgrade keeps Upgrade and Connection: Upgrade",
			in: http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"},
				"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Version": {"13"}},
			want: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
				"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}, "Sec-Websocket-Version": {"13"},
				"X-Forwarded-For": {"10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Port": {"8080"}, "X-Request-Start": {"1764684000123"}, "Via": {"1.1 dyno"}},
		},
		{
			name: "Upgrade without Connection: upgrade is dropped",
			in:   http.Header{"Upgrade": {"websocket"}},
			want: http.Header{"X-Forwarded-For": {"10.0.0.9"}, "X-Forwarded-Proto": {"http"},
				"X-Forwarded-Port": {"8080"}, "X-Request-Start": {"1764684000123"}, "Via": {"1.1 dyno"}},
		},
		{
			name: "the client's Via replaced, HTTP/1.0, https on 443",
			in:   http.Header{"Via": {"1.1 cdn"}},
			f:    Forward{ClientIP: "::1", Proto: "https", Port: "443", Version: "1.0", Start: start},
			want: http.Header{"X-Forwarded-For": {"::1"}, "X-Forwarded-Proto": {"https"},
				"X-Forwarded-Port": {"443"}, "X-Request-Start": {"1764684000123"}, "Via": {"1.0 dyno"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ff := f
			if tt.f.ClientIP != "" {
				ff = tt.f
			}
			h := tt.in.Clone()
			id, fwd := Rewrite(h, ff)
			if tt.id != "" && id != tt.id {
				t.Errorf("request id %q, want the client's %q kept", id, tt.id)
			}
			if tt.id == "" && !uuidV4.MatchString(id) {
				t.Errorf("request id %q, want a new UUID v4", id)
			}
			if got := h["X-Request-Id"]; len(got) != 1 || got[0] != id {
				t.Errorf("X-Request-Id %q, want [%q]", got, id)
			}
			if fwd != tt.want.Get("X-Forwarded-For") {
				t.Errorf("fwd %q, want %q", fwd, tt.want.Get("X-Forwarded-For"))
			}
			want := tt.want.Clone()
			want["X-Request-Id"] = []string{id}
			if !reflect.DeepEqual(h, want) {
				t.Errorf("headers\n got %q\nwant %q", h, want)
			}
		})
	}
}

// TestRewriteAllocations bounds the cost of a rewrite for a request that
// arrives with the headers a browser sends: the X-Forwarded-For value, the
// X-Request-Start digits, one backing array for the headers the client
// did not send, and a map slot.
func TestRewriteAllocations(t *testing.T) {
	f := Forward{ClientIP: "127.0.0.1", Proto: "http", Port: "8080", Version: "1.1", Start: time.Now()}
	in := browserHeader()
	h := in.Clone()
	scratch := make(map[string][]string)
	allocs := testing.AllocsPerRun(100, func() {
		refill(h, in, scratch)
		Rewrite(h, f)
	})
	if allocs > 4 {
		t.Errorf("Rewrite: %v allocations, want at most 4", allocs)
	}
}

func browserHeader() http.Header {
	return http.Header{
		"Accept":          {"text/html"},
		"Accept-Encoding": {"gzip, deflate"},
		"Connection":      {"keep-alive"},
		"User-Agent":      {"Mozilla/5.0"},
		"X-Request-Id":    {"abcdefghijklmnopqrstuvwxyz"},
		"X-Forwarded-For": {"192.0.2.1"},
	}
}

func BenchmarkRewrite(b *testing.B) {
	f := Forward{ClientIP: "127.0.0.1", Proto: "http", Port: "8080", Version: "1.1", Start: time.Now()}
	in := browserHeader()
	h := make(http.Header, 16)
	scratch := make(map[string][]string)
	b.ReportAllocs()
	for b.Loop() {
		refill(h, in, scratch)
		Rewrite(h, f)
	}
}

// refill makes h a copy of in, as a parser would hand it over, reusing
// scratch's slices (Rewrite writes into them) so that the copy costs the
// measurement nothing once warm.
func refill(h, in http.Header, scratch map[string][]string) {
	for k := range h {
		delete(h, k)
	}
	for k, v := range in {
		s := append(scratch[k][:0], v...)
		scratch[k] = s
		h[k] = s
	}
}
