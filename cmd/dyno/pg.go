package main

// heroku pg: and pg:backups: the add-on's database through psql, its
// numbers, and backups taken with pg_dump under the app's folder. Each
// reaches the database with the add-on's own role, as the app does,
// going through the provider so that the server is started if it does
// not run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/dyno-run/dyno/addons"
	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// addAddonToolsCommands registers pg:, pg:backups: and redis:.
func addAddonToolsCommands(root *cobra.Command) {
	addTopic(root, func() *cobra.Command { return newPgInfoCommand("pg") }, func() *cobra.Command { return newPgInfoCommand("pg:info") },
		newPgPsqlCommand)
	addTopic(root, newPgBackupsCommand, newPgBackupsCaptureCommand, newPgBackupsRestoreCommand, newPgBackupsInfoCommand,
		newPgBackupsDeleteCommand, newPgBackupsDownloadCommand)
	addTopic(root, func() *cobra.Command { return newRedisInfoCommand("redis") }, func() *cobra.Command { return newRedisInfoCommand("redis:info") },
		newRedisCliCommand)
}

const postgresService = "heroku-postgresql"

// serviceAttachments are the app's attachments of service.
func serviceAttachments(ats []ledger.Attachment, service string) []ledger.Attachment {
	var out []ledger.Attachment
	for _, at := range ats {
		if at.Service == service {
			out = append(out, at)
		}
	}
	return out
}

// findAttachment is the attachment of service that arg names: an
// attachment (DATABASE, HEROKU_POSTGRESQL_RED), its config var
// (DATABASE_URL) or an add-on's name. With arg "" it is the app's
// default: the one named as the service's first attachment is (DATABASE,
// REDIS), else the only one.
func findAttachment(a *app.App, ats []ledger.Attachment, service, arg string) (ledger.Attachment, error) {
	s, _, err := addons.FindService(service)
	if err != nil {
		return ledger.Attachment{}, err
	}
	mine := serviceAttachments(ats, service)
	var names []string
	for _, at := range mine {
		names = append(names, at.Name)
	}
	if len(mine) == 0 {
		return ledger.Attachment{}, fmt.Errorf("⬢ %s has no %s add-on; dyno addons:create %s -a %s makes one", a.Name, service, service, a.Name)
	}
	if arg == "" {
		if i := slices.IndexFunc(mine, func(at ledger.Attachment) bool { return at.Name == s.ConfigVar }); i >= 0 {
			return mine[i], nil
		}
		if len(mine) == 1 {
			return mine[0], nil
		}
		return ledger.Attachment{}, fmt.Errorf("⬢ %s has no %s_URL and several %s add-ons; name one: %s", a.Name, s.ConfigVar, service, strings.Join(names, ", "))
	}
	want := strings.TrimSuffix(arg, "_URL")
	for _, at := range mine {
		if at.Name == want || at.Addon == arg {
			return at, nil
		}
	}
	return ledger.Attachment{}, fmt.Errorf("⬢ %s has no %s add-on %s; give one of %s", a.Name, service, arg, strings.Join(names, ", "))
}

// toolApp opens the app and picks the attachment of service arg names
// (arg may be "").
func toolApp(appName, service, arg string) (*app.App, ledger.Attachment, error) {
	a, st, err := openAppState(appName)
	if err != nil {
		return nil, ledger.Attachment{}, err
	}
	at, err := findAttachment(a, st.Attachments, service, arg)
	return a, at, err
}

// connectPostgres reaches the add-on attached as at, starting its
// server if need be; ^C gives up waiting for it.
func connectPostgres(a *app.App, at ledger.Attachment) (addons.PostgresConn, error) {
	ctx, stop := interruptible()
	defer stop()
	m := addonsManagerFor(a.Home())
	return m.Postgres(ctx, at.Addon)
}

// runOnTerminal runs an interactive client (psql, redis-cli) on dyno's
// own stdin, stdout and stderr: on a terminal it has the user's
// terminal, and reads and edits lines there itself; otherwise it reads
// the pipe or file. Ctrl-C on a terminal reaches it from the terminal,
// so dyno only waits; other signals that reach dyno are passed on. Its
// exit status is dyno's.
func runOnTerminal(cmd *exec.Cmd) error {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	tty := term.IsTerminal(int(os.Stdin.Fd()))
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if tty && (s == syscall.SIGINT || s == syscall.SIGQUIT) {
					continue // the terminal sent it to the client too
				}
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return diedOf(ws.Signal())
		}
		return exitStatus(ee.ExitCode())
	}
	return err
}

