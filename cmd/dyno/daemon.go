package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/systemd"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func newDaemonCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run every app's current release at its formation (under systemd on a server)",
		Long: `The daemon keeps every app's current release running at its formation, in
isolated dynos, follows every change made with build, config:set, rollback or
ps:scale (within a second, also changes made while it was down), stores the
apps' logs and answers the API on a unix socket. It also runs the machine's
add-on servers (PostgreSQL, Redis) as services of its own, restarted if they
crash (dyno addons:logs shows their lines). SIGTERM stops every dyno with
Heroku's sequence, then the add-on servers cleanly. Install it as a systemd
service with dyno daemon install.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDaemon() },
	}
	cmd.AddCommand(newDaemonInstallCommand())
	return cmd
}

func runDaemon() error {
	h, err := home()
	if err != nil {
		return err
	}
	settings, err := daemon.LoadSettings(h.SizesFile())
	if err != nil {
		return err
	}
	// [addons.SERVICE] url decides which servers the daemon runs: a
	// mistake there is said now, not at the first add-on.
	if _, err := addons.LoadSettings(h.SizesFile()); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	defer stop()
	notify := systemd.NewNotifier(os.Environ())
	var lastTurn atomic.Int64
	lastTurn.Store(time.Now().UnixNano())
	// The watchdog is fed only while the main loop turns: a hung daemon
	// is restarted by systemd.
	go notify.RunWatchdog(ctx, func() bool {
		return time.Since(time.Unix(0, lastTurn.Load())) < 30*time.Second
	})
	policy := supervisor.ProductionRestartPolicy
	policy.Max = settings.RestartCap
	return daemon.Run(ctx, daemon.Config{
		Home:        h,
		Restart:     policy,
		Cycle:       settings.Cycle,
		CycleJitter: settings.CycleJitter,
		StopTimeout: settings.StopTimeout,
		BootTimeout: settings.BootTimeout,
		SleepAfter:  settings.SleepAfter,
		LogKeep:     settings.LogKeep,
		Router:      settings.Router,
		API:         settings.API,
		Socket:      daemon.SocketPath(h.Dir, os.Environ()),
		Log:         os.Stderr,
		Ready:       func() { notify.Ready() },
		Stopping:    func() { notify.Stopping() },
		Alive:       func() { lastTurn.Store(time.Now().UnixNano()) },
	})
}

func newDaemonInstallCommand() *cobra.Command {
	var userUnit, system, force bool
	var runAs string
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Write a systemd unit for the daemon and print how to enable it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if userUnit == system {
				return fmt.Errorf("choose --user (a user service, no root needed) or --system")
			}
			h, err := home()
			if err != nil {
				return err
			}
			if system && runAs != "" && os.Getenv("DYNO_HOME") == "" {
				// The daemon's home is the user's it runs as, not the
				// home of whoever installs (root, under sudo).
				u, err := user.Lookup(runAs)
				if err != nil {
					return fmt.Errorf("--run-as %s: %w", runAs, err)
				}
				h.Dir = filepath.Join(u.HomeDir, ".local", "share", "dyno")
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			if bin, err = filepath.EvalSymlinks(bin); err != nil {
				return err
			}
			homeDir, _ := os.UserHomeDir()
			path := systemd.UnitPath(userUnit, os.Environ(), homeDir)
			unit := systemd.Unit(systemd.UnitOptions{Binary: bin, Home: h.Dir, User: userUnit, RunAs: runAs})
			next, err := systemd.Install(path, unit, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Wrote %s. To enable and start it:\n", path)
			for _, c := range next {
				fmt.Fprintln(cmd.OutOrStdout(), "  "+c)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&userUnit, "user", false, "a user service (systemctl --user)")
	cmd.Flags().BoolVar(&system, "system", false, "a system service (/etc/systemd/system)")
	cmd.Flags().BoolVar(&force, "force", false, "replace a different existing unit")
	cmd.Flags().StringVar(&runAs, "run-as", "", "with --system, the user the daemon runs as (recommended: a dedicated one)")
	return cmd
}

// client is the API client of this home's daemon.
func client() (*daemon.Client, error) {
	h, err := home()
	if err != nil {
		return nil, err
	}
	return daemon.NewClient(daemon.ClientSocketPath(h.Dir, os.Environ())), nil
}

// nudge tells a running daemon that a ledger changed; without one the
// change waits in the ledger for its next start.
func nudge() {
	if c, err := client(); err == nil {
		c.Nudge()
	}
}
