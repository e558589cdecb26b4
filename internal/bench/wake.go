package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
)

// The wake section (issue 11, "Sleeping"): examples/go-hello on one eco
// web dyno that sleeps after a second without a request; each of
// wakeCount requests to the sleeping app is timed from its start to the
// first byte of its answer.
const (
	wakeCount  = 20
	wakeTarget = 100 * time.Millisecond // the median's
	wakeApp    = "examples/go-hello"
)

func (b *bench) wake() {
	fmt.Fprintf(b.out, "wake: %s on one eco web dyno that sleeps after 1s idle; GET / to the sleeping app through the router, %d times, timed to the answer's first byte\n", wakeApp, wakeCount)
	r := &routerBench{b: b, dir: filepath.Join(b.work, "wake"), exited: make(chan struct{}),
		webDir: wakeApp, extraConf: "\n[sleep]\nafter = \"1s\"\n"}
	b.setCleanup(r.close)
	defer func() {
		r.close()
		b.setCleanup(nil)
	}()
	if err := r.runWakes(); err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		if tail := r.daemonLogTail(); tail != "" {
			fmt.Fprintf(b.out, "  the daemon's last lines:\n%s", tail)
		}
		b.failed = true
	}
}

func (r *routerBench) runWakes() error {
	if _, err := os.Stat(filepath.Join(wakeApp, "main.go")); err != nil {
		return fmt.Errorf("%s: run the bench from the dyno repository's root", wakeApp)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	if err := r.startDaemon(); err != nil {
		return err
	}
	if _, err := r.app.ApplyScale([]app.Scale{{Type: "web", Op: '=', N: 1, Size: "eco"}}, []string{"eco"}, "bench"); err != nil {
		return err
	}
	r.client.Nudge()
	if _, err := r.waitFor("web.1 up at eco", func() (bool, error) {
		dynos, err := r.dynos()
		return err == nil && len(dynos) == 1 && dynos[0].State == "up" && dynos[0].Size == "Eco", nil
	}); err != nil {
		return err
	}
	awake, err := r.firstByte()
	if err != nil {
		return fmt.Errorf("the app awake: %w", err)
	}
	var wakes []time.Duration
	for range wakeCount {
		if _, err := r.waitFor("web.1 idle", func() (bool, error) {
			dynos, err := r.dynos()
			return err == nil && len(dynos) == 1 && dynos[0].State == "idle", nil
		}); err != nil {
			return err
		}
		d, err := r.firstByte()
		if err != nil {
			return fmt.Errorf("wake %d: %w", len(wakes)+1, err)
		}
		wakes = append(wakes, d)
	}
	slices.Sort(wakes)
	median := wakes[len(wakes)/2]
	verdict := "met"
	if median > wakeTarget {
		verdict = "missed"
	}
	fmt.Fprintf(r.b.out, "  first byte of a waking request   median %.1f ms   min %.1f ms   max %.1f ms   (awake: %.2f ms; target median ≤ %v: %s)\n",
		ms(median), ms(wakes[0]), ms(wakes[len(wakes)-1]), ms(awake), wakeTarget, verdict)
	return nil
}

// firstByte times GET / through the router on a new connection, from
// before the dial to the answer's first byte; the answer must be 200.
func (r *routerBench) firstByte() (time.Duration, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.listen+"/", nil)
	req.Host = routerHost
	var first time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() { first = time.Now() },
	}))
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /: %s", resp.Status)
	}
	return first.Sub(t0), nil
}
