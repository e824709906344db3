package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"golang.org/x/time/rate"
)

// Scenario 8 in virtual time: the same fleet, workload and quota as the
// real scenario, run many times in seconds, so that a change to the
// limiter is judged on the spread of its runs rather than on five.
//
//	go test -run TestFleetInVirtualTime -v -fleetsim.runs=200
var (
	fleetSimRuns    = flag.Int("fleetsim.runs", 20, "runs of the fleet in TestFleetInVirtualTime")
	fleetSimVerbose = flag.Bool("fleetsim.v", false, "log each run of TestFleetInVirtualTime")
)

// simBucket is a token bucket service answering in memory: it admits as
// servicetest.WithRateLimit does (one token per request, 429 with
// Retry-After: the seconds until a token, at least 1) after a latency
// drawn from [lat/2, 3lat/2). In a synctest bubble its clock, like the
// clients', is virtual.
type simBucket struct {
	mu    sync.Mutex
	lim   *rate.Limiter
	rps   float64
	rnd   *rand.Rand
	lat   time.Duration
	start time.Time
	n429  int
	// last429 is when each client was last refused, since start.
	last429 map[int]time.Duration
}

// simCaller is one client's view of a simBucket.
type simCaller struct {
	b      *simBucket
	client int
}

func (c simCaller) RoundTrip(req *http.Request) (*http.Response, error) {
	b := c.b
	b.mu.Lock()
	d := b.lat/2 + time.Duration(b.rnd.Int63n(int64(b.lat)))
	b.mu.Unlock()
	time.Sleep(d)
	b.mu.Lock()
	now := time.Now()
	ok := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	h := http.Header{}
	code := http.StatusOK
	if !ok {
		code = http.StatusTooManyRequests
		b.n429++
		b.last429[c.client] = now.Sub(b.start)
		h.Set("Retry-After", strconv.FormatFloat(max(math.Ceil((1-tokens)/b.rps-1e-9), 1), 'f', 0, 64))
	}
	b.mu.Unlock()
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader("")),
		Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

// simFleet is what one run of a fleet did.
type simFleet struct {
	wall   time.Duration   // until the last client's last call
	ends   []time.Duration // each client's
	n429   int
	failed int
	// tail says the last client's last call was a retry of a refusal it
	// had waited out: the run's wall is a refusal's Retry-After.
	tail bool
}

// runSimFleet runs clients resilienthttp clients, each with its own guards
// and callers goroutines making calls GETs between them, against one
// bucket of rps and burst, in virtual time.
func runSimFleet(t *testing.T, seed int64, clients, callers, calls int, rps float64, burst int) (f simFleet) {
	synctest.Test(t, func(t *testing.T) {
		b := &simBucket{lim: rate.NewLimiter(rate.Limit(rps), burst), rps: rps,
			rnd: rand.New(rand.NewSource(seed)), lat: 300 * time.Microsecond, start: time.Now(),
			last429: map[int]time.Duration{}}
		f.ends = make([]time.Duration, clients)
		var failed atomic.Int64
		var all sync.WaitGroup
		for i := range clients {
			c := resilienthttp.New(resilienthttp.WithTransport(simCaller{b, i}))
			var next atomic.Int64
			var mine sync.WaitGroup
			for range callers {
				mine.Go(func() {
					for next.Add(1) <= int64(calls) {
						req, _ := http.NewRequest(http.MethodGet, "http://quota.test/v1/items", nil)
						resp, err := c.Do(req)
						if err != nil {
							failed.Add(1)
							continue
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							failed.Add(1)
						}
					}
				})
			}
			all.Go(func() { mine.Wait(); f.ends[i] = time.Since(b.start) })
		}
		all.Wait()
		f.wall = slices.Max(f.ends)
		f.n429, f.failed = b.n429, int(failed.Load())
		for i, end := range f.ends {
			if l, ok := b.last429[i]; ok && end == f.wall && end-l < 1100*time.Millisecond {
				f.tail = true
			}
		}
	})
	return f
}

// TestFleetInVirtualTime runs scenario 8 (4 clients × 4 callers × 300 GETs
// against 400 r/s, burst 40, never told the quota; ideal 2.9 s) and, for
// reference, one client with the same 16 callers and 1200 GETs. It logs
// the fleet's walls and asserts what holds in every run: every call
// answered 200, at most 3% refused, the one client within 1.5× ideal, no
// fleet run past 2× and the median within 1.65×. The target for
// the fleet, 1.5× in each run, is reported, not asserted (see README).
func TestFleetInVirtualTime(t *testing.T) {
	const (
		clients, callers, calls = 4, 4, 300
		rps, burst              = 400.0, 40
	)
	ideal := float64(clients*calls-burst) / rps
	for r := range 3 {
		one := runSimFleet(t, int64(1000+r), 1, clients*callers, clients*calls, rps, burst)
		x := one.wall.Seconds() / ideal
		t.Logf("one client with %d callers: %.2f s (%.2f× ideal), %d 429s", clients*callers, one.wall.Seconds(), x, one.n429)
		if x > 1.5 || one.failed > 0 {
			t.Errorf("one client with %d callers: %.2f× ideal, %d failed; want ≤ 1.5×, 0 failed", clients*callers, x, one.failed)
		}
	}
	runs := max(*fleetSimRuns, 1)
	var walls, refused []float64
	over, tails := 0, 0
	for r := range runs {
		f := runSimFleet(t, int64(r+1), clients, callers, calls, rps, burst)
		x := f.wall.Seconds() / ideal
		walls = append(walls, x)
		refused = append(refused, float64(f.n429))
		if x > fleetMaxWallOverIdeal {
			over++
			if f.tail {
				tails++
			}
		}
		if *fleetSimVerbose {
			t.Logf("run %d: %.2f s (%.2f×), %d 429s, ends %s", r, f.wall.Seconds(), x, f.n429, joinSeconds(f.ends))
		}
		if f.failed > 0 || float64(f.n429) > 0.03*clients*calls || x > 2 {
			t.Errorf("run %d: %.2f× ideal, %d 429s, %d failed; want ≤ 2×, ≤ 3%% 429s, 0 failed",
				r, x, f.n429, f.failed)
		}
	}
	slices.Sort(walls)
	slices.Sort(refused)
	med := walls[len(walls)/2]
	t.Logf("fleet of %d, %d runs: median %.2f× ideal, worst %.2f×, median %.0f 429s; %d runs over %.1f× (%d of them ended by a refusal's Retry-After)",
		clients, runs, med, walls[len(walls)-1], refused[len(refused)/2], over, fleetMaxWallOverIdeal, tails)
	if med > 1.65 {
		t.Errorf("median run %.2f× ideal; want ≤ 1.65×", med)
	}
}

// joinSeconds formats durations as seconds, two decimals, space-separated.
func joinSeconds(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(s, " ")
}
