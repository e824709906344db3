package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilienthttp/resilienthttp/servicetest"
)

// params are a run's sizes: the figures, or smaller ones for -quick
// (a CI smoke run that checks every scenario works, not how fast).
type params struct {
	quick bool

	// Scenario 1: calls per measurement, goroutines of the parallel one, and
	// rounds (each contender measured once per round, interleaved, median
	// kept, so drift in machine load hits every contender alike).
	seqN, parN, parWorkers, rounds int

	// Scenario 2.
	rlN, rlWorkers int
	rlQuota        quota

	// Scenario 2n: calls and goroutines (the quota is rlQuota's). Quick
	// mode keeps 32 goroutines, more than nginx's burst holds, so that it
	// still turns some away.
	ngxN, ngxWorkers int

	// Scenario 8: processes, GETs and goroutines per process, the shared
	// quota, and how many times the fleet runs for resilienthttp and for
	// each peer.
	fleetProcs, fleetN, fleetWorkers int
	fleetQuota                       quota
	fleetRuns, fleetPeerRuns         int

	// Scenario 3.
	downN, downWorkers int

	// Scenario 4.
	brownN, brownWorkers int

	// Scenario 5.
	writeN, writeWorkers int

	// Scenario 6: the caller's deadline.
	deadline time.Duration

	// Scenario 7: the upload's size.
	uploadSize int64

	// Bounds on every load run: no call starts after budget, and each call's
	// context expires after perCall.
	budget, perCall time.Duration
}

func fullParams() params {
	return params{
		seqN: 1500, parN: 3000, parWorkers: 32, rounds: 5,
		rlN: 1000, rlWorkers: 32, rlQuota: quota{rps: 200, burst: 20},
		ngxN: 1000, ngxWorkers: 32,
		fleetProcs: 4, fleetN: 300, fleetWorkers: 4, fleetQuota: quota{rps: 400, burst: 40},
		fleetRuns: 5, fleetPeerRuns: 1,
		downN: 400, downWorkers: 16,
		brownN: 2000, brownWorkers: 16,
		writeN: 500, writeWorkers: 16,
		deadline:   2 * time.Second,
		uploadSize: 100 << 20,
		budget:     60 * time.Second, perCall: 30 * time.Second,
	}
}

func quickParams() params {
	return params{
		quick: true,
		seqN:  40, parN: 64, parWorkers: 8, rounds: 1,
		rlN: 40, rlWorkers: 8, rlQuota: quota{rps: 200, burst: 20},
		ngxN: 120, ngxWorkers: 32,
		fleetProcs: 4, fleetN: 30, fleetWorkers: 4, fleetQuota: quota{rps: 400, burst: 40},
		fleetRuns: 2, fleetPeerRuns: 1,
		downN: 16, downWorkers: 16,
		brownN: 64, brownWorkers: 16,
		writeN: 48, writeWorkers: 16,
		deadline:   500 * time.Millisecond,
		uploadSize: 4 << 20,
		budget:     5 * time.Second, perCall: 5 * time.Second,
	}
}

// scenario is one numbered scenario of the issue.
type scenario struct {
	id    string                // "1" to "8", "2n": the numbering
	key   string                // names its chart file
	title func(p params) string // some titles carry the run's sizes
	run   func(p params, keys []string) (*ScenarioResult, error)
}

// fixed is a title that does not depend on the sizes.
func fixed(s string) func(params) string { return func(params) string { return s } }

var scenarios = []scenario{
	{"1", "happy-path", fixed("Happy path: GET 200, keep-alive"), happyPath},
	{"2", "rate-limited", fixed("Rate-limited server (429 + Retry-After)"), rateLimited},
	{"2n", "nginx-rate-limited", func(p params) string {
		return fmt.Sprintf("Rate-limited by a real nginx (limit_req %g r/s, burst %d)", p.rlQuota.rps, p.rlQuota.burst)
	}, nginxLimited},
	{"3", "hard-down", fixed("Hard-down service"), hardDown},
	{"4", "brownout", fixed("Brownout: 30% 500/502/504"), brownout},
	{"5", "duplicate-writes", fixed("Duplicate writes: commit, then 500"), duplicateWrites},
	{"6", "retry-after-deadline", func(p params) string {
		return fmt.Sprintf("Retry-After: 30 under a %s deadline", p.deadline)
	}, retryAfterDeadline},
	{"7", "large-upload", func(p params) string {
		return fmt.Sprintf("%d MiB upload answered 408 once", p.uploadSize>>20)
	}, largeUpload},
	{"8", "fleet", func(p params) string {
		return fmt.Sprintf("A fleet without Redis: %d processes, one shared quota (%g r/s, burst %d)", p.fleetProcs, p.fleetQuota.rps, p.fleetQuota.burst)
	}, fleet},
}

