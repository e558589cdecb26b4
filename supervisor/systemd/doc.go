// Package systemd fits `dyno daemon` into systemd: a Notifier speaks the
// sd_notify protocol, so systemd knows when the daemon is ready, what it
// is doing, when it is stopping and that it is not hung; Unit and Install
// write the service unit that runs it.
//
// The package uses no library of systemd's. The protocol is one datagram
// per message on a unix socket (sd_notify(3)), and a unit file is text
// (systemd.service(5)); neither needs more than the standard library.
//
// The unit is what makes the rest of dyno work on a server. Delegate=yes
// hands the daemon a cgroup v2 subtree, so dynos get memory, pids and CPU
// limits without root (systemd's docs/CGROUP_DELEGATION.md);
// KillMode=mixed lets the daemon stop dynos with Heroku's sequence
// before systemd kills what is left (systemd.kill(5)); Type=notify and
// WatchdogSec= tie the daemon's health to the Notifier
// (systemd.service(5)).
//
// The daemon should not pass NOTIFY_SOCKET, WATCHDOG_USEC or
// WATCHDOG_PID on to its dynos: they are addressed to the daemon alone.
// NotifyAccess=main and WATCHDOG_PID make a dyno that inherits them
// harmless, but an app has no business seeing them.
package systemd
