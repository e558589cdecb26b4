// Package supervisor is dyno's dyno manager: it runs a formation of
// dynos, moves each through Heroku's states (starting, up, crashed, down),
// restarts crashed dynos with exponential back-off, stops them with
// Heroku's sequence (SIGTERM to every process, a grace period, SIGKILL)
// and speaks Heroku's log sentences through the log multiplexer.
//
// A Supervisor keeps one app's dynos at a formation that may change while
// it runs (Reconcile), restarts and stops single dynos, cycles them daily
// and runs detached one-offs: the daemon's dyno manager. Manager, which
// `dyno start` runs, is a Supervisor given a fixed formation once, that
// returns when the run is over. Both run every dyno through the same
// code; only where the formation comes from and how a dyno is run (the
// Runner) differ.
package supervisor
