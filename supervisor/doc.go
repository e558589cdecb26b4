// Package supervisor is dyno's dyno manager: it runs a formation of
// dynos, moves each through Heroku's states (starting, up, crashed, down),
// restarts crashed dynos with exponential back-off, stops them with
// Heroku's sequence (SIGTERM to every process, a grace period, SIGKILL)
// and speaks Heroku's log sentences through the log multiplexer.
//
// `dyno start` and the daemon use the same Manager; only where the
// formation comes from and how a dyno is run (the Runner) differ.
package supervisor
