package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor/logstore"
	"github.com/spf13/cobra"
)

func newLogsCommand() *cobra.Command {
	var name, ps, dyno, source string
	var n int
	var tail, asJSON bool
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show the app's logs: its dynos' output, the dyno manager's lines and API events",
		Long: `Logs prints the app's last lines in Logplex's format, read from
$DYNO_HOME/apps/<app>/logs without the daemon; --tail then follows the lines
stored after them: the dynos' output and the dyno manager's lines, which the
daemon writes, and the API events and attached one-offs' lines, which the
commands write themselves. The tail goes on while the daemon is stopped,
says so, and shows the dynos' lines again, none twice, when it is back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(name)
			if err != nil {
				return err
			}
			if n < 1 || n > 1500 {
				return fmt.Errorf("-n %d: give 1 to 1500 lines, as Heroku keeps", n)
			}
			if ps != "" && dyno != "" {
				return fmt.Errorf("give -p TYPE or -d DYNO, not both")
			}
			if source != "" && source != "app" && source != "heroku" {
				return fmt.Errorf("--source %q: use app or heroku", source)
			}
			f := logstore.Filter{Dyno: ps + dyno, Source: source}
			return printLogs(cmd, a.LogsDir(), f, n, tail, asJSON, "the dynos' lines")
		},
	}
	appFlag(cmd, &name)
	f := cmd.Flags()
	f.IntVarP(&n, "num", "n", 100, "how many lines to show")
	f.BoolVarP(&tail, "tail", "t", false, "follow new lines as they come")
	f.StringVarP(&ps, "process-type", "p", "", "only this process type's dynos (web) or this dyno (web.1)")
	f.StringVarP(&dyno, "dyno-name", "d", "", "only this dyno (web.1)")
	f.StringVarP(&source, "source", "s", "", "only app or heroku lines")
	// --ps and --dyno are the Heroku CLI's older names, kept working.
	f.StringVar(&ps, "ps", "", "same as --process-type")
	f.StringVar(&dyno, "dyno", "", "same as --dyno-name")
	f.MarkHidden("ps")
	f.MarkHidden("dyno")
	f.BoolVar(&asJSON, "json", false, "print JSON, one object per line")
	return cmd
}

// printLogs prints the last n lines of the log store in dir that f
// passes, in Logplex's format or as JSON, and with tail goes on with
// the lines stored after them (tailLogs), the daemon's being what
// names.
func printLogs(cmd *cobra.Command, dir string, f logstore.Filter, n int, tail, asJSON bool, daemons string) error {
	out := &logWriter{c: newColors(cmd), w: cmd.OutOrStdout()}
	defer out.Flush()
	enc := json.NewEncoder(cmd.OutOrStdout())
	show := func(lines []logstore.Line) {
		for _, l := range lines {
			if asJSON {
				enc.Encode(map[string]string{"time": l.Time.Format(time.RFC3339Nano), "source": l.Source, "dyno": l.Dyno, "message": l.Text})
				continue
			}
			fmt.Fprintf(out, "%s\n", l.Raw)
		}
	}
	if !tail {
		lines, err := logstore.Read(dir, f, n)
		if err != nil {
			return err
		}
		show(lines)
		return nil
	}
	return tailLogs(cmd.Context(), dir, f, n, show, cmd.ErrOrStderr(), daemons)
}

// apiLog records an API event in the app's logs, as Logplex's app[api]
// lines: "Set FOO config vars by user ann". It works with the daemon
// running or not: the lines are appended to the app's log file in one
// write.
func apiLog(a *app.App, events ...string) {
	texts := make([]string, len(events))
	for i, e := range events {
		texts[i] = e + " by user " + userName()
	}
	logstore.AppendLines(a.LogsDir(), "app", "api", time.Now(), texts...)
}

// tailPoll is how often a tail looks for new lines, and daemonPoll how
// often it looks whether the daemon runs.
const (
	tailPoll   = 100 * time.Millisecond
	daemonPoll = 500 * time.Millisecond
)

// tailLogs prints the last n lines of the app's stored logs and then the
// lines stored after them until ctx ends, reading the files with a cursor
// rather than through the daemon: every line written by any process
// reaches the tail once, with or without a daemon. Whether the daemon
// runs is only told on w, one line when that changes; daemons names the
// lines only the daemon writes ("the dynos' lines").
func tailLogs(ctx context.Context, dir string, f logstore.Filter, n int, show func([]logstore.Line), w io.Writer, daemons string) error {
	hist, cur, err := logstore.Follow(dir, f, n)
	if err != nil {
		return err
	}
	defer cur.Close()
	show(hist)
	c, err := client()
	if err != nil {
		return err
	}
	running := c.Running(ctx)
	if !running {
		fmt.Fprintf(w, "dyno: the daemon is not running: the tail shows %s once it runs (start it with %s)\n", daemons, daemonStartCommand())
	}
	poll := time.NewTicker(tailPoll)
	defer poll.Stop()
	lastLook := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
		lines, err := cur.Next()
		show(lines)
		if err != nil {
			return err
		}
		if time.Since(lastLook) < daemonPoll {
			continue
		}
		lastLook = time.Now()
		now := c.Running(ctx)
		switch {
		case running && !now:
			fmt.Fprintf(w, "dyno: the daemon stopped; the tail goes on and shows %s again when it is back (start it with %s)\n", daemons, daemonStartCommand())
		case !running && now:
			fmt.Fprintln(w, "dyno: the daemon is running")
		}
		running = now
	}
}
