package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dyno-run/dyno/internal/headless"
	"github.com/dyno-run/dyno/supervisor/appmetrics"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
)

const (
	// dashboardRenders is how many times the app page is fetched, and
	// chromiumRenders how many times Chromium opens it.
	dashboardRenders = 20
	chromiumRenders  = 7
	// targetRender is the goal for the first render of the app
	// page of 200 dynos.
	targetRender = 200 * time.Millisecond
)

// dashboard measures the dashboard with the fleet's 200 dynos up: the
// time the daemon takes to answer the app's page (dyno table, charts,
// logs), the first render of that page in headless Chromium when one is
// installed, and the disk the metrics of 200 dynos take for a week.
// routerAddr is the daemon's router, which serves dashboard.localhost.
func (b *bench) dashboard(home, routerAddr string) error {
	clientPath := filepath.Join(b.work, "api-token")
	token, err := apitoken.Token(daemon.APIDir(home), clientPath)
	if err != nil {
		return err
	}
	// Two samples, so that every dyno has a CPU share and the charts a
	// point.
	time.Sleep(2*appmetrics.Every + time.Second)

	base := "http://dashboard.localhost" + routerAddr[strings.LastIndex(routerAddr, ":"):]
	// dashboard.localhost is the router's own address, whatever the
	// resolver says of it.
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, routerAddr)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dial}}
	resp, err := client.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if u, _ := url.Parse(base); len(jar.Cookies(u)) == 0 {
		return fmt.Errorf("sign in to the dashboard: %s, no session", resp.Status)
	}
	var times []time.Duration
	var size int
	for range dashboardRenders {
		t0 := time.Now()
		resp, err := client.Get(base + "/apps/fleet")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		times = append(times, time.Since(t0))
		if resp.StatusCode != 200 || strings.Count(string(body), `id="dyno-gen.`) != fleetDynos {
			return fmt.Errorf("the app page: %s, %d dyno rows", resp.Status, strings.Count(string(body), `id="dyno-gen.`))
		}
		size = len(body)
	}
	slices.Sort(times)
	fmt.Fprintf(b.out, "  %-34s %8.1f ms  (median of %d; slowest %.1f ms; %d KB of HTML with its SVG)\n",
		"dashboard app page, 200 dynos", ms(times[len(times)/2]), dashboardRenders, ms(times[len(times)-1]), size>>10)

	if chrome := headless.Chromium(); chrome == "" {
		fmt.Fprintf(b.out, "  %-34s (no Chromium on PATH: Debian's chromium package measures it)\n", "first render in Chromium")
	} else if r, err := b.firstRender(chrome, base, token, chromiumRenders); err != nil {
		return fmt.Errorf("first render in Chromium: %w", err)
	} else {
		first := r[0]
		slices.SortFunc(r, func(a, b [2]time.Duration) int { return cmp.Compare(a[0], b[0]) })
		med := r[len(r)/2]
		fmt.Fprintf(b.out, "  %-34s %8.1f ms  (first contentful paint from navigation start; median of %d, the first %.1f ms; load event %.1f ms; goal < 200 ms: %s)\n",
			"app page rendered in Chromium", ms(med[0]), len(r), ms(first[0]), ms(med[1]), metOrMissed(med[0] < targetRender))
	}

	dir := filepath.Join(home, "apps", "fleet", "metrics")
	onDisk, files, err := diskUse(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "  %-34s %8s   (%d files; fixed: a week of 200 dynos is appmetrics.SizeFor(1, 200) = %s, whatever the traffic)\n",
		"metrics store, 200 dynos", mb(onDisk), files, mb(appmetrics.SizeFor(1, fleetDynos)))
	return nil
}

// firstRender signs a headless Chromium in and opens the app page
// renders times, reading the page's own timings of each: the first
// contentful paint and the load event, from the start of navigation.
func (b *bench) firstRender(chrome, base, token string, renders int) (out [][2]time.Duration, err error) {
	data, err := os.MkdirTemp(b.work, "chromium-")
	if err != nil {
		return nil, err
	}
	ctx, stop := headless.Start(chrome, data)
	defer stop()
	ctx, cancelT := context.WithTimeout(ctx, time.Minute)
	defer cancelT()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.CSS("table.apps")),
	); err != nil {
		return nil, err
	}
	for range renders {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/apps/fleet")); err != nil {
			return nil, err
		}
		paint, load, err := headless.FirstPaint(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, [2]time.Duration{paint, load})
	}
	return out, nil
}

// diskUse is the bytes the files under dir take on disk, and how many.
func diskUse(dir string) (int64, int, error) {
	var total int64
	n := 0
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		n++
		return nil
	})
	return total, n, err
}
