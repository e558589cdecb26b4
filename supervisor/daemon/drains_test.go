package daemon

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/router"
)

// syslogFrames accepts syslog connections on loopback and sends each
// octet-counted frame it reads.
func syslogFrames(t *testing.T) (addr string, frames <-chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan string, 1000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				br := bufio.NewReader(c)
				for {
					s, err := br.ReadString(' ')
					if err != nil {
						return
					}
					n, _ := strconv.Atoi(strings.TrimSpace(s))
					b := make([]byte, n)
					if _, err := io.ReadFull(br, b); err != nil {
						return
					}
					out <- string(b)
				}
			}()
		}
	}()
	return ln.Addr().String(), out
}

func awaitFrame(t *testing.T, frames <-chan string, want string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case f := <-frames:
			if strings.Contains(f, want) {
				return f
			}
		case <-timeout:
			t.Fatalf("no frame with %q in 30s", want)
		}
	}
}

// A drain added through the API gets the app's lines, app, api and
// router lines alike, with its token as HOSTNAME; removed by token, it
// is gone from the list. A URL that is not a drain's is refused with
// nothing recorded.
func TestDrainsAPI(t *testing.T) {
	t.Parallel()
	td, addr := startRouted(t, &webRunner{}, func(h app.Home) {
		deploy(t, h, "demo", map[string]string{"web": "serve"})
	})
	td.awaitState("demo", router.Running)
	demo, _ := td.d.app("demo")
	ctx := context.Background()
	sysAddr, frames := syslogFrames(t)

	var added map[string]any
	if err := td.client.Do(ctx, http.MethodPost, "/apps/demo/log-drains", map[string]any{"url": "syslog://" + sysAddr}, &added); err != nil {
		t.Fatal(err)
	}
	token, _ := added["token"].(string)
	if !strings.HasPrefix(token, "d.") || added["url"] != "syslog://"+sysAddr || added["id"] == "" {
		t.Fatalf("POST log-drains: %v", added)
	}
	var list []map[string]any
	if err := td.client.Do(ctx, http.MethodGet, "/apps/demo/log-drains", nil, &list); err != nil || len(list) != 1 || list[0]["token"] != token {
		t.Fatalf("GET log-drains: %v, %v", list, err)
	}
	td.eventually("the drain to start", func() bool { return demo.drains.Len() == 1 })
	demo.logs.Line("api", []byte("Deploy by user ann"))
	if f := awaitFrame(t, frames, "Deploy by user ann"); !strings.Contains(f, " "+token+" app api - - Deploy by user ann") {
		t.Errorf("api line as framed: %q", f)
	}
	get(t, addr, "demo.localhost")
	if f := awaitFrame(t, frames, " heroku router - - at=info"); !strings.HasPrefix(f, "<158>1 ") {
		t.Errorf("router line as framed: %q; want local3", f)
	}

	err := td.client.Do(ctx, http.MethodPost, "/apps/demo/log-drains", map[string]any{"url": "ftp://logs.example.com"}, nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || !strings.Contains(apiErr.Message, `scheme "ftp"`) {
		t.Errorf("bad URL: %v", err)
	}
	var gone map[string]any
	if err := td.client.Do(ctx, http.MethodDelete, "/apps/demo/log-drains/"+token, nil, &gone); err != nil || gone["token"] != token {
		t.Fatalf("DELETE: %v, %v", gone, err)
	}
	list = nil
	if err := td.client.Do(ctx, http.MethodGet, "/apps/demo/log-drains", nil, &list); err != nil || len(list) != 0 {
		t.Errorf("after DELETE: %v, %v", list, err)
	}
	td.eventually("the drain to stop", func() bool { return demo.drains.Len() == 0 })
}
