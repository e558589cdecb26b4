package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os/signal"
	"slices"
	"syscall"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/spf13/cobra"
)

// The add-on commands provision from the CLI itself, daemon or not, so
// addons:create works before the daemon starts, as config:set does; the
// daemon picks the new config var up as it does any release. The
// machine's add-on servers (PostgreSQL, redis-server) are the daemon's
// services: a command that needs one while the daemon runs asks the
// daemon to set it up and start it (addonsManagerFor's Starter); only
// with no daemon does it start the server detached, to run on its own
// until the daemon's start takes it over. addons:logs reads what the
// daemon stored of a server's output.

func addAddonsCommands(root *cobra.Command) {
	addTopic(root, newAddonsCommand, newAddonsCreateCommand, newAddonsInfoCommand, newAddonsDestroyCommand,
		newAddonsAttachCommand, newAddonsDetachCommand, newAddonsLogsCommand)
}

// addonsManager is the add-on manager of $DYNO_HOME.
func addonsManager() (*addons.Manager, error) {
	h, err := home()
	if err != nil {
		return nil, err
	}
	return addonsManagerFor(h), nil
}

// addonsManagerFor is the add-on manager of h, whose providers have the
// daemon run their servers when it runs.
func addonsManagerFor(h app.Home) *addons.Manager {
	return &addons.Manager{Home: h, Starter: startAddonServer}
}

// startAddonServer has the daemon set up and run the add-on server of
// service and waits until it is ready. Without a daemon, or with one
// too old to run add-on servers, it is addons.ErrNoSupervisor: the
// provider starts the server detached.
func startAddonServer(ctx context.Context, service string) error {
	c, err := client()
	if err != nil {
		return err
	}
	err = c.StartService(ctx, service)
	var ae *daemon.APIError
	if errors.Is(err, daemon.ErrNotRunning) || errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return addons.ErrNoSupervisor
	}
	if err != nil {
		return fmt.Errorf("the daemon runs the add-on servers: %w", err)
	}
	return nil
}

// interruptible is a context that ^C cancels, so that a provision
// waiting on a server can be given up.
func interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

func newAddonsCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "addons",
		Short: "List the app's add-ons: name, plan and the config var each is attached as",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, s, err := openAppState(name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			c := newColors(cmd)
			if len(s.Attachments) == 0 {
				fmt.Fprintf(out, "No add-ons for app %s.\n", c.app(a.Name))
				return nil
			}
			rows := [][]string{{"Add-on", "Plan", "As", "Owner"}}
			for _, at := range s.Attachments {
				owner := at.Owner
				if owner == a.Name {
					owner = "(this app)"
				}
				rows = append(rows, []string{at.Addon, at.Service + ":" + at.Plan, at.Name + "_URL", owner})
			}
			printTable(out, rows)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newAddonsCreateCommand() *cobra.Command {
	var name, as string
	cmd := &cobra.Command{
		Use:   "addons:create SERVICE[:PLAN]",
		Short: "Create an add-on and attach it to the app: heroku-postgresql sets DATABASE_URL, heroku-redis REDIS_URL",
		Args:  exactArgs(1, "give the service: dyno addons:create heroku-redis -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			m := addonsManagerFor(a.Home())
			s, _, err := addons.FindService(args[0])
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			c := newColors(cmd)
			out := cmd.OutOrStdout()
			ad, at, rel, err := m.Create(ctx, a, args[0], as, userName())
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Creating %s on %s... done\n", s.Name, c.app(a.Name))
			fmt.Fprintf(out, "Created %s as %s_URL\n", ad.Name, at.Name)
			fmt.Fprintf(out, "Released v%d: %s\n", rel.Version, rel.Description)
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&as, "as", "", "the attachment's name: its config var is NAME_URL (default DATABASE, REDIS, or a color's)")
	// Heroku's --wait is for plans that provision slowly; dyno's are
	// ready when the command returns, so it is taken and has nothing
	// to wait for.
	cmd.Flags().Bool("wait", false, "wait until the add-on is ready (dyno's always are when the command returns)")
	return cmd
}

func newAddonsInfoCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "addons:info ADDON",
		Short: "Describe an add-on: its plan, owner, the apps it is attached to and its server",
		Args:  exactArgs(1, "give the add-on: dyno addons:info redis-curved-12345"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := addonsManager()
			if err != nil {
				return err
			}
			ad, err := m.Get(args[0])
			if err != nil {
				return err
			}
			ats, err := m.Attachments(ad.Name)
			if err != nil {
				return err
			}
			p, err := m.Provider(ad.Service)
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			more, err := p.Info(ctx, ad.Name)
			if err != nil {
				return err
			}
			c := newColors(cmd)
			var attached []string
			for _, n := range slices.Sorted(maps.Keys(ats)) {
				attached = append(attached, n+"::"+ats[n].Name)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, c.header(ad.Name))
			rows := [][2]string{
				{"Plan", ad.Service + ":" + ad.Plan},
				{"Owning app", c.app(ad.Owner)},
				{"Attachments", fmt.Sprint(attached)},
				{"Installed at", ad.Created.Local().Format("Mon Jan 02 2006 15:04:05 MST")},
				{"State", "created"},
			}
			printAligned(out, append(rows, more...))
			return nil
		},
	}
	return cmd
}

