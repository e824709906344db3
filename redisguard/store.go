// Package redisguard shares the guards of resilienthttp clients in many
// processes (a fleet of replicas calling one account's quota) through
// Redis: its Store is a resilienthttp.GuardStore.
//
// What is shared, per host and per limiter scope: the Retry-After pause
// (one replica's 429 pauses all); the pace declared by RateLimit headers
// (r=50 seen by one replica paces the fleet at 50 in all, not 50 each) or
// learned from 429s (every replica's cuts and raises move one fleet pace,
// and the fleet counts the answers the host accepted), enforced by one
// GCRA bucket in Redis (see Take); and the circuit breaker's open state
// and run of failures (the fleet trips once, and one replica's open
// breaker protects all).
//
// The happy path makes no Redis round trip: until a pace is known, a
// request reads only the store's memory, which a Pub/Sub subscription
// keeps current. Once a pace is known, tokens of the fleet's bucket are
// leased about 100 ms of the pace at a time. Events (a pause, a cut) are
// sent by a background worker, raises and accepted answers batched every
// 100 ms; a breaker failure, off the happy path, is counted before the
// attempt returns.
//
// Redis is never the outage: every Redis call has a budget (50 ms unless
// WithBudget says otherwise). A call that fails or runs past it marks
// Redis down: from then on every replica uses its local guards at once,
// without asking Redis, and the store tries Redis again once a second
// (WithRejoinEvery), rejoining the fleet, and reloading what it shares,
// when Redis answers.
//
// The breaker: gobreaker/v2's DistributedCircuitBreaker (v2.4.0) reads
// its whole state from the SharedDataStore, then locks it, runs the
// request under the lock, writes the state back and unlocks: four round
// trips a request on the happy path too, and every request of the fleet
// to one host serialised behind one Redis lock. Instead each replica
// keeps its local gobreaker, with all its semantics, and Redis holds what
// the fleet must agree on: the open-until time, pushed to every replica,
// and the fleet's run of consecutive failures (a Redis counter bumped only
// on failures and reset by the first success after them), which opens
// every replica's breaker when it reaches
// BreakerSettings.ConsecutiveFailures. The run stays at the threshold
// while the breaker is open, so after the open period the first failure
// anywhere in the fleet opens it again.
//
// Keys: every key of one host shares the hash tag {host}, so a Redis
// Cluster (redis.NewClusterClient) keeps them in one slot; they expire
// after 10 minutes unused. Times in Redis are Unix times, so the replicas'
// clocks must agree (NTP) within a small part of a Retry-After.
package redisguard

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilienthttp/resilienthttp"
)

// DefaultBudget is the longest any one Redis call may take before the
// store treats Redis as down and the replicas use their local guards.
const DefaultBudget = 50 * time.Millisecond

// DefaultRejoinEvery is how often a store whose Redis is down tries it
// again.
const DefaultRejoinEvery = time.Second

const (
	// keyTTL is how long a host's shared state is kept after its last
	// write.
	keyTTL = 10 * time.Minute
	// leaseWindow is how much of the fleet's pace one lease takes: a
	// replica leases the tokens of leaseWindow at a time, and tokens not
	// spent within it are dropped (spending them later would be a burst).
	leaseWindow = 100 * time.Millisecond
	// maxLease bounds the tokens of one lease.
	maxLease = 64
	// raiseEvery is how often pending raises are sent.
	raiseEvery = 100 * time.Millisecond
	// queueSize bounds the events waiting for Redis; more are dropped.
	queueSize = 4096
	// holdAhead is how far ahead a lease holds tokens: not far, since
	// the pace may rise meanwhile (the core's own limiter holds no
	// reservation longer than 100 ms), and the lease is two leaseWindows
	// of it, so that replicas competing for the fleet's pace each hold a
	// lease rather than polling for one.
	holdAhead = 200 * time.Millisecond
	// cutSeen is the share of the fleet's pace below which a new pace is
	// a cut (as resilienthttp's limiter tells them).
	cutSeen = 0.9
	// presenceWindow is how recently a replica must have leased tokens
	// to count as one of the fleet's (see FleetView.Replicas).
	presenceWindow = 2 * time.Second
	// maxEntries bounds the keys a store remembers; past it, a key is
	// not shared (its replicas use their local guards).
	maxEntries = 4096
)

