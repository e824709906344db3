// Command fleetbench measures redisguard's fleet mode: replicas as OS
// processes (this program started again) calling one rate-limited
// servicetest server on 127.0.0.1, with local guards only and with guards
// shared through a redis-server it starts itself. It prints a Markdown
// report. Run it from the redisguard module:
//
//	nice -n 10 go run ./internal/fleetbench [-runs 3]
//
// It needs redis-server (the Debian package) and takes about a minute.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/redisguard"
	"github.com/resilienthttp/resilienthttp/redisguard/internal/fleet"
	"github.com/resilienthttp/resilienthttp/redisguard/internal/redistest"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// The fleet: 4 processes × 250 GETs × 8 goroutines against 200/s, burst
// 20, Retry-After 1.
const (
	procs   = 4
	calls   = 250
	workers = 8
	rps     = 200
	burst   = 20
)

// timeline and only are the flags of the same names.
var (
	timeline bool
	only     string
)

// part reports whether the part named runs.
func part(name string) bool { return only == "" || only == name }

func main() {
	fleet.RunIfReplica()
	runs := flag.Int("runs", 3, "runs of each rate-limited fleet")
	flag.BoolVar(&timeline, "timeline", false, "print each fleet's attempts and 429s per 100 ms to stderr")
	flag.StringVar(&only, "only", "", "run one part: limited, down, redis or happy (default: all)")
	flag.Parse()
	if err := run(*runs, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

// result is one fleet run as the report shows it.
type result struct {
	wall      time.Duration // the slowest replica's
	attempts  int           // at the server
	throttled int           // 429s the server sent
	failed    int
	maxTake   time.Duration
	trips     int64
	firstCall time.Duration // the slowest replica's first call
	errors    []string      // a few of the failed calls' errors
}

func (r result) String() string {
	return fmt.Sprintf("%.2f s, %d attempts, %d 429s (%.1f%%), %d failed, slowest Take %v, %d round trips, slowest first call %v",
		r.wall.Seconds(), r.attempts, r.throttled, 100*float64(r.throttled)/float64(procs*calls), r.failed,
		r.maxTake.Round(time.Microsecond), r.trips, r.firstCall.Round(time.Microsecond)) + errorsNote(r.errors)
}

// errorsNote quotes the first error, if any.
func errorsNote(errs []string) string {
	if len(errs) == 0 {
		return ""
	}
	return fmt.Sprintf(" (e.g. %q)", errs[0])
}

func run(runs int, out io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	srv, err := redistest.Launch()
	if err != nil {
		return err
	}
	defer srv.Close()
	prefix := 0
	// fleetRun runs one fleet against a fresh server; opts configure it.
	fleetRun := func(n, callsEach, workersEach int, shared bool, onHalf func(), redisAddr string, opts ...servicetest.Option) (result, error) {
		svc := servicetest.New(opts...)
		defer svc.Close()
		prefix++
		job := fleet.Job{URL: svc.URL, Calls: callsEach, Workers: workersEach, Half: onHalf != nil, Prefix: fmt.Sprintf("bench%d:", prefix)}
		if shared {
			job.Redis = redisAddr
		}
		reps, err := fleet.Run(exe, nil, n, job, onHalf)
		if err != nil {
			return result{}, err
		}
		var r result
		for _, rep := range reps {
			r.wall = max(r.wall, time.Duration(rep.WallMs*float64(time.Millisecond)))
			r.failed += rep.Failed
			r.maxTake = max(r.maxTake, time.Duration(rep.MaxTakeUs)*time.Microsecond)
			r.trips += rep.Store.RoundTrips
			r.firstCall = max(r.firstCall, time.Duration(rep.FirstCallUs)*time.Microsecond)
			if len(r.errors) < 2 {
				r.errors = append(r.errors, rep.Errors...)
			}
		}
		var slots [][2]int
		var t0 time.Time
		for i, q := range svc.Requests() {
			r.attempts++
			if i == 0 {
				t0 = q.Time
			}
			slot := int(q.Time.Sub(t0) / (100 * time.Millisecond))
			for len(slots) <= slot {
				slots = append(slots, [2]int{})
			}
			slots[slot][0]++
			if q.Status == http.StatusTooManyRequests {
				r.throttled++
				slots[slot][1]++
			}
		}
		if timeline {
			fmt.Fprintf(os.Stderr, "timeline n=%d shared=%v (attempts/429s per 100 ms): %v\n", n, shared, slots)
		}
		return r, nil
	}
	limited := []servicetest.Option{servicetest.WithRateLimit(rps, burst), servicetest.WithRateLimitRetryAfter(time.Second)}
	headers := append(slices.Clone(limited), servicetest.WithRateLimitHeaders(servicetest.IETFHeaders))
	ideal := time.Duration(float64(procs*calls-burst) / rps * float64(time.Second))

	fmt.Fprintf(out, "# redisguard fleet bench\n\n%d processes × %d GETs × %d goroutines against servicetest.WithRateLimit(%d, %d), Retry-After: 1; ideal wall (%d−%d)/%d = %.2f s. One process alone: the same %d calls from one process with %d goroutines.\n\n",
		procs, calls, workers, rps, burst, procs*calls, burst, rps, ideal.Seconds(), procs*calls, procs*workers)
	for _, sc := range []struct {
		name string
		opts []servicetest.Option
	}{{"never told the quota", limited}, {"with the host's RateLimit headers", headers}} {
		if !part("limited") {
			break
		}
		fmt.Fprintf(out, "## %s\n\n", sc.name)
		var alone, local, shared []result
		for range runs {
			a, err := fleetRun(1, procs*calls, procs*workers, false, nil, srv.Addr, sc.opts...)
			if err != nil {
				return err
			}
			l, err := fleetRun(procs, calls, workers, false, nil, srv.Addr, sc.opts...)
			if err != nil {
				return err
			}
			s, err := fleetRun(procs, calls, workers, true, nil, srv.Addr, sc.opts...)
			if err != nil {
				return err
			}
			alone, local, shared = append(alone, a), append(local, l), append(shared, s)
		}
		for i := range runs {
			fmt.Fprintf(out, "- run %d: one process alone: %v\n  - local guards: %v (%.2f× alone, %.2f× ideal)\n  - shared guards: %v (%.2f× alone, %.2f× ideal)\n",
				i+1, alone[i], local[i], ratio(local[i].wall, alone[i].wall), ratio(local[i].wall, ideal),
				shared[i], ratio(shared[i].wall, alone[i].wall), ratio(shared[i].wall, ideal))
		}
		fmt.Fprintln(out)
	}
	if part("down") {
		if err := hostDown(exe, srv.Addr, &prefix, out); err != nil {
			return err
		}
	}
	if part("redis") {
		if err := redisDies(fleetRun, headers, out); err != nil {
			return err
		}
	}
	if part("happy") {
		return happyPath(srv.Addr, out)
	}
	return nil
}

// hostDown runs the fleet against a host that answers 500 to all, with
// local and with shared guards, and reports the attempts the host saw.
func hostDown(exe, redisAddr string, prefix *int, out io.Writer) error {
	fmt.Fprintf(out, "## host down (500 to all), %d × 100 calls, 8 goroutines each\n\n", procs)
	for _, shared := range []bool{false, true} {
		svc := servicetest.New()
		svc.Script("/", servicetest.Statuses(500)...)
		*prefix++
		job := fleet.Job{URL: svc.URL, Calls: 100, Workers: workers, Prefix: fmt.Sprintf("bench%d:", *prefix)}
		if shared {
			job.Redis = redisAddr
		}
		if _, err := fleet.Run(exe, nil, procs, job, nil); err != nil {
			svc.Close()
			return err
		}
		fmt.Fprintf(out, "- %s: the server saw %d attempts\n", map[bool]string{false: "local guards", true: "shared guards"}[shared], svc.Total())
		svc.Close()
	}
	fmt.Fprintln(out)
	return nil
}

// redisDies runs the fleet with shared guards while its Redis is killed
// halfway, then with that Redis down from the start.
func redisDies(fleetRun func(n, callsEach, workersEach int, shared bool, onHalf func(), redisAddr string, opts ...servicetest.Option) (result, error), headers []servicetest.Option, out io.Writer) error {
	fmt.Fprintf(out, "## Redis killed mid-run (with RateLimit headers), then Redis down from the start (budget %v)\n\n", redisguard.DefaultBudget)
	victim, err := redistest.Launch()
	if err != nil {
		return err
	}
	defer victim.Close()
	k, err := fleetRun(procs, calls, workers, true, func() { _ = victim.Kill() }, victim.Addr, headers...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "- killed when the first replica was half done: %v\n", k)
	d, err := fleetRun(procs, calls, workers, true, nil, victim.Addr, headers...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "- down from the start: %v\n\n", d)
	return nil
}

func ratio(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }

// happyPath times sequential GETs to an unlimited server with and without
// the store, interleaved, and counts the store's round trips.
func happyPath(addr string, out io.Writer) error {
	const n, rounds = 3000, 5
	svc := servicetest.New()
	defer svc.Close()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	store := redisguard.New(rdb, redisguard.WithPrefix("happy:"))
	defer store.Close()
	plain := resilienthttp.New()
	shared := resilienthttp.New(resilienthttp.WithGuardStore(store))
	timeCalls := func(c *resilienthttp.Client) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, fmt.Sprintf("%s/item/%d", svc.URL, i), nil)
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return time.Since(start) / n, nil
	}
	var without, with []time.Duration
	before := store.Stats().RoundTrips
	for range rounds {
		a, err := timeCalls(plain)
		if err != nil {
			return err
		}
		b, err := timeCalls(shared)
		if err != nil {
			return err
		}
		without, with = append(without, a), append(with, b)
	}
	trips := store.Stats().RoundTrips - before
	slices.Sort(without)
	slices.Sort(with)
	mw, ms := without[rounds/2], with[rounds/2]
	fmt.Fprintf(out, "## happy path: %d sequential GETs, unlimited server, median of %d interleaved rounds\n\n", n, rounds)
	fmt.Fprintf(out, "- without the store: %v per call\n- with the store: %v per call (%.2f×); Redis round trips: %.1f per 1000 calls\n",
		mw, ms, ratio(ms, mw), 1000*float64(trips)/float64(n*rounds))
	fmt.Fprintf(out, "\n(rounds without: %s; with: %s)\n", durs(without), durs(with))
	return nil
}

func durs(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.Round(time.Microsecond / 10).String()
	}
	return strings.Join(s, ", ")
}
