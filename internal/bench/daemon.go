package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor/daemon"
)

const (
	daemonDynos      = 10
	targetConvergeIn = 2 * time.Second
	daemonRounds     = 5
)

// daemonRestart measures crash safety's second half: after the daemon is
// killed with SIGKILL (its dynos die with it), how long a new daemon takes
// to bring the same formation of 10 dynos back up.
func (b *bench) daemonRestart() {
	fmt.Fprintf(b.out, "daemon: %d dynos up again after kill -9 of the daemon, median of %d rounds\n", daemonDynos, daemonRounds)
	d, err := b.measureDaemon()
	if err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		b.failed = true
		return
	}
	fmt.Fprintf(b.out, "  %-34s %8.1f ms   (target < %v: %s)\n", "start to formation up", ms(d), targetConvergeIn, metOrMissed(d < targetConvergeIn))
}

func (b *bench) measureDaemon() (time.Duration, error) {
	home := app.Home{Dir: filepath.Join(b.work, "daemon-home")}
	a, err := home.Create("fleet", "bench")
	if err != nil {
		return 0, err
	}
	// A slug whose worker is up as soon as it starts.
	tree := filepath.Join(b.work, "fleet-src")
	os.MkdirAll(tree, 0o755)
	os.WriteFile(filepath.Join(tree, "Procfile"), []byte("worker: exec sleep 100000\n"), 0o644)
	sl, _, err := home.Slugs().Pack(tree, slug.PackOptions{})
	if err != nil {
		return 0, err
	}
	if _, err := a.Deploy(sl.Digest, "", map[string]string{"worker": "exec sleep 100000"}, nil, nil, "bench"); err != nil {
		return 0, err
	}
	if _, err := a.ApplyScale([]app.Scale{{Type: "worker", Op: '=', N: daemonDynos}}, []string{app.DefaultSize}, "bench"); err != nil {
		return 0, err
	}
	socket := filepath.Join(home.Dir, "dyno.sock")
	client := daemon.NewClient(socket)
	env := append(os.Environ(), "DYNO_HOME="+home.Dir, "DYNO_SOCKET="+socket)
	start := func() (*exec.Cmd, error) {
		cmd := exec.Command(b.dyno, "daemon")
		cmd.Env = env
		return cmd, cmd.Start()
	}
	upCount := func() int {
		var dynos []struct {
			State string `json:"state"`
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if client.Do(ctx, http.MethodGet, "/apps/fleet/dynos", nil, &dynos) != nil {
			return 0
		}
		n := 0
		for _, d := range dynos {
			if d.State == "up" {
				n++
			}
		}
		return n
	}
	waitUp := func(limit time.Duration) (time.Duration, error) {
		t0 := time.Now()
		for upCount() < daemonDynos {
			if time.Since(t0) > limit {
				return 0, fmt.Errorf("the formation was not up after %v", limit)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(t0), nil
	}
	cmd, err := start()
	if err != nil {
		return 0, err
	}
	if _, err := waitUp(30 * time.Second); err != nil {
		cmd.Process.Kill()
		return 0, err
	}
	var times []time.Duration
	for range daemonRounds {
		cmd.Process.Kill()
		cmd.Wait()
		// Its dynos die with it; wait until none is left, then time the
		// new daemon alone.
		for sleepersAlive() {
			time.Sleep(5 * time.Millisecond)
		}
		if cmd, err = start(); err != nil {
			return 0, err
		}
		d, err := waitUp(30 * time.Second)
		if err != nil {
			cmd.Process.Kill()
			return 0, err
		}
		times = append(times, d)
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	slices.Sort(times)
	return times[len(times)/2], nil
}

// sleepersAlive reports whether any of the benchmark's dyno processes
// (sleep 100000) still runs.
func sleepersAlive() bool {
	return exec.Command("pgrep", "-f", "sleep 100000").Run() == nil
}
