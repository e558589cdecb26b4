package supervisor

// Preboot, as Heroku's: when a web dyno on a port of its own (the
// daemon's NewPort) restarts for a new config with DynoConfig.Preboot
// set, the new process starts beside the running one, which keeps
// taking requests (DynoStatus.ServingPort) until the new one is up. Only
// then is the old one sent SIGTERM, and it finishes what it has. A new
// process that never comes up (a crash, R10) leaves the old one serving
// while the dyno retries by its restart policy.

// serving is a dyno's older process that keeps taking requests while
// its replacement boots.
type serving struct {
	p      *proc
	retire chan struct{} // closed to stop p: the new process is up, or the dyno stops
	closed bool          // retire is closed; under the dyno's mu
	kill   bool          // with closed: SIGKILL rather than the stop sequence (ps:kill)
}

// keepServing makes p, the dyno's running process, its serving process
// while a replacement starts. A goroutine owns p from here: it stops p
// when told to (endServing), or reports p's exit if p ends first.
func (d *dyno) keepServing(p *proc) {
	sv := &serving{p: p, retire: make(chan struct{})}
	d.mu.Lock()
	d.serving, d.servingPort = sv, p.cfg.Port
	d.mu.Unlock()
	s := d.s
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		gone := func() {
			d.mu.Lock()
			if d.serving == sv {
				d.serving, d.servingPort = nil, 0
			}
			d.mu.Unlock()
			s.changed()
		}
		select {
		case <-sv.retire:
			d.mu.Lock()
			kill := sv.kill
			d.mu.Unlock()
			if kill {
				p.kill()
			} else {
				p.term()
			}
			d.retire(p)
			gone()
		case status := <-p.exited:
			// It ended by itself while its replacement booted: out of
			// the router's view at once, then its exit reported
			// (report may wait for its last output).
			gone()
			p.report(status)
		case <-s.killed:
			d.retire(p)
			gone()
		}
	}()
}

// endServing takes the dyno's serving process, if any, out of the
// router's view and then stops it (kill: with SIGKILL, for ps:kill): its
// replacement is up, or the dyno stops.
func (d *dyno) endServing(kill bool) {
	d.mu.Lock()
	sv := d.serving
	if sv == nil || sv.closed {
		d.mu.Unlock()
		return
	}
	sv.closed, sv.kill = true, kill
	d.servingPort = 0
	d.mu.Unlock()
	// The router stops sending it requests before it is told to stop.
	d.s.changed()
	close(sv.retire)
}

// prebooting reports whether the dyno has a serving process: its last
// restart prebooted, and the replacement is not up yet.
func (d *dyno) prebooting() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.serving != nil && !d.serving.closed
}

// canPreboot reports whether r, a restart asked of the dyno while p
// runs, should start the replacement beside p: a new config with
// preboot, for a web process that is up on a port of its own, and not
// while an earlier preboot still has its old process serving (then the
// booting replacement is replaced, and the old one serves on).
func (d *dyno) canPreboot(r request, p *proc) bool {
	if !r.preboot || d.s.opts.NewPort == nil || !p.cfg.Web || p.cfg.Port == 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state == Up && !d.stopping && d.serving == nil
}
