package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/dyno-run/dyno/internal/memtrim"
	"github.com/dyno-run/dyno/isolate"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/supervisor"
	"github.com/dyno-run/dyno/supervisor/daemon"
	"github.com/dyno-run/dyno/supervisor/logmux"
	"github.com/dyno-run/dyno/supervisor/project"
	"github.com/dyno-run/dyno/supervisor/release"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
)

type startOptions struct {
	procfile    string
	envFiles    []string
	formation   string
	port        int
	stopTimeout secondsValue
	bootTimeout secondsValue
	backoffCap  secondsValue
	exitOnCrash bool
	noRestart   bool
	noColor     bool
	noTimestamp bool
	logFormat   string
	isolate     isolateOptions
	app         string
	procfileSet bool
}

// isolateOptions are the flags of start and run that shape dynos.
type isolateOptions struct {
	on            bool
	size          string
	requireLimits bool
}

func (o *isolateOptions) addFlags(f *pflag.FlagSet, what string) {
	f.BoolVar(&o.on, "isolate", false, what)
	f.StringVar(&o.size, "size", "standard-1x", "dyno size for --isolate: eco, basic, standard-1x, standard-2x, performance-m, performance-l, or one from dyno.toml")
	f.BoolVar(&o.requireLimits, "require-limits", false, "with --isolate, fail instead of running without cgroup v2 memory and pids limits (the cpu weight is not a limit)")
}

