package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/dyno-run/dyno/buildpacks/gitpush"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
)

func addAppsCommands(root *cobra.Command) {
	addTopic(root, newAppsCommand, newAppsCreateCommand, newAppsInfoCommand, newAppsDestroyCommand)
}

func newAppsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List the apps on this machine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := home()
			if err != nil {
				return err
			}
			names, err := h.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				apps := make([]map[string]any, 0, len(names))
				for _, n := range names {
					apps = append(apps, map[string]any{"name": n, "stack": map[string]string{"name": app.Stack}})
				}
				return writeJSON(out, apps)
			}
			if len(names) == 0 {
				fmt.Fprintln(out, "You have no apps; create one with dyno apps:create NAME")
				return nil
			}
			fmt.Fprintln(out, newColors(cmd).header("Apps"))
			for _, n := range names {
				fmt.Fprintln(out, n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newAppsCreateCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "apps:create [NAME]",
		Aliases: []string{"create"},
		Short:   "Create an app (its v1 is the \"Initial release\"); without a NAME, one is made up",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := home()
			if err != nil {
				return err
			}
			c := newColors(cmd)
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				settings, err := daemon.LoadSettings(h.SizesFile())
				if err != nil {
					return err
				}
				r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				a, err := h.CreateUnnamed(func() string { return app.MadeUpName(r) }, userName())
				if err != nil {
					return err
				}
				apiLog(a, "Initial release", "Release v1 created")
				// Heroku's words for an app it named.
				fmt.Fprintf(out, "Creating app... done, %s\n", c.app(a.Name))
				return created(cmd, a, settings.Router)
			}
			settings, err := daemon.LoadSettings(h.SizesFile())
			if err != nil {
				return err
			}
			if err := h.CheckDefaultHost(args[0], settings.Router.Domain); err != nil {
				return err
			}
			a, err := h.Create(args[0], userName())
			if err != nil {
				return err
			}
			apiLog(a, "Initial release", "Release v1 created")
			fmt.Fprintf(out, "Creating %s... done\n", c.app(a.Name))
			return created(cmd, a, settings.Router)
		},
	}
}

func newAppsInfoCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "apps:info [APP]",
		Aliases: []string{"info"},
		Short:   "Show an app: its current release, buildpacks, slug and process types",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return fmt.Errorf("two apps given, %s and -a %s: give one", args[0], name)
				}
				name = args[0]
			}
			a, s, err := openAppState(name)
			if err != nil {
				return err
			}
			info := map[string]any{"name": a.Name, "stack": map[string]string{"name": app.Stack}, "buildpacks": s.Buildpacks}
			rows := [][2]string{{"Buildpacks", strings.Join(s.Buildpacks, ", ")}}
			if c := s.Current; c != nil {
				rows = append(rows, [2]string{"Current Release", fmt.Sprintf("v%d %s", c.Version, c.Description)})
				info["current_release"] = c.Version
				if c.Slug != "" {
					size := "?"
					if p, err := a.Home().Slugs().Path(c.Slug); err == nil {
						if fi, err := os.Stat(p); err == nil {
							size = humanBytes(fi.Size())
							info["slug_size"] = fi.Size()
						}
					}
					rows = append(rows, [2]string{"Slug", c.Slug}, [2]string{"Slug Size", size})
					info["slug"] = c.Slug
				}
				rows = append(rows, [2]string{"Process Types", strings.Join(app.ProcessTypeNames(c.ProcessTypes), ", ")},
					[2]string{"Config Vars", fmt.Sprint(len(c.ConfigVars))})
				info["process_types"] = c.ProcessTypes
			}
			rows = append(rows, [2]string{"Stack", app.Stack})
			r, err := routerSettings(a)
			if err != nil {
				return err
			}
			if url := r.URL(a.Name); url != "" {
				rows = append(rows, [2]string{"Web URL", url})
				info["web_url"] = url
			}
			rows = append(rows, [2]string{"Maintenance", onOff(s.Maintenance)}, [2]string{"Path", a.Dir})
			info["maintenance"] = s.Maintenance
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			fmt.Fprintln(cmd.OutOrStdout(), newColors(cmd).header(a.Name))
			printAligned(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newAppsDestroyCommand() *cobra.Command {
	var confirm, name string
	cmd := &cobra.Command{
		Use:     "apps:destroy [NAME]",
		Aliases: []string{"destroy"},
		Short:   "Destroy an app: its releases, config vars, build cache and logs",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				name = args[0]
			}
			if name == "" {
				name = os.Getenv("DYNO_APP")
			}
			if name == "" {
				return fmt.Errorf("give the app to destroy: dyno apps:destroy NAME --confirm NAME")
			}
			h, err := home()
			if err != nil {
				return err
			}
			// Ask only about an app that is there to destroy.
			if _, err := h.Open(name); err != nil {
				return err
			}
			c := newColors(cmd)
			switch {
			case confirm == name:
			case confirm != "":
				return fmt.Errorf("--confirm %s did not match %s; re-run with --confirm %s", confirm, name, name)
			case !isTerminal(cmd.InOrStdin()):
				return fmt.Errorf("this destroys %s for good; to proceed, re-run with --confirm %s", name, name)
			default:
				// Heroku's confirmApp: a warning on stderr, then the
				// name read from the terminal.
				fmt.Fprintf(cmd.ErrOrStderr(), " ▸    WARNING: This will delete %s: its releases, config vars, build cache and logs.\n", c.app(name))
				fmt.Fprintf(cmd.ErrOrStderr(), " ▸    To proceed, type %s or re-run this command with --confirm %s\n\n> ", name, name)
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) != name {
					if err != nil && line == "" {
						return fmt.Errorf("no name typed; %s is kept", name)
					}
					return fmt.Errorf("confirmation did not match %s. Aborted.", name)
				}
			}
			if err := h.Destroy(name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Destroying %s... done\n", c.app(name))
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&confirm, "confirm", "", "the app's name again, to confirm")
	return cmd
}

// created makes a new app's git repository, prints the line under
// Heroku's "Creating ⬢ app... done" (where the app answers and where to
// push: "https://APP.herokuapp.com/ | <git URL>"), and, run in a git
// repository, adds a remote named dyno for it, as heroku create adds
// heroku.
func created(cmd *cobra.Command, a *app.App, r daemon.RouterSettings) error {
	out := cmd.OutOrStdout()
	if err := gitpush.EnsureApp(cmd.Context(), a); err != nil {
		return err
	}
	if url := r.URL(a.Name); url != "" {
		fmt.Fprintf(out, "%s | %s\n", url, a.RepoDir())
	} else {
		fmt.Fprintln(out, a.RepoDir())
	}
	if !inGitRepo(".") {
		return nil
	}
	for _, rm := range gitRemotes(a.Home(), ".") {
		if rm.Name == "dyno" {
			// Someone else's remote is left alone, and said so.
			fmt.Fprintf(cmd.ErrOrStderr(), " ▸    git remote dyno already points at %s; dyno git:remote -a %s points it at this app\n", rm.URL, a.Name)
			return nil
		}
	}
	return setRemote(cmd.Context(), ".", "dyno", a.RepoDir())
}

// exactArgs is cobra.ExactArgs with a message that says what to type.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s", usage)
		}
		return nil
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printAligned prints "Key:   value" rows with the values aligned, as
// the Heroku CLI's styled objects.
func printAligned(w io.Writer, rows [][2]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0])+1)
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-*s %s\n", width, r[0]+":", r[1])
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
