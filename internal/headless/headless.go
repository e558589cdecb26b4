// Package headless starts Debian's Chromium without a screen for the
// dashboard's browser tests and benchmarks, with the flags this kind of
// machine needs, and reads a page's own timings.
package headless

import (
	"context"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium is the browser's path, or "" when none is on PATH.
func Chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start runs the browser at path, keeping its profile in dataDir, and
// returns a context for a tab of it and what ends both.
func Start(path, dataDir string, opts ...chromedp.ContextOption) (context.Context, context.CancelFunc) {
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dataDir),
		chromedp.NoSandbox, // as root, Chromium refuses its own sandbox
		chromedp.Flag("disable-gpu", true),
		// No connections of its own: this machine's network is closed.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1360, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	ctx, cancel := chromedp.NewContext(actx, opts...)
	return ctx, func() { cancel(); cancelAlloc() }
}

// FirstPaint waits for the page just navigated to to have painted and
// loaded, and returns its first contentful paint and its load event,
// from the start of navigation. The paint entry can come after the
// load event.
func FirstPaint(ctx context.Context) (paint, load time.Duration, err error) {
	ts, err := chromedp.Run(ctx, chromedp.Poll[[]float64](`(() => {
		const p = performance.getEntriesByName("first-contentful-paint")[0];
		const n = performance.getEntriesByType("navigation")[0];
		return p && n && n.loadEventEnd > 0 ? [p.startTime, n.loadEventEnd] : null;
	})()`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		return 0, 0, err
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	return ms(ts[0]), ms(ts[1]), nil
}
