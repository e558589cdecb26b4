package main

import (
	"errors"
	"fmt"
	"maps"

	"github.com/spf13/cobra"
)

func newSlugsGCCommand() *cobra.Command {
	var keep int
	cmd := &cobra.Command{
		Use:   "slugs:gc",
		Short: "Remove slugs that no recent release of any app uses and no running dyno holds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keep < 1 {
				return fmt.Errorf("--keep %d: keep at least the current release (1)", keep)
			}
			h, err := home()
			if err != nil {
				return err
			}
			names, err := h.List()
			if err != nil {
				return err
			}
			used := map[string]bool{}
			var errs []error
			for _, n := range names {
				a, err := h.Open(n)
				if err != nil {
					return err
				}
				rels, err := a.Ledger.Releases(keep)
				if err != nil {
					return err
				}
				mine := map[string]bool{}
				for _, r := range rels {
					if r.Slug != "" {
						mine[r.Slug] = true
					}
				}
				// The current release may be older than the last N (a
				// string of failed releases): keep it too.
				if s, err := a.Ledger.State(); err == nil && s.Current != nil && s.Current.Slug != "" {
					mine[s.Current.Slug] = true
				}
				// The app's own copies (apps with their own ids) go by
				// the app's releases alone.
				gone, err := a.GCLowers(mine)
				for _, d := range gone {
					fmt.Fprintf(cmd.OutOrStdout(), "Removed %s's copy of %s\n", n, d)
				}
				if err != nil {
					errs = append(errs, err)
				}
				maps.Copy(used, mine)
			}
			removed, err := h.Slugs().GC(used)
			for _, d := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed %s\n", d)
			}
			if err := errors.Join(append(errs, err)...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d slugs removed, %d kept\n", len(removed), len(used))
			return nil
		},
	}
	cmd.Flags().IntVar(&keep, "keep", 10, "keep the slugs of each app's last N releases")
	return cmd
}
