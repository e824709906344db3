package resilienthttp

import (
	"context"
	"time"
)

// GuardStore shares the guards' state of each host among the processes of
// a fleet (replicas of one service calling one account's quota), so that
// they act as one client: one replica's Retry-After pauses all of them,
// a pace learned or declared by one paces the whole fleet at it (not at it
// times the number of replicas), and one replica's open circuit breaker
// protects all. github.com/resilienthttp/resilienthttp/redisguard is one,
// on Redis.
//
// The contract keeps the store off the request's happy path and never
// lets it be the outage:
//
//   - View and Share never wait for the store's backend on the happy
//     path: View answers from the store's own memory (kept current by the
//     backend's pushes), and Share queues the event and returns, except a
//     FleetBreakerFailure, which a store may deliver before it returns,
//     within its budget: a failed attempt can afford a round trip, and a
//     fleet whose replicas each fail fast must count every failure before
//     the next attempt to trip once.
//   - Take is the only method that may wait for the backend, and only
//     once a fleet pace is known (View's Rate above zero); it must return
//     within the store's documented budget, with ok false when the backend
//     did not answer in time or is known to be down, and the client then
//     paces the attempt with its local limiter alone.
//   - A store whose backend is down answers as an empty fleet (a zero
//     FleetView; at most a Rate, this replica's share of a fleet pace it
//     knew, with Replicas 1, which Take then does not enforce): each
//     process falls back to its local guards at once, and rejoins the
//     fleet when the backend is back.
//
// Every method must be safe for concurrent use, and must not panic. Keys
// are the client's: GuardKey names a host (WithHostKey's key, or the
// normalised host) and the limiter's scope in it (LimiterSettings.Key).
type GuardStore interface {
	// View returns what the fleet has shared about key, from the store's
	// memory, without waiting. The zero FleetView means nothing is known.
	View(key GuardKey) FleetView
	// Share tells the fleet of an event this process saw. It returns at
	// once (a FleetBreakerFailure within the store's budget); the store
	// delivers it within its budget, or drops it.
	Share(key GuardKey, e FleetEvent)
	// Take takes one token of key's fleet-wide bucket, which lets the
	// whole fleet send at View(key).Rate. With taken true the token is
	// the caller's, due after wait (zero: it may go now), whatever the
	// caller does: it waits, or gives up (a wait past its deadline), and
	// does not ask again for the same attempt. With taken false no token
	// is due soon enough to be held (a store holds tokens a short while
	// ahead, 200 ms for redisguard, since the pace may rise meanwhile): the caller waits
	// up to wait and asks again. ok false means the store cannot say (no
	// fleet pace, the backend slow or down): the caller goes on with its
	// local pace. Take returns within the store's budget whatever the
	// backend does, and earlier when ctx is done.
	Take(ctx context.Context, key GuardKey) (wait time.Duration, taken, ok bool)
}

// GuardKey names the state a GuardStore shares: a host (the host key the
// breaker and retry budget use) and the limiter's scope within it (empty
// for the host's own scope; see LimiterSettings.Key). The breaker's state
// is kept under the key with an empty Scope.
type GuardKey struct {
	Host  string
	Scope string
}

// FleetView is what a fleet has shared about one GuardKey. Its zero value
// means nothing is known: no pause, no fleet pace, the breaker closed.
type FleetView struct {
	// PausedUntil is when a Retry-After some replica was given for the
	// key ends; zero or past means no pause.
	PausedUntil time.Time
	// Rate is the fleet's pace for the key in requests per second, learned
	// from 429s or declared by RateLimit headers; zero means none is
	// known, and replicas pace themselves. Burst is the bucket's burst.
	Rate  float64
	Burst int
	// Replicas is how many replicas use the key now, as far as the store
	// knows (0: unknown). A replica's limiter takes its own traffic to
	// be a Replicas-th of the host's.
	Replicas int
	// Accepted is the rate at which the host accepted the fleet's
	// requests lately (FleetRaise events), in requests per second; 0
	// means unknown. A cut starts from it.
	Accepted float64
	// OpenUntil is when a replica's open circuit breaker for the host
	// lets probes through again; zero or past means not open.
	OpenUntil time.Time
}

// FleetEventKind says what a FleetEvent reports.
type FleetEventKind int

// The events a client shares. The zero value is FleetPause.
const (
	// FleetPause: the host (the scope) is paused until Until by a
	// Retry-After or an exhausted rate-limit window.
	FleetPause FleetEventKind = iota
	// FleetDeclare: the host's RateLimit headers declared a quota; Rate
	// and Burst are the pace and burst for the whole fleet.
	FleetDeclare
	// FleetCut: a wave of 429s cut the pace to Rate. One cut per wave of
	// the fleet counts: a store ignores cuts within a second of the last.
	FleetCut
	// FleetRaise: an answer was accepted while the fleet has a pace, and
	// raised it by Rate req/s (maybe 0) and to at least Floor (0: no
	// floor), a rate measured at the host. A store adds the raises of
	// every replica to the fleet's pace (each replica's raise in time is
	// already its share; see Replicas), keeps the highest floor, and
	// counts the answers (see FleetView.Accepted).
	FleetRaise
	// FleetBreakerFailure: an attempt failed in a way the breaker counts.
	// Threshold failures in a row across the fleet, within Window, open
	// the breaker of every replica until At plus OpenFor.
	FleetBreakerFailure
	// FleetBreakerSuccess: an attempt succeeded, ending the fleet's run of
	// failures.
	FleetBreakerSuccess
	// FleetBreakerOpen: this replica's breaker opened until Until.
	FleetBreakerOpen
)