func newPgPsqlCommand() *cobra.Command {
	var name, command, file string
	cmd := &cobra.Command{
		Use:   "pg:psql [DATABASE]",
		Short: "Open psql on the app's database (DATABASE, HEROKU_POSTGRESQL_RED or an add-on's name) as the app connects",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, at, err := toolApp(name, postgresService, firstArg(args))
			if err != nil {
				return err
			}
			if command != "" && file != "" {
				return errors.New("give -c COMMAND or -f FILE, not both")
			}
			if file != "" {
				if st, err := os.Stat(file); err != nil || !st.Mode().IsRegular() {
					return fmt.Errorf("-f %s: not a file psql can read; give a file of SQL", file)
				}
			}
			conn, err := connectPostgres(a, at)
			if err != nil {
				return err
			}
			if _, err := os.Stat(conn.Program("psql")); err != nil {
				return errors.New("psql is not installed: apt-get install postgresql-client")
			}
			var psqlArgs []string
			if command != "" {
				psqlArgs = append(psqlArgs, "-c", command)
			}
			if file != "" {
				psqlArgs = append(psqlArgs, "-f", file)
			}
			psql, err := conn.Command(context.Background(), "psql", psqlArgs...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "--> Connecting to %s\n", at.Addon)
			return runOnTerminal(psql)
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVarP(&command, "command", "c", "", "SQL to run, then exit")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a file of SQL to run, then exit")
	return cmd
}

func firstArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return ""
}

