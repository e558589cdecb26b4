package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/router"
)

// loadClient sends GET / to the router back to back until stopped, and
// counts what it got.
type loadClient struct {
	mu       sync.Mutex
	ok, fail int
	failures []string
	ports    map[string]int // answers by the port the dyno said it was on
	notify   chan string    // each answer's port, dropped when full
	stopped  chan struct{}
	done     chan struct{}
}

func startLoad(t *testing.T, addr, host string) *loadClient {
	l := &loadClient{ports: map[string]int{}, notify: make(chan string, 1024), stopped: make(chan struct{}), done: make(chan struct{})}
	c := &http.Client{Timeout: 30 * time.Second}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stopped:
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			req.Host = host
			resp, err := c.Do(req)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			l.mu.Lock()
			switch {
			case err != nil:
				l.fail++
				l.failures = append(l.failures, err.Error())
			case resp.StatusCode != 200:
				l.fail++
				l.failures = append(l.failures, fmt.Sprintf("%d %s", resp.StatusCode, body))
			default:
				l.ok++
				// "web.1 on PORT id=..."
				f := strings.Fields(string(body))
				if len(f) >= 3 {
					l.ports[f[2]]++
					select {
					case l.notify <- f[2]:
					default:
					}
				}
			}
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *loadClient) stop() {
	select {
	case <-l.stopped:
	default:
		close(l.stopped)
	}
	<-l.done
}

// awaitPort waits until an answer comes from a dyno on port, draining
// answers before it; other ports it sees go to seen.
func (l *loadClient) awaitPort(t *testing.T, port string, seen map[string]bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case p := <-l.notify:
			if seen != nil {
				seen[p] = true
			}
			if p == port || port == "" {
				return
			}
		case <-timeout:
			t.Fatalf("no answer from port %s", port)
		}
	}
}

// webPort is the port web.1's process listens on now.
func webPort(t *testing.T, td *testDaemon) string {
	t.Helper()
	var dynos []Dyno
	if err := td.client.Do(context.Background(), http.MethodGet, "/apps/demo/dynos", nil, &dynos); err != nil || len(dynos) != 1 {
		t.Fatalf("dynos %+v, %v", dynos, err)
	}
	return fmt.Sprint(dynos[0].Port)
}

// Config changes under load lose no request, with preboot or without:
// without it requests wait in the router while the new dyno boots; with
// it the old dyno answers them until the new one is up, and no request
// waits.
func TestDeploysDropNothing(t *testing.T) {
	t.Parallel()
	for _, preboot := range []bool{false, true} {
		t.Run(fmt.Sprintf("preboot=%v", preboot), func(t *testing.T) {
			t.Parallel()
			w := &webRunner{}
			td, addr := startRouted(t, w, func(h app.Home) {
				a := deploy(t, h, "demo", map[string]string{"web": "serve"})
				if preboot {
					if _, err := a.SetFeature("preboot", true, "test"); err != nil {
						t.Fatal(err)
					}
				}
			})
			td.awaitState("demo", router.Running)
			load := startLoad(t, addr, "demo.localhost")
			ctx := context.Background()
			for i := range 3 {
				old := webPort(t, td)
				load.awaitPort(t, old, nil)
				// The next dyno listens only when the test says: a boot
				// as long as the test needs to look.
				hold := make(chan struct{})
				w.fakeRunner.mu.Lock()
				w.hold = hold
				w.fakeRunner.mu.Unlock()
				if err := td.client.Do(ctx, http.MethodPatch, "/apps/demo/config-vars", map[string]any{"N": fmt.Sprint(i)}, nil); err != nil {
					t.Fatal(err)
				}
				var fresh string
				td.eventually("a new web.1 starting", func() bool { fresh = webPort(t, td); return fresh != old })
				if preboot {
					// The old dyno answers while the new one boots.
					load.mu.Lock()
					before := load.ports[old]
					load.mu.Unlock()
					deadline := time.Now().Add(20 * time.Second)
					for {
						load.mu.Lock()
						n, ports, fails := load.ports[old], fmt.Sprint(load.ports), load.failures
						load.mu.Unlock()
						if n >= before+20 {
							break
						}
						if time.Now().After(deadline) {
							var dynos []Dyno
							td.client.Do(ctx, http.MethodGet, "/apps/demo/dynos", nil, &dynos)
							demo, _ := td.d.app("demo")
							t.Fatalf("deploy %d: the old dyno on %s answered %d times during the boot of %s, want 20 more than %d\nanswers by port %s, failures %q\ndynos %+v\nsupervisor %+v\nrouter state %d\ndaemon log:\n%s",
								i, old, n, fresh, before, ports, fails, dynos, demo.sup.Status(), demo.route.State(), td.log)
						}
						// The answers are the event; each is on the notify channel.
						select {
						case <-load.notify:
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
				close(hold)
				load.awaitPort(t, fresh, nil)
			}
			load.stop()
			if load.fail > 0 || load.ok == 0 {
				t.Errorf("%d requests answered, %d failed: %q", load.ok, load.fail, load.failures[:min(5, len(load.failures))])
			}
		})
	}
}
