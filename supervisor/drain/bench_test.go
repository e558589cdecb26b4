package drain

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger"
)

// What a drain costs the writer of the app's lines (the daemon's log
// path): with no drain, with one that is up and one that is down (its
// port refuses: lines queue, overflow, and are counted), per line.
// The writer must never wait on the drain, so the three stay close.
func BenchmarkManagerWrite(b *testing.B) {
	line := []byte("2026-12-03T08:56:40.260287+00:00 app[web.1]: GET /drained 200 " + fmt.Sprintf("%020d", 0) + "\n")
	up := func(b *testing.B) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			buf := make([]byte, 64<<10)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					for {
						if _, err := c.Read(buf); err != nil {
							return
						}
					}
				}()
			}
		}()
		return "syslog://" + ln.Addr().String()
	}
	down := func(b *testing.B) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens: every connect is refused
		return "syslog://" + addr
	}
	for _, c := range []struct {
		name string
		url  func(*testing.B) string
	}{{"none", nil}, {"up", up}, {"down", down}} {
		b.Run(c.name, func(b *testing.B) {
			m := NewManager(Options{Logf: func(string, ...any) {}})
			if c.url != nil {
				m.Set([]ledger.Drain{{ID: "d", URL: c.url(b), Token: "d.bench"}})
			}
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				m.Write(line)
			}
			b.StopTimer()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			m.Close(ctx)
		})
	}
}