// FleetEvent is one change a replica shares with its fleet; the fields a
// Kind does not name are zero.
type FleetEvent struct {
	Kind  FleetEventKind
	At    time.Time // when it happened, by the client's Clock
	Until time.Time
	Rate  float64
	Floor float64
	Burst int
	// Threshold, Window and OpenFor describe the breaker for
	// FleetBreakerFailure: BreakerSettings.ConsecutiveFailures, Interval
	// and Timeout.
	Threshold uint32
	Window    time.Duration
	OpenFor   time.Duration
}

// WithGuardStore makes the client share its guards' state (Retry-After
// pauses, the learned or declared pace, the circuit breaker's open state
// and run of failures) with every other client using the same store, in
// this process or others: see GuardStore. Each client keeps its local
// guards, which the fleet's state tightens and which take over alone when
// the store cannot answer. Nil, the default, shares nothing.
func WithGuardStore(s GuardStore) Option { return func(c *Client) { c.store = s } }

// fleetPacer is a host scope's limiter in a fleet: the local hostLimiter,
// held to the fleet's pause and bucket, and telling the fleet what it
// learns.
type fleetPacer struct {
	l     *hostLimiter
	store GuardStore
	key   GuardKey
}

// maxFleetWaits bounds the times one attempt asks the fleet's bucket
// again; each wait is up to maxReservation, so the bound is far past any
// deadline a call would set.
const maxFleetWaits = 10000

func (f *fleetPacer) wait(ctx context.Context, host string, clk Clock) (bool, error) {
	f.adopt(clk)
	probe, err := f.l.wait(ctx, host, clk)
	if err != nil {
		return false, err
	}
	for range maxFleetWaits {
		r := f.store.View(f.key).Rate
		if r <= 0 {
			break
		}
		d, taken, ok := f.store.Take(ctx, f.key)
		if !ok || taken && d <= 0 {
			break
		}
		// Wait for the token, or a while before asking again, and for a
		// pause that arrives meanwhile.
		if err = checkDeadline(ctx, host, clk.Now(), d); err == nil {
			if !taken {
				d = min(d, maxReservation)
			}
			err = clk.Sleep(ctx, d)
		}
		if err == nil {
			f.adopt(clk)
			err = f.l.waitPause(ctx, host, clk)
		}
		// A token priced at a pace the fleet has cut since is given up:
		// the host is refusing that pace.
		if err != nil || taken && f.store.View(f.key).Rate >= cutSeen*r {
			break
		}
	}
	if err != nil && probe {
		f.l.endProbe(false)
		probe = false
	}
	return probe, err
}

// adopt takes the fleet's pause and pace into the local limiter, and
// waits out nothing itself.
func (f *fleetPacer) adopt(clk Clock) {
	v := f.store.View(f.key)
	if !v.PausedUntil.IsZero() && v.PausedUntil.After(clk.Now()) {
		f.l.pauseUntil(v.PausedUntil)
	}
	if v.Rate > 0 {
		f.l.follow(v.Rate, v.Burst, v.Replicas, v.Accepted, clk.Now())
	}
}

func (f *fleetPacer) endProbe(answeredWell bool) { f.l.endProbe(answeredWell) }

func (f *fleetPacer) cuts() uint32 { return f.l.cuts() }

func (f *fleetPacer) observe(a *answer, clk Clock) {
	before := f.l.pausedUntil.Load()
	f.l.observe(a, clk)
	if after := f.l.pausedUntil.Load(); after > before {
		f.store.Share(f.key, FleetEvent{Kind: FleetPause, At: clk.Now(), Until: time.Unix(0, after)})
	}
}

// fleetCircuit is a host's breaker in a fleet: the local hostBreaker,
// also open while the fleet's is, and telling the fleet its failures,
// successes and openings.
type fleetCircuit struct {
	b     *hostBreaker
	store GuardStore
	key   GuardKey
	s     *BreakerSettings
}

// heed opens the local breaker for as long as the fleet's is open.
func (f *fleetCircuit) heed() {
	if u := f.store.View(f.key).OpenUntil; !u.IsZero() && u.After(f.b.clock.Now()) {
		f.b.extend(u)
	}
}

func (f *fleetCircuit) refuses() error {
	f.heed()
	return f.b.refuses()
}

func (f *fleetCircuit) allow() (func(error), error) {
	f.heed()
	return f.b.allow()
}

func (f *fleetCircuit) report(done func(error), ctx context.Context, a *answer) breakerOutcome {
	o := f.b.report(done, ctx, a)
	now := f.b.clock.Now()
	switch o {
	case outcomeFailure:
		f.store.Share(f.key, FleetEvent{Kind: FleetBreakerFailure, At: now,
			Threshold: f.s.ConsecutiveFailures, Window: f.s.Interval, OpenFor: f.s.Timeout})
	case outcomeSuccess:
		f.store.Share(f.key, FleetEvent{Kind: FleetBreakerSuccess, At: now})
	}
	return o
}
