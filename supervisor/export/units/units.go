// Package units writes one release of an app as systemd units that run
// its dynos on this machine, as `foreman export systemd` writes a
// Procfile's processes, but with systemd in the daemon's place: each
// instance runs one isolated dyno in the foreground through
// `dyno run -a APP --release vN --dyno TYPE.N`, which exits with the
// dyno's status, and systemd restarts it, stops it and bounds it.
//
// The units are:
//
//   - APP.target, which wants every instance of the formation and is
//     what the administrator enables;
//   - APP-TYPE@.service per process type, a template (systemd.service(5),
//     "Service Templates") whose instance name is the dyno's number, so
//     APP-web@2.service runs web.2;
//   - APP-TYPE@N.service.d/dyno.conf per instance, a drop-in giving it
//     its PORT, as `dyno start` numbers ports.
//
// The release's config vars are in none of them: unit files are
// world-readable, and dyno run reads the pinned release's config vars
// from the app's ledger under DYNO_HOME, as it does for any one-off.
//
// This package writes units of an exported app; supervisor/systemd is
// the daemon's own unit, whose quoting and atomic writes it shares.
package units

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/supervisor/export"
	"github.com/dyno-run/dyno/supervisor/project"
	"github.com/dyno-run/dyno/supervisor/systemd"
)

// Options say how the units run dyno.
type Options struct {
	// Binary is the absolute path of the dyno binary (os.Executable at
	// export time); systemd runs no command by a relative path.
	Binary string
	// Home is the DYNO_HOME that holds the app, absolute: dyno run reads
	// the release and its config vars there.
	Home string
	// User is the user the dynos run as (systemd.exec(5), User=): the
	// owner of Home, with whose subordinate ids dyno maps each dyno's.
	User string
}

// A File is one file of the export.
type File struct {
	// Name is its path under the output directory, slash-separated,
	// as it goes under /etc/systemd/system: APP.target,
	// APP-web@.service, APP-web@1.service.d/dyno.conf.
	Name string
	Data []byte
}

// Target is the name of the unit that starts and stops all of p's dynos.
func Target(p *export.Plan) string { return p.App + ".target" }

// Units returns the files that run p's dynos under systemd: the target,
// then per process type (p.Types order) its template and its instances'
// drop-ins. The same plan and options give the same bytes.
func Units(p *export.Plan, o Options) ([]File, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	switch {
	case !filepath.IsAbs(o.Binary):
		return nil, fmt.Errorf("systemd units: the dyno binary %q is not an absolute path", o.Binary)
	case !filepath.IsAbs(o.Home):
		return nil, fmt.Errorf("systemd units: DYNO_HOME %q is not an absolute path", o.Home)
	case o.User == "":
		return nil, errors.New("systemd units: no user to run the dynos as")
	}
	// Every word of ExecStart= but the program goes through systemd's
	// variable expansion ($PORT) and its specifiers (%i), so none of
	// the names may hold '$' or '%'; nor blanks, which would split them.
	// App names and process types never do; a size from dyno.toml might.
	words := []string{p.App}
	for _, t := range p.Types() {
		words = append(words, t, p.Size(t).Name)
	}
	for _, w := range words {
		if !plainWord(w) {
			return nil, fmt.Errorf("systemd units: %q cannot be a word of a unit's command line; name it with letters, digits, '.', '_' and '-'", w)
		}
	}

	files := []File{{Name: Target(p), Data: []byte(target(p))}}
	for i, t := range p.Types() {
		files = append(files, File{Name: templateName(p, t), Data: []byte(template(p, o, t))})
		for n := 1; n <= p.Formation[t].Quantity; n++ {
			port := project.Port(export.DefaultPort, i, n)
			files = append(files, File{
				Name: instanceName(p, t, n) + ".d/dyno.conf",
				Data: []byte(dropIn(t, n, port)),
			})
		}
	}
	return files, nil
}

