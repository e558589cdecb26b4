package systemd

import (
	"fmt"
	"path/filepath"
	"strings"
)

// UnitOptions say how the service unit runs the daemon.
type UnitOptions struct {
	// Binary is the absolute path of the dyno binary.
	Binary string
	// Home is the daemon's DYNO_HOME. Empty leaves dyno's default, which
	// depends on the environment the unit runs in (DESIGN.md, "State
	// layout"); the CLI run by hand must find the same state, so give it.
	Home string
	// User makes a user unit, run by the user's own service manager
	// (systemctl --user), rather than a system one.
	User bool
	// RunAs is, for a system unit, the user it runs as, with the group of
	// the same name that useradd makes for it; empty runs it as root.
	// dyno is rootless-first: it loses nothing as a dedicated user (say,
	// `useradd --system --create-home dyno`), and an app that breaks out
	// of its dyno gains that user rather than root. A user unit ignores
	// RunAs: it runs as the user whose manager runs it.
	RunAs string
}

// Unit returns the text of the service unit that runs `dyno daemon`
// (systemd.service(5)), for dyno.service. Its comments point people who
// want to change a setting to a drop-in (systemctl edit dyno), which
// Install never touches.
func Unit(o UnitOptions) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	ctl := "systemctl"
	if o.User {
		ctl = "systemctl --user"
	}
	w("# Written by `dyno daemon install`; see docs/operations.md in dyno's source.")
	w("# Change settings with a drop-in (`%s edit dyno`) rather than here:", ctl)
	w("# the next install refuses to replace a unit that differs from its own.")
	w("")

	w("[Unit]")
	w("Description=dyno daemon: every app's dynos at their formation")
	// Dynos reach databases and APIs as soon as they start, so a system
	// unit waits for a configured network (network-online.target,
	// systemd.special(7)), not just the network stack. A user manager
	// has no such target and cannot order its units against system ones;
	// dynos that start before the network is up crash and come back with
	// the restart back-off.
	if !o.User {
		w("After=network-online.target")
		w("Wants=network-online.target")
	}

	w("")
	w("[Service]")
	// The daemon says READY=1 once it serves its API and has begun to
	// bring up the formation (systemd.service(5), Type=notify), so
	// `systemctl start dyno` returns when dyno really runs and fails
	// when it cannot; TimeoutStartSec= (90 s by default) bounds the wait.
	w("Type=notify")
	// Only the daemon may notify: a dyno's process could otherwise tell
	// systemd the daemon is ready, or ping the watchdog on its behalf
	// (systemd.service(5), NotifyAccess=). systemd tells the daemon from
	// its dynos by the pid the kernel attaches to each message.
	w("NotifyAccess=main")
	// The daemon runs directly, with no shell and no ExecStartPre= that
	// stays behind, so that it is the only process in its cgroup; see
	// Delegate= below.
	w("ExecStart=%s daemon", Quote(o.Binary))
	if o.Home != "" {
		w("Environment=%s", Quote("DYNO_HOME="+o.Home))
	}
	if !o.User && o.RunAs != "" {
		// systemd.exec(5), User= and Group=. With User= set, systemd
		// also sets HOME, USER and LOGNAME, so dyno's defaults resolve
		// as they would in that user's shell.
		w("User=%s", Quote(o.RunAs))
		w("Group=%s", Quote(o.RunAs))
		// The router listens on :80 and :443 on a server ([router]
		// listen and tls_listen in dyno.toml), ports under 1024 that
		// only CAP_NET_BIND_SERVICE may bind (capabilities(7)). As an
		// ambient capability the daemon has it without being root
		// (systemd.exec(5), AmbientCapabilities=). Dynos get nothing
		// from it: each runs in a user namespace of its own, and a
		// capability there gives no power over the host's network
		// namespace (user_namespaces(7)). Root has it anyway; a user
		// manager cannot grant it (docs/operations.md says what to do).
		w("AmbientCapabilities=CAP_NET_BIND_SERVICE")
	}
	// Delegate=yes hands the daemon its cgroup and everything below it
	// (systemd.resource-control(5); systemd's docs/CGROUP_DELEGATION.md):
	// systemd enables every controller it has for the unit's cgroup,
	// chowns the cgroup directory and its cgroup.procs,
	// cgroup.subtree_control and cgroup.threads to User= (a user unit's
	// tree is its user's already), and promises never to touch what the
	// daemon builds inside. That is exactly what dyno's cgroup probe
	// asks for (isolate/cgroup, ProbeSystem): a cgroup this uid may
	// write, offering memory and pids, holding no process but the
	// daemon. The daemon then moves itself into supervisor/ and gives
	// each dyno a leaf under dynos/ with the limits of its size. Without
	// delegation dynos still run, without limits, and the daemon says so
	// once at start-up. A system unit gets every controller, cpu
	// included; a user unit gets what user@.service delegates to the
	// user's manager (memory and pids; cpu too since systemd 252; more
	// with a drop-in for user@.service, docs/operations.md).
	// DelegateSubgroup= (systemd 254) must stay unset: it would start the
	// daemon in a child cgroup, which the probe would then take for its
	// own and have to split again.
	w("Delegate=yes")
	// On stop, SIGTERM goes to the daemon alone, which stops its dynos
	// the way Heroku does: SIGTERM to every process of each dyno, SIGKILL
	// 30 seconds later to those still there (R12), with the usual log
	// lines. Once the daemon has exited, or TimeoutStopSec= has passed,
	// systemd sends SIGKILL to whatever is left in the unit's cgroup,
	// delegated subtree included (systemd.kill(5), KillMode=mixed). The
	// default, control-group, would send SIGTERM to every process of the
	// cgroup at once: apps would be told to stop behind the daemon's
	// back, before it has marked their dynos as stopping, so it could
	// take them for crashed and start them again, and the stop would
	// have no Heroku log lines. process would let dynos outlive a daemon
	// that died before it could stop them, which DESIGN.md (principle 3)
	// rules out.
	w("KillMode=mixed")
	// Long enough for the dynos' 30 seconds of grace (they are stopped
	// side by side, not one after another), then the add-on servers'
	// (PostgreSQL's fast shutdown, which apps' sessions no longer hold
	// up: under a second, 30 at most, 10 more after SIGQUIT), plus the
	// daemon's own exit; after that systemd sends SIGKILL
	// (systemd.service(5), TimeoutStopSec=; systemd.kill(5)).
	w("TimeoutStopSec=75")
	// always, not on-failure: the apps are down whenever the daemon is,
	// whatever its exit status; `systemctl stop` still stops it for good
	// (systemd.service(5), Restart=). One second keeps a crashing daemon
	// from spinning; the default start limit (5 starts in 10 s,
	// systemd.unit(5) StartLimitBurst=) then gives up on one that dies
	// at once, say for an unwritable DYNO_HOME, and `systemctl status`
	// shows it failed instead of looping.
	w("Restart=always")
	w("RestartSec=1")
	// The daemon pings every 15 seconds while its main loop answers
	// (Notifier.RunWatchdog). If it hangs, systemd sends it SIGABRT
	// (WatchdogSignal=), on which the Go runtime writes every
	// goroutine's stack to stderr, the journal, and exits; systemd kills
	// what is left and restarts the unit (systemd.service(5),
	// WatchdogSec=), and dynos come back at the ledger's formation.
	w("WatchdogSec=30")
	// The daemon holds sockets, pipes and log files for every dyno, and
	// dynos inherit the limit. systemd's default soft limit is 1024
	// (systemd.exec(5), LimitNOFILE=), low for a box of web apps.
	w("LimitNOFILE=65536")

	w("")
	w("[Install]")
	// A user manager reaches default.target at boot when lingering is on
	// (loginctl enable-linger); the system reaches multi-user.target on a
	// server (systemd.special(7)).
	if o.User {
		w("WantedBy=default.target")
	} else {
		w("WantedBy=multi-user.target")
	}
	return b.String()
}

