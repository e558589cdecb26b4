package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The long and short flags Heroku's CLI takes for ps:restart, ps:stop,
// ps:kill, logs and run, on every one of them.
func TestHerokuLongFlags(t *testing.T) {
	t.Parallel()
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

func TestVars(t *testing.T) {
	t.Parallel()
	if got := varsMap([]string{"A=1", "B=2", "A=3"}); len(got) != 2 || got["A"] != "3" || got["B"] != "2" {
		t.Errorf("varsMap: %q; want A=3 and B=2", got)
	}
	vars, err := parseVars([]string{"A=1;B=x=y; ;C=", "D=4"})
	if err != nil || strings.Join(vars, "|") != "A=1|B=x=y|C=|D=4" {
		t.Errorf("parseVars: %q, %v", vars, err)
	}
	for _, bad := range []string{"A", "1A=2", "A B=1", "=1"} {
		if _, err := parseVars([]string{bad}); err == nil {
			t.Errorf("parseVars(%q) took it", bad)
		}
	}
}
