package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/spf13/cobra"
)

func addReleasesCommands(root *cobra.Command) {
	addTopic(root, newReleasesCommand, newReleasesInfoCommand, newReleasesRollbackCommand, newReleasesVerifyCommand)
	// `dyno rollback` is Heroku's alias of releases:rollback.
	rb := newReleasesRollbackCommand()
	rb.Use = "rollback [vN]"
	rb.Hidden = true
	root.AddCommand(rb)
}

// releaseJSON is the Platform API's release shape.
func releaseJSON(r ledger.Release, current int) map[string]any {
	return map[string]any{
		"version": r.Version, "description": r.Description, "status": r.Status,
		"current": r.Version == current, "eligible_for_rollback": app.Eligible(r),
		"created_at": r.Time.UTC().Format(time.RFC3339), "user": map[string]string{"email": r.User},
		"slug": map[string]string{"id": r.Slug},
	}
}

// statusNote is what the Heroku CLI adds to a release that is not
// plainly succeeded.
func statusNote(r ledger.Release) string {
	switch r.Status {
	case ledger.StatusPending:
		return "release command executing"
	case ledger.StatusFailed:
		return "release command failed"
	}
	return ""
}

func newReleasesCommand() *cobra.Command {
	var name string
	var n int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List the app's releases, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			rels, err := a.Ledger.Releases(n)
			if err != nil {
				return err
			}
			s, err := a.Ledger.State()
			if err != nil {
				return err
			}
			current := 0
			if s.Current != nil {
				current = s.Current.Version
			}
			out := cmd.OutOrStdout()
			if asJSON {
				list := make([]map[string]any, 0, len(rels))
				for _, r := range rels {
					list = append(list, releaseJSON(r, current))
				}
				return writeJSON(out, list)
			}
			header := a.Name + " Releases"
			if current > 0 {
				header += " - Current: v" + strconv.Itoa(current)
			}
			fmt.Fprintln(out, newColors(cmd).header(header))
			printReleases(out, rels, time.Now())
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().IntVarP(&n, "num", "n", 15, "how many releases to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printReleases prints one aligned row per release as the Heroku CLI
// does: version, description (and status), user, time.
func printReleases(w io.Writer, rels []ledger.Release, now time.Time) {
	var vw, dw, uw int
	descs := make([]string, len(rels))
	for i, r := range rels {
		descs[i] = r.Description
		if note := statusNote(r); note != "" {
			descs[i] += " " + note
		}
		vw = max(vw, len("v"+strconv.Itoa(r.Version)))
		dw = max(dw, len(descs[i]))
		uw = max(uw, len(r.User))
	}
	for i, r := range rels {
		fmt.Fprintf(w, "%-*s  %-*s  %-*s  %s\n", vw, "v"+strconv.Itoa(r.Version), dw, descs[i], uw, r.User, when(r.Time, now))
	}
}

// when is "2026/11/26 10:00:00 +0000 (~ 13m ago)", as Heroku's CLI.
func when(t, now time.Time) string {
	s := t.Format("2006/01/02 15:04:05 -0700")
	d := now.Sub(t)
	switch {
	case d < 0:
		return s
	case d < time.Minute:
		return fmt.Sprintf("%s (~ %ds ago)", s, int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%s (~ %dm ago)", s, int(d.Minutes()))
	case d < 25*time.Hour:
		return fmt.Sprintf("%s (~ %dh ago)", s, int(d.Hours()))
	}
	return s
}

// parseVersion reads "v12" or "12".
func parseVersion(s string) (int, error) {
	v, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || v < 1 {
		return 0, fmt.Errorf("%q is not a release version; write it like v12", s)
	}
	return v, nil
}

func newReleasesInfoCommand() *cobra.Command {
	var name string
	var shell, asJSON bool
	cmd := &cobra.Command{
		Use:   "releases:info [vN]",
		Short: "Show one release (default: the current one) and its config vars",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, s, err := openAppState(name)
			if err != nil {
				return err
			}
			var rel *ledger.Release
			if len(args) == 1 {
				v, err := parseVersion(args[0])
				if err != nil {
					return err
				}
				if rel, err = a.Ledger.Release(v); err != nil {
					return fmt.Errorf("v%d: no such release on %s; dyno releases lists them", v, a.Name)
				}
			} else if rel = s.Current; rel == nil {
				return fmt.Errorf("%s has no current release", a.Name)
			}
			current := 0
			if s.Current != nil {
				current = s.Current.Version
			}
			out := cmd.OutOrStdout()
			if asJSON {
				j := releaseJSON(*rel, current)
				j["config_vars"] = rel.ConfigVars
				j["process_types"] = rel.ProcessTypes
				return writeJSON(out, j)
			}
			change := rel.Description
			if note := statusNote(*rel); note != "" {
				change += " (" + note + ")"
			}
			eligible := "no"
			if app.Eligible(*rel) {
				eligible = "yes"
			}
			fmt.Fprintln(out, newColors(cmd).header(fmt.Sprintf("Release v%d", rel.Version)))
			printAligned(out, [][2]string{
				{"Add-ons", strings.Join(rel.Addons, ", ")},
				{"By", rel.User},
				{"Change", change},
				{"Eligible for Rollback?", eligible},
				{"Slug", rel.Slug},
				{"When", rel.Time.UTC().Format(time.RFC3339)},
			})
			fmt.Fprintf(out, "\n%s\n", newColors(cmd).header(fmt.Sprintf("v%d Config vars", rel.Version)))
			if shell {
				printShell(out, rel.ConfigVars)
			} else {
				printConfig(out, rel.ConfigVars)
			}
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVarP(&shell, "shell", "s", false, "config vars as KEY=value lines")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newReleasesRollbackCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "releases:rollback [vN]",
		Short: "Make a new release with an earlier release's code and config vars",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			target := 0
			if len(args) == 1 {
				if target, err = parseVersion(args[0]); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			rel, err := a.Rollback(target, userName())
			if err != nil {
				return err
			}
			apiLog(a, rel.Description, fmt.Sprintf("Release v%d created", rel.Version))
			fmt.Fprintf(out, "Rolling back ⬢ %s to v%s... done, v%d\n", a.Name, strings.TrimPrefix(rel.Description, "Rollback to v"), rel.Version)
			fmt.Fprintln(out, " ▸    Rollback affects code and config vars; it doesn't add or remove addons.")
			fmt.Fprintf(out, " ▸    To undo, run: dyno rollback v%d\n", rel.Version-1)
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return releasePhase(cmd, a, rel)
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newReleasesVerifyCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "releases:verify",
		Short: "Check the app's ledger: every record whole and the hash chain intact",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if err := a.Ledger.Verify(); err != nil {
				return err
			}
			s, err := a.Ledger.State()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d records, hash chain intact\n", a.Name, s.Seq)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}
