package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/spf13/cobra"
)

func addConfigCommands(root *cobra.Command) {
	addTopic(root, newConfigCommand, newConfigGetCommand, newConfigSetCommand, newConfigUnsetCommand)
}

// currentConfig is the config vars of the app's current release.
func currentConfig(a *app.App) (map[string]string, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	if s.Current == nil || s.Current.ConfigVars == nil {
		return map[string]string{}, nil
	}
	return s.Current.ConfigVars, nil
}

func newConfigCommand() *cobra.Command {
	var name string
	var shell, asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the app's config vars",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			vars, err := currentConfig(a)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON:
				return writeJSON(out, vars)
			case shell:
				printShell(out, vars)
			default:
				fmt.Fprintln(out, newColors(cmd).header(a.Name+" Config Vars"))
				printConfig(out, vars)
			}
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVarP(&shell, "shell", "s", false, "print KEY=value lines for a shell or .env file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newConfigGetCommand() *cobra.Command {
	var name string
	var shell bool
	cmd := &cobra.Command{
		Use:   "config:get KEY",
		Short: "Print one config var's value",
		Args:  exactArgs(1, "give the config var's name: dyno config:get KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			vars, err := currentConfig(a)
			if err != nil {
				return err
			}
			if shell {
				fmt.Fprintf(cmd.OutOrStdout(), "%s=%s\n", args[0], shellQuoteValue(vars[args[0]]))
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), vars[args[0]])
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVarP(&shell, "shell", "s", false, "print KEY=value")
	return cmd
}

func newConfigSetCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "config:set KEY=value...",
		Short: "Set config vars: a new release",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set := map[string]string{}
			for _, kv := range args {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("%q is not KEY=value; write it as KEY=value", kv)
				}
				set[k] = v
			}
			if err := app.ValidateConfig(set); err != nil {
				return err
			}
			a, err := openApp(name)
			if err != nil {
				return err
			}
			keys := slices.Sorted(maps.Keys(set))
			out := cmd.OutOrStdout()
			rel, err := a.SetConfig(set, userName())
			if err != nil {
				return err
			}
			apiLog(a, rel.Description, fmt.Sprintf("Release v%d created", rel.Version))
			running, hint := ledgerChanged(a.Name)
			fmt.Fprintf(out, "Setting %s %s... done, v%d\n", strings.Join(keys, ", "), restartingOn(running, a.Name), rel.Version)
			printConfig(out, set)
			printHint(cmd.ErrOrStderr(), hint)
			return releasePhase(cmd, a, rel)
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newConfigUnsetCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "config:unset KEY...",
		Aliases: []string{"config:remove"},
		Short:   "Remove config vars: a new release",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			rel, err := a.UnsetConfig(args, userName())
			if err != nil {
				return err
			}
			apiLog(a, rel.Description, fmt.Sprintf("Release v%d created", rel.Version))
			running, hint := ledgerChanged(a.Name)
			fmt.Fprintf(out, "Unsetting %s %s... done, v%d\n", strings.Join(args, ", "), restartingOn(running, a.Name), rel.Version)
			printHint(cmd.ErrOrStderr(), hint)
			return releasePhase(cmd, a, rel)
		},
	}
	appFlag(cmd, &name)
	return cmd
}

// restartingOn is Heroku's "and restarting ⬢ app" when a daemon runs the
// app and restarts it on the new release, and "on ⬢ app" when nothing
// does.
func restartingOn(running bool, appName string) string {
	if running {
		return "and restarting ⬢ " + appName
	}
	return "on ⬢ " + appName
}

// printConfig prints "KEY: value" with the values aligned.
func printConfig(w io.Writer, vars map[string]string) {
	rows := make([][2]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		rows = append(rows, [2]string{k, vars[k]})
	}
	printAligned(w, rows)
}

func printShell(w io.Writer, vars map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(w, "%s=%s\n", k, shellQuoteValue(vars[k]))
	}
}

// shellQuoteValue quotes as the Heroku CLI does: bare when safe, single
// quotes for spaces and specials, double quotes with escapes when the
// value holds a single quote or a newline.
func shellQuoteValue(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return v
	}
	if !strings.ContainsAny(v, "'\n") {
		return "'" + v + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`", "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

// releasePhase runs rel's release phase when it has one (a config change
// restarts the app on Heroku, and runs the release phase first).
func releasePhase(cmd *cobra.Command, a *app.App, rel ledger.Release) error {
	if rel.Status != ledger.StatusPending {
		return nil
	}
	// The caller told the daemon of the new release (ledgerChanged); the
	// release phase then decides it, which the daemon should act on now.
	defer nudge()
	return a.ReleasePhase(cmd.Context(), rel, cmd.OutOrStdout(), releaseRunner(a, cmd.OutOrStdout()))
}
