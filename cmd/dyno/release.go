package main

import (
	"context"
	"fmt"
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
	return func(ctx context.Context, rel ledger.Release, lower string) (int, error) {
		spawner, err := newSpawner()
		if err != nil {
			return -1, err
		}
		defer spawner.Close()
		r, err := appRunner(spawner, a, lower, isolateOptions{size: "standard-1x"}, false, false)
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

// releaseLower unpacks rel's slug (once per slug) for dynos to mount.
func releaseLower(a *app.App, rel *ledger.Release) (string, error) {
	if rel.Slug == "" {
		return "", fmt.Errorf("%s v%d has no code yet; build it first with dyno build -a %s", a.Name, rel.Version, a.Name)
	}
	return a.Home().Slugs().Unpacked(rel.Slug)
}