// planTitle is a plan as Heroku's pg:info shows it: Essential 0.
func planTitle(plan string) string {
	words := strings.Split(plan, "-")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

// byAddon groups attachments by add-on, in the order each add-on is
// first attached: one database attached twice is described once, under
// both config vars.
func byAddon(ats []ledger.Attachment) [][]ledger.Attachment {
	var groups [][]ledger.Attachment
	for _, at := range ats {
		i := slices.IndexFunc(groups, func(g []ledger.Attachment) bool { return g[0].Addon == at.Addon })
		if i < 0 {
			groups = append(groups, []ledger.Attachment{at})
		} else {
			groups[i] = append(groups[i], at)
		}
	}
	return groups
}

// describedAddons returns the app named name (or inferred) and its
// attachments of service that pg:info or redis:info describes, grouped
// by add-on: the one args names, else all of them.
func describedAddons(name, service string, args []string) (*app.App, [][]ledger.Attachment, error) {
	a, st, err := openAppState(name)
	if err != nil {
		return nil, nil, err
	}
	ats := serviceAttachments(st.Attachments, service)
	if len(args) == 1 {
		at, err := findAttachment(a, st.Attachments, service, args[0])
		if err != nil {
			return nil, nil, err
		}
		ats = []ledger.Attachment{at}
	}
	return a, byAddon(ats), nil
}

func configVars(g []ledger.Attachment) string {
	var vars []string
	for _, at := range g {
		vars = append(vars, at.Name+"_URL")
	}
	return strings.Join(vars, ", ")
}

// newDescribeCommand is pg:info or redis:info: for each add-on of
// service the app has (or the one named), a header and aligned rows
// from describe, with the owner's name for an add-on another app owns
// (billing) where describe puts it.
func newDescribeCommand(use, short, service string, describe func(ctx context.Context, m *addons.Manager, ad addons.Addon, g []ledger.Attachment, c colors, billing [][2]string) (string, [][2]string, error)) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   use + " [DATABASE]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, groups, err := describedAddons(name, service, args)
			if err != nil {
				return err
			}
			c := newColors(cmd)
			out := cmd.OutOrStdout()
			if len(groups) == 0 {
				fmt.Fprintf(out, "%s has no %s databases.\n", c.app(a.Name), service)
				return nil
			}
			m := addonsManagerFor(a.Home())
			ctx, stop := interruptible()
			defer stop()
			for i, g := range groups {
				ad, err := m.Get(g[0].Addon)
				if err != nil {
					return err
				}
				var billing [][2]string
				if ad.Owner != a.Name {
					billing = [][2]string{{"Billing App", c.app(ad.Owner)}}
				}
				header, rows, err := describe(ctx, m, ad, g, c, billing)
				if err != nil {
					return err
				}
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprintln(out, c.header(header))
				printAligned(out, rows)
			}
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newPgInfoCommand(use string) *cobra.Command {
	return newDescribeCommand(use, "Describe the app's databases: plan, connections, version, size and tables, as the add-on's role sees them", postgresService,
		func(ctx context.Context, m *addons.Manager, ad addons.Addon, g []ledger.Attachment, c colors, billing [][2]string) (string, [][2]string, error) {
			conn, err := m.Postgres(ctx, ad.Name)
			if err != nil {
				return "", nil, err
			}
			row, err := conn.Query(ctx, `SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()),
				current_setting('max_connections'), current_setting('server_version'),
				pg_database_size(current_database()),
				(SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))`)
			if err != nil {
				return "", nil, err
			}
			if len(row) != 5 {
				return "", nil, fmt.Errorf("pg:info %s: psql answered %q", ad.Name, row)
			}
			size, _ := strconv.ParseInt(row[3], 10, 64)
			rows := [][2]string{
				{"Plan", planTitle(ad.Plan)},
				{"Status", "Available"},
				{"Connections", row[0] + "/" + row[1]},
				{"PG Version", strings.Fields(row[2] + " ?")[0]}, // 15.8, not "15.8 (Debian ...)"
				{"Created", ad.Created.UTC().Format("2006-01-02 15:04 UTC")},
				{"Data Size", humanBytes(size)},
				{"Tables", row[4]},
				{"Fork/Follow", "Unsupported"},
				{"Rollback", "Unsupported"},
			}
			rows = append(rows, billing...)
			return configVars(g), append(rows, [2]string{"Add-on", ad.Name}), nil
		})
}

// Backups' times, as Heroku's pg:backups shows them.
const backupTime = "2006-01-02 15:04:05 -0700"

func backupStatus(bk addons.Backup) string {
	if bk.Status == addons.BackupCompleted {
		return "Completed " + bk.Finished.UTC().Format(backupTime)
	}
	return "Running"
}

func newPgBackupsCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "pg:backups",
		Short: "List the app's database backups (pg:backups:capture takes one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			all, err := addons.BackupsIn(a.Dir).List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, newColors(cmd).header("Backups"))
			if len(all) == 0 {
				fmt.Fprintln(out, "No backups. Capture one with dyno pg:backups:capture")
				return nil
			}
			rows := [][]string{{"ID", "Created at", "Status", "Size", "Database"}}
			for i := len(all) - 1; i >= 0; i-- { // newest first, as Heroku
				bk := all[i]
				rows = append(rows, []string{bk.ID, bk.Created.UTC().Format(backupTime), backupStatus(bk), humanBytes(bk.Size), bk.Database})
			}
			printTable(out, rows)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newPgBackupsCaptureCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "pg:backups:capture [DATABASE]",
		Short: "Back up a database with pg_dump (custom format) into the app's folder",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, at, err := toolApp(name, postgresService, firstArg(args))
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			m := addonsManagerFor(a.Home())
			conn, err := m.Postgres(ctx, at.Addon)
			if err != nil {
				return err
			}
			bk, err := addons.BackupsIn(a.Dir).Capture(ctx, conn, at.Name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Starting backup of %s... done\n\n", at.Addon)
			fmt.Fprintf(out, "Backing up %s to %s... done\n", at.Name, bk.ID)
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

// backupArg is the backup id names, or the latest completed one.
func backupArg(b addons.Backups, id string) (addons.Backup, error) {
	if id == "" {
		return b.Latest()
	}
	return b.Get(id)
}

func newPgBackupsRestoreCommand() *cobra.Command {
	var name, confirm string
	cmd := &cobra.Command{
		Use:   "pg:backups:restore [BACKUP] [DATABASE] --confirm APP",
		Short: "Restore a backup (default the latest) into a database of the app (default DATABASE), replacing what the backup holds",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id, db string
			switch {
			case len(args) == 2:
				id, db = args[0], args[1]
			case len(args) == 1:
				// One argument is the backup if it looks like one.
				if _, err := addons.ParseBackupID(args[0]); err == nil {
					id = args[0]
				} else {
					db = args[0]
				}
			}
			a, at, err := toolApp(name, postgresService, db)
			if err != nil {
				return err
			}
			b := addons.BackupsIn(a.Dir)
			bk, err := backupArg(b, id)
			if err != nil {
				return err
			}
			if confirm != a.Name {
				if confirm != "" {
					return fmt.Errorf("--confirm %s is not the app's name; restoring %s overwrites %s (%s) of ⬢ %s: re-run with --confirm %s", confirm, bk.ID, at.Name, at.Addon, a.Name, a.Name)
				}
				return fmt.Errorf("restoring %s overwrites %s (%s) of ⬢ %s; to proceed, re-run with --confirm %s", bk.ID, at.Name, at.Addon, a.Name, a.Name)
			}
			conn, err := connectPostgres(a, at)
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			if err := b.Restore(ctx, bk, conn); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Starting restore of %s to %s... done\n\n", bk.ID, at.Addon)
			fmt.Fprintln(out, "Restoring... done")
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&confirm, "confirm", "", "the app's name, to confirm")
	return cmd
}

func newPgBackupsInfoCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "pg:backups:info [BACKUP]",
		Short: "Describe a backup (default the latest)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			bk, err := backupArg(addons.BackupsIn(a.Dir), firstArg(args))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, newColors(cmd).header("Backup "+bk.ID))
			size := humanBytes(bk.Size)
			if bk.DBSize > 0 && bk.Size > 0 {
				// Rounded down: a dump is never shown as 100% compressed.
				size += fmt.Sprintf(" (%d%% compression)", max(0, 100-(bk.Size*100+bk.DBSize-1)/bk.DBSize))
			}
			finished := ""
			if !bk.Finished.IsZero() {
				finished = bk.Finished.UTC().Format(backupTime)
			}
			status := "Running"
			if bk.Status == addons.BackupCompleted {
				status = "Completed"
			}
			printAligned(out, [][2]string{
				{"Database", bk.Database},
				{"Add-on", bk.Addon},
				{"Started at", bk.Created.UTC().Format(backupTime)},
				{"Finished at", finished},
				{"Status", status},
				{"Type", "Manual"},
				{"Original DB Size", humanBytes(bk.DBSize)},
				{"Backup Size", size},
			})
			return nil
		},
	}
	appFlag(cmd, &name)
	return cmd
}

