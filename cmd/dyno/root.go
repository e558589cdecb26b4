package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "dyno",
		Short: "Heroku's runtime model on your own Linux machine",
		Long: `dyno is Heroku's runtime model on one Linux machine, in three parts.

Procfile runner (heroku local, Foreman):
  dyno start            run the Procfile here: formation, ports, prefixed logs,
                        crash restarts with back-off, a clean stop
  dyno run CMD          one command with the project's .env
  dyno check            check the Procfile

Apps, builds and releases (heroku apps, builds, config, releases):
  dyno apps:create      an app with its own append-only release ledger
  dyno build DIR -a APP buildpacks compile DIR into a slug; a release runs it
  dyno config:set, releases, rollback, buildpacks
  dyno run -a APP CMD   a one-off dyno of the current release

The daemon, the dyno manager (heroku ps, logs):
  dyno daemon           runs every app's formation in isolated dynos and follows
                        the ledgers: a new release restarts the app
  dyno ps, ps:scale, ps:restart, ps:stop, logs
  dyno open, domains, certs   the app's URL through the router, custom domains, HTTPS
  dyno auth:token, cli-env heroku   the API over TCP, for the Heroku CLI

Heroku's aliases work too (create, info, destroy, scale, restart, stop, kill),
as do "topic:verb" and "topic verb" (dyno apps:create, dyno apps create).`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// Runnable so that an unknown command reaches unknownCommand
		// rather than cobra's multi-line message.
		// Its flags are not checked, so that "dyno scael -a x" is
		// answered about scael, not about -a.
		Args:               cobra.ArbitraryArgs,
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return unknownCommand(cmd, args[0])
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().Bool("no-color", false, "no colours even on a terminal (also NO_COLOR)")
	root.AddCommand(newStartCommand(), newRunCommand(), newCheckCommand(), newVersionCommand(),
		newBuildCommand(), newSlugsGCCommand(), newDaemonCommand(), newLogsCommand(), newOpenCommand(),
		newCliEnvCommand())
	addPsCommands(root)
	addAppsCommands(root)
	addConfigCommands(root)
	addReleasesCommands(root)
	addBuildpacksCommands(root)
	addDomainsCommands(root)
	addCertsCommands(root)
	addMaintenanceCommands(root)
	addFeaturesCommands(root)
	addDrainsCommands(root)
	addAddonsCommands(root)
	addAddonToolsCommands(root)
	addGitCommands(root)
	addKeysCommands(root)
	addAuthCommands(root)
	addExportCommands(root)
	return root
}

// unknownCommand is one line: what was typed is not a command of root
// (dyno, or a topic such as dyno apps), and the
// nearest names and aliases, if any: within two edits or starting with
// what was typed, the nearest three.
func unknownCommand(root *cobra.Command, typed string) error {
	type match struct {
		name string
		d    int
	}
	var found []match
	for _, c := range root.Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		for _, n := range append([]string{c.Name()}, c.Aliases...) {
			if d := editDistance(typed, n); d <= 2 || strings.HasPrefix(n, typed) {
				found = append(found, match{n, d})
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].d < found[j].d })
	var near []string
	for _, m := range found[:min(len(found), 3)] {
		near = append(near, m.name)
	}
	path := root.CommandPath()
	if len(near) == 0 {
		return fmt.Errorf("%q is not a %s command; %s --help lists them", typed, path, path)
	}
	return fmt.Errorf("%q is not a %s command; did you mean %s?", typed, path, strings.Join(near, " or "))
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (command names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
