package main

import (
	"context"
	"io"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/logmux"
	"github.com/dyno-run/dyno/supervisor/release"
)

// releaseRunner returns what runs a release phase for app a
// (release.RunPhase), isolated, its output streamed to out in Heroku's
// log lines.
func releaseRunner(a *app.App, out io.Writer) func(context.Context, ledger.Release, string) (int, error) {
	// The lower it is given is the store's shared tree; appRunner picks
	// the app's own copy where the app has its own ids.
	return func(ctx context.Context, rel ledger.Release, _ string) (int, error) {
		spawner, err := newSpawner()
		if err != nil {
			return -1, err
		}
		defer spawner.Close()
		r, err := appRunner(spawner, a, rel.Slug, isolateOptions{size: app.DefaultSize}, false, false)
		if err != nil {
			return -1, err
		}
		r.Profile = true
		logs := logmux.New(out, logmux.Options{Format: logmux.FormatTerminal, Timestamp: true, Color: useColor(false), Names: []string{release.PhaseName(rel)}})
		return release.RunPhase(ctx, r, logs, rel, release.Options{BasePort: 5000}, 30*time.Second)
	}
}
