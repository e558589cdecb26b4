package main

import (
	"os"
	"os/user"
	"strings"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/spf13/cobra"
)

// addTopic registers Heroku's "topic:verb" commands, and "topic verb" as
// the same commands, under root. main is the topic's own command (dyno
// apps); each verb constructor makes a command whose Use starts with
// "topic:verb". Constructors are called twice: cobra gives each command
// one parent, and each copy needs its own flag variables.
func addTopic(root *cobra.Command, main func() *cobra.Command, verbs ...func() *cobra.Command) {
	topic := main()
	root.AddCommand(topic)
	// "dyno apps craete" is a mistyped verb, answered as one, where
	// the topic itself takes no such argument.
	if check := topic.Args; check != nil {
		topic.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err != nil && len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return err
		}
	}
	for _, v := range verbs {
		root.AddCommand(v())
		sub := v()
		sub.Use = strings.TrimPrefix(sub.Use, topic.Name()+":")
		sub.Aliases = nil
		topic.AddCommand(sub)
	}
}

// appFlag adds -a/--app to cmd. The app is also read from DYNO_APP.
func appFlag(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVarP(name, "app", "a", "", "the app (default $DYNO_APP)")
}

// home is $DYNO_HOME as an app.Home.
func home() (app.Home, error) {
	dir, err := dynoHome()
	if err != nil {
		return app.Home{}, err
	}
	return app.Home{Dir: dir}, nil
}

// openApp opens the app named by -a or DYNO_APP.
func openApp(name string) (*app.App, error) {
	if name == "" {
		name = os.Getenv("DYNO_APP")
	}
	h, err := home()
	if err != nil {
		return nil, err
	}
	return h.Open(name)
}

// openAppState opens the app named by -a or DYNO_APP and reads its
// state from the ledger.
func openAppState(name string) (*app.App, *ledger.State, error) {
	a, err := openApp(name)
	if err != nil {
		return nil, nil, err
	}
	s, err := a.Ledger.State()
	if err != nil {
		return nil, nil, err
	}
	return a, s, nil
}

// userName is who the ledger says made a change.
func userName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}
