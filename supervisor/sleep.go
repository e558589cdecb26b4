package supervisor

// Sleeping, as Heroku's eco dynos sleep: Sleep stops every formation
// dyno with Heroku's lines ("Idling", "State changed from up to down",
// then the stop sequence) and keeps it down and idle, one-offs untouched;
// Wake starts them again ("Unidling", "State changed from down to
// starting", ...). A dyno the formation adds while the supervisor sleeps
// is idle from the start.

// Sleep puts every formation dyno to sleep.
func (s *Supervisor) Sleep() {
	s.mu.Lock()
	s.asleep = true
	var ds []*dyno
	for _, d := range s.dynos {
		if !d.oneOff {
			ds = append(ds, d)
		}
	}
	s.mu.Unlock()
	for _, d := range ds {
		d.mu.Lock()
		already := d.idle
		d.idle, d.req.sleep = true, !already
		d.mu.Unlock()
		d.poke()
	}
}

// Wake starts every sleeping formation dyno again.
func (s *Supervisor) Wake() {
	s.mu.Lock()
	s.asleep = false
	ds := append([]*dyno(nil), s.dynos...)
	s.mu.Unlock()
	for _, d := range ds {
		d.mu.Lock()
		was := d.idle
		d.idle, d.req.sleep = false, false
		d.mu.Unlock()
		if was {
			d.poke()
		}
	}
}

// Asleep reports whether Sleep was called and Wake not since.
func (s *Supervisor) Asleep() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.asleep
}

func (d *dyno) isIdle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.idle
}

// goIdle stops the running process p for a Sleep: "Idling", down, and
// the stop sequence.
func (d *dyno) goIdle(stop func(kill bool)) {
	d.log("Idling")
	d.setState(Down)
	stop(false)
}

// awaitWake waits while d sleeps. It reports true once d has been woken
// ("Unidling"), false when d is to leave instead.
func (d *dyno) awaitWake() bool {
	d.mu.Lock()
	st := d.state
	d.mu.Unlock()
	if st != Down {
		// Put to sleep while crashed, or before its process ran.
		d.log("Idling")
		d.setState(Down)
	}
	d.endServing(false)
	for {
		d.mu.Lock()
		idle, leaving := d.idle, d.leaving
		d.req = request{}
		d.mu.Unlock()
		if leaving {
			return false
		}
		if !idle {
			d.log("Unidling")
			return true
		}
		<-d.wake
	}
}
