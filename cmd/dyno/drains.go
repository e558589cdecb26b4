package main

import (
	"fmt"

	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
)

func addDrainsCommands(root *cobra.Command) {
	addTopic(root, newDrainsCommand, newDrainsAddCommand, newDrainsRemoveCommand)
}

func newDrainsCommand() *cobra.Command {
	var name string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "drains",
		Short: "List the app's log drains: URL (token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, s, err := openAppState(name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, daemon.DrainsJSON(s.Drains))
			}
			c := newColors(cmd)
			if len(s.Drains) == 0 {
				fmt.Fprintf(out, "%s has no drains\n", c.app(a.Name))
				return nil
			}
			fmt.Fprintln(out, c.header("Drains"))
			for _, d := range s.Drains {
				fmt.Fprintf(out, "%s (%s)\n", d.URL, d.Token)
			}
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDrainsAddCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "drains:add URL",
		Short: "Send the app's logs to URL: syslog://HOST:PORT, syslog+tls://HOST:PORT or https://HOST/PATH",
		Args:  exactArgs(1, "give the drain's URL: dyno drains:add syslog+tls://logs.example.com:6514 -a APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			d, err := a.AddDrain(args[0], userName())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Successfully added drain %s\n", d.URL)
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newDrainsRemoveCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "drains:remove URL|TOKEN",
		Short: "Stop sending the app's logs to a drain, named by its URL or token",
		Args:  exactArgs(1, "give the drain's URL or token: dyno drains:remove d.TOKEN -a APP (dyno drains lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			d, err := a.RemoveDrain(args[0], userName())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Successfully removed drain %s\n", d.URL)
			_, hint := ledgerChanged(a.Name)
			printHint(cmd.ErrOrStderr(), hint)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}
