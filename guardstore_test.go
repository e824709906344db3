package resilienthttp_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// memStore is a GuardStore in memory, shared by the clients of one test
// as replicas share Redis: events apply at once, and the fleet's bucket
// hands out tokens without waiting.
type memStore struct {
	mu    sync.Mutex
	views map[resilienthttp.GuardKey]resilienthttp.FleetView
	runs  map[resilienthttp.GuardKey]uint32
	taken int
}

func newMemStore() *memStore {
	return &memStore{views: map[resilienthttp.GuardKey]resilienthttp.FleetView{}, runs: map[resilienthttp.GuardKey]uint32{}}
}

func (m *memStore) View(k resilienthttp.GuardKey) resilienthttp.FleetView {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.views[k]
}

func (m *memStore) Share(k resilienthttp.GuardKey, e resilienthttp.FleetEvent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := m.views[k]
	switch e.Kind {
	case resilienthttp.FleetPause:
		if e.Until.After(v.PausedUntil) {
			v.PausedUntil = e.Until
		}
	case resilienthttp.FleetDeclare:
		v.Rate, v.Burst = e.Rate, e.Burst
	case resilienthttp.FleetBreakerOpen:
		if e.Until.After(v.OpenUntil) {
			v.OpenUntil = e.Until
		}
	case resilienthttp.FleetBreakerFailure:
		m.runs[k]++
		if m.runs[k] >= e.Threshold {
			v.OpenUntil = e.At.Add(e.OpenFor)
		}
	case resilienthttp.FleetBreakerSuccess:
		m.runs[k] = 0
	}
	m.views[k] = v
}

func (m *memStore) Take(context.Context, resilienthttp.GuardKey) (time.Duration, bool, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.taken++
	return 0, true, true
}

// Two clients sharing a store act as one: one's Retry-After holds the
// other, which never heard the 429.
func TestGuardStoreSharesTheRetryAfterPause(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/busy", servicetest.Step{Status: 429, RetryAfter: "30"}, servicetest.Step{})
	store := newMemStore()
	a, _ := newClient(t, resilienthttp.WithGuardStore(store))
	b, clkB := newClient(t, resilienthttp.WithGuardStore(store))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/busy", nil)
	if _, err := a.Do(req); !errors.Is(err, resilienthttp.ErrTooManyRequests) {
		t.Fatalf("a: err = %v, want the 429", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, http.MethodGet, srv.URL+"/other", nil)
	var rl *resilienthttp.RateLimitError
	if _, err := b.Do(req); !errors.As(err, &rl) || srv.Attempts("/other") != 0 {
		t.Fatalf("b: err = %v, server saw %d; want a RateLimitError and nothing sent", err, srv.Attempts("/other"))
	}
	// Without a deadline b waits the fleet's pause out, then goes.
	if _, err := do(t, b, http.MethodGet, srv.URL+"/other", nil); err != nil {
		t.Fatal(err)
	}
	if got := clkB.Sleeps(); len(got) != 1 || got[0] < 29*time.Second || got[0] > 30*time.Second {
		t.Errorf("b's waits = %v, want the rest of a's 30s pause", got)
	}
}

// One client's failures count towards the fleet's run: the breaker opens
// for the other, which sends nothing.
func TestGuardStoreOpensTheBreakerForTheFleet(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(500)...)
	store := newMemStore()
	opts := []resilienthttp.Option{resilienthttp.WithGuardStore(store), resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 3})}
	a, _ := newClient(t, opts...)
	b, _ := newClient(t, opts...)
	for range 2 {
		if _, err := do(t, a, http.MethodGet, srv.URL+"/x", nil); err == nil {
			t.Fatal("a: no error from a host answering 500")
		}
	}
	sent := srv.Total()
	_, err := do(t, b, http.MethodGet, srv.URL+"/y", nil)
	var open *resilienthttp.CircuitOpenError
	if !errors.As(err, &open) || srv.Total() != sent {
		t.Fatalf("b: err = %v, server saw %d more; want a CircuitOpenError and nothing sent", err, srv.Total()-sent)
	}
}

// A declared quota paces the fleet through the store's bucket.
func TestGuardStoreTakesFromTheFleetsBucketOnceAPaceIsKnown(t *testing.T) {
	srv := servicetest.NewServer(t, servicetest.WithRateLimit(50, 10), servicetest.WithRateLimitHeaders(servicetest.IETFHeaders))
	store := newMemStore()
	c, _ := newClient(t, resilienthttp.WithGuardStore(store))
	for range 5 {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/x", nil); err != nil {
			t.Fatal(err)
		}
	}
	v := store.View(resilienthttp.GuardKey{Host: srv.URL[len("http://"):]})
	if v.Rate < 49 || v.Rate > 50 {
		t.Errorf("the fleet's pace = %v, want the declared 50/s less headroom", v.Rate)
	}
	if store.taken < 4 {
		t.Errorf("the client took %d tokens from the fleet's bucket, want one per call after the first", store.taken)
	}
}
