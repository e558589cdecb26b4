package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/dyno-run/dyno/slug"
)

// The deploys section (issue 11, "Deploys that drop nothing"): a client
// sends requests back to back through the router while the app is
// deployed five times, without preboot and then with it.
const (
	deployLoad   = 20 * time.Second
	deployCount  = 5
	deployPeriod = deployLoad / (deployCount + 1)
)

// deployKinds are the five deploys, in order: each makes a release
// that restarts every dyno.
var deployKinds = []string{"build", "config:set", "rollback", "build", "config:set"}

func (b *bench) deploys() {
	fmt.Fprintf(b.out, "deploys: GET / back to back through the router on one keep-alive connection for %v while okapp is deployed %d times (%v; the builds' slugs packed before), one web dyno\n",
		deployLoad, deployCount, deployKinds)
	r := &routerBench{b: b, dir: filepath.Join(b.work, "deploys"), exited: make(chan struct{})}
	b.setCleanup(r.close)
	defer func() {
		r.close()
		b.setCleanup(nil)
	}()
	if err := r.runDeploys(); err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		if tail := r.daemonLogTail(); tail != "" {
			fmt.Fprintf(b.out, "  the daemon's last lines:\n%s", tail)
		}
		b.failed = true
	}
}

func (r *routerBench) runDeploys() error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	if err := r.startDaemon(); err != nil {
		return err
	}
	if _, err := r.scale(1); err != nil {
		return err
	}
	// The builds' slugs are packed before the load: what is measured is
	// the release and the restart, not gzip on the same two cores (a
	// build's pack ran 20-30 ms of the client's requests late).
	tree := filepath.Join(r.dir, "slug")
	r.slugs = map[int]string{}
	for i, kind := range deployKinds {
		if kind != "build" {
			continue
		}
		// okserver and a file that differs each time: a new digest.
		if err := os.WriteFile(filepath.Join(tree, "deploy.txt"), []byte(strconv.Itoa(i)+"\n"), 0o644); err != nil {
			return err
		}
		sl, _, err := r.home.Slugs().Pack(tree, slug.PackOptions{})
		if err != nil {
			return err
		}
		r.slugs[i] = sl.Digest
	}
	row := func(cells ...any) { fmt.Fprintf(r.b.out, "  %-18s %9v %7v %8v %8v %8v\n", cells...) }
	row("", "requests", "failed", "p50 ms", "p99 ms", "max ms")
	for _, mode := range []string{"no deploys", "without preboot", "with preboot"} {
		if _, err := r.app.SetFeature("preboot", mode == "with preboot", "bench"); err != nil {
			return err
		}
		r.client.Nudge()
		res, err := r.deployUnderLoad(mode != "no deploys")
		if err != nil {
			return err
		}
		name := mode
		row(name, thousands(float64(len(res.latencies)+res.failed)), res.failed,
			fmt.Sprintf("%.2f", ms(res.quantile(0.50))), fmt.Sprintf("%.2f", ms(res.quantile(0.99))), fmt.Sprintf("%.1f", ms(res.quantile(1))))
		for _, f := range res.failures {
			fmt.Fprintf(r.b.out, "    ! %s\n", f)
		}
	}
	fmt.Fprintln(r.b.out, "  (no deploys: the same client for as long, the app's own answer times; target: 0 failed with deploys, and with preboot no request waiting for a boot: a max near the app's own)")
	return nil
}

// deployResult is what the client saw during one load run.
type deployResult struct {
	latencies []time.Duration // of the requests answered 200, sorted
	failed    int
	failures  []string // the first few
}

func (d *deployResult) quantile(q float64) time.Duration {
	if len(d.latencies) == 0 {
		return 0
	}
	return d.latencies[min(len(d.latencies)-1, int(q*float64(len(d.latencies))))]
}

// deployUnderLoad runs the client for deployLoad and, with deploys, the
// deploys during it, one every deployPeriod.
func (r *routerBench) deployUnderLoad(deploys bool) (*deployResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), deployLoad)
	defer cancel()
	res := &deployResult{latencies: make([]time.Duration, 0, 1<<20)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
		defer client.CloseIdleConnections()
		for ctx.Err() == nil {
			req, _ := http.NewRequest(http.MethodGet, "http://"+r.listen+"/", nil)
			req.Host = routerHost
			t0 := time.Now()
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("%s", resp.Status)
				}
			}
			if err != nil {
				res.failed++
				if len(res.failures) < 5 {
					res.failures = append(res.failures, err.Error())
				}
				continue
			}
			res.latencies = append(res.latencies, time.Since(t0))
		}
	}()
	var deployErr error
	kinds := deployKinds
	if !deploys {
		kinds = nil
	}
	for i, kind := range kinds {
		select {
		case <-ctx.Done():
		case <-time.After(deployPeriod):
		}
		if err := r.deploy(i, kind); err != nil && deployErr == nil {
			deployErr = fmt.Errorf("deploy %d (%s): %w", i+1, kind, err)
		}
	}
	wg.Wait()
	slices.Sort(res.latencies)
	return res, deployErr
}

// deploy makes release number i of kind and tells the daemon.
func (r *routerBench) deploy(i int, kind string) error {
	var err error
	switch kind {
	case "build":
		_, err = r.app.Deploy(r.slugs[i], "", map[string]string{"web": "./okserver"}, nil, nil, "bench")
	case "config:set":
		_, err = r.app.ChangeConfig(map[string]string{"DEPLOY": strconv.Itoa(i)}, nil, "bench")
	case "rollback":
		_, err = r.app.Rollback(0, "bench")
	}
	if err != nil {
		return err
	}
	r.client.Nudge()
	return nil
}
