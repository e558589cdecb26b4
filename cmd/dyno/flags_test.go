package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// The long and short flags Heroku's CLI takes for ps:restart, ps:stop,
// ps:kill, logs and run, on every one of them.
func TestHerokuLongFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd   *cobra.Command
		flags map[string]string // long name: shorthand
	}{
		{newPsRestartCommand(), map[string]string{"app": "a", "process-type": "p", "dyno-name": "d"}},
		{newPsStopCommand(), map[string]string{"app": "a", "process-type": "p", "dyno-name": "d"}},
		{newPsKillCommand(), map[string]string{"app": "a", "process-type": "p", "dyno-name": "d"}},
		{newLogsCommand(), map[string]string{"app": "a", "process-type": "p", "dyno-name": "d", "source": "s", "num": "n", "tail": "t"}},
		{newRunCommand(), map[string]string{"app": "a", "env": "e", "exit-code": "x", "size": "s", "no-tty": "", "type": "", "detached": ""}},
	} {
		for long, short := range tc.flags {
			f := tc.cmd.Flags().Lookup(long)
			if f == nil {
				t.Errorf("%s has no --%s", tc.cmd.Name(), long)
				continue
			}
			if f.Shorthand != short {
				t.Errorf("%s --%s: shorthand %q; want %q", tc.cmd.Name(), long, f.Shorthand, short)
			}
			if short != "" && tc.cmd.Flags().ShorthandLookup(short) != f {
				t.Errorf("%s -%s is not --%s", tc.cmd.Name(), short, long)
			}
		}
	}
}
