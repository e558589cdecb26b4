package main

import (
	"fmt"
	"slices"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
)

func addFeaturesCommands(root *cobra.Command) {
	addTopic(root, newFeaturesCommand, newFeaturesInfoCommand, newFeaturesEnableCommand, newFeaturesDisableCommand)
}

func newFeaturesCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "features",
		Short: "List the app's features and which are enabled",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, s, err := openAppState(name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				list := []map[string]any{}
				for _, f := range app.Features() {
					list = append(list, daemon.FeatureJSON(f, slices.Contains(s.Features, f.Name)))
				}
				return writeJSON(out, list)
			}
			c := newColors(cmd)
			fmt.Fprintln(out, c.header("App Features "+c.app(a.Name)))
			fmt.Fprintln(out)
			width := 0
			for _, f := range app.Features() {
				width = max(width, len(f.Name))
			}
			for _, f := range app.Features() {
				mark := "[ ]"
				if slices.Contains(s.Features, f.Name) {
					mark = "[+]"
				}
				fmt.Fprintf(out, "%s %-*s  %s\n", mark, width, f.Name, f.Description)
			}
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newFeaturesInfoCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "features:info FEATURE",
		Short: "Describe a feature and say whether the app has it enabled",
		Args:  exactArgs(1, "give the feature: dyno features:info preboot -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := app.FindFeature(args[0])
			if err != nil {
				return err
			}
			_, s, err := openAppState(name)
			if err != nil {
				return err
			}
			enabled := slices.Contains(s.Features, f.Name)
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, daemon.FeatureJSON(f, enabled))
			}
			fmt.Fprintln(out, newColors(cmd).header(f.Name))
			fmt.Fprintln(out)
			printAligned(out, [][2]string{{"Description", f.Description}, {"Docs", f.Doc}, {"Enabled", fmt.Sprint(enabled)}})
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newFeaturesEnableCommand() *cobra.Command {
	return newFeaturesSetCommand(true)
}

func newFeaturesDisableCommand() *cobra.Command {
	return newFeaturesSetCommand(false)
}

// newFeaturesSetCommand is features:enable or features:disable.
func newFeaturesSetCommand(enable bool) *cobra.Command {
	var name string
	use, short, doing := "features:disable FEATURE", "Disable a feature for the app", "Disabling"
	if enable {
		use, short, doing = "features:enable FEATURE", "Enable a feature for the app (preboot: new web dynos take traffic before the old ones stop)", "Enabling"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(1, "give the feature: dyno "+use[:len(use)-len(" FEATURE")]+" preboot -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return setSwitch(cmd, name, doing+" "+args[0], app.FeatureEvent(args[0], enable), func(a *app.App) (bool, error) {
				return a.SetFeature(args[0], enable, userName())
			})
		},
	}
	appFlag(cmd, &name)
	return cmd
}