func newAddonsDestroyCommand() *cobra.Command {
	var name, confirm string
	cmd := &cobra.Command{
		Use:   "addons:destroy ADDON --confirm APP",
		Short: "Detach an add-on from every app and destroy it and its data for good",
		Args:  exactArgs(1, "give the add-on: dyno addons:destroy redis-curved-12345 -a APP --confirm APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if confirm != a.Name {
				return fmt.Errorf("this destroys %s and its data for good; to proceed, re-run with --confirm %s", args[0], a.Name)
			}
			m := addonsManagerFor(a.Home())
			ctx, stop := interruptible()
			defer stop()
			ad, err := m.Destroy(ctx, args[0], a.Name, userName())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Destroying %s on %s... done\n", ad.Name, newColors(cmd).app(a.Name))
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&confirm, "confirm", "", "the app's name, to confirm")
	return cmd
}

func newAddonsAttachCommand() *cobra.Command {
	var name, as string
	cmd := &cobra.Command{
		Use:   "addons:attach ADDON",
		Short: "Attach another app's add-on to this app, sharing it: its config var is set in a new release",
		Args:  exactArgs(1, "give the add-on: dyno addons:attach postgresql-curved-12345 -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			m := addonsManagerFor(a.Home())
			ctx, stop := interruptible()
			defer stop()
			at, rel, err := m.Attach(ctx, args[0], a, as, userName())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Attaching %s as %s to %s... done\n", at.Addon, at.Name, newColors(cmd).app(a.Name))
			fmt.Fprintf(out, "Setting %s_URL config vars and restarting %s... done, v%d\n", at.Name, newColors(cmd).app(a.Name), rel.Version)
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&as, "as", "", "the attachment's name: its config var is NAME_URL")
	return cmd
}

func newAddonsDetachCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "addons:detach ATTACHMENT",
		Short: "Detach a shared add-on from the app: its config var is removed in a new release",
		Args:  exactArgs(1, "give the add-on or attachment: dyno addons:detach HEROKU_POSTGRESQL_RED -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			m := addonsManagerFor(a.Home())
			at, rel, err := m.Detach(a, args[0], userName())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			c := newColors(cmd)
			fmt.Fprintf(out, "Detaching %s to %s from %s... done\n", at.Name, at.Addon, c.app(a.Name))
			fmt.Fprintf(out, "Unsetting %s_URL config vars and restarting %s... done, v%d\n", at.Name, c.app(a.Name), rel.Version)
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newAddonsLogsCommand() *cobra.Command {
	var n int
	var tail, asJSON bool
	cmd := &cobra.Command{
		Use:   "addons:logs SERVICE|ADDON",
		Short: "Show the logs of the machine's add-on server: postgresql (for heroku-postgresql) or redis",
		Long: `addons:logs prints the last lines of an add-on server's output and the
daemon's lines about it (starts, exits, restarts), from
$DYNO_HOME/addons/SERVICE/logs, in Logplex's format; --tail then follows the
lines stored after them. Give the service (postgresql, heroku-redis, ...) or
one of its add-ons: every add-on of a service shares its one server. The
daemon writes these lines while it runs the server; a server started detached
while no daemon ran logs to postgresql.log or redis.log beside them instead.`,
		Args: exactArgs(1, "give the service or an add-on: dyno addons:logs postgresql"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 1 || n > 1500 {
				return fmt.Errorf("-n %d: give 1 to 1500 lines, as Heroku keeps", n)
			}
			m, err := addonsManager()
			if err != nil {
				return err
			}
			alias, err := m.ServerOf(args[0])
			if err != nil {
				return err
			}
			return printLogs(cmd, m.LogsDir(alias), logstore.Filter{}, n, tail, asJSON, "the server's lines")
		},
	}
	f := cmd.Flags()
	f.IntVarP(&n, "num", "n", 100, "how many lines to show")
	f.BoolVarP(&tail, "tail", "t", false, "follow new lines as they come")
	f.BoolVar(&asJSON, "json", false, "print JSON, one object per line")
	return cmd
}
