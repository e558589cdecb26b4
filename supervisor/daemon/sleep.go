package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Sleeping, as Heroku's eco dynos sleep: an app whose web dynos are eco
// sleeps after Config.SleepAfter without a request. Its formation dynos
// stop and show idle (supervisor.Sleep), the router holds the next
// request and wakes them (wakeOnRequest), and the request goes through
// as soon as a web dyno is up. An app with no web dynos never sleeps.
//
// That an app sleeps is kept in a marker file in its folder, not in its
// ledger: sleeping changes no formation and makes no record, and a
// daemon started again finds the app asleep and leaves it so.

// sleepingSize is the dyno size whose apps sleep.
const sleepingSize = "eco"

// sleepMarker is the file whose presence says the app sleeps.
func (r *appRun) sleepMarker() string { return filepath.Join(r.app.Dir, "sleeping") }

func (r *appRun) sleepMarked() bool {
	_, err := os.Stat(r.sleepMarker())
	return err == nil
}

// checkSleep puts the app to sleep when it is an eco app that has had
// no request for SleepAfter, counting from when it was taken up or last
// woken. The main loop calls it every turn.
func (r *appRun) checkSleep(now time.Time) {
	r.mu.Lock()
	eco, awake, released := r.eco, r.awake, r.rel != nil
	r.mu.Unlock()
	if !eco || !released || r.sup.Asleep() || r.waking.Load() {
		return
	}
	last := r.route.LastRequest()
	if awake.After(last) {
		last = awake
	}
	if now.Sub(last) < r.d.cfg.SleepAfter {
		return
	}
	// Marked first: a daemon that dies between the two finds the app
	// asleep, and its dynos idle, when it starts again.
	if err := os.WriteFile(r.sleepMarker(), nil, 0o600); err != nil {
		r.d.logf("%s: cannot mark it asleep (%v); it stays awake", r.name, err)
		return
	}
	r.sup.Sleep()
}

// wakeOnRequest is the router's waker: a request came for the app while
// it sleeps. It starts the wake and returns at once; the router holds
// the request until a web dyno is up.
func (r *appRun) wakeOnRequest() {
	if !r.waking.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.waking.Store(false)
		if !r.sup.Asleep() {
			return
		}
		r.mu.Lock()
		r.awake = time.Now()
		r.mu.Unlock()
		if err := os.Remove(r.sleepMarker()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.d.logf("%s: remove %s: %v", r.name, r.sleepMarker(), err)
		}
		r.sup.Wake()
		r.routeState()
	}()
}
