package main

import (
	"fmt"
	"strings"

	"github.com/dyno-run/dyno/slug"
	"github.com/spf13/cobra"
)

func newCheckCommand() *cobra.Command {
	var procfile string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Validate the Procfile and list its process types",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := slug.ReadProcfile(procfile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "valid procfile detected (%s)\n", strings.Join(p.Names(), ", "))
			return nil
		},
	}
	cmd.Flags().StringVarP(&procfile, "procfile", "f", "Procfile", "the Procfile to check")
	return cmd
}