// eachContender runs fn for every contender key, concurrently when
// parallel, and returns the rows in key order. Scenarios whose figures are
// governed by waits (Retry-After, backoff, a server's rate) rather than CPU
// run their contenders side by side, each against its own server, to keep
// the whole run short; CPU- and heap-measuring scenarios never do.
func eachContender(keys []string, parallel bool, fn func(key string) *Row) []*Row {
	rows := make([]*Row, len(keys))
	if !parallel {
		for i, k := range keys {
			rows[i] = fn(k)
		}
		return rows
	}
	var wg sync.WaitGroup
	for i, k := range keys {
		spawn(&wg, func() { rows[i] = fn(k) })
	}
	wg.Wait()
	return rows
}

// ---- 1. Happy path ----

// userBody is a small JSON document, the size of a typical "get resource"
// answer.
const userBody = `{"id":"u-1","name":"Ada Lovelace","email":"ada@example.com","roles":["reader","writer"],"created_at":"2024-01-01T00:00:00Z"}`

// measurement is one timed batch of calls.
type measurement struct {
	nsPerOp, allocsPerOp, bytesPerOp float64
	failures, connsAccepted          int
}

// measure makes n GETs from workers goroutines and returns time and
// allocations per call. Allocations are the whole process's, the in-process
// server's included (its share is the same for every contender, so the
// difference from net/http is the client's own).
func measure(c *contender, srv *servicetest.Server, url string, n, workers int) measurement {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var failures atomic.Int64
	call := func() {
		if !c.do(ctx, request{method: http.MethodGet, url: url}).ok() {
			failures.Add(1)
		}
	}
	conns0 := srv.ConnsAccepted()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if workers <= 1 {
		for range n {
			call()
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			spawn(&wg, func() {
				for next.Add(1) <= int64(n) {
					call()
				}
			})
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	return measurement{
		nsPerOp:       float64(elapsed.Nanoseconds()) / float64(n),
		allocsPerOp:   float64(after.Mallocs-before.Mallocs) / float64(n),
		bytesPerOp:    float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		failures:      int(failures.Load()),
		connsAccepted: srv.ConnsAccepted() - conns0,
	}
}

func medianBy(ms []measurement, f func(measurement) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func happyPath(p params, keys []string) (*ScenarioResult, error) {
	type subject struct {
		c        *contender
		srv      *servicetest.Server
		url      string
		seq, par []measurement
	}
	subjects := make([]*subject, len(keys))
	for i, k := range keys {
		srv := servicetest.New()
		defer srv.Close()
		srv.Script("/", servicetest.Step{Body: userBody, Header: http.Header{"Content-Type": {"application/json"}}})
		subjects[i] = &subject{c: newContender(k, setup{}), srv: srv, url: srv.URL + "/v1/users/u-1"}
	}
	for _, s := range subjects { // warm-up: connections, lazy init, code paths
		measure(s.c, s.srv, s.url, min(p.seqN, 100), 1)
	}
	for range p.rounds {
		for _, s := range subjects {
			s.seq = append(s.seq, measure(s.c, s.srv, s.url, p.seqN, 1))
			s.par = append(s.par, measure(s.c, s.srv, s.url, p.parN, p.parWorkers))
		}
	}
	for _, s := range subjects {
		s.c.closeIdle()
	}

	type med struct{ seqNs, seqAllocs, seqBytes, parNs, parAllocs, connsPer1k float64 }
	meds := make([]med, len(subjects))
	failures := 0
	for i, s := range subjects {
		meds[i] = med{
			seqNs:      medianBy(s.seq, func(m measurement) float64 { return m.nsPerOp }),
			seqAllocs:  medianBy(s.seq, func(m measurement) float64 { return m.allocsPerOp }),
			seqBytes:   medianBy(s.seq, func(m measurement) float64 { return m.bytesPerOp }),
			parNs:      medianBy(s.par, func(m measurement) float64 { return m.nsPerOp }),
			parAllocs:  medianBy(s.par, func(m measurement) float64 { return m.allocsPerOp }),
			connsPer1k: medianBy(s.par, func(m measurement) float64 { return 1000 * float64(m.connsAccepted) / float64(p.parN) }),
		}
		for _, m := range append(s.seq, s.par...) {
			failures += m.failures
		}
	}
	// The floor is net/http when it ran; ratios are blank otherwise.
	base := -1
	for i, k := range keys {
		if k == "nethttp" {
			base = i
		}
	}
	ratio := func(v, b float64) (float64, string) {
		if base < 0 || b == 0 {
			return 0, "–"
		}
		return v / b, fmt.Sprintf("%.2f×", v/b)
	}
	t := &Table{Columns: []string{"contender",
		"sequential ns/op", "× net/http", "allocs/op", "Δ allocs/op vs net/http",
		fmt.Sprintf("%d goroutines ns/op", p.parWorkers), "× net/http", "allocs/op",
		"new conns per 1k calls (parallel)"}}
	for i, k := range keys {
		m := meds[i]
		seqX, seqXs := 0.0, "–"
		parX, parXs := 0.0, "–"
		dAllocs, dAllocsS := 0.0, "–"
		if base >= 0 {
			seqX, seqXs = ratio(m.seqNs, meds[base].seqNs)
			parX, parXs = ratio(m.parNs, meds[base].parNs)
			dAllocs = m.seqAllocs - meds[base].seqAllocs
			dAllocsS = fmt.Sprintf("%+.0f", dAllocs)
		}
		t.Rows = append(t.Rows, &Row{
			Contender: k,
			Cells: []string{contenderNames[k],
				fmt.Sprintf("%.0f", m.seqNs), seqXs, fmt.Sprintf("%.0f", m.seqAllocs), dAllocsS,
				fmt.Sprintf("%.0f", m.parNs), parXs, fmt.Sprintf("%.0f", m.parAllocs),
				fmt.Sprintf("%.0f", m.connsPer1k)},
			Figures: map[string]any{
				"seq_ns_per_op": round(m.seqNs, 0), "seq_ratio_to_nethttp": round(seqX, 3),
				"seq_allocs_per_op": round(m.seqAllocs, 1), "seq_bytes_per_op": round(m.seqBytes, 0),
				"seq_allocs_delta_vs_nethttp": round(dAllocs, 1),
				"par_goroutines":              p.parWorkers,
				"par_ns_per_op":               round(m.parNs, 0), "par_ratio_to_nethttp": round(parX, 3),
				"par_allocs_per_op":              round(m.parAllocs, 1),
				"par_new_conns_per_1000_calls":   round(m.connsPer1k, 1),
				"calls_per_measurement_seq":      p.seqN,
				"calls_per_measurement_parallel": p.parN,
				"rounds":                         p.rounds,
			},
		})
	}
	t.Note = fmt.Sprintf("Median of %d rounds of %d sequential and %d parallel calls per contender, interleaved. "+
		"allocs/op counts the whole process, the in-process server included; the Δ column is the client's own difference. "+
		"Failed calls: %d.", p.rounds, p.seqN, p.parN, failures)
	return &ScenarioResult{Tables: []*Table{t}}, nil
}

// ---- 2. Rate-limited server ----

// hasLimiter marks the peers that have a client-side limiter to be told the
// server's quota.
var hasLimiter = map[string]bool{"retryablehttp-guarded": true, "failsafe": true}

func rateLimited(p params, keys []string) (*ScenarioResult, error) {
	q := p.rlQuota
	ideal := float64(p.rlN-q.burst) / q.rps
	variants := []struct {
		name    string
		told    bool
		headers bool
	}{
		{"(a) peers' limiters told the quota", true, false},
		{"(b) nobody told the quota", false, false},
		{"(c) not told; server sends RateLimit and X-RateLimit headers", false, true},
	}
	res := &ScenarioResult{}
	tables := make([]*Table, len(variants))
	run := func(vi int) {
		v := variants[vi]
		rows := eachContender(keys, true, func(k string) *Row {
			opts := []servicetest.Option{servicetest.WithRateLimit(q.rps, q.burst)}
			if v.headers {
				opts = append(opts, servicetest.WithRateLimitHeaders(servicetest.IETFHeaders|servicetest.XRateLimitHeaders))
			}
			srv := servicetest.New(opts...)
			defer srv.Close()
			var s setup
			// Only the peers with a client-side limiter can be told;
			// resilienthttp never is.
			if v.told && hasLimiter[k] {
				s.told = &q
			}
			c := newContender(k, s)
			url := srv.URL + "/v1/items"
			l := runLoad(p.rlN, p.rlWorkers, p.budget, p.perCall, func(ctx context.Context, i int) outcome {
				return c.do(ctx, request{method: http.MethodGet, url: url + "/" + strconv.Itoa(i)})
			})
			c.closeIdle()
			told := "no"
			switch {
			case s.told != nil:
				told = "yes"
			case !hasLimiter[k] && k != "resilienthttp":
				told = "n/a"
			}
			n429 := statusCount(srv, http.StatusTooManyRequests)
			lat := l.latencies()
			return &Row{
				Contender: k,
				Cells: []string{contenderNames[k], told, fmt.Sprintf("%.2f", l.wall.Seconds()), fmt.Sprintf("%.2f×", l.wall.Seconds()/ideal),
					strconv.Itoa(n429), strconv.Itoa(srv.Total()), strconv.Itoa(l.failures()), strconv.Itoa(l.notRun),
					ms(percentile(lat, 99))},
				Figures: map[string]any{
					"told_quota": s.told != nil, "wall_s": round(l.wall.Seconds(), 3), "ideal_s": round(ideal, 3),
					"wall_over_ideal": round(l.wall.Seconds()/ideal, 3), "status_429_received": n429,
					"attempts_at_server": srv.Total(), "failures": l.failures(), "not_run": l.notRun,
					"p99_latency_ms": msF(percentile(lat, 99)), "calls": p.rlN, "goroutines": p.rlWorkers,
				},
			}
		})
		tables[vi] = &Table{
			Variant: v.name,
			Columns: []string{"contender", "told quota", "wall s", "× ideal", "429s received", "attempts at server", "failures", "not run", "p99 latency ms"},
			Rows:    rows,
		}
	}
	// All variants at once too: every run has its own server and client,
	// and the figures are set by the servers' rates and the clients' waits
	// (the whole scenario uses a fraction of one core); one after the
	// other, the slowest contender's ~35 s would count three times.
	var wg sync.WaitGroup
	for vi := range variants {
		spawn(&wg, func() { run(vi) })
	}
	wg.Wait()
	tables[len(tables)-1].Note = fmt.Sprintf("servicetest.WithRateLimit(%g, %d): a token bucket; beyond it, 429 with Retry-After of the whole seconds until a token is free (at least 1). "+
		"%d GETs from %d goroutines; ideal wall time (%d−%d)/%g = %.1f s. "+
		"\"told quota\" n/a: the contender has no limiter to tell. Failures are calls that ended in an error or a status ≥ 400.",
		q.rps, q.burst, p.rlN, p.rlWorkers, p.rlN, q.burst, q.rps, ideal)
	res.Tables = tables
	return res, nil
}

// ---- 3. Hard-down service ----

func hardDown(p params, keys []string) (*ScenarioResult, error) {
	variants := []struct {
		name   string
		status int
	}{
		{"503 to everything, no Retry-After", http.StatusServiceUnavailable},
		{"500 to everything (retrying idempotent GETs is allowed)", http.StatusInternalServerError},
	}
	res := &ScenarioResult{}
	var wg sync.WaitGroup
	res.Tables = make([]*Table, len(variants))
	for vi, v := range variants {
		// Both variants at once: their figures are attempt counts and
		// backoff sleeps, not CPU.
		spawn(&wg, func() {
			rows := eachContender(keys, true, func(k string) *Row {
				srv := servicetest.New()
				defer srv.Close()
				srv.Script("/", servicetest.Step{Status: v.status})
				c := newContender(k, setup{})
				url := srv.URL + "/v1/items"
				l := runLoad(p.downN, p.downWorkers, p.budget, p.perCall, func(ctx context.Context, i int) outcome {
					return c.do(ctx, request{method: http.MethodGet, url: url + "/" + strconv.Itoa(i)})
				})
				c.closeIdle()
				lat := l.latencies()
				per := float64(srv.Total()) / float64(max(len(l.outcomes), 1))
				return &Row{
					Contender: k,
					Cells: []string{contenderNames[k], strconv.Itoa(srv.Total()), fmt.Sprintf("%.2f", per),
						ms(percentile(lat, 50)), ms(percentile(lat, 99)), strconv.Itoa(l.failures()), fmt.Sprintf("%.2f", l.wall.Seconds())},
					Figures: map[string]any{
						"attempts_at_server": srv.Total(), "attempts_per_call": round(per, 3),
						"p50_time_to_fail_ms": msF(percentile(lat, 50)), "p99_time_to_fail_ms": msF(percentile(lat, 99)),
						"failures": l.failures(), "not_run": l.notRun, "wall_s": round(l.wall.Seconds(), 3),
						"calls": p.downN, "goroutines": p.downWorkers, "status": v.status,
					},
				}
			})
			res.Tables[vi] = &Table{
				Variant: v.name,
				Columns: []string{"contender", "attempts at server", "attempts per call", "p50 time to fail ms", "p99 time to fail ms", "failures", "wall s"},
				Rows:    rows,
			}
		})
	}
	wg.Wait()
	res.Tables[len(res.Tables)-1].Note = fmt.Sprintf("%d GETs from %d goroutines; every path answers the status, forever.", p.downN, p.downWorkers)
	return res, nil
}

// ---- 4. Brownout ----

func brownout(p params, keys []string) (*ScenarioResult, error) {
	const seed = 42
	rows := eachContender(keys, true, func(k string) *Row {
		srv := servicetest.New(servicetest.WithFailureRatio(0.3, []int{500, 502, 504}, seed))
		defer srv.Close()
		c := newContender(k, setup{})
		url := srv.URL + "/v1/items"
		// Contexts held open until the connections are counted: a
		// connection an unclosed response body pins is then still pinned.
		l := runLoadHeld(p.brownN, p.brownWorkers, p.budget, p.perCall, func(ctx context.Context, i int) outcome {
			return c.do(ctx, request{method: http.MethodGet, url: url + "/" + strconv.Itoa(i)})
		})
		c.closeIdle()
		open := settleConns(srv)
		l.release()
		c.closeIdle()
		openAfterCancel := settleConns(srv)
		lat := l.latencies()
		ok := len(l.outcomes) - l.failures()
		rate := 100 * float64(ok) / float64(max(len(l.outcomes), 1))
		per := float64(srv.Total()) / float64(max(len(l.outcomes), 1))
		return &Row{
			Contender: k,
			Cells: []string{contenderNames[k], fmt.Sprintf("%.1f%%", rate), fmt.Sprintf("%.2f", per),
				ms(percentile(lat, 50)), ms(percentile(lat, 99)), strconv.Itoa(srv.ConnsAccepted()), strconv.Itoa(open),
				strconv.Itoa(openAfterCancel)},
			Figures: map[string]any{
				"success_rate_pct": round(rate, 2), "successes": ok, "failures": l.failures(), "not_run": l.notRun,
				"attempts_at_server": srv.Total(), "attempts_per_call": round(per, 3),
				"p50_latency_ms": msF(percentile(lat, 50)), "p99_latency_ms": msF(percentile(lat, 99)),
				"conns_accepted": srv.ConnsAccepted(), "conns_open_after_close_idle": open,
				"conns_open_after_contexts_cancelled": openAfterCancel,
				"wall_s":                              round(l.wall.Seconds(), 3), "calls": p.brownN, "goroutines": p.brownWorkers,
			},
		}
	})
	t := &Table{
		Columns: []string{"contender", "success rate", "attempts per call", "p50 ms", "p99 ms", "TCP conns accepted", "conns open after CloseIdleConnections", "… and after the contexts ended"},
		Rows:    rows,
		Note: fmt.Sprintf("servicetest.WithFailureRatio(0.3, 500/502/504, seed %d); %d GETs from %d goroutines. "+
			"The calls' contexts stay alive until the connections are counted, as with context.Background() or a long-lived server context; "+
			"connections still open after CloseIdleConnections are pinned by response bodies nobody closed "+
			"(they close when the calls' contexts are cancelled, which a caller's `defer cancel()` would do at once).", seed, p.brownN, p.brownWorkers),
	}
	return &ScenarioResult{Tables: []*Table{t}}, nil
}

// ---- 5. Duplicate writes ----

func duplicateWrites(p params, keys []string) (*ScenarioResult, error) {
	const seed = 7
	rows := eachContender(keys, true, func(k string) *Row {
		srv := servicetest.New(servicetest.WithCommitThenFail(0.3, http.StatusInternalServerError, seed))
		defer srv.Close()
		c := newContender(k, setup{})
		url := srv.URL + "/v1/orders"
		failed := make([]bool, p.writeN)
		l := runLoad(p.writeN, p.writeWorkers, p.budget, p.perCall, func(ctx context.Context, i int) outcome {
			o := c.do(ctx, request{method: http.MethodPost, url: url, body: fmt.Appendf(nil, `{"order_id":"o-%d"}`, i)})
			failed[i] = !o.ok() // each i is written by one worker only
			return o
		})
		c.closeIdle()
		// A write the caller was told failed but the server did commit is
		// one the caller must reconcile (or, naively retrying, duplicate).
		committedButFailed := 0
		for i, f := range failed {
			if f && srv.Commits("o-"+strconv.Itoa(i)) > 0 {
				committedButFailed++
			}
		}
		per := float64(srv.Total()) / float64(max(len(l.outcomes), 1))
		return &Row{
			Contender: k,
			Cells: []string{contenderNames[k], strconv.Itoa(srv.DuplicateCommits()), strconv.Itoa(l.failures()),
				strconv.Itoa(committedButFailed), fmt.Sprintf("%.2f", per)},
			Figures: map[string]any{
				"duplicate_commits": srv.DuplicateCommits(), "failures": l.failures(), "not_run": l.notRun,
				"reported_failed_but_committed": committedButFailed, "attempts_at_server": srv.Total(),
				"attempts_per_call": round(per, 3), "wall_s": round(l.wall.Seconds(), 3),
				"calls": p.writeN, "goroutines": p.writeWorkers,
			},
		}
	})
	t := &Table{
		Columns: []string{"contender", "duplicate commits", "calls reported failed", "reported failed, but committed", "attempts per call"},
		Rows:    rows,
		Note: fmt.Sprintf(`%d POSTs of {"order_id":"o-N"} (no Idempotency-Key) from %d goroutines; servicetest.WithCommitThenFail(0.3, 500, seed %d): `+
			"the server commits, then answers 500, for about 30%% of the writes.", p.writeN, p.writeWorkers, seed),
	}
	return &ScenarioResult{Tables: []*Table{t}}, nil
}

// ---- 6. Retry-After longer than the deadline ----

func retryAfterDeadline(p params, keys []string) (*ScenarioResult, error) {
	variants := []struct {
		name   string
		status int
	}{
		{"503 with Retry-After: 30", http.StatusServiceUnavailable},
		{"429 with Retry-After: 30", http.StatusTooManyRequests},
	}
	res := &ScenarioResult{}
	res.Tables = make([]*Table, len(variants))
	var wg sync.WaitGroup
	for vi, v := range variants {
		spawn(&wg, func() {
			rows := eachContender(keys, true, func(k string) *Row {
				srv := servicetest.New()
				defer srv.Close()
				srv.Script("/", servicetest.Step{Status: v.status, RetryAfter: "30"})
				c := newContender(k, setup{})
				ctx, cancel := context.WithTimeout(context.Background(), p.deadline)
				defer cancel()
				o := c.do(ctx, request{method: http.MethodGet, url: srv.URL + "/v1/items/1"})
				c.closeIdle()
				types, msg := describeErr(o.err, srv.URL, 170)
				if o.err == nil {
					types = "(none)"
				}
				return &Row{
					Contender: k,
					Cells: []string{contenderNames[k], fmt.Sprintf("%.3f", o.elapsed.Seconds()), strconv.Itoa(srv.Total()),
						outcomeText(o), "`" + types + "`", mdEscape(msg)},
					Figures: map[string]any{
						"time_to_return_s": round(o.elapsed.Seconds(), 4), "attempts_at_server": srv.Total(),
						"outcome": outcomeText(o), "error_types": types, "error_message": msg,
						"deadline_s": p.deadline.Seconds(),
					},
				}
			})
			res.Tables[vi] = &Table{
				Variant: v.name,
				Columns: []string{"contender", "time to return s", "attempts", "caller got", "error type chain", "error message (trimmed)"},
				Rows:    rows,
			}
		})
	}
	wg.Wait()
	res.Tables[len(res.Tables)-1].Note = fmt.Sprintf("One GET per contender with context.WithTimeout(%s); the server answers every attempt the same way.", p.deadline)
	return res, nil
}

// ---- 7. Large upload ----

func largeUpload(p params, keys []string) (*ScenarioResult, error) {
	path, err := makeUploadFile(p.uploadSize)
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	variants := []struct {
		name   string
		stream bool
	}{
		{"the body is the *os.File", false},
		{"the same file behind a plain io.Reader (a pipe, a decompressor: nothing to rewind)", true},
	}
	mib := float64(p.uploadSize) / (1 << 20)
	res := &ScenarioResult{}
	for _, v := range variants {
		// One at a time, never side by side: the heap is the process's.
		rows := eachContender(keys, false, func(k string) *Row {
			srv := servicetest.New()
			defer srv.Close()
			srv.Script("/v1/uploads", servicetest.Statuses(http.StatusRequestTimeout, http.StatusOK)...)
			c := newContender(k, setup{})
			f, err := os.Open(path)
			if err != nil {
				return &Row{Contender: k, Cells: []string{contenderNames[k], "error: " + err.Error()}}
			}
			defer f.Close()
			r := request{method: http.MethodPut, url: srv.URL + "/v1/uploads", size: p.uploadSize}
			if v.stream {
				r.stream = struct{ io.Reader }{f} // hides Seek, Close and WriteTo
			} else {
				r.file = f
			}
			ctx, cancel := context.WithTimeout(context.Background(), p.perCall)
			defer cancel()
			var o outcome
			base, peak := peakHeapDuring(func() { o = c.do(ctx, r) })
			c.closeIdle()
			grow := float64(peak-base) / (1 << 20)
			sent := int64(0)
			for _, rec := range srv.Requests() {
				sent += rec.BodyLen
			}
			return &Row{
				Contender: k,
				Cells: []string{contenderNames[k], fmt.Sprintf("%.1f", grow), strconv.Itoa(srv.Total()),
					fmt.Sprintf("%.0f", float64(sent)/(1<<20)), outcomeText(o), fmt.Sprintf("%.2f", o.elapsed.Seconds())},
				Figures: map[string]any{
					"peak_heap_growth_mib": round(grow, 2), "heap_baseline_mib": round(float64(base)/(1<<20), 2),
					"attempts_at_server": srv.Total(), "mib_received_by_server": round(float64(sent)/(1<<20), 1),
					"outcome": outcomeText(o), "ok": o.ok(), "elapsed_s": round(o.elapsed.Seconds(), 3),
					"upload_mib": mib,
				},
			}
		})
		res.Tables = append(res.Tables, &Table{
			Variant: v.name,
			Columns: []string{"contender", "peak heap growth MiB", "attempts", "MiB received by server", "caller got", "s"},
			Rows:    rows,
		})
	}
	res.Tables[len(res.Tables)-1].Note = fmt.Sprintf("A %.0f MiB PUT with Content-Length set; the server reads the whole body, answers 408, then 200. "+
		"Heap is sampled every 1 ms (runtime/metrics /memory/classes/heap/objects:bytes) and given above its level before the call; "+
		"about 1–2 MiB of it is the in-process server's (it keeps the first 1 MiB of each body). "+
		"go-retryablehttp's and failsafe-go's default policies do not retry 408, so they return it after one attempt; "+
		"with the plain io.Reader they have read the whole body into memory before that attempt all the same.", mib)
	return res, nil
}

// makeUploadFile writes a temporary file of size bytes and returns its path.
func makeUploadFile(size int64) (string, error) {
	f, err := os.CreateTemp("", "bench-upload-*.bin")
	if err != nil {
		return "", err
	}
	chunk := []byte(strings.Repeat("0123456789abcdef", 4096)) // 64 KiB
	for left := size; left > 0; left -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
			f.Close()
			os.Remove(f.Name())
			return "", err
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// peakHeapDuring runs fn while sampling the heap every millisecond, and
// returns the heap before fn and the highest sample. runtime/metrics reads
// without stopping the world, unlike runtime.ReadMemStats.
func peakHeapDuring(fn func()) (base, peak uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	runtime.GC()
	base = read()
	peak = base
	done := make(chan struct{})
	var wg sync.WaitGroup
	spawn(&wg, func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				peak = max(peak, read())
			}
		}
	})
	fn()
	close(done)
	wg.Wait()
	return base, max(peak, read())
}

// ---- load runs and their figures ----

// loadResult is what a bounded load run produced.
type loadResult struct {
	outcomes []outcome // the calls that ran, in completion order
	notRun   int       // calls never started because the run's time budget ran out
	wall     time.Duration
	release  func() // cancels the calls' contexts
}

// runLoad makes total calls from workers goroutines, call i being fn(ctx, i).
// It is bounded in count (total) and in time: no call starts after budget,
// and each call's context expires after perCall, so a stuck library cannot
// hold the run. Each call's context is cancelled as soon as the call returns,
// as a caller's `defer cancel()` does.
func runLoad(total, workers int, budget, perCall time.Duration, fn func(ctx context.Context, i int) outcome) loadResult {
	l := runLoadHeld(total, workers, budget, perCall, fn)
	l.release()
	return l
}

// runLoadHeld is runLoad with the calls' contexts left alive until the
// result's release is called, as for a caller whose context outlives the call
// (a long-lived server context, context.Background()): anything a library
// left hanging on an attempt's context is then still hanging when counted.
func runLoadHeld(total, workers int, budget, perCall time.Duration, fn func(ctx context.Context, i int) outcome) loadResult {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		outcomes = make([]outcome, 0, total)
		cancels  = make([]context.CancelFunc, 0, total)
		wg       sync.WaitGroup
	)
	start := time.Now()
	stopAt := start.Add(budget)
	for range workers {
		spawn(&wg, func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total || time.Now().After(stopAt) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), perCall)
				o := fn(ctx, i)
				mu.Lock()
				outcomes = append(outcomes, o)
				cancels = append(cancels, cancel)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return loadResult{
		outcomes: outcomes, notRun: total - len(outcomes), wall: time.Since(start),
		release: func() {
			for _, c := range cancels {
				c()
			}
		},
	}
}

