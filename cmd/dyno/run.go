package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/attached"
	"github.com/dyno-run/dyno/supervisor/project"
	"github.com/dyno-run/dyno/supervisor/release"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

type runOptions struct {
	procfile    string
	envFiles    []string // -e without an app: env files; with one, see vars
	port        int
	isolate     isolateOptions
	app         string
	procfileSet bool
	detached    bool
	size        string
	exitCode    bool
	noTTY       bool
	dynoType    string
	typeSet     bool
	release     string   // with an app: "vN", or "" for the current release
	dyno        string   // with an app: the dyno's name, or "" for run.N
	vars        []string // -e with an app: KEY=VALUE for the dyno's env
	colors      colors
}

func newRunCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run COMMAND [ARGS...]",
		Short: "Run one command with a dyno's environment, attached to the terminal",
		Long: `Run runs one command in a one-off dyno (run.1) with the environment a dyno
gets (.env files, PORT, DYNO), attached to the terminal. When stdin is a
terminal the command gets its own PTY. A COMMAND that names a process type of
the Procfile runs that type's command with ARGS appended. The exit status is
the command's.

One argument is a shell command line ('echo $PORT'); several are words that
reach the command as they are (bash -c 'echo hi').

With -a APP (or DYNO_APP) it runs run.N of the app's current release, as
heroku run does: it says on stderr which run.N it started ("Running ... on
⬢ APP... up, run.N (SIZE)"), ps lists it while it runs and the app's logs
get its state lines. -e then takes variables ('A=1;B=2'), -s a dyno size,
--type the type ps shows. The exit status is the dyno's with or without -x
(heroku run exits 0 without -x; -x is accepted for the habit).

With -a, --release vN runs that release (one that succeeded and has code:
dyno releases -a APP lists them) instead of the current one, its slug with
its config vars, and --dyno NAME names the dyno, like web.2, instead of run.N:
DYNO is NAME and ps lists it so, its type NAME's. The units of
dyno export systemd run each dyno so: dyno run -a APP --release vN
--dyno web.2 -p PORT --no-tty web.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.procfileSet = cmd.Flags().Changed("procfile")
			o.typeSet = cmd.Flags().Changed("type")
			o.colors = newColors(cmd)
			return runRun(o, args)
		},
	}
	// Flags after COMMAND belong to it: `dyno run ls -la`.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&o.procfile, "procfile", "f", "Procfile", "the Procfile (optional); its folder is the working directory")
	// An array, not a slice flag: with -a a value's commas are its own.
	f.StringArrayVarP(&o.envFiles, "env", "e", nil, "env files, comma-separated (default .env beside the Procfile); with -a, variables for the dyno: 'A=1;B=2'")
	f.IntVarP(&o.port, "port", "p", 0, "PORT for the command (default PORT from the env files, else $PORT, else 5000)")
	// isolateOptions' flags, with heroku run's -s for the size.
	f.BoolVar(&o.isolate.on, "isolate", false, "run in a throwaway dyno: namespaces, /app an ephemeral overlay of the folder, no capabilities, cgroup limits")
	f.StringVarP(&o.isolate.size, "size", "s", "standard-1x", "dyno size with -a or --isolate: eco, basic, standard-1x, standard-2x, performance-m, performance-l, or one from dyno.toml")
	f.BoolVar(&o.isolate.requireLimits, "require-limits", false, "with --isolate, fail instead of running without cgroup v2 memory and pids limits (the cpu weight is not a limit)")
	appFlag(cmd, &o.app)
	f.BoolVar(&o.detached, "detached", false, "with -a: run in the background under the daemon, output to the app's logs (dyno logs -d run.N)")
	f.BoolVarP(&o.exitCode, "exit-code", "x", false, "exit with the dyno's status (dyno always does; kept for heroku run's habit)")
	f.BoolVar(&o.noTTY, "no-tty", false, "no terminal for the command, even when stdin is one")
	f.StringVar(&o.dynoType, "type", "run", "with -a: the process type dyno ps shows for the one-off")
	f.StringVar(&o.release, "release", "", "with -a: the release to run, like v12 (default: the current one)")
	f.StringVar(&o.dyno, "dyno", "", "with -a: the dyno's name, like web.2 (default: run.N); its type is the name's")
	return cmd
}

func runRun(o runOptions, args []string) error {
	onApp := useApp(o.app, o.procfile, o.procfileSet)
	if onApp {
		if o.app == "" {
			o.app = os.Getenv("DYNO_APP")
		}
		// -e is heroku run's variables here, heroku local:run's env
		// files otherwise.
		vars, err := parseVars(o.envFiles)
		if err != nil {
			return err
		}
		o.vars, o.envFiles = vars, nil
		o.isolate.size = strings.ToLower(o.isolate.size)
		if o.dynoType == "" || !slug.ValidProcessType(o.dynoType) {
			return fmt.Errorf("--type %q: a process type is letters, digits, _ and -, like run or worker", o.dynoType)
		}
		if o.dyno != "" {
			t, ok := dynoNameType(o.dyno)
			switch {
			case !ok:
				return fmt.Errorf("--dyno %q: a dyno's name is its process type and a number from 1, like web.2", o.dyno)
			case o.typeSet && o.dynoType != t:
				return fmt.Errorf("--dyno %s with --type %s: a dyno's type is its name's; drop --type", o.dyno, o.dynoType)
			}
			o.dynoType = t
		}
		if o.release != "" {
			if _, err := parseVersion(o.release); err != nil {
				return fmt.Errorf("--release %w", err)
			}
		}
	} else {
		o.envFiles = splitEnvFiles(o.envFiles)
		if o.release != "" || o.dyno != "" {
			return fmt.Errorf("--release and --dyno name an app's release and dyno: give the app with -a APP")
		}
	}
	if o.detached {
		if o.release != "" || o.dyno != "" {
			return fmt.Errorf("--release and --dyno with --detached: the daemon's one-offs run the current release as run.N; run attached")
		}
		if len(o.vars) > 0 {
			return fmt.Errorf("-e with --detached: the daemon's one-offs take the app's config vars only; set them with dyno config:set, or run attached")
		}
		return runDetached(o, args)
	}
	spawner, err := newSpawner()
	if err != nil {
		return err
	}
	var spec isolate.Spec
	var cleanup func()
	var run *attached.Run
	if onApp {
		spec, cleanup, err = appOneOff(o, args, spawner)
		if err == nil {
			if run, err = beginAttached(o, spec, args); err != nil {
				cleanup()
			}
		}
	} else {
		spec, cleanup, err = folderOneOff(o, args, spawner)
	}
	if err != nil {
		return err
	}
	defer cleanup()
	if run != nil {
		defer run.Close()
	}
	start := func(spec isolate.Spec) (*isolate.Dyno, error) {
		d, err := spawner.Start(spec)
		if run != nil {
			if err != nil {
				warnLog(run.Failed())
				return nil, err
			}
			// One write, so that the command's first output, on the
			// same terminal or pipe, cannot land inside the line.
			fmt.Fprintf(os.Stderr, "Running `%s` on %s... up, %s (%s)\n", commandLine(args), o.colors.app(o.app), spec.Name, app.SizeName(o.isolate.size))
			warnLog(run.Up())
		}
		return d, err
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	defer signal.Stop(sigs)

	tty := !o.noTTY && term.IsTerminal(int(os.Stdin.Fd()))
	var attach *isolate.Attachment
	if tty && spec.Sandbox != nil {
		// The terminal is made inside the dyno, from its own devpts, so
		// the command cannot reach the user's terminal (TIOCSTI).
		if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
			spec.Rows, spec.Cols = ws.Row, ws.Col
		}
		spec.TTY = true
		d, err := start(spec)
		if err != nil {
			return err
		}
		warn(d)
		if attach, err = isolate.Attach(d.PTY(), os.Stdin, os.Stdout); err != nil {
			d.Kill()
			d.Wait()
			return err
		}
		defer attach.Restore()
		return waitOneOff(d, sigs, attach, run)
	}
	if tty {
		master, slave, err := isolate.OpenPTY()
		if err != nil {
			return err
		}
		defer master.Close()
		// Size and raw mode first, so the command sees the right size
		// from its first instruction.
		if attach, err = isolate.Attach(master, os.Stdin, os.Stdout); err != nil {
			slave.Close()
			return err
		}
		defer attach.Restore()
		spec.Stdin, spec.Stdout, spec.Stderr, spec.TTY = slave, slave, slave, true
		d, err := start(spec)
		slave.Close()
		if err != nil {
			return err
		}
		return waitOneOff(d, sigs, attach, run)
	}
	spec.Stdin, spec.Stdout, spec.Stderr = os.Stdin, os.Stdout, os.Stderr
	d, err := start(spec)
	if err != nil {
		return err
	}
	warn(d)
	return waitOneOff(d, sigs, nil, run)
}

// beginAttached makes an app's attached one-off visible: in ps, through
// its entry in the app's folder, and in the app's logs, its state lines.
func beginAttached(o runOptions, spec isolate.Spec, args []string) (*attached.Run, error) {
	a, err := openApp(o.app)
	if err != nil {
		return nil, err
	}
	command := commandLine(args)
	// Its pid is this process's: ps:stop signals it, and it passes the
	// signal on to the dyno and logs the end.
	st := supervisor.DynoStatus{Name: spec.Name, Type: o.dynoType, Command: command, Size: o.isolate.size, Pid: os.Getpid()}
	run, err := attached.Begin(a.Dir, a.LogsDir(), st, userName())
	if err != nil {
		return nil, err
	}
	return run, nil
}

// warnLog says on stderr that a one-off's entry or state lines could
// not be written; the dyno runs on regardless.
func warnLog(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "dyno: "+err.Error())
	}
}

// parseVars reads heroku run's -e: 'A=1;B=2', as often as given.
func parseVars(values []string) ([]string, error) {
	var vars []string
	for _, v := range values {
		for _, kv := range strings.Split(v, ";") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, _, ok := strings.Cut(kv, "=")
			if !ok || !isolate.ValidEnvName(k) {
				return nil, fmt.Errorf("-e %q: with -a, -e takes variables: -e 'A=1;B=2'", v)
			}
			vars = append(vars, kv)
		}
	}
	return vars, nil
}

// splitEnvFiles reads heroku local:run's -e: env files, comma-separated,
// as often as given.
func splitEnvFiles(values []string) []string {
	var files []string
	for _, v := range values {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				files = append(files, f)
			}
		}
	}
	return files
}

// varsMap is -e's variables by name, the last of two with one name
// winning.
func varsMap(vars []string) map[string]string {
	m := make(map[string]string, len(vars))
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// waitOneOff forwards signals that reach dyno to every process of the
// one-off dyno and returns its status. On a PTY, Ctrl-C never gets here:
// it is a byte the PTY turns into SIGINT for the command.
func waitOneOff(d *isolate.Dyno, sigs <-chan os.Signal, attach *isolate.Attachment, run *attached.Run) error {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				d.Signal(s.(unix.Signal))
			case <-done:
				return
			}
		}
	}()
	status, err := d.Wait()
	close(done)
	d.Spawner().Close()
	if attach != nil {
		// Output still in the PTY comes before the prompt returns.
		select {
		case <-attach.Done():
		case <-time.After(time.Second):
		}
		attach.Restore()
	}
	if err != nil {
		return err
	}
	if run != nil {
		warnLog(run.Exited(status))
	}
	if status != 0 {
		return exitStatus(status)
	}
	return nil
}

// folderOneOff is run.1 with the folder's environment: a plain process
// tree, or a throwaway dyno over the folder with --isolate.
func folderOneOff(o runOptions, args []string, spawner *isolate.Spawner) (isolate.Spec, func(), error) {
	none := func() {}
	proj, err := project.Load(project.Options{
		Procfile:         o.procfile,
		ProcfileOptional: true,
		EnvFiles:         o.envFiles,
		Port:             o.port,
		Environ:          os.Environ(),
		OnSkip:           warnSkipped,
	})
	if err != nil {
		return isolate.Spec{}, none, err
	}
	command := commandLine(args)
	if proj.Procfile != nil {
		if t, ok := proj.Procfile.Lookup(args[0]); ok {
			command = strings.TrimSpace(t.Command + " " + commandLine(args[1:]))
		}
	}
	const name = "run.1"
	spec := isolate.Spec{Name: name, Argv: isolate.ShellArgv(command), Dir: proj.Dir, Env: proj.OneOffEnv(name)}
	if !o.isolate.on {
		return spec, none, nil
	}
	stateDir, err := localStateDir(proj.Dir)
	if err != nil {
		return spec, none, err
	}
	r, err := isolatedRunner(spawner, proj.Dir, stateDir, o.isolate, false)
	if err != nil {
		return spec, none, err
	}
	sb, leaf, err := r.NewSandbox(name)
	if err != nil {
		return spec, none, err
	}
	spec.Dir = "/app"
	spec.Env = supervisor.SandboxEnv(spec.Env)
	spec.Sandbox = sb
	return spec, func() { supervisor.RemoveLeaf(leaf) }, nil
}

// appOneOff is run.N of an app's current release: a throwaway dyno on its
// slug, with its config vars, the command run after .profile.d, as
// `heroku run` does. A first argument naming a process type runs that
// type's command with the rest appended.
func appOneOff(o runOptions, args []string, spawner *isolate.Spawner) (isolate.Spec, func(), error) {
	none := func() {}
	a, s, err := openAppState(o.app)
	if err != nil {
		return isolate.Spec{}, none, err
	}
	rel, err := runRelease(a, s, o.release)
	if err != nil {
		return isolate.Spec{}, none, err
	}
	hold, err := a.Home().Slugs().Acquire(rel.Slug)
	if err != nil {
		return isolate.Spec{}, none, err
	}
	port, err := basePort(o.port)
	if err != nil {
		hold.Close()
		return isolate.Spec{}, none, err
	}
	o.isolate.on = true
	r, err := appRunner(spawner, a, rel.Slug, o.isolate, false, false)
	if err != nil {
		hold.Close()
		return isolate.Spec{}, none, err
	}
	c := release.OneOff(rel, commandLine(args), o.isolate.size, release.Options{BasePort: port, Env: varsMap(o.vars), Name: o.dyno})
	spec, remove, err := attached.Spec(r, c)
	if err != nil {
		hold.Close()
		return isolate.Spec{}, none, err
	}
	return spec, func() {
		remove()
		hold.Close()
	}, nil
}

// runRelease is the release dyno run -a runs: the current one, or
// version (--release vN) when it succeeded and has code.
func runRelease(a *app.App, st *ledger.State, version string) (*ledger.Release, error) {
	if version == "" {
		return release.Current(a.Name, st)
	}
	v, err := parseVersion(version)
	if err != nil {
		return nil, fmt.Errorf("--release %w", err)
	}
	rel, err := a.Ledger.Release(v)
	switch {
	case errors.Is(err, ledger.ErrNoRelease):
		return nil, fmt.Errorf("--release %s: %s has no v%d; dyno releases -a %s lists its releases", version, a.Name, v, a.Name)
	case err != nil:
		return nil, fmt.Errorf("--release %s: %w", version, err)
	case rel.Status != ledger.StatusSucceeded:
		return nil, fmt.Errorf("--release %s: v%d is %s, not a release that ran; pick one dyno releases -a %s lists as succeeded", version, v, rel.Status, a.Name)
	case rel.Slug == "":
		return nil, fmt.Errorf("--release %s: v%d has no code; pick one dyno releases -a %s lists with a deploy", version, v, a.Name)
	}
	return rel, nil
}

// dynoNameType returns the process type of a formation dyno's name,
// TYPE.N with N from 1, as the daemon names them; ok is false for
// anything else.
func dynoNameType(name string) (typ string, ok bool) {
	t, n, ok := strings.Cut(name, ".")
	if !ok || !slug.ValidProcessType(t) {
		return "", false
	}
	i, err := strconv.Atoi(n)
	if err != nil || i < 1 || strconv.Itoa(i) != n {
		return "", false
	}
	return t, true
}

// runDetached asks the daemon for a one-off run.N of the app's current
// release whose output goes to the app's logs; ps lists it, ps:stop ends it.
func runDetached(o runOptions, args []string) error {
	if !useApp(o.app, o.procfile, o.procfileSet) {
		return fmt.Errorf("--detached runs under the daemon: give the app with -a APP")
	}
	a, err := openApp(o.app)
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	command := commandLine(args)
	var d struct {
		Name string `json:"name"`
	}
	body := map[string]any{"command": command, "attach": false, "size": o.isolate.size}
	if err := c.Do(context.Background(), http.MethodPost, "/apps/"+a.Name+"/dynos", body, &d); err != nil {
		return err
	}
	fmt.Printf("Running `%s` on ⬢ %s... up, %s\n", command, a.Name, d.Name)
	fmt.Printf("Run `dyno logs -a %s -d %s` to view the output.\n", a.Name, d.Name)
	return nil
}

// warn says on stderr what the dyno's start fell back on.
func warn(d *isolate.Dyno) {
	for _, w := range d.Warnings() {
		fmt.Fprintln(os.Stderr, "dyno: "+w)
	}
}

// commandLine turns dyno run's arguments into a shell command line: one
// argument is taken as a command line as written; several are quoted so
// each reaches the command as one word.
func commandLine(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
