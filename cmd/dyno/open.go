package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/spf13/cobra"
)

func newOpenCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "open [PATH]",
		Short: "Print the app's web URL, and open it in a browser on a desktop",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			r, err := routerSettings(a)
			if err != nil {
				return err
			}
			url := r.URL(a.Name)
			if url == "" {
				return fmt.Errorf("the router is off ([router] listen = %q in %s), so ⬢ %s has no URL; set listen to an address such as \"127.0.0.1:8080\"", daemon.RouterOff, a.Home().SizesFile(), a.Name)
			}
			if len(args) == 1 {
				url += strings.TrimPrefix(args[0], "/")
			}
			fmt.Fprintln(cmd.OutOrStdout(), url)
			if opener := desktopOpener(os.Getenv, exec.LookPath); opener != "" {
				openDetached(opener, url)
			}
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

// desktopOpener is xdg-open's path when there is a desktop to open a
// browser on: a display (X11's DISPLAY or WAYLAND_DISPLAY) and xdg-open
// on PATH. On a server, over ssh, there is none, and the URL printed is
// all open does.
func desktopOpener(getenv func(string) string, lookPath func(string) (string, error)) string {
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return ""
	}
	path, err := lookPath("xdg-open")
	if err != nil {
		return ""
	}
	return path
}

// openDetached starts opener on url in a session of its own, its output
// discarded, and does not wait for it: a browser it starts may live on
// after dyno exits, and must not hold the terminal.
func openDetached(opener, url string) {
	cmd := exec.Command(opener, url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cmd.Start() == nil {
		cmd.Process.Release()
	}
}
