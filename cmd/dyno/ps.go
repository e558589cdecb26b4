package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dyno-run/dyno/isolate/cgroup"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
)

func addPsCommands(root *cobra.Command) {
	addTopic(root, newPsCommand, newPsScaleCommand, newPsRestartCommand, newPsStopCommand, newPsKillCommand)
}

// usage is " (mem 120M, cpu 3.2s)" when the dyno's cgroup measures it.
func usage(d daemon.Dyno) string {
	if d.MemoryBytes == 0 {
		return ""
	}
	return fmt.Sprintf(" (mem %dM, cpu %.1fs)", (d.MemoryBytes+(1<<19))>>20, d.CPUSeconds)
}

func newPsCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps [TYPE...]",
		Short: "List the app's dynos with their state, grouped by process type",
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			c, err := client()
			if err != nil {
				return err
			}
			var dynos []daemon.Dyno
			if err := c.Do(cmd.Context(), http.MethodGet, "/apps/"+a.Name+"/dynos", nil, &dynos); err != nil {
				return daemonError(err)
			}
			if len(args) > 0 {
				dynos = slices.DeleteFunc(dynos, func(d daemon.Dyno) bool { return !slices.Contains(args, d.Type) })
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), dynos)
			}
			printPs(cmd.OutOrStdout(), newColors(cmd), a.Name, dynos, time.Now())
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printPs prints Heroku's ps: one-offs first, then a group per process
// type and command, each dyno with its state and since when.
func printPs(w io.Writer, c colors, appName string, dynos []daemon.Dyno, now time.Time) {
	if len(dynos) == 0 {
		fmt.Fprintf(w, "No dynos on %s\n", c.app(appName))
		return
	}
	sort.Slice(dynos, func(i, j int) bool { return dynoLess(dynos[i].Name, dynos[j].Name) })
	var oneoffs []daemon.Dyno
	groups := map[string][]daemon.Dyno{}
	var keys []string
	for _, d := range dynos {
		if d.Type == "run" {
			oneoffs = append(oneoffs, d)
			continue
		}
		k := d.Type + "\x00" + d.Size + "\x00" + d.Command
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], d)
	}
	sep := ""
	if len(oneoffs) > 0 {
		fmt.Fprintln(w, c.header(fmt.Sprintf("run: one-off processes (%d)", len(oneoffs))))
		for _, d := range oneoffs {
			fmt.Fprintf(w, "%s (%s): %s %s%s: %s\n", d.Name, d.Size, c.state(d.State), when(d.UpdatedAt, now), usage(d), d.Command)
		}
		sep = "\n"
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := groups[k]
		fmt.Fprintf(w, "%s%s\n", sep, c.header(fmt.Sprintf("%s (%s): %s (%d)", g[0].Type, g[0].Size, g[0].Command, len(g))))
		for _, d := range g {
			fmt.Fprintf(w, "%s: %s %s%s\n", d.Name, c.state(d.State), when(d.UpdatedAt, now), usage(d))
		}
		sep = "\n"
	}
}

// dynoLess orders web.2 before web.10.
func dynoLess(a, b string) bool {
	at, an, _ := strings.Cut(a, ".")
	bt, bn, _ := strings.Cut(b, ".")
	if at != bt {
		return at < bt
	}
	if len(an) != len(bn) {
		return len(an) < len(bn)
	}
	return an < bn
}

func newPsScaleCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "ps:scale TYPE=N[:SIZE]...",
		Aliases: []string{"scale"},
		Short:   "Set how many dynos of each type run (web=3, worker+1, web-1, web=2:standard-2x); with none, show them",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return printFormation(cmd, name)
			}
			a, err := openApp(name)
			if err != nil {
				return err
			}
			changes, err := app.ParseScale(args)
			if err != nil {
				return err
			}
			sizes, err := cgroup.LoadSizes(filepath.Join(a.Home().Dir, "dyno.toml"))
			if err != nil {
				return err
			}
			names := make([]string, 0, len(sizes))
			for n := range sizes {
				names = append(names, n)
			}
			sort.Strings(names)
			f, err := a.ApplyScale(changes, names, userName())
			if err != nil {
				return err
			}
			text, scaled := app.FormationText(f)
			apiLog(a, "Scaled to "+scaled)
			running, hint := ledgerChanged(a.Name)
			if running {
				fmt.Fprintf(cmd.OutOrStdout(), "Scaling dynos... done, now running %s.\n", text)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Scaling dynos... done, will run %s.\n", text)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

// printFormation prints the app's formation as heroku ps:scale does
// without arguments: "web=2:Standard-1X worker=1:Standard-1X", read from
// the ledger (no daemon needed).
func printFormation(cmd *cobra.Command, name string) error {
	a, s, err := openAppState(name)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if s.Current == nil {
		fmt.Fprintf(out, "No process types on %s\n", newColors(cmd).app(a.Name))
		return nil
	}
	types := app.FormationTypes(s.Current)
	if len(types) == 0 {
		fmt.Fprintf(out, "No process types on %s\n", newColors(cmd).app(a.Name))
		return nil
	}
	fmt.Fprintln(out, app.FormationArgs(app.FormationOf(s.Formation, s.Current), types))
	return nil
}

// dynoAction sends one of the API's dyno actions for the app.
func dynoAction(ctx context.Context, appName, method, path string) error {
	c, err := client()
	if err != nil {
		return err
	}
	return daemonError(c.Do(ctx, method, "/apps/"+appName+path, nil, nil))
}

// noSuchDyno says which dyno or type the app does not run, when the
// daemon answered not_found for target.
func noSuchDyno(err error, target, appName string, c colors) error {
	var e *daemon.APIError
	if !errors.As(err, &e) || e.Status != http.StatusNotFound || e.ID != "not_found" || target == "" {
		return err
	}
	return fmt.Errorf("%s: no such dyno or process type runs on %s; dyno ps -a %s lists them", target, c.app(appName), appName)
}

// dynoTargetFlags adds Heroku's -p/--process-type and -d/--dyno-name.
func dynoTargetFlags(cmd *cobra.Command, processType, dynoName *string) {
	cmd.Flags().StringVarP(processType, "process-type", "p", "", "only this process type's dynos (web)")
	cmd.Flags().StringVarP(dynoName, "dyno-name", "d", "", "only this dyno (web.1)")
}

// dynoTarget is the one type or dyno named by a positional argument,
// -p TYPE or -d NAME ("" for none); more than one is an error, as is a
// dyno given to -p or a type given to -d.
func dynoTarget(args []string, processType, dynoName string) (string, error) {
	var given []string
	if len(args) == 1 {
		given = append(given, args[0])
	}
	if processType != "" {
		if strings.Contains(processType, ".") {
			return "", fmt.Errorf("-p %s: -p takes a process type (web); for one dyno use -d %s", processType, processType)
		}
		given = append(given, processType)
	}
	if dynoName != "" {
		if !strings.Contains(dynoName, ".") {
			return "", fmt.Errorf("-d %s: -d takes a dyno name (%s.1); for all %s dynos use -p %s", dynoName, dynoName, dynoName, dynoName)
		}
		given = append(given, dynoName)
	}
	if len(given) > 1 {
		return "", fmt.Errorf("%s: give one type or dyno, not %d", strings.Join(given, ", "), len(given))
	}
	if len(given) == 0 {
		return "", nil
	}
	return given[0], nil
}

func newPsRestartCommand() *cobra.Command {
	var name, processType, dynoName string
	cmd := &cobra.Command{
		Use:     "ps:restart [TYPE|DYNO]",
		Aliases: []string{"restart"},
		Short:   "Restart the app's dynos (all, a type, or one)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := dynoTarget(args, processType, dynoName)
			if err != nil {
				return err
			}
			a, err := openApp(name)
			if err != nil {
				return err
			}
			path, what := "/dynos", "all dynos"
			if target != "" {
				path, what = "/dynos/"+url.PathEscape(target), target
				if !strings.Contains(target, ".") {
					what += " dynos"
				}
			}
			if err := dynoAction(cmd.Context(), a.Name, http.MethodDelete, path); err != nil {
				return noSuchDyno(err, target, a.Name, newColors(cmd))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restarting %s on %s... done\n", what, newColors(cmd).app(a.Name))
			return nil
		},
	}
	appFlag(cmd, &name)
	dynoTargetFlags(cmd, &processType, &dynoName)
	return cmd
}

func newPsStopCommand() *cobra.Command { return psStop("ps:stop", "stop", "Stopping") }
func newPsKillCommand() *cobra.Command { return psStop("ps:kill", "kill", "Killing") }

// psStop is ps:stop and ps:kill: a formation dyno comes back (the
// formation is unchanged, as on Heroku); a one-off ends for good.
func psStop(use, action, verb string) *cobra.Command {
	var name, processType, dynoName string
	cmd := &cobra.Command{
		Use:     use + " DYNO|TYPE",
		Aliases: []string{action},
		Short:   verb + " a dyno or a type's dynos (formation dynos come back; use ps:scale to remove them)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := dynoTarget(args, processType, dynoName)
			if err != nil {
				return err
			}
			if target == "" {
				return fmt.Errorf("give the dyno or type: dyno %s web.1, -d web.1 or -p web", use)
			}
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if err := dynoAction(cmd.Context(), a.Name, http.MethodPost, "/dynos/"+url.PathEscape(target)+"/actions/"+action); err != nil {
				return noSuchDyno(err, target, a.Name, newColors(cmd))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s on %s... done\n", verb, target, newColors(cmd).app(a.Name))
			return nil
		},
	}
	appFlag(cmd, &name)
	dynoTargetFlags(cmd, &processType, &dynoName)
	return cmd
}