// Option configures a Store.
type Option func(*Store)

// WithPrefix puts prefix before every key and the Pub/Sub channel, so
// that several services (or several clients of one) can share one Redis.
// The default is "resilienthttp:".
func WithPrefix(prefix string) Option { return func(s *Store) { s.prefix = prefix } }

// WithBudget sets the longest one Redis call may take; see the package
// doc. Zero or less keeps DefaultBudget.
func WithBudget(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.budget = d
		}
	}
}

// WithRejoinEvery sets how often a store whose Redis is down tries it
// again. Zero or less keeps DefaultRejoinEvery.
func WithRejoinEvery(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.rejoinEvery = d
		}
	}
}

// Store is a resilienthttp.GuardStore on Redis. Make one per process with
// New, give it to every client with resilienthttp.WithGuardStore, and
// Close it when done. It is safe for concurrent use.
type Store struct {
	rdb         redis.UniversalClient
	prefix      string
	budget      time.Duration
	rejoinEvery time.Duration

	mu     sync.RWMutex
	byKey  map[resilienthttp.GuardKey]*entry
	byBase map[string]*entry

	jobs    chan job
	down    atomic.Bool
	rejoin  chan struct{} // a token: one rejoin loop at a time
	trips   atomic.Int64
	fails   atomic.Int64
	dropped atomic.Int64

	id     string // this replica's, among those of the fleet
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ps     *redis.PubSub
}

// entry is what the store knows of one GuardKey.
type entry struct {
	key  resilienthttp.GuardKey
	base string // prefix{host}:scope, the Redis key of its state

	paused atomic.Int64  // Unix ns
	open   atomic.Int64  // Unix ns
	rate   atomic.Uint64 // float64 bits; 0: no fleet pace
	burst  atomic.Int64
	// replicas is how many replicas took from the bucket within the
	// last presenceWindow, as of this one's last lease.
	replicas atomic.Int64
	accepted atomic.Uint64 // float64 bits: the fleet's accepted rate
	runs     atomic.Int64  // the fleet's run of breaker failures, as last seen
	// lastRate and lastReplicas are the pace and replicas known when
	// Redis went down (see share).
	lastRate     atomic.Uint64
	lastReplicas atomic.Int64

	mu        sync.Mutex    // the lease and raise
	lease     int           // tokens left
	due       time.Time     // when the next is due
	leased    time.Time     // when the lease was taken
	every     time.Duration // between tokens
	notBefore time.Time     // no token is due before, as the bucket said
	raise     float64       // raises not sent yet
	floor     float64       // the highest floor not sent yet
	acc       int64         // accepted answers not counted in Redis yet
}

// New returns a Store sharing guards through rdb (a *redis.Client, a
// *redis.ClusterClient or a failover client). It subscribes to the
// store's channel at once; if Redis is down it starts down and rejoins
// when Redis answers. rdb stays the caller's: Close does not close it.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		rdb: rdb, prefix: "resilienthttp:",
		budget: DefaultBudget, rejoinEvery: DefaultRejoinEvery,
		byKey: map[resilienthttp.GuardKey]*entry{}, byBase: map[string]*entry{},
		jobs: make(chan job, queueSize), rejoin: make(chan struct{}, 1),
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.rejoin <- struct{}{}
	s.id = strconv.FormatUint(rand.Uint64(), 36)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ps = rdb.Subscribe(s.ctx, s.channel())
	s.wg.Add(2)
	go s.listen()
	go s.work()
	return s
}

// Close stops the store's goroutines and its subscription. Clients that
// still use it go on with their local guards.
func (s *Store) Close() error {
	s.cancel()
	err := s.ps.Close()
	s.wg.Wait()
	return err
}