// Write writes files under dir, creating dir and the drop-in
// directories, each file replaced atomically (fsutil.WriteFile):
// systemd may read units at any moment, and must see an old file or a
// new one, never half of one. Files are 0644, as units are: systemd
// reads them as root, people as themselves; they hold no secret.
func Write(dir string, files []File) error {
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := fsutil.WriteFile(path, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func templateName(p *export.Plan, t string) string { return p.App + "-" + t + "@.service" }

func instanceName(p *export.Plan, t string, n int) string {
	return p.App + "-" + t + "@" + strconv.Itoa(n) + ".service"
}

// target is APP.target: it wants every instance of the formation, so
// that enabling it starts them at boot and `systemctl start` starts them
// now; each instance is PartOf= it, so stopping or restarting it does
// the same to them (systemd.unit(5), Wants=, PartOf=).
func target(p *export.Plan) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by `dyno export systemd -a %s --release v%d`: %s's dynos", p.App, p.Release.Version, p.App)
	w("# at the formation of v%d:", p.Release.Version)
	w("#   %s", formation(p))
	w("# To scale, export again after dyno ps:scale; an instance started by")
	w("# hand needs a drop-in giving its PORT, as the exported ones have.")
	w("")
	w("[Unit]")
	w("Description=%s v%d: %s", p.App, p.Release.Version, formation(p))
	for _, t := range p.Types() {
		for n := 1; n <= p.Formation[t].Quantity; n++ {
			w("Wants=%s", instanceName(p, t, n))
		}
	}
	w("")
	w("[Install]")
	// A server reaches multi-user.target at boot (systemd.special(7)).
	w("WantedBy=multi-user.target")
	return b.String()
}

// formation reads as Heroku's scale line: web at 2:Standard-1X,
// worker at 0:Standard-1X.
func formation(p *export.Plan) string {
	var parts []string
	for _, t := range p.Types() {
		parts = append(parts, fmt.Sprintf("%s at %d:%s", t, p.Formation[t].Quantity, p.Size(t).Name))
	}
	return strings.Join(parts, ", ")
}

// template is APP-TYPE@.service, whose instance N runs dyno TYPE.N.
func template(p *export.Plan, o Options, t string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	size := p.Size(t)
	lim := size.Limits()

	w("# Written by `dyno export systemd -a %s --release v%d`: instance N", p.App, p.Release.Version)
	w("# runs dyno %s.N of %s v%d, isolated, as dyno's daemon would. The", t, p.App, p.Release.Version)
	w("# release's config vars are not here: dyno run reads them from the")
	w("# app's ledger in DYNO_HOME. Change settings with a drop-in")
	w("# (systemctl edit %s) rather than here:", templateName(p, t))
	w("# the next export overwrites this file.")
	w("")
	w("[Unit]")
	w("Description=%s %s.%%i (dyno, v%d)", p.App, t, p.Release.Version)
	// Stopping or restarting APP.target stops or restarts every dyno
	// (systemd.unit(5), PartOf=).
	w("PartOf=%s", Target(p))
	// Dynos reach databases and APIs as soon as they start, so they wait
	// for a configured network, not just the stack (systemd.special(7),
	// network-online.target), as the daemon's unit does.
	w("After=network-online.target")
	w("Wants=network-online.target")
	// dyno never gives up on a crashing dyno: it restarts it with the
	// back-off below for ever, as Heroku does. systemd's default start
	// limit (5 starts in 10 s, systemd.unit(5)) would leave it failed.
	w("StartLimitIntervalSec=0")
	w("")
	w("[Service]")
	// exec: the unit is up once dyno run has been executed, and fails to
	// start if it cannot be (systemd.service(5), Type=).
	w("Type=exec")
	w("User=%s", systemd.Quote(o.User))
	w("Environment=%s", systemd.Quote("DYNO_HOME="+o.Home))
	// One isolated dyno in the foreground, which exits with the dyno's
	// status: the pinned release (its slug and config vars), the name
	// the daemon gives it (DYNO=TYPE.N; %i is the instance,
	// systemd.unit(5) "Specifiers"), the formation's size, the PORT the
	// instance's drop-in sets (${PORT} is one word, systemd.service(5)
	// "Command lines"), no terminal, and the process type's command (a
	// first word naming a type runs its command).
	w("ExecStart=%s run -a %s --release v%d --dyno %s.%%i --type %s -s %s -p ${PORT} --no-tty %s",
		systemd.Quote(o.Binary), p.App, p.Release.Version, t, t, size.Name, t)
	// always: Heroku restarts a dyno whatever its exit, 0 included;
	// systemctl stop still stops it for good (systemd.service(5),
	// Restart=). The first wait is the daemon's first.
	w("Restart=always")
	w("RestartSec=%s", span(p.Restart.Initial))
	if steps := doublings(p.Restart); steps > 0 {
		// The daemon doubles the wait after each crash up to its cap.
		// systemd 254 grows RestartSec= towards RestartMaxDelaySec= in
		// RestartSteps= exponential steps, which is that doubling; older
		// systemd (Debian 12 has 252) warns of unknown keys at every
		// load and restarts at RestartSec= always. On 254 or later,
		// uncomment these in a drop-in.
		w("#RestartSteps=%d", steps)
		w("#RestartMaxDelaySec=%s", span(p.Restart.Max))
	}
	// dyno run exits 143 when it passes systemctl stop's SIGTERM on to
	// the dyno and the dyno ends on it; that is a clean stop, not a
	// failure (systemd.service(5), SuccessExitStatus=).
	w("SuccessExitStatus=143")
	// On stop, SIGTERM goes to dyno run alone, which passes it to every
	// process of the dyno; when the stop timeout has passed systemd sends
	// SIGKILL to whatever is left in the unit's cgroup, the dyno's
	// delegated subtree included (systemd.kill(5), KillMode=mixed). That
	// is Heroku's R12 at the daemon's moment: dyno run itself never
	// escalates, so no margin is added. The default, control-group,
	// would signal the app's processes behind dyno run's back.
	w("KillMode=mixed")
	w("TimeoutStopSec=%s", span(p.StopTimeout))
	// dyno run makes the dyno a cgroup leaf with its size's limits
	// under its own cgroup, which must be delegated to User= to be
	// written (systemd.resource-control(5), Delegate=; see
	// supervisor/systemd for the daemon's unit, which does the same).
	w("Delegate=yes")
	// The size's limits as dyno enforces them (cgroup.Size.Limits), on
	// the whole unit too, so that they hold should the dyno's own leaf
	// not be made (a host without the controllers dyno asks for).
	w("# %s's memory.max, as dyno enforces it: %d MiB, %g x the", size.Name, lim.MemoryMax>>20, max(size.KillRatio, 1))
	w("# %d MiB quota, where the dyno is killed (Heroku's R15). The dyno's", size.Memory>>20)
	w("# own cgroup has the same limit; dyno run's few MiB count here too.")
	w("MemoryMax=%d", lim.MemoryMax)
	// No swap, as dyno sets memory.swap.max to 0: a dyno over its quota
	// is slow on Heroku, never swapping.
	w("MemorySwapMax=0")
	if lim.PidsMax > 0 {
		w("TasksMax=%d", lim.PidsMax)
	}
	if lim.CPUWeight > 0 {
		w("CPUWeight=%d", lim.CPUWeight)
	}
	if size.CPUQuota > 0 {
		// systemd.resource-control(5): a percentage of one CPU.
		w("CPUQuota=%s%%", strconv.FormatFloat(size.CPUQuota*100, 'f', -1, 64))
	}
	return b.String()
}

// dropIn gives instance n of type t its PORT, base + 100 × the type's
// index + n − 1, as dyno start numbers them (project.Port).
func dropIn(t string, n, port int) string {
	return fmt.Sprintf("# Written by `dyno export systemd`: %s.%d's PORT.\n[Service]\nEnvironment=PORT=%d\n", t, n, port)
}

// doublings is how many times the daemon's wait doubles from Initial
// before it reaches Max.
func doublings(r export.RestartPolicy) int {
	if r.Initial <= 0 || r.Max <= r.Initial {
		return 0
	}
	return int(math.Ceil(math.Log2(float64(r.Max) / float64(r.Initial))))
}

// span writes d as a systemd time span (systemd.time(7)): whole seconds
// as such, else milliseconds.
func span(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// plainWord reports whether s is a non-empty word of letters, digits,
// '.', '_' and '-', which a unit's command line takes as it is.
func plainWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
