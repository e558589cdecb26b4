package supervisor

import "time"

// RestartPolicy says when a crashed dyno starts again. The first restart
// after a good run is immediate; each further crash doubles the wait from
// Initial up to Max; a run that lasted ResetAfter counts as good again.
// This is the shape of Heroku's cool-off, with a cap that suits where it
// runs (30 s for `dyno start`, 20 minutes for the daemon).
type RestartPolicy struct {
	Initial    time.Duration // wait before the second restart in a row
	Max        time.Duration
	ResetAfter time.Duration
	Never      bool // a crashed dyno stays crashed
}

// DevRestartPolicy is the policy of `dyno start`.
var DevRestartPolicy = RestartPolicy{Initial: time.Second, Max: 30 * time.Second, ResetAfter: 10 * time.Minute}

// ProductionRestartPolicy is the daemon's: Heroku's first cool-off is up
// to 20 minutes, and a dyno that crashes that often gains nothing from
// longer ones on a single host, where nobody else waits for the slot.
var ProductionRestartPolicy = RestartPolicy{Initial: time.Second, Max: 20 * time.Minute, ResetAfter: 10 * time.Minute}

// A Backoff counts one process's consecutive crashes under Policy: a
// dyno's, or an add-on server the daemon runs.
type Backoff struct {
	Policy  RestartPolicy
	crashes int
}

// Reset forgets the crashes: the next one restarts at once.
func (b *Backoff) Reset() { b.crashes = 0 }

// Next records a crash after a run of the given length and returns how
// long to wait before the restart.
func (b *Backoff) Next(uptime time.Duration) time.Duration {
	if uptime >= b.Policy.ResetAfter {
		b.crashes = 0
	}
	b.crashes++
	if b.crashes == 1 {
		return 0
	}
	d := b.Policy.Initial
	for i := 2; i < b.crashes; i++ {
		d *= 2
		if d >= b.Policy.Max {
			return b.Policy.Max
		}
	}
	return min(d, b.Policy.Max)
}
