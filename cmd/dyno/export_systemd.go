package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dyno-run/dyno/supervisor/export/units"
)

func newExportSystemdCommand() *cobra.Command {
	var f exportFlags
	var dir, runAs string
	cmd := &cobra.Command{
		Use:   "systemd",
		Short: "Write systemd units that run a release's dynos on this machine",
		Long: `Export systemd writes systemd units that run one release of an app (the
current one, or --release vN) at its formation, as foreman export systemd
does, each dyno isolated as dyno's daemon runs it, with systemd supervising
in the daemon's place:

  APP.target                      wants every dyno; enable it to start them at boot
  APP-TYPE@.service               one per process type; instance N is TYPE.N
  APP-TYPE@N.service.d/dyno.conf  one per dyno of the formation: its PORT

Each instance runs dyno run -a APP --release vN --dyno TYPE.N, which reads the
release's config vars from DYNO_HOME: no value of them is written into the
units, which anyone may read. systemd restarts a dyno whatever its exit, after
the daemon's first back-off, stops it with SIGTERM and SIGKILL after the stop
timeout of dyno.toml, and bounds its unit with its size's memory.max, pids and
CPU weight. The files go into DIR (default ./systemd), replaced atomically;
nothing is installed. Do not run the same app under dyno daemon as well.`,
		Example: `  dyno export systemd -a shop -o units
  sudo cp -r units/. /etc/systemd/system/ && sudo systemctl daemon-reload
  sudo systemctl enable --now shop.target`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exportSystemd(f, dir, runAs, newColors(cmd))
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&dir, "output", "o", "systemd", "the folder the units are written to")
	cmd.Flags().StringVar(&runAs, "user", "", "the user the dynos run as, who owns DYNO_HOME (default: you)")
	return cmd
}

func exportSystemd(f exportFlags, dir, runAs string, c colors) error {
	p, err := loadPlan(f)
	if err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("export systemd: the dyno binary's path: %w", err)
	}
	home, err := dynoHome()
	if err != nil {
		return err
	}
	if home, err = filepath.Abs(home); err != nil {
		return fmt.Errorf("export systemd: DYNO_HOME: %w", err)
	}
	if runAs == "" {
		u, err := user.Current()
		if err != nil || u.Username == "" {
			return fmt.Errorf("export systemd: no user name for uid %d; name the user the dynos run as with --user NAME", os.Getuid())
		}
		runAs = u.Username
	}
	files, err := units.Units(p, units.Options{Binary: bin, Home: home, User: runAs})
	if err != nil {
		return err
	}
	if err := units.Write(dir, files); err != nil {
		return err
	}
	fmt.Printf("Wrote systemd units for %s v%d to %s:\n", c.app(p.App), p.Release.Version, dir)
	for _, file := range files {
		fmt.Println("  " + filepath.Join(dir, filepath.FromSlash(file.Name)))
	}
	// DIR/. copies the drop-in folders along with the units, and never
	// nests DIR itself under the destination.
	fmt.Printf("Install and start them (as root):\n")
	fmt.Printf("  cp -r %s/. /etc/systemd/system/\n", shellQuote(filepath.Clean(dir)))
	fmt.Printf("  systemctl daemon-reload\n")
	fmt.Printf("  systemctl enable --now %s\n", units.Target(p))
	return nil
}