// Stats are a store's counters since New.
type Stats struct {
	// RoundTrips is the Redis calls made (scripts, leases, loads, pings),
	// the subscription excluded.
	RoundTrips int64
	// Failures is the calls that failed or ran past the budget.
	Failures int64
	// Dropped is the events not sent: queue full, or Redis down.
	Dropped int64
	// Down says the store treats Redis as down now.
	Down bool
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{RoundTrips: s.trips.Load(), Failures: s.fails.Load(), Dropped: s.dropped.Load(), Down: s.down.Load()}
}

// callTimeout is the deadline given to one Redis call: nine tenths of the
// budget, since go-redis returns a little after a deadline passes (its
// dial retries sleep through it) and the caller's own scheduling needs
// the rest.
func (s *Store) callTimeout() time.Duration { return s.budget - s.budget/10 }

func (s *Store) channel() string { return s.prefix + "events" }

// base returns the Redis key of a GuardKey's state. The host is the hash
// tag; braces in it, which would end the tag early, are replaced.
func (s *Store) base(k resilienthttp.GuardKey) string {
	host := strings.NewReplacer("{", "(", "}", ")").Replace(k.Host)
	return s.prefix + "{" + host + "}:" + k.Scope
}

// entry returns the entry of k, making it (and loading its state from
// Redis in the background) on first use; nil past maxEntries.
func (s *Store) entry(k resilienthttp.GuardKey) *entry {
	s.mu.RLock()
	e := s.byKey[k]
	s.mu.RUnlock()
	if e != nil {
		return e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e = s.byKey[k]; e != nil {
		return e
	}
	if len(s.byKey) >= maxEntries {
		return nil
	}
	e = &entry{key: k, base: s.base(k)}
	s.byKey[k], s.byBase[e.base] = e, e
	s.enqueue(func(ctx context.Context) error { return s.load(ctx, e) })
	return e
}

// View implements resilienthttp.GuardStore: the store's memory; while
// Redis is down, nothing but a replica's share of a pace known before
// (see GuardStore).
func (s *Store) View(k resilienthttp.GuardKey) resilienthttp.FleetView {
	if s.down.Load() {
		return s.share(k)
	}
	e := s.entry(k)
	if e == nil {
		return resilienthttp.FleetView{}
	}
	var v resilienthttp.FleetView
	if p := e.paused.Load(); p != 0 {
		v.PausedUntil = time.Unix(0, p)
	}
	if o := e.open.Load(); o != 0 {
		v.OpenUntil = time.Unix(0, o)
	}
	v.Rate = math.Float64frombits(e.rate.Load())
	v.Burst = int(e.burst.Load())
	v.Replicas = int(e.replicas.Load())
	v.Accepted = math.Float64frombits(e.accepted.Load())
	return v
}

// share is View while Redis is down: nothing shared, but a fleet pace
// known when Redis went down is kept, divided among the replicas that
// were taking from it, so that each goes on at its share of the quota
// rather than at all of it.
func (s *Store) share(k resilienthttp.GuardKey) resilienthttp.FleetView {
	s.mu.RLock()
	e := s.byKey[k]
	s.mu.RUnlock()
	if e == nil {
		return resilienthttp.FleetView{}
	}
	r, n := math.Float64frombits(e.lastRate.Load()), e.lastReplicas.Load()
	if r <= 0 || n <= 1 {
		return resilienthttp.FleetView{}
	}
	return resilienthttp.FleetView{Rate: r / float64(n), Burst: max(int(e.burst.Load())/int(n), 1), Replicas: 1}
}

// Share implements resilienthttp.GuardStore: it queues the event for the
// worker, and returns at once. Raises are summed and sent every 100 ms; a
// success is sent only after failures. A breaker failure is counted in
// Redis before Share returns, within the budget.
func (s *Store) Share(k resilienthttp.GuardKey, ev resilienthttp.FleetEvent) {
	if s.down.Load() {
		s.dropped.Add(1)
		return
	}
	e := s.entry(k)
	if e == nil {
		return
	}
	switch ev.Kind {
	case resilienthttp.FleetPause:
		setMax(&e.paused, ev.Until.UnixNano())
		s.enqueue(func(ctx context.Context) error {
			return s.script(ctx, pauseScript, e, "paused", ev.Until.UnixMicro())
		})
	case resilienthttp.FleetBreakerOpen:
		setMax(&e.open, ev.Until.UnixNano())
		s.enqueue(func(ctx context.Context) error {
			return s.script(ctx, pauseScript, e, "open", ev.Until.UnixMicro())
		})
	case resilienthttp.FleetDeclare:
		// Paced by the fleet's bucket from now on, not from when the
		// push comes back: the callers that waited for this replica's
		// first-contact probe go at once.
		e.burst.Store(int64(ev.Burst))
		e.rate.Store(math.Float64bits(ev.Rate))
		s.enqueue(func(ctx context.Context) error {
			return s.script(ctx, declareScript, e, ev.Rate, ev.Burst)
		})
	case resilienthttp.FleetCut:
		e.rate.CompareAndSwap(0, math.Float64bits(ev.Rate)) // the first pace: at once
		s.enqueue(func(ctx context.Context) error {
			return s.script(ctx, cutScript, e, ev.Rate, ev.At.UnixMicro(), time.Second.Microseconds())
		})
	case resilienthttp.FleetRaise:
		e.mu.Lock()
		e.acc++
		e.raise += ev.Rate
		e.floor = max(e.floor, ev.Floor)
		e.mu.Unlock()
	case resilienthttp.FleetBreakerFailure:
		// Counted before the attempt returns (see GuardStore): replicas
		// that fail within a millisecond each would otherwise all reach
		// their own threshold before the fleet's open state reached them.
		s.run(func(ctx context.Context) error { return s.failure(ctx, e, ev) })
	case resilienthttp.FleetBreakerSuccess:
		if e.runs.Load() > 0 {
			e.runs.Store(0)
			s.enqueue(func(ctx context.Context) error {
				s.trips.Add(1)
				return s.rdb.Del(ctx, e.base+":fails").Err()
			})
		}
	}
}

// Take implements resilienthttp.GuardStore: the next token of the
// current lease, or a new lease from the fleet's bucket, within the
// budget.
//
// The bucket is GCRA, as github.com/go-redis/redis_rate keeps it (one
// theoretical arrival time per key), but it reserves: a lease of n tokens
// is always granted, each token with the time it is due, and the tokens
// are handed out here, each caller waiting for its own. redis_rate's
// AllowN and AllowAtMost grant only the tokens free at the moment, so a
// saturated fleet (the case the bucket exists for) polls Redis for one or
// two tokens at a time: measured, some four round trips per request;
// reserving makes it one per lease.
func (s *Store) Take(ctx context.Context, k resilienthttp.GuardKey) (time.Duration, bool, bool) {
	if s.down.Load() {
		return 0, false, false
	}
	e := s.entry(k)
	if e == nil {
		return 0, false, false
	}
	r := math.Float64frombits(e.rate.Load())
	if r <= 0 {
		return 0, false, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if e.lease > 0 && now.Sub(e.leased) > holdAhead {
		e.lease = 0 // leased long ago: spending them now would be a burst
	}
	if e.lease == 0 {
		if wait := e.notBefore.Sub(now); wait > 0 {
			return wait, false, true // the bucket said so a moment ago
		}
		if s.down.Load() { // another caller found Redis down while this one waited
			return 0, false, false
		}
		wait, ok := s.reserve(ctx, e, r)
		if !ok {
			return 0, false, false
		}
		if e.lease == 0 {
			return wait, false, true
		}
	}
	e.lease--
	wait := time.Until(e.due)
	e.due = e.due.Add(e.every)
	return max(wait, 0), true, true
}

// reserve leases up to leaseWindow of the fleet's pace r from its
// bucket, the tokens due within holdAhead; e.mu is held. When none is,
// it returns how long until one will be, and leases nothing.
func (s *Store) reserve(ctx context.Context, e *entry, r float64) (time.Duration, bool) {
	n := min(max(int(r*leaseWindow.Seconds()), 1), maxLease)
	every := time.Duration(float64(time.Second) / r)
	burst := max(e.burst.Load(), 1)
	cctx, cancel := context.WithTimeout(ctx, s.callTimeout())
	defer cancel()
	s.trips.Add(1)
	res, err := reserveScript.Run(cctx, s.rdb, []string{e.base + ":bucket", e.base + ":who"},
		every.Microseconds(), burst, n, keyTTL.Milliseconds(), s.id, presenceWindow.Microseconds(), holdAhead.Microseconds()).Int64Slice()
	if err == nil && len(res) != 3 {
		err = errors.New("redisguard: reserve: unexpected answer")
	}
	if err != nil {
		if ctx.Err() == nil {
			s.markDown()
		}
		return 0, false
	}
	// Times are relative to Redis's clock when it ran: counted from the
	// answer's arrival, a wait errs long by the way back, never short.
	now := time.Now()
	first := time.Duration(res[0]) * time.Microsecond
	e.replicas.Store(res[2])
	if res[1] == 0 {
		// Ask again when a whole lease fits in the hold, not a token:
		// one round trip per lease, not per token, while the fleet
		// wants more than its pace.
		wait := max(first-holdAhead+time.Duration(n)*every, time.Millisecond)
		e.notBefore = now.Add(wait)
		return wait, true
	}
	e.lease, e.every, e.due, e.leased = int(res[1]), every, now.Add(first), now
	return 0, true
}

// Sync sends every event queued so far (pending raises included) and
// reloads, from Redis, the state of every key the store knows, so that
// View shows the fleet's state as Redis holds it now. The client never
// needs it; a test does, to check what the fleet shares without waiting
// for a push, and so may a replica that must see the fleet's state
// before it starts. It returns ctx's error if ctx ends first, and an
// error when Redis is down or fails.
func (s *Store) Sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case s.jobs <- job{synced: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.down.Load() {
		return errDown
	}
	s.mu.RLock()
	entries := make([]*entry, 0, len(s.byKey))
	for _, e := range s.byKey {
		entries = append(entries, e)
	}
	s.mu.RUnlock()
	for _, e := range entries {
		cctx, cancel := context.WithTimeout(ctx, s.callTimeout())
		err := s.load(cctx, e)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// errDown is Sync's error while Redis is down.
var errDown = errors.New("redisguard: Redis is down; replicas use their local guards")

// job is a Redis call for the worker, or, with synced set, Sync's marker:
// the worker sends the pending raises and closes it.
type job struct {
	fn     func(context.Context) error
	synced chan struct{}
}

// enqueue hands a Redis call to the worker, or drops it if the queue is
// full.
func (s *Store) enqueue(fn func(context.Context) error) {
	select {
	case s.jobs <- job{fn: fn}:
	default:
		s.dropped.Add(1)
	}
}

// work runs the queued jobs, each within the budget, and sends the
// pending raises every raiseEvery.
func (s *Store) work() {
	defer s.wg.Done()
	t := time.NewTicker(raiseEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.jobs:
			if j.synced != nil {
				s.flushRaises()
				close(j.synced)
				continue
			}
			s.run(j.fn)
		case <-t.C:
			s.flushRaises()
		}
	}
}

// run runs one job within the budget; a failure marks Redis down, and
// while it is down jobs are dropped.
func (s *Store) run(job func(context.Context) error) {
	if s.down.Load() {
		s.dropped.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.callTimeout())
	defer cancel()
	if err := job(ctx); err != nil && !errors.Is(err, redis.Nil) && s.ctx.Err() == nil {
		s.markDown()
	}
}

func (s *Store) flushRaises() {
	s.mu.RLock()
	var pending []*entry
	for _, e := range s.byKey {
		e.mu.Lock()
		if e.raise != 0 || e.floor != 0 || e.acc != 0 {
			pending = append(pending, e)
		}
		e.mu.Unlock()
	}
	s.mu.RUnlock()
	for _, e := range pending {
		e.mu.Lock()
		d, floor, acc := e.raise, e.floor, e.acc
		e.raise, e.floor, e.acc = 0, 0, 0
		e.mu.Unlock()
		s.run(func(ctx context.Context) error { return s.script(ctx, raiseScript, e, d, floor, acc) })
	}
}

// markDown makes every replica method answer locally from now on, and
// starts the rejoin loop unless one runs.
func (s *Store) markDown() {
	s.fails.Add(1)
	if !s.down.Swap(true) {
		s.mu.RLock()
		for _, e := range s.byKey {
			e.lastRate.Store(e.rate.Load())
			e.lastReplicas.Store(e.replicas.Load())
		}
		s.mu.RUnlock()
	}
	select {
	case <-s.rejoin:
	default:
		return // a rejoin loop is running
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { s.rejoin <- struct{}{} }()
		t := time.NewTicker(s.rejoinEvery)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.callTimeout())
			s.trips.Add(1)
			err := s.rdb.Ping(ctx).Err()
			cancel()
			if err != nil {
				s.fails.Add(1)
				continue
			}
			s.reset()
			s.down.Store(false)
			return
		}
	}()
}

// reset forgets what the store knew before Redis went down, which may
// have changed meanwhile, and reloads it.
func (s *Store) reset() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.byKey {
		e.paused.Store(0)
		e.open.Store(0)
		e.rate.Store(0)
		e.replicas.Store(0)
		e.lastRate.Store(0)
		e.lastReplicas.Store(0)
		e.runs.Store(0)
		e.mu.Lock()
		e.lease, e.raise, e.floor, e.acc, e.notBefore = 0, 0, 0, 0, time.Time{}
		e.accepted.Store(0)
		e.mu.Unlock()
		s.enqueue(func(ctx context.Context) error { return s.load(ctx, e) })
	}
}