// UnitPath returns where the unit goes: for a user unit
// $XDG_CONFIG_HOME/systemd/user/dyno.service, else
// homeDir/.config/systemd/user/dyno.service; for a system unit
// /etc/systemd/system/dyno.service, the directory for units the
// administrator installs (systemd.unit(5), "Unit File Load Path").
// environ is a list of "KEY=value" strings as os.Environ returns.
func UnitPath(user bool, environ []string, homeDir string) string {
	if !user {
		return "/etc/systemd/system/dyno.service"
	}
	// The XDG Base Directory Specification says to ignore a relative
	// XDG_CONFIG_HOME; systemd does too.
	if x := lookup(environ, "XDG_CONFIG_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "systemd", "user", "dyno.service")
	}
	return filepath.Join(homeDir, ".config", "systemd", "user", "dyno.service")
}

// Quote returns s as one word of a unit file setting. Specifiers start
// with '%' in every setting that Quote is used for (systemd.unit(5),
// "Specifiers"), so '%' is doubled. A word with blanks, quotes,
// backslashes or control characters is put in double quotes, inside
// which C escapes apply (systemd.service(5), "Command lines";
// systemd.exec(5), Environment=). '$' needs nothing: the program of a
// command line takes no variables, nor does Environment=; a caller that
// quotes another word of a command line must keep '$' out of it.
func Quote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '"' || r == '\'' || r == '\\'
	}) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
