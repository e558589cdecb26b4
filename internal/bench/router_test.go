package main

import (
	"testing"
	"time"
)

func TestValidateRouterFlags(t *testing.T) {
	ok := config{dyno: "bin/dyno", lines: 1, procs: 1, idle: 1, starts: 1, routerDuration: 10 * time.Second, routerRounds: 3}
	if err := ok.validate(); err != nil {
		t.Fatalf("validate the defaults: %v", err)
	}
	// wrk takes whole seconds.
	for _, d := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 2 * time.Hour} {
		c := ok
		c.routerDuration = d
		if err := c.validate(); err == nil {
			t.Errorf("validate accepted -router-duration %v", d)
		}
	}
	for _, n := range []int{0, -1, 101} {
		c := ok
		c.routerRounds = n
		if err := c.validate(); err == nil {
			t.Errorf("validate accepted -router-rounds %d", n)
		}
	}
}
