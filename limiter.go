package resilienthttp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// LimiterSettings configures the client-side rate limiter, which keeps one
// state per host. Its zero value is the default: no fixed limit, adaptive
// pacing on, first-contact probe on.
//
// The first-contact probe: until a host first answers with something other
// than a 5xx or a 429, one request to it at a time goes out as its probe, so
// that the probe's rate-limit headers can pace the rest before they spend
// the server's burst, and a host down from the start is not sent every
// caller's request at once. Other calls to the host wait for the probe's
// answer, but never past 100 ms after the probe went out, nor into their
// deadline: then they go anyway, so a slow first answer delays them by at
// most that. A probe that fails (a transport error, a 5xx, a 429, a panic
// in the base transport) passes the turn to the next call. Once the probe
// is answered well, and unless its answer declared a quota, the calls that
// waited go out at a ramp, not all at once: 4 at once, then 1000 a second,
// a pace that doubles every 10 ms while answers come and is lifted after
// 100 ms; so against a rate-limited host the first refusal comes back
// before the other callers have spent its burst, and they meet one refusal,
// not one each. A fixed Rate goes without the probe and the ramp, since the
// caller has declared the pace, as does NoFirstContactProbe.
type LimiterSettings struct {
	// Rate is a fixed limit on requests per second to each host, with Burst
	// requests allowed at once. Zero (or +Inf) means no fixed limit: the
	// client starts unlimited and paces itself from what the server says
	// (adaptive).
	Rate float64
	// Burst is the number of requests the fixed limit lets through at once.
	// Zero means 1.
	Burst int
	// Static turns adaptive pacing off: 429 answers and rate-limit headers
	// no longer change the limit. Retry-After still pauses the host.
	Static bool
	// NoFirstContactProbe turns the first-contact probe off: calls to a
	// host the client has not heard from yet go out at once, however many.
	// The zero value keeps the probe on (unless Rate is a fixed limit).
	NoFirstContactProbe bool
	// Key scopes the limiter within a host: requests for which it returns
	// the same string share one pace, one pause and one learned quota, and
	// a 429 in one scope leaves the others alone. Nil means one scope per
	// host, which is right for a service that limits per account or per
	// endpoint; set it for one that limits per operation or per partition
	// (RateLimit-Policy's pk), e.g. by method and route. A host keeps up
	// to 256 scopes; requests of further scopes share the host's own. The
	// circuit breaker and the retry budget stay per host (WithHostKey).
	Key func(*http.Request) string
}

// ErrRateLimited is returned, wrapped in a *RateLimitError, when waiting for
// the client-side rate limiter (or for a host's Retry-After pause) would pass
// the call's deadline: the call fails at once and sends nothing.
var ErrRateLimited = errors.New("resilienthttp: rate limited")

// RateLimitError says which host's limiter refused a call and how long the
// call would have had to wait. errors.Is(err, ErrRateLimited) is true.
type RateLimitError struct {
	Host string
	Wait time.Duration
}

