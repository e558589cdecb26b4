package dashboard

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dyno-run/dyno/internal/headless"
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
	chrome := headless.Chromium()
	if chrome == "" {
		b.Skip("no chromium on PATH (Debian's chromium package)")
	}
	s, _ := renderFixture(b)
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, stop := headless.Start(chrome, b.TempDir())
	defer stop()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/login"), chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Submit(chromedp.ID("token")), chromedp.WaitVisible(chromedp.CSS("table.apps"))); err != nil {
		b.Fatal(err)
	}
	var paint, load time.Duration
	for b.Loop() {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/apps/fleet?range=7d")); err != nil {
			b.Fatal(err)
		}
		p, l, err := headless.FirstPaint(ctx)
		if err != nil {
			b.Fatal(err)
		}
		paint += p
		load += l
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(paint), "ms-first-paint")
	b.ReportMetric(ms(load), "ms-load")
}
