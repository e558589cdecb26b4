package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dyno-run/dyno/buildpacks/gitpush"
	"github.com/spf13/cobra"
)

func addKeysCommands(root *cobra.Command) {
	addTopic(root, newKeysCommand, newKeysAddCommand, newKeysRemoveCommand)
}

// authorizedKeys is this user's ~/.ssh/authorized_keys, where dyno keeps
// the keys that may git push to this machine's apps through its sshd.
// Each entry forces dyno git-shell, with this binary and DYNO_HOME.
func authorizedKeys() (gitpush.Keys, error) {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return gitpush.Keys{}, errors.New("no home folder for ~/.ssh/authorized_keys: set HOME to the home of the user sshd logs in as")
	}
	dynoHome, err := dynoHome()
	if err != nil {
		return gitpush.Keys{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return gitpush.Keys{}, err
	}
	return gitpush.Keys{
		Path: filepath.Join(home, ".ssh", "authorized_keys"),
		Command: func(k gitpush.Key) string {
			// Run by the login shell as sh -c (sshd(8)).
			cmd := "export DYNO_HOME=" + shellQuote(dynoHome) + "; exec " + shellQuote(exe) + " git-shell --key " + shellQuote(k.Fingerprint())
			if k.Comment != "" {
				cmd += " --user " + shellQuote(k.Comment)
			}
			return cmd
		},
	}, nil
}

func newKeysCommand() *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "List the SSH keys that may git push to this machine's apps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ks, err := authorizedKeys()
			if err != nil {
				return err
			}
			keys, err := ks.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(keys) == 0 {
				fmt.Fprintln(out, "You have no SSH keys.")
				return nil
			}
			fmt.Fprintf(out, "=== %s keys\n", ks.Path)
			for _, k := range keys {
				if long {
					fmt.Fprintf(out, "%s\n", k)
				} else {
					fmt.Fprintf(out, "%s  %s\n", k.Short(), k.Fingerprint())
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show the whole keys")
	return cmd
}

// defaultPublicKeys are tried in order when keys:add is given no file,
// as heroku keys:add does.
var defaultPublicKeys = []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"}

func newKeysAddCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keys:add [FILE]",
		Short: "Let an SSH key git push to this machine's apps (FILE, - for stdin, default ~/.ssh/id_ed25519.pub)",
		Long: `keys:add adds a public key to ~/.ssh/authorized_keys with a forced command:
sshd lets its owner run dyno git-shell and nothing else, no shell, no
forwarding. git push dyno@HOST:APP.git main then deploys APP.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 1 {
				path = args[0]
			} else {
				home, _ := os.UserHomeDir()
				for _, name := range defaultPublicKeys {
					p := filepath.Join(home, ".ssh", name)
					if _, err := os.Stat(p); err == nil {
						path = p
						break
					}
				}
				if path == "" {
					return errors.New("no public key in ~/.ssh (id_ed25519.pub, id_ecdsa.pub, id_rsa.pub): make one with ssh-keygen -t ed25519, or give the file: dyno keys:add FILE")
				}
			}
			var data []byte
			var err error
			if path == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
				path = "standard input"
			} else {
				data, err = readSmallFile(path, 64<<10)
			}
			if err != nil {
				return err
			}
			k, err := gitpush.ParseKey(string(data))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			ks, err := authorizedKeys()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Uploading %s SSH key... ", path)
			if err := ks.Add(k); err != nil {
				fmt.Fprintln(cmd.OutOrStdout(), "failed")
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "done")
			return nil
		},
	}
}

// readSmallFile reads a file of at most limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is over %d bytes: not a public key", path, limit)
	}
	return data, nil
}

func newKeysRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "keys:remove KEY",
		Short: "Stop an SSH key's pushes: KEY is its comment (user@host), fingerprint or whole line",
		Args:  exactArgs(1, "give the key: dyno keys:remove user@host (dyno keys lists them)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := authorizedKeys()
			if err != nil {
				return err
			}
			removed, err := ks.Remove(args[0])
			if err != nil {
				return err
			}
			for _, k := range removed {
				name := k.Comment
				if name == "" {
					name = k.Fingerprint()
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Removing %s SSH key... done\n", name)
			}
			return nil
		},
	}
}
