package dashboard

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The app page of an app of 200 dynos with a week of metrics: the
// daemon's side (BenchmarkAppPage) and the browser's (the first
// contentful paint, in headless Chromium). make bench's fleet section
// measures the same against a daemon running 200 real dynos.

func renderFixture(b *testing.B) (*Server, *fakeSource) {
	src := newFakeSource()
	src.addApp("fleet", 200, time.Now())
	s, err := New(Config{Source: src, Tokens: &fakeTokens{token: token}, KeyDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	return s, src
}

func BenchmarkAppPage(b *testing.B) {
	s, _ := renderFixture(b)
	value, _ := s.newSession(time.Now())
	req := httptest.NewRequest("GET", "/apps/fleet?range=7d", nil)
	req.Header.Set("Cookie", sessionCookie+"="+value)
	for b.Loop() {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkFirstPaintChromium(b *testing.B) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		b.Skip("no chromium on PATH (Debian's chromium package)")
	}
	s, _ := renderFixture(b)
	srv := httptest.NewServer(s)
	defer srv.Close()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.UserDataDir(b.TempDir()),
		chromedp.NoSandbox, chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1360, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/login"), chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")), chromedp.WaitVisible(chromedp.CSS("table.apps"))); err != nil {
		b.Fatal(err)
	}
	var fcp, load float64
	for b.Loop() {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/apps/fleet?range=7d")); err != nil {
			b.Fatal(err)
		}
		ts, err := chromedp.Run(ctx, chromedp.Poll[[]float64](`(() => {
			const p = performance.getEntriesByName("first-contentful-paint")[0];
			const n = performance.getEntriesByType("navigation")[0];
			return p && n && n.loadEventEnd > 0 ? [p.startTime, n.loadEventEnd] : null;
		})()`, chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			b.Fatal(err)
		}
		fcp += ts[0]
		load += ts[1]
	}
	b.ReportMetric(fcp/float64(b.N), "ms-first-paint")
	b.ReportMetric(load/float64(b.N), "ms-load")
}
