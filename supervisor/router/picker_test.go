package router

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

var (
	web1 = Backend{Dyno: "web.1", Addr: "127.0.0.1:20000"}
	web2 = Backend{Dyno: "web.2", Addr: "127.0.0.1:20001"}
	web3 = Backend{Dyno: "web.3", Addr: "127.0.0.1:20002"}
)

func TestPickerSpreadsAtRandom(t *testing.T) {
	var clock fakeClock
	p := NewPicker(clock.now)
	p.SetUp([]Backend{web1, web2})
	counts := map[Backend]int{}
	const n = 10000
	for range n {
		b, err := p.Pick()
		if err != nil {
			t.Fatal(err)
		}
		counts[b]++
	}
	// Binomial(10000, 0.5) has a standard deviation of 50: 4500..5500 is
	// 10 of them, never missed by a fair choice.
	if len(counts) != 2 || counts[web1] < 4500 || counts[web2] < 4500 {
		t.Errorf("10000 picks over two dynos went %v, want about half each", counts)
	}
}

func TestPickerQuarantine(t *testing.T) {
	var clock fakeClock
	p := NewPicker(clock.now)
	if _, err := p.Pick(); !errors.Is(err, ErrNoDynos) {
		t.Fatalf("Pick with no dynos: %v, want ErrNoDynos", err)
	}
	p.SetUp([]Backend{web1, web2, web3})
	p.Quarantine(web2)
	for range 300 {
		if b, _ := p.Pick(); b == web2 {
			t.Fatal("picked web.2 while it was quarantined")
		}
	}
	p.Quarantine(web1)
	p.Quarantine(web3)
	if _, err := p.Pick(); !errors.Is(err, ErrAllQuarantined) {
		t.Fatalf("Pick with every dyno quarantined: %v, want ErrAllQuarantined", err)
	}

	clock.advance(Quarantine - time.Nanosecond)
	if _, err := p.Pick(); !errors.Is(err, ErrAllQuarantined) {
		t.Fatalf("Pick just before 5 s: %v, want ErrAllQuarantined", err)
	}
	clock.advance(time.Nanosecond)
	seen := map[Backend]bool{}
	for range 300 {
		b, err := p.Pick()
		if err != nil {
			t.Fatalf("Pick after 5 s: %v", err)
		}
		seen[b] = true
	}
	if len(seen) != 3 {
		t.Errorf("after the quarantine ended, picks reached %v, want all three", seen)
	}
}

func TestPickerSetUpKeepsQuarantineOfTheSameDyno(t *testing.T) {
	var clock fakeClock
	p := NewPicker(clock.now)
	p.SetUp([]Backend{web1, web2})
	p.Quarantine(web1)
	p.Quarantine(web2)
	restarted := Backend{Dyno: "web.2", Addr: "127.0.0.1:20005"}
	p.SetUp([]Backend{web1, restarted})
	for range 100 {
		b, err := p.Pick()
		if err != nil || b != restarted {
			t.Fatalf("Pick = %v, %v; want the restarted web.2 only (web.1 is still quarantined)", b, err)
		}
	}
	p.SetUp(nil)
	if _, err := p.Pick(); !errors.Is(err, ErrNoDynos) {
		t.Fatalf("Pick after SetUp(nil): %v, want ErrNoDynos", err)
	}
}

func TestPickerConcurrent(t *testing.T) {
	var clock fakeClock
	p := NewPicker(clock.now)
	p.SetUp([]Backend{web1, web2, web3})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				switch {
				case g == 0 && i%100 == 0:
					p.SetUp([]Backend{web1, web2, web3})
				case g == 1 && i%10 == 0:
					p.Quarantine(web2)
					clock.advance(time.Second)
				default:
					b, err := p.Pick()
					if err == nil && b != web1 && b != web2 && b != web3 {
						t.Errorf("Pick = %v, not a dyno that is up", b)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func TestPickAllocations(t *testing.T) {
	p := NewPicker(time.Now)
	p.SetUp([]Backend{web1, web2, web3})
	p.Quarantine(web2)
	if n := testing.AllocsPerRun(100, func() { p.Pick() }); n != 0 {
		t.Errorf("Pick: %v allocations, want 0", n)
	}
}
