package router

import (
	"sync/atomic"
	"time"
)

// Traffic is what an app's requests did since it was last read: the
// dashboard's throughput, response times and errors. The engine counts
// each request as its log line is written, with atomic adds (no lock:
// the request path takes none for it); the daemon reads and resets the
// counts every 10 s.
type Traffic struct {
	Requests uint64
	// Classes counts responses by status class: [0] 1xx .. [4] 5xx.
	Classes [5]uint64
	// Codes counts router errors by code: Codes[H12] is the H12s.
	Codes [NumCodes]uint64
	// Latency is a histogram of service times (first byte of the
	// request sent to the dyno to the end of its response): bucket i
	// counts times up to LatencyBound(i), the last every longer one.
	// Requests no dyno served are not in it.
	Latency [LatencyBuckets]uint64
}

// NumCodes is how many Codes there are, OK included.
const NumCodes = int(numCodes)

// LatencyBuckets is how many buckets Traffic.Latency has.
const LatencyBuckets = 24

// LatencyBound is the upper bound of service-time bucket i; the last
// bucket's is unbounded (a negative duration). The bounds go up by
// about half a step of 1-2-5 each, so a percentile read from the
// buckets is within about 40% of the true one, as a chart needs.
func LatencyBound(i int) time.Duration {
	ms := [LatencyBuckets]int64{1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, -1}
	if i < 0 || i >= LatencyBuckets || ms[i] < 0 {
		return -1
	}
	return time.Duration(ms[i]) * time.Millisecond
}

// latencyBucket is the bucket of service time d.
func latencyBucket(d time.Duration) int {
	lo, hi := 0, LatencyBuckets-1
	for lo < hi {
		mid := (lo + hi) / 2
		if b := LatencyBound(mid); b >= 0 && d > b {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// trafficShards is how many sets of counters an app has: each event
// loop adds to its own (by the order the loops were made), so that one
// busy app does not bounce a cache line between the cores; the
// goroutine path, which takes the Journal's lock per request anyway,
// adds to the first.
const trafficShards = 8

// traffic is Traffic's counters as the engine adds to them: a shard
// each, padded so that no two share a cache line.
type traffic [trafficShards]struct {
	counters
	_ [64]byte
}

type counters struct {
	requests atomic.Uint64
	classes  [5]atomic.Uint64
	codes    [NumCodes]atomic.Uint64
	latency  [LatencyBuckets]atomic.Uint64
}

// count adds one request to shard: its code, status and service time
// (negative when no dyno served it).
func (t *traffic) count(shard int, code Code, status int, service time.Duration) {
	c := &t[shard%trafficShards].counters
	c.requests.Add(1)
	if i := status/100 - 1; i >= 0 && i < len(c.classes) {
		c.classes[i].Add(1)
	}
	if code != OK && int(code) < NumCodes {
		c.codes[code].Add(1)
	}
	if service >= 0 {
		c.latency[latencyBucket(service)].Add(1)
	}
}

// TakeTraffic returns the app's counts since the last call and starts
// them again from zero.
func (a *App) TakeTraffic() Traffic {
	var out Traffic
	for s := range a.traffic {
		c := &a.traffic[s].counters
		out.Requests += c.requests.Swap(0)
		for i := range c.classes {
			out.Classes[i] += c.classes[i].Swap(0)
		}
		for i := range c.codes {
			out.Codes[i] += c.codes[i].Swap(0)
		}
		for i := range c.latency {
			out.Latency[i] += c.latency[i].Swap(0)
		}
	}
	return out
}
