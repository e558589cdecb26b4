package main

import (
	"fmt"
	"os"

	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/daemon/apitoken"
	"github.com/spf13/cobra"
)

func addAuthCommands(root *cobra.Command) {
	addTopic(root, newAuthCommand, newAuthTokenCommand, newAuthRegenerateCommand, newAuthWhoamiCommand)
}

func newAuthCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "auth",
		Short: "The token of the daemon's API over TCP ([api] listen in dyno.toml)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// tokenPaths are the daemon's API folder, where the token's hash is, and
// the client's token file.
func tokenPaths() (apiDir, clientPath string, err error) {
	h, err := home()
	if err != nil {
		return "", "", err
	}
	homeDir, _ := os.UserHomeDir()
	clientPath, err = apitoken.ClientPath(os.Environ(), homeDir)
	if err != nil {
		return "", "", err
	}
	return daemon.APIDir(h.Dir), clientPath, nil
}

func newAuthTokenCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "auth:token",
		Short: "Print the API token (HEROKU_API_KEY for the Heroku CLI), making one the first time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apiDir, clientPath, err := tokenPaths()
			if err != nil {
				return err
			}
			tok, err := apitoken.Token(apiDir, clientPath)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
}

func newAuthRegenerateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "auth:regenerate",
		Short: "Make a new API token and print it; the old one stops working at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			apiDir, clientPath, err := tokenPaths()
			if err != nil {
				return err
			}
			tok, err := apitoken.Regenerate(apiDir, clientPath)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			printHint(cmd.ErrOrStderr(), `the old token no longer works; run eval "$(dyno cli-env heroku)" again where it was in use`)
			return nil
		},
	}
}

func newAuthWhoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "auth:whoami",
		Aliases: []string{"whoami"},
		Short:   "Print the account's email, as the API's /account gives it",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), daemon.AccountEmail)
			return nil
		},
	}
}