// failures counts the calls that did not succeed from the caller's view.
func (l loadResult) failures() int {
	n := 0
	for _, o := range l.outcomes {
		if !o.ok() {
			n++
		}
	}
	return n
}

// latencies returns the calls' durations, sorted.
func (l loadResult) latencies() []time.Duration {
	d := make([]time.Duration, len(l.outcomes))
	for i, o := range l.outcomes {
		d[i] = o.elapsed
	}
	slices.Sort(d)
	return d
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted durations
// by the nearest-rank method, or 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// statusCount counts the requests the server answered with status.
func statusCount(srv *servicetest.Server, status int) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Status == status {
			n++
		}
	}
	return n
}

// settleConns waits, briefly and boundedly, for the server to notice the
// connections the client closed (it learns of a close only when its read
// returns, a moment later), and returns how many are still open.
func settleConns(srv *servicetest.Server) int {
	prev, stable := srv.ConnsOpen(), 0
	for range 100 {
		time.Sleep(10 * time.Millisecond)
		cur := srv.ConnsOpen()
		if cur == 0 {
			return 0
		}
		if cur == prev {
			if stable++; stable == 3 {
				return cur
			}
		} else {
			stable = 0
		}
		prev = cur
	}
	return prev
}

// describeErr names an error by the types along its chain and gives its
// message, with the server's URL (its port changes every run) shortened to
// $URL and trimmed: "*url.Error > context.deadlineExceededError".
func describeErr(err error, serverURL string, max int) (types, msg string) {
	if err == nil {
		return "", ""
	}
	var names []string
	for e := err; e != nil && len(names) < 4; e = errors.Unwrap(e) {
		names = append(names, fmt.Sprintf("%T", e))
	}
	return strings.Join(names, " > "), trim(strings.ReplaceAll(err.Error(), serverURL, "$URL"), max)
}

// trim shortens s to at most n runes, marking the cut.
func trim(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// outcomeText says in a few words what the caller got.
func outcomeText(o outcome) string {
	switch {
	case o.err == nil:
		return fmt.Sprintf("response %d", o.status)
	case o.status != 0:
		return fmt.Sprintf("error (status %d)", o.status)
	}
	return "error"
}

// spawn runs fn in a goroutine counted by wg (sync.WaitGroup.Go needs Go
// 1.25; this module keeps the core's go 1.24).
func spawn(wg *sync.WaitGroup, fn func()) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
}
