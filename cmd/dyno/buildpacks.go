package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
)

func addBuildpacksCommands(root *cobra.Command) {
	addTopic(root, newBuildpacksCommand, newBuildpacksSetCommand, newBuildpacksAddCommand, newBuildpacksRemoveCommand, newBuildpacksClearCommand)
}

func newBuildpacksCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "buildpacks",
		Short: "List the app's buildpacks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			list, err := a.Buildpacks()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, append([]string{}, list...))
			}
			if len(list) == 0 {
				fmt.Fprintf(out, "%s has no buildpacks set; builds detect one\n", a.Name)
				return nil
			}
			fmt.Fprintln(out, newColors(cmd).header(a.Name+" Buildpack URLs"))
			printBuildpacks(cmd, list)
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printBuildpacks(cmd *cobra.Command, list []string) {
	out := cmd.OutOrStdout()
	if len(list) == 1 {
		fmt.Fprintln(out, list[0])
		return
	}
	for i, b := range list {
		fmt.Fprintf(out, "%d. %s\n", i+1, b)
	}
}

// editBuildpacks is the shape of every buildpacks:* change: edit the list
// in one ledger record, then print it.
func editBuildpacks(cmd *cobra.Command, name, verb string, edit func([]string) ([]string, error)) error {
	a, err := openApp(name)
	if err != nil {
		return err
	}
	list, err := a.EditBuildpacks(userName(), edit)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if len(list) == 0 {
		fmt.Fprintf(out, "Buildpacks %s. Next build on %s will detect buildpacks normally.\n", verb, a.Name)
		return nil
	}
	fmt.Fprintf(out, "Buildpack %s. Next build on %s will use:\n", verb, a.Name)
	printBuildpacks(cmd, list)
	return nil
}

// index checks a 1-based --index against a list of n.
func index(i, n int, allowEnd bool) error {
	limit := n
	if allowEnd {
		limit = n + 1
	}
	if i < 1 || i > limit {
		return fmt.Errorf("--index %d is out of range; the list has %d buildpacks", i, n)
	}
	return nil
}

func newBuildpacksSetCommand() *cobra.Command {
	var name string
	var at int
	cmd := &cobra.Command{
		Use:   "buildpacks:set BUILDPACK",
		Short: "Set the app's buildpack (at --index, or the whole list)",
		Args:  exactArgs(1, "give the buildpack: a folder, a git URL (with #ref) or a .tgz"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editBuildpacks(cmd, name, "set", func(cur []string) ([]string, error) {
				if at == 0 {
					return []string{args[0]}, nil
				}
				if err := index(at, len(cur), true); err != nil {
					return nil, err
				}
				if at == len(cur)+1 {
					return append(cur, args[0]), nil
				}
				cur[at-1] = args[0]
				return cur, nil
			})
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().IntVarP(&at, "index", "i", 0, "replace the buildpack at this 1-based position")
	return cmd
}

func newBuildpacksAddCommand() *cobra.Command {
	var name string
	var at int
	cmd := &cobra.Command{
		Use:   "buildpacks:add BUILDPACK",
		Short: "Add a buildpack to the app's list (at the end, or at --index)",
		Args:  exactArgs(1, "give the buildpack: a folder, a git URL (with #ref) or a .tgz"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editBuildpacks(cmd, name, "added", func(cur []string) ([]string, error) {
				if slices.Contains(cur, args[0]) {
					return nil, fmt.Errorf("%s is already in the list", args[0])
				}
				if at == 0 {
					return append(cur, args[0]), nil
				}
				if err := index(at, len(cur), true); err != nil {
					return nil, err
				}
				return slices.Insert(cur, at-1, args[0]), nil
			})
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().IntVarP(&at, "index", "i", 0, "insert at this 1-based position")
	return cmd
}

func newBuildpacksRemoveCommand() *cobra.Command {
	var name string
	var at int
	cmd := &cobra.Command{
		Use:   "buildpacks:remove [BUILDPACK]",
		Short: "Remove a buildpack from the app's list (by value or --index)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 0) == (at == 0) {
				return fmt.Errorf("give either the buildpack or --index, not both or neither")
			}
			return editBuildpacks(cmd, name, "removed", func(cur []string) ([]string, error) {
				if at != 0 {
					if err := index(at, len(cur), false); err != nil {
						return nil, err
					}
					return slices.Delete(cur, at-1, at), nil
				}
				i := slices.Index(cur, args[0])
				if i < 0 {
					return nil, fmt.Errorf("%s is not in the list; dyno buildpacks shows it", args[0])
				}
				return slices.Delete(cur, i, i+1), nil
			})
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().IntVarP(&at, "index", "i", 0, "remove the buildpack at this 1-based position")
	return cmd
}

func newBuildpacksClearCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "buildpacks:clear",
		Short: "Clear the app's buildpacks: builds detect them again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return editBuildpacks(cmd, name, "cleared", func([]string) ([]string, error) { return []string{}, nil })
		},
	}
	appFlag(cmd, &name)
	return cmd
}
