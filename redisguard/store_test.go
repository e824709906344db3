package redisguard_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/redisguard"
	"github.com/resilienthttp/resilienthttp/redisguard/internal/redistest"
)

// newStore returns a Store on the redis-server at addr, closed at the end
// of the test with its client.
func newStore(t *testing.T, addr string, opts ...redisguard.Option) *redisguard.Store {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	s := redisguard.New(rdb, opts...)
	t.Cleanup(func() {
		s.Close()
		rdb.Close()
	})
	return s
}

// sync runs Sync on each store, failing the test on an error.
func sync(t *testing.T, stores ...*redisguard.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range stores {
		if err := s.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
}

var key = resilienthttp.GuardKey{Host: "api.example.com"}

func TestPauseAndOpenAreSharedAndOnlyExtended(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Addr), newStore(t, srv.Addr)
	now := time.Now().Truncate(time.Microsecond)
	b.View(key) // b knows the key: it gets the push
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetPause, At: now, Until: now.Add(time.Second)})
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetPause, At: now, Until: now.Add(time.Millisecond)})
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetBreakerOpen, At: now, Until: now.Add(5 * time.Second)})
	sync(t, a, b)
	v := b.View(key)
	if !v.PausedUntil.Equal(now.Add(time.Second)) {
		t.Errorf("PausedUntil = %v, want %v (the longer pause)", v.PausedUntil, now.Add(time.Second))
	}
	if !v.OpenUntil.Equal(now.Add(5 * time.Second)) {
		t.Errorf("OpenUntil = %v, want %v", v.OpenUntil, now.Add(5*time.Second))
	}
	// Another prefix is another service: it shares nothing with these.
	if v := newStore(t, srv.Addr, redisguard.WithPrefix("other:")).View(key); !v.PausedUntil.IsZero() {
		t.Errorf("another prefix sees PausedUntil %v", v.PausedUntil)
	}
}

func TestPaceIsDeclaredCutOncePerWaveAndRaisedByAll(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Addr), newStore(t, srv.Addr)
	now := time.Now()
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetCut, At: now, Rate: 40})
	sync(t, a)
	b.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetCut, At: now.Add(100 * time.Millisecond), Rate: 20})
	sync(t, a, b)
	if r := b.View(key).Rate; r != 40 {
		t.Fatalf("after two cuts in one wave Rate = %v, want 40 (the first)", r)
	}
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetRaise, At: now, Rate: 3})
	b.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetRaise, At: now, Rate: 2})
	sync(t, a, b)
	sync(t, a)
	if r := a.View(key).Rate; r != 45 {
		t.Fatalf("after raises of 3 and 2 Rate = %v, want 45", r)
	}
	b.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetCut, At: now.Add(2 * time.Second), Rate: 30})
	b.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetDeclare, At: now, Rate: 99, Burst: 10})
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetRaise, At: now, Rate: 50})
	sync(t, b, a)
	sync(t, b)
	if v := b.View(key); v.Rate != 99 || v.Burst != 10 {
		t.Fatalf("after a declared quota and a raise past it: Rate %v Burst %d, want 99 and 10", v.Rate, v.Burst)
	}
}

func TestTakeLeasesTheFleetsBucket(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Addr), newStore(t, srv.Addr)
	ctx := context.Background()
	if _, _, ok := a.Take(ctx, key); ok {
		t.Fatal("Take with no fleet pace: ok, want false (pace locally)")
	}
	// 20/s with a burst of 4: each lease holds 2 tokens (100 ms of pace),
	// the bucket 4 at once; the fifth token across both replicas waits.
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetDeclare, Rate: 20, Burst: 4})
	b.View(key)
	sync(t, a, b)
	var waits []time.Duration
	for i := range 5 {
		s := a
		if i%2 == 1 {
			s = b
		}
		d, taken, ok := s.Take(ctx, key)
		if !ok || !taken {
			t.Fatalf("Take %d: taken %v, ok %v", i, taken, ok)
		}
		waits = append(waits, d)
	}
	for i, d := range waits[:4] {
		if d != 0 {
			t.Errorf("Take %d waits %v, want 0 (within the burst)", i, d)
		}
	}
	if d := waits[4]; d <= 0 || d > 50*time.Millisecond {
		t.Errorf("fifth Take waits %v, want about one token's 50ms", d)
	}
	if got := a.Stats().RoundTrips + b.Stats().RoundTrips; got == 0 {
		t.Error("no round trips counted")
	}
}

func TestBreakerRunIsTheFleets(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newStore(t, srv.Addr), newStore(t, srv.Addr)
	now := time.Now().Truncate(time.Microsecond)
	fail := resilienthttp.FleetEvent{Kind: resilienthttp.FleetBreakerFailure, At: now, Threshold: 4, Window: 10 * time.Second, OpenFor: 5 * time.Second}
	a.Share(key, fail)
	b.Share(key, fail)
	a.Share(key, fail)
	sync(t, a, b)
	if o := a.View(key).OpenUntil; !o.IsZero() {
		t.Fatalf("open after 3 of 4 failures: %v", o)
	}
	// A success ends the run; the next 3 failures do not open it.
	a.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetBreakerSuccess, At: now})
	sync(t, a)
	for range 3 {
		b.Share(key, fail)
	}
	sync(t, a, b)
	if o := a.View(key).OpenUntil; !o.IsZero() {
		t.Fatalf("open after a success and 3 failures: %v", o)
	}
	a.Share(key, fail)
	sync(t, a, b)
	if o := b.View(key).OpenUntil; !o.Equal(now.Add(5 * time.Second)) {
		t.Fatalf("after the fourth failure in a row OpenUntil = %v, want %v", o, now.Add(5*time.Second))
	}
}

func TestRedisDownIsAnEmptyFleetWithinTheBudget(t *testing.T) {
	srv := redistest.Start(t)
	const budget = 30 * time.Millisecond
	s := newStore(t, srv.Addr, redisguard.WithBudget(budget), redisguard.WithRejoinEvery(time.Hour))
	s.Share(key, resilienthttp.FleetEvent{Kind: resilienthttp.FleetDeclare, Rate: 100, Burst: 5})
	sync(t, s)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, ok := s.Take(context.Background(), key)
	took := time.Since(start)
	if ok {
		t.Fatal("Take with Redis killed: ok")
	}
	if took > budget+20*time.Millisecond { // scheduling slack on a busy machine
		t.Errorf("Take with Redis killed took %v, past the budget %v", took, budget)
	}
	if v := s.View(key); v != (resilienthttp.FleetView{}) {
		t.Errorf("View with Redis down = %+v, want the zero FleetView", v)
	}
	if st := s.Stats(); !st.Down || st.Failures == 0 {
		t.Errorf("Stats = %+v, want Down and a failure", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.Sync(ctx); err == nil {
		t.Error("Sync with Redis down: no error")
	}
}