// load reads an entry's shared state.
func (s *Store) load(ctx context.Context, e *entry) error {
	s.trips.Add(1)
	vals, err := s.rdb.HMGet(ctx, e.base, "paused", "open", "rate", "burst").Result()
	if err != nil {
		return err
	}
	num := func(v any) float64 {
		str, _ := v.(string)
		f, _ := strconv.ParseFloat(str, 64)
		return f
	}
	setMax(&e.paused, micros(vals[0]))
	setMax(&e.open, micros(vals[1]))
	if r := num(vals[2]); r > 0 {
		e.burst.Store(int64(num(vals[3])))
		e.rate.Store(math.Float64bits(r))
	}
	return nil
}

// listen applies the fleet's pushed changes: "paused <µs> <base>", "open
// <µs> <base>", "rate <r>,<burst> <base>", "acc <r> <base>". Anything
// else is ignored.
func (s *Store) listen() {
	defer s.wg.Done()
	for m := range s.ps.Channel() {
		kind, rest, ok1 := strings.Cut(m.Payload, " ")
		val, base, ok2 := strings.Cut(rest, " ")
		if !ok1 || !ok2 {
			continue
		}
		s.mu.RLock()
		e := s.byBase[base]
		s.mu.RUnlock()
		if e == nil {
			continue
		}
		switch kind {
		case "paused", "open":
			n := micros(val)
			if kind == "paused" {
				setMax(&e.paused, n)
			} else {
				setMax(&e.open, n)
			}
		case "acc":
			if r, err := strconv.ParseFloat(val, 64); err == nil && r >= 0 && !math.IsInf(r, 0) {
				e.accepted.Store(math.Float64bits(r))
			}
		case "rate":
			rs, bs, _ := strings.Cut(val, ",")
			r, err1 := strconv.ParseFloat(rs, 64)
			b, err2 := strconv.Atoi(bs)
			if err1 != nil || err2 != nil || r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
				continue
			}
			e.burst.Store(int64(b))
			if old := math.Float64frombits(e.rate.Swap(math.Float64bits(r))); r < cutSeen*old {
				// A cut: the tokens leased at the old pace go unused.
				e.mu.Lock()
				e.lease, e.notBefore = 0, time.Time{}
				e.mu.Unlock()
			}
		}
	}
}

