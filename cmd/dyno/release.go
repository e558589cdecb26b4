package main

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/logmux"
)

// releaseRunner returns what runs a release phase for app a: the release
// command in a one-off dyno release.N of the new release, isolated, its
// output streamed to out in Heroku's log lines.
func releaseRunner(a *app.App, out io.Writer) func(context.Context, ledger.Release, string) (int, error) {
	// The lower it is given is the store's shared tree; appRunner picks
	// the app's own copy where the app has its own ids.
	return func(ctx context.Context, rel ledger.Release, _ string) (int, error) {
		spawner, err := newSpawner()
		if err != nil {
			return -1, err
		}
		defer spawner.Close()
		r, err := appRunner(spawner, a, rel.Slug, isolateOptions{size: "standard-1x"}, false, false)
		if err != nil {
			return -1, err
		}
		r.Profile = true
		name := "release." + strconv.Itoa(rel.Version)
		logs := logmux.New(out, logmux.Options{Format: logmux.FormatTerminal, Timestamp: true, Color: useColor(false), Names: []string{name}})
		// Heroku's release phase may take an hour at most.
		ctx, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		return supervisor.RunOneOff(ctx, r, logs, supervisor.DynoSpec{
			Name:    name,
			Command: rel.ProcessTypes["release"],
			Dir:     "/app",
			Env:     app.DynoEnv(&rel, name, 5000),
		}, 30*time.Second)
	}
}
