package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "dyno",
		Short: "Heroku's runtime model on your own Linux machine",
		Long: `dyno runs a Procfile the way Heroku's dyno manager does: formation, ports,
prefixed logs, crash restarts with back-off and a clean stop with nothing left behind.`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(newStartCommand(), newRunCommand(), newCheckCommand(), newVersionCommand(),
		newBuildCommand(), newSlugsGCCommand(), newDaemonCommand(), newLogsCommand())
	addPsCommands(root)
	addAppsCommands(root)
	addConfigCommands(root)
	addReleasesCommands(root)
	addBuildpacksCommands(root)
	return root
}
