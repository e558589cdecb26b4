package main

// heroku redis: redis-cli on the add-on as its own ACL user, and the
// add-on described as redis:info describes it.

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
)

const redisService = "heroku-redis"

func newRedisCliCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "redis:cli [DATABASE]",
		Short: "Open redis-cli on the app's Redis (REDIS, HEROKU_REDIS_RED or an add-on's name) as the app connects",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, at, err := toolApp(name, redisService, firstArg(args))
			if err != nil {
				return err
			}
			prog, err := exec.LookPath("redis-cli")
			if err != nil {
				return fmt.Errorf("redis-cli is not installed: apt-get install redis-tools")
			}
			ctx, stop := interruptible()
			conn, err := addonsManagerFor(a.Home()).Redis(ctx, at.Addon)
			stop()
			if err != nil {
				return err
			}
			u, err := url.Parse(conn.URL)
			if err != nil || u.User == nil {
				return fmt.Errorf("the URL of %s is not a redis:// URL with a user", at.Addon)
			}
			// The password in the environment, where other users cannot
			// read it, rather than on the command line.
			pw, _ := u.User.Password()
			cli := exec.CommandContext(context.Background(), prog, "-h", u.Hostname(), "-p", u.Port(),
				"--user", u.User.Username(), "--no-auth-warning")
			cli.Env = append(os.Environ(), "REDISCLI_AUTH="+pw)
			fmt.Fprintf(cmd.ErrOrStderr(), "Connecting to %s (%s_URL):\n", at.Addon, at.Name)
			return runOnTerminal(cli)
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newRedisInfoCommand(use string) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   use + " [DATABASE]",
		Short: "Describe the app's Redis add-ons: plan, version, persistence, as Heroku's redis:info",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, groups, err := describedAddons(name, redisService, args)
			if err != nil {
				return err
			}
			c := newColors(cmd)
			out := cmd.OutOrStdout()
			if len(groups) == 0 {
				fmt.Fprintf(out, "%s has no heroku-redis databases.\n", c.app(a.Name))
				return nil
			}
			m := addonsManagerFor(a.Home())
			ctx, stop := interruptible()
			defer stop()
			for i, g := range groups {
				ad, err := m.Get(g[0].Addon)
				if err != nil {
					return err
				}
				conn, err := m.Redis(ctx, ad.Name)
				if err != nil {
					return err
				}
				info, err := conn.Info(ctx)
				if err != nil {
					return err
				}
				persistence := "None"
				if info["aof_enabled"] == "1" {
					persistence = "AOF"
				}
				notify := "Disabled"
				if v := info["notify-keyspace-events"]; v != "" {
					notify = "Enabled: " + v
				}
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprintln(out, c.header(ad.Name+" ("+configVars(g)+")"))
				rows := [][2]string{
					{"Plan", planTitle(ad.Plan)},
					{"Status", "available"},
					{"Created", ad.Created.UTC().Format("2006-01-02 15:04 UTC")},
					{"Version", info["redis_version"]},
					{"Timeout", info["timeout"]},
					{"Maxmemory", info["maxmemory_policy"]},
					{"Maintenance", "not required"},
					{"Persistence", persistence},
					{"HA Available", "false"},
					{"Requires TLS", "false"},
					{"Keyspace Notifications", notify},
					{"Key prefix", ad.Name + ":"},
				}
				if ad.Owner != a.Name {
					rows = append(rows, [2]string{"Billing App", c.app(ad.Owner)})
				}
				printAligned(out, rows)
			}
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}
