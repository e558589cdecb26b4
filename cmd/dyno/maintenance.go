package main

import (
	"fmt"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/spf13/cobra"
)

func addMaintenanceCommands(root *cobra.Command) {
	addTopic(root, newMaintenanceCommand, newMaintenanceOnCommand, newMaintenanceOffCommand)
}

func newMaintenanceCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "maintenance",
		Short: "Say whether the app is in maintenance mode: on or off",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, s, err := openAppState(name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), onOff(s.Maintenance))
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newMaintenanceOnCommand() *cobra.Command {
	return newMaintenanceSetCommand(true)
}

func newMaintenanceOffCommand() *cobra.Command {
	return newMaintenanceSetCommand(false)
}

// newMaintenanceSetCommand is maintenance:on or maintenance:off.
func newMaintenanceSetCommand(on bool) *cobra.Command {
	var name string
	use, short, doing := "maintenance:off", "Take the app out of maintenance mode: requests reach its web dynos again", "Disabling"
	if on {
		use, short, doing = "maintenance:on", "Put the app in maintenance mode: the router answers every request with 503 and a maintenance page (MAINTENANCE_PAGE_URL, or its own); dynos keep running", "Enabling"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return setSwitch(cmd, name, doing+" maintenance mode", app.MaintenanceEvent(on), func(a *app.App) (bool, error) {
				return a.SetMaintenance(on, userName())
			})
		},
	}
	appFlag(cmd, &name)
	return cmd
}

// setSwitch runs set, which turns one of app name's switches (a
// feature, maintenance mode) on or off, and says "DOING for ⬢ APP...
// done" as the Heroku CLI does. When set changed anything, the API line
// event goes to the app's logs and the daemon is told.
func setSwitch(cmd *cobra.Command, name, doing, event string, set func(a *app.App) (bool, error)) error {
	a, err := openApp(name)
	if err != nil {
		return err
	}
	changed, err := set(a)
	if err != nil {
		return err
	}
	if changed {
		apiLog(a, event)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s for %s... done\n", doing, newColors(cmd).app(a.Name))
	if changed {
		_, hint := ledgerChanged(a.Name)
		printHint(cmd.ErrOrStderr(), hint)
	}
	return nil
}

// onOff is Heroku's word for a switch.
func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
