package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/systemd"
	"github.com/spf13/cobra"
)

// addTopic registers Heroku's "topic:verb" commands, and "topic verb" as
// the same commands, under root. main is the topic's own command (dyno
// apps); each verb constructor makes a command whose Use starts with
// "topic:verb". Constructors are called twice: cobra gives each command
// one parent, and each copy needs its own flag variables.
func addTopic(root *cobra.Command, main func() *cobra.Command, verbs ...func() *cobra.Command) {
	topic := main()
	root.AddCommand(topic)
	// "dyno apps craete" is a mistyped verb, answered as one, where
	// the topic itself takes no such argument.
	if check := topic.Args; check != nil {
		topic.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err != nil && len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return err
		}
	}
	for _, v := range verbs {
		root.AddCommand(v())
		sub := v()
		sub.Use = strings.TrimPrefix(sub.Use, topic.Name()+":")
		sub.Aliases = nil
		topic.AddCommand(sub)
	}
}

// appFlag adds -a/--app to cmd. The app is also read from DYNO_APP.
func appFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVarP(name, "app", "a", "", "the app (default $DYNO_APP)")
}

// home is $DYNO_HOME as an app.Home.
func home() (app.Home, error) {
	dir, err := dynoHome()
	if err != nil {
		return app.Home{}, err
	}
	return app.Home{Dir: dir}, nil
}

// openApp opens the app named by -a or DYNO_APP, else the one the
// current folder's git remotes name, as the Heroku CLI infers it
// (appFromRemotes).
func openApp(name string) (*app.App, error) {
	if name == "" {
		name = os.Getenv("DYNO_APP")
	}
	h, err := home()
	if err != nil {
		return nil, err
	}
	if name == "" {
		inferred, err := appFromRemotes(h, ".")
		if err != nil {
			return nil, err
		}
		if inferred == "" {
			return nil, errors.New("no app given: use -a APP, set DYNO_APP, or run it in a git repository with a dyno remote (dyno git:remote -a APP); dyno apps lists them")
		}
		name = inferred
	}
	return h.Open(name)
}

// openAppState opens the app named by -a or DYNO_APP and reads its
// state from the ledger.
func openAppState(name string) (*app.App, *ledger.State, error) {
	a, err := openApp(name)
	if err != nil {
		return nil, nil, err
	}
	s, err := a.Ledger.State()
	if err != nil {
		return nil, nil, err
	}
	return a, s, nil
}

// userName is who the ledger says made a change.
func userName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// ledgerChanged tells the daemon that an app's ledger changed, so that
// it acts now rather than at its next poll, and says whether the change
// takes effect now: only an answer from the daemon's API says a daemon
// runs the app (a socket file can outlive its daemon). When it does not,
// hint is the one line that says when the change applies. A foreground
// "dyno start -a APP" runs the app too: it marks the app while it runs
// (app.App.HoldForeground) and follows the ledger.
func ledgerChanged(appName string) (running bool, hint string) {
	c, err := client()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = c.Do(ctx, http.MethodPost, "/dyno/reconcile", nil, nil)
	}
	switch {
	case err == nil:
		return true, ""
	case errors.Is(err, daemon.ErrNotRunning):
		// dyno start -a follows the ledger as the daemon would.
		if a, err := openApp(appName); err == nil {
			if fg, _ := a.InForeground(); fg {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no daemon runs ⬢ %s; the change applies when it starts (%s)", appName, daemonStartCommand())
	default:
		return false, fmt.Sprintf("the daemon did not answer (%v); the change applies when it reads the ledger again", err)
	}
}

// printHint writes hint, when there is one, as dyno's own line on w.
func printHint(w io.Writer, hint string) {
	if hint != "" {
		fmt.Fprintln(w, "dyno: "+hint)
	}
}

// daemonStartCommand is how this machine starts the daemon: the systemd
// unit that "dyno daemon install" wrote, the user's or the system's,
// and otherwise dyno daemon itself.
func daemonStartCommand() string {
	homeDir, _ := os.UserHomeDir()
	return startCommandFor(systemd.UnitPath(true, os.Environ(), homeDir), systemd.UnitPath(false, os.Environ(), homeDir), os.Geteuid() == 0)
}

// startCommandFor picks the start command from the unit files present.
// The user's own unit comes first: it is the one that runs this user's
// home; a system unit needs root, through sudo unless root asks.
func startCommandFor(userUnit, systemUnit string, root bool) string {
	if _, err := os.Stat(userUnit); err == nil {
		return "systemctl --user start dyno"
	}
	if _, err := os.Stat(systemUnit); err == nil {
		if root {
			return "systemctl start dyno"
		}
		return "sudo systemctl start dyno"
	}
	return "dyno daemon"
}

// daemonError gives "the daemon is not running" the command that starts
// the daemon as this machine installed it.
func daemonError(err error) error {
	if errors.Is(err, daemon.ErrNotRunning) {
		return fmt.Errorf("the dyno daemon is not running; start it with %s", daemonStartCommand())
	}
	return err
}
