package main

import (
	"context"
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
	"github.com/spf13/cobra"
)

func addPsCommands(root *cobra.Command) {
	addTopic(root, newPsCommand, newPsScaleCommand, newPsRestartCommand, newPsStopCommand, newPsKillCommand)
	// `dyno restart` is Heroku's alias of ps:restart.
	r := newPsRestartCommand()
	r.Use, r.Hidden = "restart [TYPE|DYNO]", true
	root.AddCommand(r)
}

// dynoJSON is the API's dyno as the CLI reads it.
type dynoJSON struct {
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	Command   string    `json:"command"`
	State     string    `json:"state"`
	Size      string    `json:"size"`
	UpdatedAt time.Time `json:"updated_at"`
	Memory    int64     `json:"memory_bytes,omitempty"`
	CPU       float64   `json:"cpu_seconds,omitempty"`
}

// usage is " (mem 120M, cpu 3.2s)" when the dyno's cgroup measures it.
func (d dynoJSON) usage() string {
	if d.Memory == 0 {
		return ""
	}
	return fmt.Sprintf(" (mem %dM, cpu %.1fs)", (d.Memory+(1<<19))>>20, d.CPU)
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
			var dynos []dynoJSON
			if err := c.Do(cmd.Context(), http.MethodGet, "/apps/"+a.Name+"/dynos", nil, &dynos); err != nil {
				return err
			}
			if len(args) > 0 {
				dynos = slices.DeleteFunc(dynos, func(d dynoJSON) bool { return !slices.Contains(args, d.Type) })
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), dynos)
			}
			printPs(cmd.OutOrStdout(), a.Name, dynos, time.Now())
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printPs prints Heroku's ps: one-offs first, then a group per process
// type and command, each dyno with its state and since when.
func printPs(w io.Writer, appName string, dynos []dynoJSON, now time.Time) {
	if len(dynos) == 0 {
		fmt.Fprintf(w, "No dynos on ⬢ %s\n", appName)
		return
	}
	sort.Slice(dynos, func(i, j int) bool { return dynoLess(dynos[i].Name, dynos[j].Name) })
	var oneoffs []dynoJSON
	groups := map[string][]dynoJSON{}
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
		fmt.Fprintf(w, "=== run: one-off processes (%d)\n", len(oneoffs))
		for _, d := range oneoffs {
			fmt.Fprintf(w, "%s (%s): %s %s%s: %s\n", d.Name, d.Size, d.State, when(d.UpdatedAt, now), d.usage(), d.Command)
		}
		sep = "\n"
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := groups[k]
		fmt.Fprintf(w, "%s=== %s (%s): %s (%d)\n", sep, g[0].Type, g[0].Size, g[0].Command, len(g))
		for _, d := range g {
			fmt.Fprintf(w, "%s: %s %s%s\n", d.Name, d.State, when(d.UpdatedAt, now), d.usage())
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
		Use:   "ps:scale TYPE=N[:SIZE]...",
		Short: "Set how many dynos of each type run (web=3, worker+1, web-1, web=2:standard-2x)",
		RunE: func(cmd *cobra.Command, args []string) error {
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
			nudge()
			fmt.Fprintf(cmd.OutOrStdout(), "Scaling dynos... done, now running %s.\n", text)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

// dynoAction sends one of the API's dyno actions for the app.
func dynoAction(ctx context.Context, appName, method, path string) error {
	c, err := client()
	if err != nil {
		return err
	}
	return c.Do(ctx, method, "/apps/"+appName+path, nil, nil)
}

func newPsRestartCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "ps:restart [TYPE|DYNO]",
		Short: "Restart the app's dynos (all, a type, or one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			path, what := "/dynos", "all dynos"
			if len(args) == 1 {
				path, what = "/dynos/"+url.PathEscape(args[0]), args[0]
				if !strings.Contains(args[0], ".") {
					what += " dynos"
				}
			}
			if err := dynoAction(cmd.Context(), a.Name, http.MethodDelete, path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Restarting %s on ⬢ %s... done\n", what, a.Name)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newPsStopCommand() *cobra.Command { return psStop("ps:stop", "stop", "Stopping") }
func newPsKillCommand() *cobra.Command { return psStop("ps:kill", "kill", "Killing") }

// psStop is ps:stop and ps:kill: a formation dyno comes back (the
// formation is unchanged, as on Heroku); a one-off ends for good.
func psStop(use, action, verb string) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   use + " DYNO|TYPE",
		Short: verb + " a dyno or a type's dynos (formation dynos come back; use ps:scale to remove them)",
		Args:  exactArgs(1, "give the dyno or type: dyno "+use+" web.1"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if err := dynoAction(cmd.Context(), a.Name, http.MethodPost, "/dynos/"+url.PathEscape(args[0])+"/actions/"+action); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s on ⬢ %s... done\n", verb, args[0], a.Name)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}