// Error names the host and the wait it would have needed.
func (e *RateLimitError) Error() string {
	return fmt.Sprintf("resilienthttp: rate limited: %s needs a wait of %s, past the deadline", e.Host, e.Wait.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// Adaptive pacing parameters. On a 429 the limit drops to a share of the
// rate the client was sending at (multiplicative decrease); each accepted
// answer (any that is not throttling; see observe) raises it (additive
// increase), quickly until the first decrease has shown roughly where the
// server's limit is, slowly after.
const (
	decreaseFactor  = 0.5  // share of the sending rate kept on a 429 ending slow start
	steadyFactor    = 0.85 // share kept on later 429s, once the pace is near the limit
	climbShare      = 0.25 // share of the first cut's pace the pace climbs per second past slow start, at least, doubling each calm second
	timeRaise       = 10.0 // req/s the pace climbs per second past slow start, at least, doubling each calm second
	measuredShare   = 0.92 // share of the rate accepted while saturated that a cut keeps
	fastStartStep   = 3.0  // the same, after a cut by 429s (see increase)
	slowStartStep   = 2.0  // req/s added per accepted answer before the second decrease
	additiveStep    = 0.05 // req/s added per accepted answer after it
	headerHeadroom  = 0.99 // share of a declared quota used, against clock skew and rounding
	probeShare      = 0.9  // share of the last measured limit above which the pace climbs slowly (the measure includes the burst spent)
	minAdaptiveRate = 1.0  // req/s: adaptive pacing never stops a host
)

// pacedPause is the longest Retry-After that, once the limiter paces the
// host from an earlier refusal, holds only the call that got it. The first
// wave of refusals pauses the host and measures it; after that a short
// Retry-After on one request means that request came a little early, which
// the pace answers by slowing down, not by stopping every caller again. A
// longer one (maintenance, say) still pauses the host.
const pacedPause = 2 * time.Second

// maxResumeBurst bounds the burst with which the pace resumes after the
// first refusals' pause (see decrease): the requests a host accepted
// before it first refused say how much it lets through at once only when
// they came in a short burst.
const maxResumeBurst = 64

// hostLimiter is one host's pacing state.
type hostLimiter struct {
	settings LimiterSettings
	// maxPause is the client's Policy.MaxRetryAfter: no pause or pace the
	// server asks for may hold the host longer (see pauseFor, declare).
	maxPause time.Duration
	// lim is replaced, not reconfigured, when a declared quota arrives, so
	// the new pace starts with the burst the server says is left.
	lim atomic.Pointer[rate.Limiter]
	// limited is false while the limit is infinite, so the common case
	// skips the limiter's lock.
	limited atomic.Bool
	// pausedUntil is when a Retry-After (or an exhausted rate-limit
	// window) seen on any request to the host ends, and heldUntil when
	// the hold after a refusal does (see backOff), in Unix nanoseconds.
	// A hold is this client's own: it is not shared with a fleet.
	pausedUntil atomic.Int64
	heldUntil   atomic.Int64
	// probed is closed when the host first answers well, or at once when
	// there is no probe (see LimiterSettings). Until then one request at a
	// time is the probe, holding probeSlot's single token, and the others
	// wait for its answer until firstContactWait after probeStart.
	probed    chan struct{}
	probeSlot chan struct{}
	probeOnce sync.Once
	// probeStart is when the probe out now took its turn, in Unix
	// nanoseconds; 0 while no probe is out or it has not yet noted it,
	// which gives a waiter the whole firstContactWait.
	probeStart atomic.Int64

	accepted atomic.Int64 // answers not throttled since windowStart
	good     pathSet      // paths the host has answered well
	// adapting is set by the first cut: the pace now answers the host's
	// load, and a short Retry-After holds only the call that got it (see
	// pacedPause).
	adapting atomic.Bool

	mu          sync.Mutex // adaptive state below
	recent      acceptedWindow
	windowStart time.Time
	decreases   int
	lastCut     time.Time
	ceiling     float64 // from RateLimit-Policy; +Inf when none
	// measured is the rate the server accepted while saturated, at the last
	// 429: the pace climbs back to just under it quickly, past it slowly.
	measured float64
	// basePace is the pace the first cut set, from what the host let
	// through before it first refused: about the same for every client
	// that met it at once, and so the unit of the climb past slow start
	// (see raiseStep).
	basePace float64
	// partition is the pk of the first partitioned rate-limit fields seen,
	// and mixedPartitions says another has been seen since (see
	// samePartition).
	partition       string
	mixedPartitions bool
	// lastRaise is when the pace last rose (see increase).
	lastRaise time.Time
	// ramping is set while the first-contact ramp paces the host (see
	// rampStart), until rampUntil (Unix nanoseconds) at the latest;
	// rampRaise is when its pace last doubled.
	ramping   atomic.Bool
	rampUntil atomic.Int64
	rampRaise time.Time
	// cutCount counts the cuts of the pace (see decrease).
	cutCount atomic.Uint32
	// refusals counts the refusals whose callers may still be waiting
	// out their Retry-After, until refusedUntil (Unix nanoseconds), when
	// the last of them is over (see backOff).
	refusals     atomic.Int32
	refusedUntil atomic.Int64
	// lastCutRetried says the last cut came from a 429, which callers
	// repeat, rather than from a 503, which they do not.
	lastCutRetried bool

	// share, when the client has a GuardStore, tells the fleet of each
	// pace this limiter sets itself (declared, cut, raised); nil shares
	// nothing. followed is the bits of the last fleet pace taken (see
	// follow).
	share    func(FleetEvent)
	followed atomic.Uint64
	// replicas is how many replicas of the fleet use this scope now (0
	// or 1 outside a fleet): what this one sees of the host's traffic
	// is about its share of it (see fleetShare).
	replicas atomic.Int32
	// fleetAccepted is the bits of the rate the host accepted from the
	// whole fleet lately, as the store measured it (0: unknown).
	fleetAccepted atomic.Uint64
}

// fleetShare is what the local counts of accepted answers are multiplied
// by to estimate the host's whole traffic, and a raise in time divided
// by so that the fleet's pace climbs as one client's would: 1 outside a
// fleet, the number of replicas using the scope in one.
func (h *hostLimiter) fleetShare() float64 {
	return float64(max(h.replicas.Load(), 1))
}

func newHostLimiter(s LimiterSettings, maxPause time.Duration, now time.Time) *hostLimiter {
	h := &hostLimiter{settings: s, maxPause: maxPause, probed: make(chan struct{}), probeSlot: make(chan struct{}, 1),
		windowStart: now, ceiling: math.Inf(1)}
	h.probeSlot <- struct{}{}
	fixed := s.Rate > 0 && !math.IsInf(s.Rate, 1)
	if fixed || s.NoFirstContactProbe {
		close(h.probed)
	}
	if fixed {
		b := s.Burst
		if b <= 0 {
			b = 1
		}
		h.lim.Store(rate.NewLimiter(rate.Limit(s.Rate), b))
		h.limited.Store(true)
	} else {
		h.lim.Store(rate.NewLimiter(rate.Inf, 1))
	}
	return h
}

// firstContactWait is the longest a call to a new host waits for the
// first-contact probe's answer, counted from when the probe went out. It is
// long enough for a first answer from a host nearby (a connection, a TLS
// handshake and a quick answer), whose rate-limit headers then pace the
// calls that waited, and short enough that a slow first answer costs the
// others no more than one step of the limiter's own waits
// (maxReservation). Past it the probe has nothing to teach them in time.
const firstContactWait = 100 * time.Millisecond

// When the first-contact probe is answered well, a host the client knows
// nothing more of is paced at rampStart requests per second with a burst
// of rampBurst, a pace that doubles every rampStep while answers come,
// until it passes rampEnd or rampFor has passed: then the host is left
// unpaced. Sent at once, the callers that waited for the probe spend a
// rate-limited host's burst in the same instant, and those answered first
// go again before the refusals of the rest have paused the host, so the
// first wave of refusals is as large as the callers are many; at the
// ramp's pace the first refusal comes back before the next few requests
// go. The burst is small for the sake of other clients meeting the host at
// the same moment (replicas started together): a few requests at once
// from each, then one at a time, interleave, so each takes about an equal
// share of the host's burst before the first refusals, and each resumes
// from that share after the pause they bring (see decrease). A caller that
// sends fewer than rampStart requests a second never waits for the ramp.
const (
	rampStart = 1000.0
	rampBurst = 4
	rampStep  = 10 * time.Millisecond
	rampEnd   = 50000.0
	rampFor   = 100 * time.Millisecond
)

// wait blocks until the host may be sent a request: its turn as the probe,
// or the probe's answer (see awaitProbe), until the host has answered well;
// then past any pause and within the limiter's pace. A pace that would pass
// ctx's deadline fails at once with a *RateLimitError. When probe is true
// the caller must report how the attempt went with endProbe, whatever
// happens to it.
func (h *hostLimiter) wait(ctx context.Context, host string, clk Clock) (probe bool, err error) {
	select {
	case <-h.probed:
	default:
		if probe, err = h.awaitProbe(ctx, clk); err != nil {
			return false, err
		}
	}
	if err := h.pace(ctx, host, clk); err != nil {
		if probe {
			h.endProbe(false)
		}
		return false, err
	}
	return probe, nil
}

// awaitProbe is wait's first step for a host that has not answered well
// yet. The caller becomes the probe if none is out (probe true); otherwise
// it waits for the probe's answer until firstContactWait after the probe
// went out, short of ctx's deadline, and goes as the probe if the probe
// failed meanwhile, alongside it if not (probe false). It fails only when
// ctx is done.
func (h *hostLimiter) awaitProbe(ctx context.Context, clk Clock) (probe bool, err error) {
	select {
	case <-h.probeSlot:
		h.probeStart.Store(clk.Now().UnixNano())
		return true, nil
	default:
	}
	now := clk.Now()
	d := firstContactWait
	if start := h.probeStart.Load(); start != 0 {
		d -= time.Duration(now.UnixNano() - start)
	}
	if deadline, ok := ctx.Deadline(); d <= 0 || ok && now.Add(d).After(deadline) {
		return false, nil
	}
	defer func() { noteLimiterWait(ctx, LimiterFirstContact, clk.Now().Sub(now)) }()
	// Clock has no timer to select on: a goroutine sleeps for the caller,
	// and cancelling its context ends it whichever way the caller goes.
	sleepCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	timeUp := make(chan error, 1)
	go func() { timeUp <- clk.Sleep(sleepCtx, d) }()
	select {
	case <-h.probed:
		return false, nil
	case <-h.probeSlot:
		h.probeStart.Store(clk.Now().UnixNano())
		return true, nil
	case err := <-timeUp:
		return false, err // nil, or ctx's error: sleepCtx is not cancelled yet
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// endProbe ends a probe: a good answer opens the gate for everyone, anything
// else passes the turn to the next caller.
func (h *hostLimiter) endProbe(answeredWell bool) {
	if answeredWell {
		h.probeOnce.Do(func() { close(h.probed) })
		return
	}
	h.probeStart.Store(0)
	h.probeSlot <- struct{}{}
}

// startRamp begins the first-contact ramp (see rampStart) when the host
// first answers well, unless that answer declared a quota.
func (h *hostLimiter) startRamp(now time.Time) {
	if h.settings.Static {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.limited.Load() {
		return // a declared quota, or a ramp already
	}
	h.lim.Store(rate.NewLimiter(rampStart, rampBurst))
	h.rampRaise = now
	h.rampUntil.Store(now.Add(rampFor).UnixNano())
	h.ramping.Store(true)
	h.limited.Store(true)
}

// endRamp ends the first-contact ramp, if it is on, leaving the host
// unpaced.
func (h *hostLimiter) endRamp() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ramping.Load() {
		h.lim.Store(rate.NewLimiter(rate.Inf, 1))
		h.limited.Store(false)
		h.stopRamp()
	}
}

// stopRamp marks the ramp over, by its end or by what the host said;
// h.mu must be held.
func (h *hostLimiter) stopRamp() {
	h.ramping.Store(false)
	h.rampUntil.Store(0)
}

// gateOpen reports whether the host has answered well (or needs no probe).
func (h *hostLimiter) gateOpen() bool {
	select {
	case <-h.probed:
		return true
	default:
		return false
	}
}

// answeredWell reports whether an attempt's outcome opens the first-contact
// gate: any answer but a throttle or a server failure.
func answeredWell(a *answer) bool {
	return a.err == nil && a.status() < 500 && a.status() != http.StatusTooManyRequests
}

// pace waits out any pause of the host, then for the limiter.
func (h *hostLimiter) pace(ctx context.Context, host string, clk Clock) error {
	for {
		if err := h.waitPause(ctx, host, clk); err != nil {
			return err
		}
		if !h.limited.Load() {
			return nil
		}
		now := clk.Now()
		if until := h.rampUntil.Load(); until != 0 && now.UnixNano() >= until {
			h.endRamp()
			continue
		}
		r := h.lim.Load().ReserveN(now, 1)
		if !r.OK() {
			return &RateLimitError{Host: host, Wait: time.Duration(math.MaxInt64)}
		}
		d := r.DelayFrom(now)
		if d <= 0 {
			return nil
		}
		if err := checkDeadline(ctx, host, now, d); err != nil {
			r.CancelAt(now)
			return err
		}
		kept := d <= maxReservation
		if !kept {
			// A long wait was priced at the current pace, which adaptive
			// pacing may raise in the meantime: give the slot back and ask
			// again later rather than hold a stale place in the queue.
			r.CancelAt(now)
			d = maxReservation
		}
		err := clk.Sleep(ctx, d)
		noteLimiterWait(ctx, LimiterPace, d)
		if err != nil {
			if kept {
				r.CancelAt(clk.Now())
			}
			return err
		}
		if kept && h.pausedUntil.Load() == 0 && h.heldUntil.Load() == 0 {
			return nil
		}
		// Otherwise ask again: the reservation was given back, or a
		// Retry-After (or a hold; see backOff) arrived while this caller
		// slept and it must not go out into the server's refusal, nor
		// with every other caller that slept through it at once.
	}
}

// waitPause waits until any Retry-After pause, or hold, of the host has
// passed.
func (h *hostLimiter) waitPause(ctx context.Context, host string, clk Clock) error {
	paused, held := h.pausedUntil.Load(), h.heldUntil.Load()
	if paused == 0 && held == 0 {
		return nil
	}
	now := clk.Now()
	// An expired time is cleared, which spares later calls the clock.
	if paused != 0 && paused <= now.UnixNano() {
		h.pausedUntil.CompareAndSwap(paused, 0)
	}
	if held != 0 && held <= now.UnixNano() {
		h.heldUntil.CompareAndSwap(held, 0)
	}
	until := max(paused, held)
	if until <= now.UnixNano() {
		return nil
	}
	d := time.Duration(until - now.UnixNano())
	if err := checkDeadline(ctx, host, now, d); err != nil {
		return err
	}
	err := clk.Sleep(ctx, d)
	noteLimiterWait(ctx, LimiterPause, d)
	return err
}

// maxReservation is the longest limiter wait taken at once; see wait.
const maxReservation = 100 * time.Millisecond

func checkDeadline(ctx context.Context, host string, now time.Time, d time.Duration) error {
	if deadline, ok := ctx.Deadline(); ok && now.Add(d).After(deadline) {
		return &RateLimitError{Host: host, Wait: d}
	}
	return nil
}

// observe learns from a response: an overload signal (see overloaded)
// pauses the host for its Retry-After and cuts the pace, rate-limit headers
// set the pace, and every other answer is an accepted request that speeds
// it up, whatever its status: an API whose admitted answers are 404s
// (lookups of missing items) must see its pace climb back after a wave of
// 429s as one answering 200s does. Transport errors (resp nil) are neither.
func (h *hostLimiter) observe(a *answer, clk Clock) {
	resp := a.resp
	if resp == nil {
		return
	}
	status := resp.StatusCode
	if answeredWell(a) {
		h.good.add(resp.Request)
		if !h.gateOpen() {
			// After the answer's own rate-limit headers are read.
			defer h.startRamp(clk.Now())
		}
	}
	refusal := status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
	if !refusal && !h.limited.Load() && !hasRateLimitHeaders(resp.Header) {
		// The common case, kept cheap: only count, so that a first 429
		// knows what got through.
		h.accepted.Add(1)
		return
	}
	now := clk.Now()
	overload := refusal && h.overloaded(resp)
	if overload {
		h.heed(now, a.retryAfter)
	}
	rl, hasRL := parseRateLimitHeaders(resp.Header, now)
	if hasRL && !h.samePartition(rl.partition) {
		hasRL = false // another partition's quota: not this scope's
	}
	if hasRL && rl.exhausted && status != http.StatusTooManyRequests {
		d := rl.reset
		if rl.quota > 0 {
			// With a declared quota the pace spaces requests already: an
			// empty window waits one interval of it. A token bucket
			// reports the time until it is full, not until its next
			// token, and clients that share it would each stop that long
			// every time one of them took the last token; a window that
			// does not refill sooner answers the next request 429 with
			// its Retry-After.
			d = min(d, time.Duration(float64(time.Second)/rl.quota))
		}
		h.pauseFor(now, d)
	}
	if h.settings.Static {
		return
	}
	switch {
	case hasRL && rl.quota > 0 && h.declare(rl.quota, rl.burst, now):
		// A new quota: its pace replaces whatever was learned.
	case overload:
		// Refused at the declared pace, or under it: others (replicas
		// without a shared store) spend the same quota, and this client
		// slows to its share like one that was never told.
		h.decrease(status == http.StatusTooManyRequests, a.cuts, now)
	default:
		h.increase(now) // up to the declared quota, no further
	}
}

// overloaded reports whether a 429 or 503 is the host refusing for load.
// A 429 always is. A 503 is when the host has answered the same path well
// before: a gateway shedding load refuses requests it served a moment ago,
// with or without Retry-After. A 503 on a path the host never answered well
// is that request's own condition (the documents' "the requested service
// is invalid", a disabled service): it neither pauses nor slows the rest
// of the host.
func (h *hostLimiter) overloaded(resp *http.Response) bool {
	return resp.StatusCode == http.StatusTooManyRequests || h.good.has(resp.Request)
}

// pathSet remembers, lossily and without locks, which routes a host has
// answered well: a small table of route hashes, where a newer route may
// take an older one's slot. Forgetting a route only makes its next 503 read
// as that request's condition rather than as load.
type pathSet [64]atomic.Uint64

// pathHash hashes a request's route: its path with every segment that
// holds a digit (an id, a version, a project) folded to one wildcard, so
// GET /v1/items/123 and /v1/items/456 are one route, as a service sees
// them. It never returns 0, the empty slot, but for a request without a
// URL.
func pathHash(req *http.Request) uint64 {
	if req == nil || req.URL == nil {
		return 0
	}
	const offset, prime = 14695981039346656037, 1099511628211 // FNV-1a
	h := uint64(offset)
	p := req.URL.Path
	for i := 0; i < len(p); {
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i:j] // with its leading '/'
		if strings.ContainsAny(seg, "0123456789") {
			seg = "/*"
		}
		for k := 0; k < len(seg); k++ {
			h = (h ^ uint64(seg[k])) * prime
		}
		i = j
	}
	return h | 1
}

func (s *pathSet) add(req *http.Request) {
	if p := pathHash(req); p != 0 {
		if slot := &s[p%uint64(len(s))]; slot.Load() != p {
			slot.Store(p)
		}
	}
}

func (s *pathSet) has(req *http.Request) bool {
	p := pathHash(req)
	return p != 0 && s[p%uint64(len(s))].Load() == p
}

// samePartition reports whether rate-limit fields of partition pk (the pk
// parameter; empty when the service names none) describe this scope. The
// first partition seen is the scope's; once a second one appears the scope
// mixes partitions whose quotas it cannot tell apart before sending, and
// partitioned fields no longer change its pace (the pace they set so far
// stays, and 429s still move it). Setting LimiterSettings.Key to the
// service's partitioning keeps them apart.
func (h *hostLimiter) samePartition(pk string) bool {
	if pk == "" {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.partition == "":
		h.partition = pk
	case h.partition != pk:
		h.mixedPartitions = true
	}
	return !h.mixedPartitions
}

// pauseFor pauses the host for d from now, unless d is longer than
// maxPause: a server may not take a host away from every caller for longer
// than one call would wait for it. The call that was told returns with the
// wait (StopRetryAfterTooLong); later calls go out and hear the server's
// answer themselves.
func (h *hostLimiter) pauseFor(now time.Time, d time.Duration) {
	if d > 0 && d <= h.maxPause {
		h.pauseUntil(now.Add(d))
	}
}

func (h *hostLimiter) pauseUntil(t time.Time) { raiseTo(&h.pausedUntil, t.UnixNano()) }

// raiseTo sets p to v unless it holds a later time already.
func raiseTo(p *atomic.Int64, v int64) {
	for cur := p.Load(); v > cur; cur = p.Load() {
		if p.CompareAndSwap(cur, v) {
			return
		}
	}
}

// declare paces the host at the quota its rate-limit headers declare, and
// reports whether that quota is new (then the pace is set anew; else the
// quota is only the ceiling the pace climbs back to).
//
// A quota that spaces requests further apart than maxPause (a daily
// quota, say) is not paced: as with a long pause, calls go out and hear the
// server's answer themselves.
func (h *hostLimiter) declare(quota float64, left int, now time.Time) (changed bool) {
	if time.Duration(float64(time.Second)/quota) > h.maxPause {
		return false
	}
	r := quota * headerHeadroom
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ceiling == r {
		return false
	}
	h.ceiling = r
	if fixed := h.settings.Rate; fixed > 0 && fixed < r {
		r = fixed
	}
	// Spend half of what the server says is left of its burst: goroutine
	// wake-ups bunch requests, and a window the server reports empty (r=0)
	// pauses the host until it resets.
	burst := max(left/2, h.settings.Burst, 1)
	lim := rate.NewLimiter(rate.Limit(r), burst)
	lim.SetLimitAt(now, rate.Limit(r)) // start its clock at now
	h.stopRamp()
	h.lim.Store(lim)
	h.limited.Store(true)
	if h.share != nil {
		h.share(FleetEvent{Kind: FleetDeclare, At: now, Rate: r, Burst: burst})
	}
	return true
}

func (h *hostLimiter) cuts() uint32 { return h.cutCount.Load() }

// decrease answers a refusal of a request queued after cuts cuts: once
// per wave of them (the requests already queued when the server ran out
// share one cut, and only one queued after the latest cut and refused
// waveTime after it shows that the cut fell short), the limit drops to a
// share of the rate the client was sending at.
func (h *hostLimiter) decrease(retried bool, cuts uint32, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wave := waveTime
	if h.share != nil {
		// In a fleet every replica's cut is the fleet's: one a second.
		wave = time.Second
	}
	if h.decreases > 0 && (cuts != h.cutCount.Load() || now.Sub(h.lastCut) < wave) {
		return
	}
	h.cutCount.Add(1)
	var r float64
	resume := 0 // requests at once when the pause ends (first cut only)
	if cur := float64(h.lim.Load().Limit()); h.limited.Load() && cur < math.MaxFloat64 && !h.ramping.Load() {
		r = h.cutPace(cur, now)
	} else {
		// Unlimited until now: the server let through what it accepted
		// before refusing, within a second or so; token buckets refill
		// about their burst per second or faster. Slow start climbs from
		// twice that: starting low costs a second of crawling, starting
		// high at worst one more cut.
		elapsed := max(now.Sub(h.windowStart), time.Second)
		r = 2 * float64(h.accepted.Load()) * h.fleetShare() / elapsed.Seconds()
		if h.basePace == 0 {
			h.basePace = r
		}
		h.stopRamp()
		if retried {
			resume = int(min(h.accepted.Load()/2, maxResumeBurst))
		}
	}
	h.decreases++
	h.lastRaise = now
	h.lastCutRetried = retried
	h.adapting.Store(true)
	h.lastCut = now
	h.accepted.Store(0)
	h.windowStart = now
	h.setLimit(max(r, minAdaptiveRate), now)
	if resume > 1 {
		// The Retry-After pause the first refusals bring lets the
		// server's bucket refill: the pace resumes with half as many
		// requests at once as the host accepted at once before it
		// refused, rather than letting the refill go to waste while slow
		// start climbs. Half, because other clients refused in the same
		// wave resume at the same moment, each with its own share.
		h.lim.Load().SetBurstAt(now, max(resume, h.settings.Burst))
	}
	if h.share != nil {
		h.share(FleetEvent{Kind: FleetCut, At: now, Rate: max(r, minAdaptiveRate)})
	}
}

// heed holds the host's callers after an overload answer: for its
// Retry-After the first time, and for a long one (see pacedPause); for a
// moment (see backOff) once the limiter paces the host.
func (h *hostLimiter) heed(now time.Time, retryAfter time.Duration) {
	if !h.adapting.Load() || retryAfter > pacedPause {
		h.pauseFor(now, retryAfter)
		return
	}
	h.backOff(now, retryAfter)
}

// backOff holds every caller of a paced host for a moment after a refusal
// that holds only its own call (see pacedPause): the host's bucket is empty
// now, and the callers whose turn comes next would each be refused too,
// each then waiting out its own Retry-After, until a client with a few
// callers has none left sending while the host has room again. The hold is
// a few intervals of the pace, and doubles with each refusal whose caller
// is still waiting.
func (h *hostLimiter) backOff(now time.Time, retryAfter time.Duration) {
	if h.refusedUntil.Load() < now.UnixNano() {
		h.refusals.Store(0)
	}
	raiseTo(&h.refusedUntil, now.Add(max(retryAfter, time.Second)).UnixNano())
	n := min(h.refusals.Add(1), 6)
	interval := time.Second
	if r := float64(h.lim.Load().Limit()); r > 1 {
		interval = time.Duration(float64(time.Second) / r)
	}
	d := min(max(backOffIntervals*interval, minBackOff), maxBackOff) << (n - 1)
	raiseTo(&h.heldUntil, now.Add(min(d, maxBackOff)).UnixNano())
}

// The hold after a refusal (see backOff): backOffIntervals intervals of
// the pace, at least minBackOff, doubling up to maxBackOff.
const (
	backOffIntervals = 4
	minBackOff       = 5 * time.Millisecond
	maxBackOff       = 200 * time.Millisecond
)

// cutPace returns the pace a cut takes a paced host down to from cur, and
// notes what the host was seen to accept; h.mu must be held.
func (h *hostLimiter) cutPace(cur float64, now time.Time) float64 {
	// Slow start overshoots by up to twice; after it the pace sits just
	// under the server's limit and a 429 means only a little too fast.
	f := decreaseFactor
	if h.decreases >= 2 {
		f = steadyFactor
	}
	r := cur * f
	// What the server accepted just now, while it was saturated, is a
	// better measure of its limit than the pace that overshot it.
	got := h.recent.rate(now) * h.fleetShare()
	fleet := math.Float64frombits(h.fleetAccepted.Load())
	if fleet > 0 {
		got = fleet // measured over the whole fleet
	}
	if got > 0 {
		// Past slow start, a refusal at a pace under what the host took at
		// the last one is the sign of others spending the same quota:
		// what this client got is its share, not the host's limit, and
		// a cut only to just under it would leave the crowd refused. (A
		// fleet's count is the host's.)
		alone := h.decreases < 2 || cur > h.measured || fleet > 0
		if alone && got*measuredShare > r && got*measuredShare < cur {
			r = got * measuredShare
		}
		h.measured = got
		if fleet > 0 && h.decreases >= 2 {
			// A fleet's pace, moved by every replica's raises and
			// cut by whichever replica is refused first, can sit
			// well above the host's rate, which the fleet's count
			// of accepted answers measures: past slow start the
			// fleet is saturated, and that count is the host's.
			// Never by more than half: a count taken across a
			// quiet spell is no measure of the host.
			r = min(r, max(got*measuredShare, cur*decreaseFactor))
		}
	}
	return r
}

func (h *hostLimiter) increase(now time.Time) {
	h.accepted.Add(1)
	if !h.limited.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ramping.Load() {
		h.ramp(now)
		return
	}
	h.recent.add(now)
	lim := h.lim.Load()
	cur := float64(lim.Limit())
	step := h.raiseStep(cur, now)
	h.lastRaise = now
	next := cur + step
	floor := 0.0 // a pace measured, not stepped to
	if h.decreases == 1 && h.lastCutRetried {
		// Right after the first cut by 429s, a gateway that queued
		// requests within its burst (nginx's limit_req) still answers
		// them at its own rate: the pace never stays below what the
		// host is seen to accept. (After 503s, which callers do not
		// repeat, the climb stays gentle.)
		if since := now.Sub(h.lastCut); since >= 50*time.Millisecond {
			floor = float64(h.accepted.Load()) * h.fleetShare() / since.Seconds()
			next = max(next, floor)
		}
	}
	if fixed := h.settings.Rate; fixed > 0 {
		next, floor = min(next, fixed), min(floor, fixed)
	}
	next, floor = min(next, h.ceiling), min(floor, h.ceiling)
	if next != cur {
		lim.SetLimitAt(now, rate.Limit(next))
	}
	if h.share != nil {
		// One event per accepted answer: the fleet counts them. It adds
		// up its replicas' steps, each made for the answers that replica
		// saw, but takes a measured floor as it is: every replica
		// measures the same host.
		h.share(FleetEvent{Kind: FleetRaise, At: now, Rate: max(min(cur+step, next)-cur, 0), Floor: floor})
	}
}

// raiseStep returns how much one accepted answer raises the pace cur:
// quickly in slow start, gently near the last measured limit, and past
// slow start by at least an amount per second; h.mu must be held.
func (h *hostLimiter) raiseStep(cur float64, now time.Time) float64 {
	step := additiveStep
	switch {
	case h.decreases < 2:
		step = slowStartStep
		if h.lastCutRetried {
			// Refusals here are 429s, which are repeated: overshooting
			// costs a retry, so climb faster. A 503 the client returns
			// costs a failed call.
			step = fastStartStep
		}
	case h.measured > 0 && cur >= probeShare*h.measured:
		step = additiveStep / 10 // near the last measured limit: probe gently
	}
	if h.decreases >= 2 {
		// Past slow start, the pace also climbs by an amount per second
		// that does not depend on it: clients that share one quota and
		// each climb in proportion to their own rate keep their unequal
		// shares forever, while an equal climb after proportional cuts
		// evens them out (AIMD) and lifts one that was cut low. The
		// climb doubles with each second without a cut, so a client
		// whose peers went quiet takes up the room within seconds.
		calm := min(now.Sub(h.lastCut).Seconds(), 6) // seconds without a cut
		climb := timeRaise
		if h.share == nil {
			climb = max(climb, climbShare*h.basePace)
		}
		step = max(step, climb*math.Exp2(calm)*now.Sub(h.lastRaise).Seconds()/h.fleetShare())
	}
	return step
}

// cutSeen is the share of the local pace below which a fleet pace is a
// cut by another replica rather than raises this one has not heard of
// yet: every cut takes more than a tenth off, and the raises of 100 ms
// of one replica less.
const cutSeen = 0.9

// follow paces the host at the fleet's pace r (see GuardStore), when it
// has changed since the last call: the fleet's pace, which every
// replica's cuts and raises move, replaces the local one, and the local
// limiter goes on learning from it.
func (h *hostLimiter) follow(r float64, burst, replicas int, accepted float64, now time.Time) {
	h.replicas.Store(int32(min(replicas, math.MaxInt32)))
	h.fleetAccepted.Store(math.Float64bits(accepted))
	bits := math.Float64bits(r)
	if h.followed.Load() == bits {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.followed.Store(bits)
	if fixed := h.settings.Rate; fixed > 0 && fixed < r {
		r = fixed
	}
	lim := h.lim.Load()
	if cur := float64(lim.Limit()); r < cutSeen*cur && !h.settings.Static {
		// Another replica's cut: this one is past it too, as if it had
		// made it, so that every replica climbs back alike.
		if now.Sub(h.lastCut) >= time.Second || h.decreases == 0 {
			h.decreases++
		}
		h.lastCut, h.lastRaise, h.windowStart = now, now, now
		h.cutCount.Add(1)
		h.accepted.Store(0)
		h.adapting.Store(true)
		if accepted > 0 {
			h.measured = accepted // what the host accepted from the fleet
		}
	}
	h.stopRamp() // the fleet's pace is known: no first-contact ramp
	lim.SetLimitAt(now, rate.Limit(r))
	lim.SetBurstAt(now, max(burst, h.settings.Burst, 1))
	h.limited.Store(true)
}

// ramp doubles the first-contact ramp's pace once per rampStep, and ends
// the ramp past rampEnd; h.mu must be held.
func (h *hostLimiter) ramp(now time.Time) {
	if now.Sub(h.rampRaise) < rampStep {
		return
	}
	h.rampRaise = now
	lim := h.lim.Load()
	next := 2 * float64(lim.Limit())
	if next > rampEnd {
		h.lim.Store(rate.NewLimiter(rate.Inf, 1))
		h.limited.Store(false)
		h.stopRamp()
		return
	}
	lim.SetLimitAt(now, rate.Limit(next))
}

// setLimit changes the host's pace; h.mu must be held.
func (h *hostLimiter) setLimit(r float64, now time.Time) {
	b := h.settings.Burst
	if b <= 0 {
		b = 1
	}
	lim := h.lim.Load()
	lim.SetLimitAt(now, rate.Limit(r))
	lim.SetBurstAt(now, b)
	h.limited.Store(true)
}

// acceptedWindow counts accepted answers (see observe) over the last half
// second in 50 ms slots.
type acceptedWindow struct {
	slot  [10]int64
	epoch [10]int64 // which 50 ms period each slot counts
}

const slotPeriod = 50 * time.Millisecond

func (w *acceptedWindow) add(now time.Time) {
	e := now.UnixNano() / int64(slotPeriod)
	i := e % int64(len(w.slot))
	if w.epoch[i] != e {
		w.epoch[i], w.slot[i] = e, 0
	}
	w.slot[i]++
}

// rate returns accepted answers per second over the last half second.
func (w *acceptedWindow) rate(now time.Time) float64 {
	e := now.UnixNano() / int64(slotPeriod)
	var n int64
	for i := range w.slot {
		if e-w.epoch[i] < int64(len(w.slot)) {
			n += w.slot[i]
		}
	}
	return float64(n) / (time.Duration(len(w.slot)) * slotPeriod).Seconds()
}

// waveTime is the least time between two cuts: the refusals a gateway
// sends while the requests it queued before a cut drain (nginx's
// limit_req queues its burst) are still the wave that brought the cut.
const waveTime = 250 * time.Millisecond