// failure counts a breaker failure in the fleet's run, and opens every
// replica's breaker when the run reaches the threshold.
func (s *Store) failure(ctx context.Context, e *entry, ev resilienthttp.FleetEvent) error {
	s.trips.Add(1)
	n, err := failureScript.Run(ctx, s.rdb, []string{e.base, e.base + ":fails"},
		int64(ev.Threshold), ev.Window.Milliseconds(), ev.At.Add(ev.OpenFor).UnixMicro(), keyTTL.Milliseconds(), s.channel(), e.base).Int64()
	if err != nil {
		return err
	}
	e.runs.Store(n)
	if n >= int64(ev.Threshold) {
		setMax(&e.open, ev.At.Add(ev.OpenFor).Truncate(time.Microsecond).UnixNano())
	}
	return nil
}

// script runs one of the state scripts on e's key (and its bucket's),
// with the TTL, the channel and the base as the last arguments.
func (s *Store) script(ctx context.Context, sc *redis.Script, e *entry, args ...any) error {
	s.trips.Add(1)
	args = append(args, keyTTL.Milliseconds(), s.channel(), e.base)
	return sc.Run(ctx, s.rdb, []string{e.base, e.base + ":bucket"}, args...).Err()
}

// micros reads a time Redis holds, in Unix microseconds (exact in Lua's
// doubles, which nanoseconds are not), as Unix nanoseconds; 0 if it is
// not one.
func micros(v any) int64 {
	str, _ := v.(string)
	n, err := strconv.ParseInt(str, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/1000 {
		return 0
	}
	return n * 1000
}

// setMax raises v to n if n is later.
func setMax(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// The scripts keep each change atomic in Redis and publish it. KEYS are
// the host's own keys only (one hash tag, one Cluster slot); the channel
// is an argument, since PUBLISH is broadcast to every Cluster node. The
// last three ARGV of every script are the TTL in ms, the channel and the
// base the message names.
var (
	// KEYS: the bucket, the replicas taking from it. ARGV: the interval
	// between tokens (µs), burst, n, TTL (ms), this replica's id, the
	// presence window (µs), how far ahead tokens are held (µs). GCRA, as
	// redis_rate's, on Redis's own clock: tat is when the bucket is next
	// empty-handed; the lease's k-th token (k = 1..n) is due at
	// max(tat, now) + (k - burst) * interval, and only tokens due within
	// the hold are leased. It returns when the first is due, relative to
	// now, in µs (negative: due already), the tokens leased, and how many
	// replicas took within the window.
	reserveScript = redis.NewScript(`
local every, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ahead = tonumber(ARGV[7])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[6]))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local replicas = redis.call('ZCARD', KEYS[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local first = tat + (1 - burst) * every - now
if first > ahead then
  return {math.floor(first), 0, replicas}
end
local k = math.min(n, math.floor((ahead - math.max(first, 0)) / every) + 1)
redis.call('SET', KEYS[1], string.format('%.0f', tat + k * every), 'PX', ARGV[4])
return {math.floor(first), k, replicas}`)
	// ARGV: field, until (µs).
	pauseScript = redis.NewScript(`
local ttl, ch, base = ARGV[3], ARGV[4], ARGV[5]
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('PUBLISH', ch, ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. base)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 0`)
	// ARGV: rate, burst. The declared rate is also the ceiling raises
	// stop at.
	declareScript = redis.NewScript(`
local ttl, ch, base = ARGV[3], ARGV[4], ARGV[5]
if redis.call('HGET', KEYS[1], 'ceil') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'rate', ARGV[1], 'burst', ARGV[2], 'ceil', ARGV[1])
  redis.call('PUBLISH', ch, 'rate ' .. ARGV[1] .. ',' .. ARGV[2] .. ' ' .. base)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 0`)
	// ARGV: rate, at (µs), wave (µs). One cut per wave: the first cut
	// starts a wave, and the cuts other replicas make within a wave of it
	// are the same wave seen from elsewhere. In the first wave, from no
	// pace, each replica estimates the host's rate from its own share of
	// the answers, and one that got none estimates nothing: that wave
	// keeps the highest estimate. Later waves cut from the fleet's pace,
	// which every replica follows: the first cut stands.
	cutScript = redis.NewScript(`
local ttl, ch, base = ARGV[4], ARGV[5], ARGV[6]
local last = tonumber(redis.call('HGET', KEYS[1], 'cut') or '0')
local cur = tonumber(redis.call('HGET', KEYS[1], 'rate') or '0')
local pre = tonumber(redis.call('HGET', KEYS[1], 'pre') or '0')
local r, at = tonumber(ARGV[1]), tonumber(ARGV[2])
local set = false
if cur == 0 or (at - last >= tonumber(ARGV[3]) and r < cur) then
  redis.call('HSET', KEYS[1], 'pre', tostring(cur), 'cut', ARGV[2])
  set = true
elseif at - last < tonumber(ARGV[3]) and r > cur and pre == 0 then
  set = true
end
if set then
  local b = redis.call('HGET', KEYS[1], 'burst') or '1'
  redis.call('HSET', KEYS[1], 'rate', ARGV[1], 'burst', b)
  redis.call('DEL', KEYS[2]) -- the bucket restarts at the new pace
  redis.call('PUBLISH', ch, 'rate ' .. ARGV[1] .. ',' .. b .. ' ' .. base)
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 0`)
	// ARGV: the rise, the floor, the answers accepted. Only a pace the
	// fleet has can rise, to at least the floor, and not past a declared
	// ceiling. The answers are counted in 100 ms slots (fields a<slot>);
	// the rate over the last five whole slots is published (the current
	// one is still filling, and a slot gets the answers flushed in it,
	// up to 100 ms old).
	raiseScript = redis.NewScript(`
local ttl, ch, base = ARGV[4], ARGV[5], ARGV[6]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = math.floor(now / 100000)
if tonumber(ARGV[3]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'a' .. slot, ARGV[3])
  local sum = 0
  for i = slot - 5, slot - 1 do
    sum = sum + tonumber(redis.call('HGET', KEYS[1], 'a' .. i) or '0')
  end
  for i = slot - 10, slot - 6 do
    redis.call('HDEL', KEYS[1], 'a' .. i)
  end
  redis.call('PUBLISH', ch, 'acc ' .. string.format('%.3f', sum * 2) .. ' ' .. base)
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'rate') or '0')
if cur > 0 then
  local r = math.max(cur + tonumber(ARGV[1]), tonumber(ARGV[2]))
  local ceil = tonumber(redis.call('HGET', KEYS[1], 'ceil') or '0')
  if ceil > 0 and r > ceil then r = ceil end
  if r < 1 then r = 1 end
  if r ~= cur then
    local b = redis.call('HGET', KEYS[1], 'burst') or '1'
    redis.call('HSET', KEYS[1], 'rate', tostring(r))
    redis.call('PUBLISH', ch, 'rate ' .. tostring(r) .. ',' .. b .. ' ' .. base)
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 0`)
	// KEYS: state hash, run counter. ARGV: threshold, window (ms), open
	// until (µs). The run expires a window after its last failure;
	// reaching the threshold opens the breaker of the whole fleet.
	failureScript = redis.NewScript(`
local ttl, ch, base = ARGV[4], ARGV[5], ARGV[6]
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if n >= tonumber(ARGV[1]) then
  local cur = tonumber(redis.call('HGET', KEYS[1], 'open') or '0')
  if tonumber(ARGV[3]) > cur then
    redis.call('HSET', KEYS[1], 'open', ARGV[3])
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PUBLISH', ch, 'open ' .. ARGV[3] .. ' ' .. base)
  end
end
return n`)
)