func newStartCommand() *cobra.Command {
	o := startOptions{
		stopTimeout: secondsValue(30 * time.Second),
		bootTimeout: secondsValue(60 * time.Second),
		backoffCap:  secondsValue(supervisor.DevRestartPolicy.Max),
	}
	cmd := &cobra.Command{
		Use:   "start [PROCESS...]",
		Short: "Run the Procfile's formation in the foreground",
		Long: `Start runs every process type of the Procfile (or only those named) at its
formation, with Heroku's dyno manager: PORT per process, prefixed logs, crash
restarts with back-off, and on Ctrl-C a stop with SIGTERM to every process,
then SIGKILL after the timeout. A second Ctrl-C kills at once.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.procfileSet = cmd.Flags().Changed("procfile")
			return runStart(o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.procfile, "procfile", "f", "Procfile", "the Procfile; its folder is the working directory")
	f.StringSliceVarP(&o.envFiles, "env", "e", nil, "env files, comma-separated (default .env beside the Procfile)")
	f.StringVarP(&o.formation, "formation", "m", "", `how many of each type, like "web=2,worker=1"; types not named run none unless "all=N" (default: one of each)`)
	f.IntVarP(&o.port, "port", "p", 0, "base port (default PORT from the env files, else $PORT, else 5000)")
	f.VarP(&o.stopTimeout, "timeout", "t", "seconds between SIGTERM and SIGKILL when stopping")
	f.Var(&o.bootTimeout, "boot-timeout", "seconds a web process has to listen on $PORT (R10)")
	f.Var(&o.backoffCap, "backoff-cap", "longest wait before restarting a crashed process")
	f.BoolVar(&o.exitOnCrash, "exit-on-crash", false, "stop everything when any process exits and exit with its status (Foreman's behaviour)")
	f.BoolVar(&o.noRestart, "no-restart", false, "leave exited processes crashed; exit once all have exited")
	f.BoolVar(&o.noColor, "no-color", false, "no colours even on a terminal (also NO_COLOR)")
	f.BoolVar(&o.noTimestamp, "no-timestamp", false, "leave the time out of log lines")
	f.StringVar(&o.logFormat, "log-format", "terminal", `"terminal" or "logplex" (Heroku's log line format)`)
	o.isolate.addFlags(f, "run each process in its own dyno: namespaces, /app an ephemeral overlay of the project folder, no capabilities, cgroup limits")
	appFlag(cmd, &o.app)
	return cmd
}

// folderPlan runs a project folder's Procfile: plain process trees, or
// isolated dynos over the folder with --isolate.
func folderPlan(o startOptions, only []string, spawner *isolate.Spawner) (*startPlan, error) {
	proj, err := project.Load(project.Options{
		Procfile:  o.procfile,
		EnvFiles:  o.envFiles,
		Formation: o.formation,
		Port:      o.port,
		Only:      only,
		Environ:   os.Environ(),
		OnSkip:    warnSkipped,
	})
	if err != nil {
		return nil, err
	}
	plan := &startPlan{types: proj.Procfile.Names(), spawner: spawner, cleanup: spawner.Close,
		runner: supervisor.PlainRunner{Spawner: spawner}}
	var quota int64
	if o.isolate.on {
		stateDir, err := localStateDir(proj.Dir)
		if err != nil {
			return nil, err
		}
		r, err := isolatedRunner(spawner, proj.Dir, stateDir, o.isolate, true)
		if err != nil {
			return nil, err
		}
		if r.Cgroups != nil {
			quota = r.Size.Memory
		}
		plan.runner = r
		// Keep an init started ahead: restarts and the formation's
		// next dynos skip its clone, exec and runtime start-up.
		spawner.SetPrewarm(true)
		spawner.WarmUp(r.StateDir, nil)
	}
	for _, d := range proj.Dynos {
		env := d.Env
		if o.isolate.on {
			env = supervisor.SandboxEnv(env)
		}
		plan.formation = append(plan.formation, supervisor.DynoConfig{
			Name: d.Name, Type: d.Type, Command: d.Command, Dir: proj.Dir,
			Env: env, Port: d.Port, Web: d.Type == "web", MemoryQuota: quota,
		})
	}
	return plan, nil
}

// startPlan is what dyno start runs: the formation's dynos, how they
// run, and what to release when it ends.
type startPlan struct {
	formation []supervisor.DynoConfig
	types     []string // process types in port order, for colours
	runner    supervisor.Runner
	spawner   *isolate.Spawner
	cleanup   func()
	// follow, when set, keeps the dynos at what a ledger says while
	// they run, until its context is done (dyno start -a).
	follow func(ctx context.Context, m *supervisor.Manager, logs *logmux.Mux)
}

func runStart(o startOptions, only []string) error {
	format, err := logmux.ParseFormat(o.logFormat)
	if err != nil {
		return err
	}
	spawner, err := newSpawner()
	if err != nil {
		return err
	}
	var plan *startPlan
	if useApp(o.app, o.procfile, o.procfileSet) {
		plan, err = appPlan(o, only, spawner)
	} else {
		plan, err = folderPlan(o, only, spawner)
	}
	if err != nil {
		spawner.Close()
		return err
	}
	defer plan.cleanup()
	formation := plan.formation
	names := make([]string, len(formation))
	for i, d := range formation {
		names[i] = d.Name
	}
	logs := logmux.New(os.Stdout, logmux.Options{
		Format:    format,
		Color:     useColor(o.noColor),
		Timestamp: !o.noTimestamp,
		Types:     plan.types,
		Names:     names,
	})
	runner := plan.runner
	policy := supervisor.DevRestartPolicy
	policy.Max = time.Duration(o.backoffCap)
	policy.Never = o.noRestart
	// Once the dynos have started (and after each later burst of
	// changes), dyno start gives back the pages start-up mapped.
	trimmer := memtrim.NewTrimmer(memtrim.QuietPeriod)
	trimCtx, stopTrim := context.WithCancel(context.Background())
	defer stopTrim()
	go trimmer.Run(trimCtx, nil)
	m := supervisor.New(supervisor.Options{
		Runner:      runner,
		Logs:        logs,
		StopTimeout: time.Duration(o.stopTimeout),
		BootTimeout: time.Duration(o.bootTimeout),
		Restart:     policy,
		ExitOnCrash: o.exitOnCrash,
		OnChange:    trimmer.Kick,
	}, formation)

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		<-sigs
		m.Stop()
		first := time.Now()
		for s := range sigs {
			// timeout(1) and some shells deliver one interrupt twice, to
			// the process and to its group; a person's second Ctrl-C
			// comes later than that.
			if time.Since(first) < 200*time.Millisecond && s == unix.SIGINT {
				continue
			}
			m.Kill()
			return
		}
	}()
	if plan.follow != nil {
		ctx, cancel := context.WithCancel(context.Background())
		followed := make(chan struct{})
		go func() {
			defer close(followed)
			plan.follow(ctx, m, logs)
		}()
		// Before plan.cleanup lets go of what the dynos ran on.
		defer func() {
			cancel()
			<-followed
		}()
	}
	status, err := m.Run()
	if err != nil {
		return err
	}
	if status != 0 {
		return exitStatus(status)
	}
	return nil
}

// isolatedRunner returns a runner that puts each dyno in a sandbox over
// dir (supervisor.NewIsolatedRunner), with this home's sizes; with
// probe, what the host withholds is said on stderr.
func isolatedRunner(spawner *isolate.Spawner, dir, stateDir string, o isolateOptions, probe bool) (supervisor.IsolatedRunner, error) {
	home, err := dynoHome()
	if err != nil {
		return supervisor.IsolatedRunner{}, err
	}
	return supervisor.NewIsolatedRunner(spawner, supervisor.IsolationConfig{
		Lower:         dir,
		StateDir:      stateDir,
		ProbeDir:      filepath.Join(home, "dynos"),
		SizesFile:     filepath.Join(home, "dyno.toml"),
		Size:          o.size,
		Probe:         probe,
		RequireLimits: o.requireLimits,
		Warn:          os.Stderr,
	})
}

// appRunner is isolatedRunner for an app's dynos over its release's
// slug digest, unpacked once (app.App.Lower): with the user's
// subordinate ids, they run as the app's own slice of host ids over the
// app's own copy of the slug; without, over the store's shared one, and
// warn says why on stderr. The caller holds the slug (Acquire).
func appRunner(spawner *isolate.Spawner, a *app.App, digest string, o isolateOptions, probe, warn bool) (supervisor.IsolatedRunner, error) {
	ids, warning, err := supervisor.AppIDs(a.Home().Dir, a.Name, a.Home().Holds)
	if err != nil {
		return supervisor.IsolatedRunner{}, err
	}
	if digest == "" {
		return supervisor.IsolatedRunner{}, release.NoCode(a.Name)
	}
	lower, err := a.Lower(digest, ids)
	if err != nil {
		return supervisor.IsolatedRunner{}, err
	}
	r, err := isolatedRunner(spawner, lower, a.DynosDir(), o, probe)
	if err != nil {
		return r, err
	}
	if warning != "" && warn {
		fmt.Fprintln(os.Stderr, "dyno: "+warning)
	}
	r.IDs = ids
	return r, nil
}

// newSpawner is the spawner of this process's dynos, which never see
// this home nor the daemon's socket, even when a project folder holds
// them.
func newSpawner() (*isolate.Spawner, error) {
	spawner, err := isolate.NewSpawner()
	if err != nil {
		return nil, err
	}
	// No home: nothing to hide, and plain process trees need none (an
	// isolated dyno fails later, saying so).
	if home, err := dynoHome(); err == nil {
		if err := spawner.Hide(daemon.PrivatePaths(home, daemon.SocketPath(home, os.Environ()))...); err != nil {
			return nil, err
		}
	}
	return spawner, nil
}

// localStateDir is where a project folder's isolated dynos keep their
// directories: $DYNO_HOME/dynos/<folder name>.
func localStateDir(dir string) (string, error) {
	home, err := dynoHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "dynos", localAppName(dir)), nil
}
