package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor/project"
	"github.com/spf13/cobra"
)

func newCheckCommand() *cobra.Command {
	var procfile string
	var envFiles []string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the Procfile and the env files and list the process types",
		Long: `Check reads the Procfile and the env files as dyno start reads them, and
lists every line that start and run would skip (a Procfile line that is not
NAME: COMMAND, an env file line that is not NAME=value), then fails if there
was any.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCheck(cmd.OutOrStdout(), procfile, envFiles)
		},
	}
	cmd.Flags().StringVarP(&procfile, "procfile", "f", "Procfile", "the Procfile to check")
	cmd.Flags().StringSliceVarP(&envFiles, "env", "e", nil, "env files to check, comma-separated (default .env beside the Procfile)")
	return cmd
}

// runCheck lists on out every line the project's files would have
// skipped, then the process types; it fails if a line was skipped or
// the project would not start.
func runCheck(out io.Writer, procfile string, envFiles []string) error {
	var skipped []slug.SkippedLine
	p, err := project.Load(project.Options{
		Procfile: procfile,
		EnvFiles: envFiles,
		OnSkip:   func(s slug.SkippedLine) { skipped = append(skipped, s) },
	})
	for _, s := range skipped {
		fmt.Fprintln(out, s)
	}
	if err != nil {
		return err
	}
	if len(skipped) > 0 {
		return skippedSummary(skipped)
	}
	fmt.Fprintf(out, "valid procfile detected (%s)\n", strings.Join(p.Procfile.Names(), ", "))
	return nil
}

// skippedSummary says how many lines were skipped in which files.
func skippedSummary(skipped []slug.SkippedLine) error {
	var files []string
	count := map[string]int{}
	for _, s := range skipped {
		if count[s.Path] == 0 {
			files = append(files, s.Path)
		}
		count[s.Path]++
	}
	for i, f := range files {
		files[i] = fmt.Sprintf("%d in %s", count[f], f)
	}
	lines := "lines"
	if len(skipped) == 1 {
		lines = "line"
	}
	return fmt.Errorf("%d malformed %s (%s): dyno start and run skip them; fix or remove them",
		len(skipped), lines, strings.Join(files, ", "))
}

// warnSkipped is project.Options.OnSkip for start and run: a line of the
// Procfile or an env file that is skipped, as Foreman skips it, is said
// once on stderr, so that it never goes unnoticed.
func warnSkipped(s slug.SkippedLine) {
	fmt.Fprintf(os.Stderr, "dyno: %s\n", s)
}