func newPgBackupsDeleteCommand() *cobra.Command {
	var name, confirm string
	cmd := &cobra.Command{
		Use:   "pg:backups:delete BACKUP --confirm APP",
		Short: "Delete a backup for good",
		Args:  exactArgs(1, "give the backup: dyno pg:backups:delete b001 -a APP --confirm APP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			b := addons.BackupsIn(a.Dir)
			if _, err := b.Get(args[0]); err != nil {
				return err
			}
			if confirm != a.Name {
				return fmt.Errorf("this deletes backup %s of ⬢ %s for good; to proceed, re-run with --confirm %s", args[0], a.Name, a.Name)
			}
			bk, err := b.Delete(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Deleting backup %s on %s... done\n", bk.ID, newColors(cmd).app(a.Name))
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVar(&confirm, "confirm", "", "the app's name, to confirm")
	return cmd
}

func newPgBackupsDownloadCommand() *cobra.Command {
	var name, output string
	cmd := &cobra.Command{
		Use:   "pg:backups:download [BACKUP]",
		Short: "Copy a backup's dump (default the latest) to a file, for pg_restore elsewhere",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			b := addons.BackupsIn(a.Dir)
			bk, err := backupArg(b, firstArg(args))
			if err != nil {
				return err
			}
			if bk.Status != addons.BackupCompleted {
				return fmt.Errorf("backup %s is still running; download it once dyno pg:backups says it completed", bk.ID)
			}
			src, err := os.Open(b.DumpPath(bk.ID))
			if err != nil {
				return err
			}
			defer src.Close()
			if output == "-" {
				_, err := io.Copy(cmd.OutOrStdout(), src)
				return err
			}
			if err := fsutil.WriteFrom(output, src, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Downloading %s to %s... done, %s\n", bk.ID, output, humanBytes(bk.Size))
			return nil
		},
	}
	appFlag(cmd, &name)
	cmd.Flags().StringVarP(&output, "output", "o", "latest.dump", "the file to write (- for stdout)")
	return cmd
}
