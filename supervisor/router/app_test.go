package router

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestAppPickAnswersAtOnceWithoutDynos(t *testing.T) {
	a := NewApp("web-app", time.Now)
	far := time.Now().Add(time.Hour)
	for _, c := range []struct {
		state AppState
		want  Code
	}{{NoRelease, H81}, {NoWeb, H14}, {Crashed, H10}} {
		a.Update(c.state, nil)
		if _, code := a.Pick(context.Background(), far, false); code != c.want {
			t.Errorf("state %d: Pick = %v, want %v", c.state, code, c.want)
		}
	}
}

func TestAppPickWaitsForABootingDyno(t *testing.T) {
	a := NewApp("web-app", time.Now)
	a.Update(Booting, nil)
	got := make(chan Backend)
	go func() {
		b, code := a.Pick(context.Background(), time.Now().Add(time.Hour), false)
		if code != OK {
			t.Errorf("Pick = %v, want a dyno", code)
		}
		got <- b
	}()
	web := Backend{Dyno: "web.1", Addr: "127.0.0.1:20001"}
	a.Update(Running, []Backend{web})
	if b := <-got; b != web {
		t.Fatalf("Pick = %+v, want %+v", b, web)
	}
}

func TestAppPickGivesUpAtTheDeadline(t *testing.T) {
	a := NewApp("web-app", time.Now)
	a.Update(Booting, nil)
	if _, code := a.Pick(context.Background(), time.Now().Add(20*time.Millisecond), false); code != H20 {
		t.Fatalf("Pick = %v, want H20", code)
	}
	// Running with nobody up is booting too.
	a.Update(Running, nil)
	if a.State() != Booting {
		t.Fatalf("Running with no dyno up: state %d, want Booting", a.State())
	}
}

func TestAppPickStopsWhenTheClientLeaves(t *testing.T) {
	a := NewApp("web-app", time.Now)
	a.Update(Booting, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, code := a.Pick(ctx, time.Now().Add(time.Hour), false); code != H27 {
			t.Errorf("Pick = %v, want H27", code)
		}
	}()
	cancel()
	wg.Wait()
}

func TestAppPickAfterRefusals(t *testing.T) {
	a := NewApp("web-app", time.Now)
	web := Backend{Dyno: "web.1", Addr: "127.0.0.1:20001"}
	a.Update(Running, []Backend{web})
	a.Quarantine(web)
	if _, code := a.Pick(context.Background(), time.Now().Add(time.Hour), true); code != H21 {
		t.Fatalf("every dyno refused: Pick = %v, want H21", code)
	}
	// A request that was not refused waits for the quarantine to end,
	// or for a dyno to come up.
	other := Backend{Dyno: "web.2", Addr: "127.0.0.1:20002"}
	got := make(chan Backend)
	go func() {
		b, _ := a.Pick(context.Background(), time.Now().Add(time.Hour), false)
		got <- b
	}()
	a.Update(Running, []Backend{web, other})
	if b := <-got; b != other {
		t.Fatalf("Pick = %+v, want the dyno not quarantined %+v", b, other)
	}
}

func TestTableLookup(t *testing.T) {
	h, err := NewHosts("localhost")
	if err != nil {
		t.Fatal(err)
	}
	h.AddApp("one")
	h.AddApp("gone")
	one := NewApp("one", time.Now)
	tab := NewTable(h, map[string]*App{"one": one})
	if a, ok := tab.Lookup("one.localhost:8080"); !ok || a != one {
		t.Fatalf("Lookup(one.localhost:8080) = %v, %v", a, ok)
	}
	if _, ok := tab.Lookup("gone.localhost"); ok {
		t.Fatal("an app the table has no App for was routed to")
	}
	var none *Table
	if _, ok := none.Lookup("one.localhost"); ok {
		t.Fatal("a nil table routed")
	}
}
