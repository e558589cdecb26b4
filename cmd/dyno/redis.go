package main

// heroku redis: redis-cli on the add-on as its own ACL user, and the
// add-on described as redis:info describes it.

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/ledger"
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
	return newDescribeCommand(use, "Describe the app's Redis add-ons: plan, version, persistence, as Heroku's redis:info", redisService,
		func(ctx context.Context, m *addons.Manager, ad addons.Addon, g []ledger.Attachment, c colors, billing [][2]string) (string, [][2]string, error) {
			conn, err := m.Redis(ctx, ad.Name)
			if err != nil {
				return "", nil, err
			}
			info, err := conn.Info(ctx)
			if err != nil {
				return "", nil, err
			}
			persistence := "None"
			if info["aof_enabled"] == "1" {
				persistence = "AOF"
			}
			notify := "Disabled"
			if v := info["notify-keyspace-events"]; v != "" {
				notify = "Enabled: " + v
			}
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
			return ad.Name + " (" + configVars(g) + ")", append(rows, billing...), nil
		})
}
