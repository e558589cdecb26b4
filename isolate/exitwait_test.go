package isolate

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Waiting for a dyno parks a goroutine on the poller, not a thread in
// waitid(2): the goroutines of Wait show as "IO wait" in a stack dump,
// where a blocking call would show "syscall" and hold a thread each.
func TestWaitHoldsNoThread(t *testing.T) {
	const n = 20
	statuses := make(chan int, n)
	dynos := make([]*Dyno, n)
	for i := range dynos {
		d, _ := startDyno(t, "exec sleep 60")
		dynos[i] = d
		go func() {
			status, _ := d.Wait()
			statuses <- status
		}()
	}
	waiting := func() (polled, blocked int) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if !strings.Contains(g, "isolate.(*Dyno).Wait") {
				continue
			}
			header, _, _ := strings.Cut(g, "\n")
			switch {
			case strings.Contains(header, "[IO wait"):
				polled++
			case strings.Contains(header, "[syscall"):
				blocked++
			}
		}
		return polled, blocked
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		polled, blocked := waiting()
		if polled == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d Waits parked on the poller, %d blocked in a system call", polled, n, blocked)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range dynos {
		d.Kill()
	}
	for range n {
		if status := <-statuses; status != 137 && status != 143 {
			t.Errorf("a killed dyno's status is %d, want 137 or 143", status)
		}
	}
}
