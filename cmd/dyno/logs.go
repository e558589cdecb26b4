package main

import (
	"encoding/json"
	"fmt"
	"net/http"

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
$DYNO_HOME/apps/<app>/logs without the daemon; --tail then follows new lines
through the daemon. A tail that cannot keep up loses lines (Error L11), it
never slows the dynos.`,
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
			out := &logWriter{c: newColors(cmd), w: cmd.OutOrStdout()}
			defer out.Flush()
			if !tail {
				lines, err := logstore.Read(a.LogsDir(), f, n)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, l := range lines {
					if asJSON {
						enc.Encode(map[string]string{"time": l.Time.Format(time.RFC3339Nano), "source": l.Source, "dyno": l.Dyno, "message": l.Text})
						continue
					}
					fmt.Fprintf(out, "%s\n", l.Raw)
				}
				return nil
			}
			c, err := client()
			if err != nil {
				return err
			}
			var session struct {
				URL string `json:"logplex_url"`
			}
			body := map[string]any{"dyno": f.Dyno, "source": source, "tail": true, "lines": n}
			if err := c.Do(cmd.Context(), http.MethodPost, "/apps/"+a.Name+"/log-sessions", body, &session); err != nil {
				return fmt.Errorf("--tail follows the logs through the daemon: %w", err)
			}
			return c.Stream(cmd.Context(), session.URL, out)
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
