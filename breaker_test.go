package resilienthttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

type stateLog struct {
	mu      sync.Mutex
	changes []string
}

func (l *stateLog) record(host string, from, to resilienthttp.BreakerState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, from.String()+"→"+to.String())
}

func (l *stateLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.changes)
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(500)...)
	var log stateLog
	c, clk := newClient(t, resilienthttp.WithoutRetryBudget(),
		resilienthttp.WithBreaker(resilienthttp.BreakerSettings{OnStateChange: log.record}))

	// 5 consecutive failures trip it: a call of 4 attempts, then a second
	// call stopped by the breaker after its first.
	for i := 0; i < 2; i++ {
		do(t, c, http.MethodGet, srv.URL+"/a", nil)
	}
	if got := srv.Total(); got != 5 {
		t.Fatalf("server saw %d attempts before the breaker opened, want 5", got)
	}
	_, err := do(t, c, http.MethodGet, srv.URL+"/b", nil)
	var open *resilienthttp.CircuitOpenError
	var reqErr *resilienthttp.RequestError
	if !errors.Is(err, resilienthttp.ErrCircuitOpen) || !errors.As(err, &open) || !errors.As(err, &reqErr) {
		t.Fatalf("err = %v, want a *RequestError wrapping *CircuitOpenError", err)
	}
	if reqErr.Reason != resilienthttp.StopCircuitOpen || reqErr.Attempts != 0 || srv.Attempts("/b") != 0 {
		t.Errorf("got %+v, server saw %d; want nothing sent", reqErr, srv.Attempts("/b"))
	}
	// It opened during the last call, before that call's final backoff.
	if d := open.RetryAt.Sub(clk.Now()); open.Host != srv.URL[len("http://"):] || d <= 4*time.Second || d > 5*time.Second {
		t.Errorf("CircuitOpenError %+v, probing in %v; want host %s and a probe within the 5s Timeout", open, d, srv.URL)
	}

	// After Timeout, probes go through; MaxRequests (3) successes close it.
	srv.Script("/", servicetest.Statuses(200)...)
	clk.Sleep(context.Background(), 5*time.Second)
	for i := 0; i < 4; i++ {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/c", nil); err != nil {
			t.Fatalf("probe %d: %v", i, err)
		}
	}
	if got, want := log.String(), "[closed→open open→half-open half-open→closed]"; got != want {
		t.Errorf("state changes %s, want %s", got, want)
	}
}

func TestBreakerFailedProbeReopens(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(503)...)
	var log stateLog
	c, clk := newClient(t, resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 2, OnStateChange: log.record}))
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	clk.Sleep(context.Background(), 5*time.Second)
	do(t, c, http.MethodGet, srv.URL+"/", nil) // the probe fails
	_, err := do(t, c, http.MethodGet, srv.URL+"/", nil)
	if !errors.Is(err, resilienthttp.ErrCircuitOpen) || srv.Total() != 3 {
		t.Fatalf("err = %v after %d attempts, want the circuit open again after 3", err, srv.Total())
	}
	if got, want := log.String(), "[closed→open open→half-open half-open→open]"; got != want {
		t.Errorf("state changes %s, want %s", got, want)
	}
}

func TestBreakerIgnoresClientErrors(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(404)...)
	c, _ := newClient(t, resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 1}))
	for i := 0; i < 30; i++ {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); !errors.Is(err, resilienthttp.ErrNotFound) {
			t.Fatalf("call %d: %v, want the 404", i, err)
		}
	}
	if srv.Total() != 30 {
		t.Errorf("server saw %d, want all 30: a 404 says nothing of the host's health", srv.Total())
	}
}

// A request net/http refuses to send is the caller's fault, not the
// host's: it does not open the host's breaker for everyone else.
func TestBreakerIgnoresMalformedRequests(t *testing.T) {
	srv := servicetest.NewServer(t)
	c, _ := newClient(t, resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 1}))
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		req.Header.Set("X-Bad", "line\nbreak")
		if _, err := c.Do(req); err == nil || errors.Is(err, resilienthttp.ErrCircuitOpen) {
			t.Fatalf("malformed call %d: %v, want net/http's refusal", i, err)
		}
	}
	if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); err != nil || srv.Total() != 1 {
		t.Errorf("a good call after them: %v (server saw %d), want it sent and answered", err, srv.Total())
	}
}

func TestBreakerIgnoresCancelledCalls(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/slow", servicetest.Step{Fault: servicetest.FaultHangAfterHeaders})
	srv.Script("/ok", servicetest.Statuses(200)...)
	c, _ := newClient(t, resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 1}))
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel() // the caller gives up while the body hangs
		resp.Body.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/ok", nil)
	c.Do(req) // cancelled before it starts
	if _, err := do(t, c, http.MethodGet, srv.URL+"/ok", nil); err != nil {
		t.Fatalf("after cancelled calls: %v, want the breaker still closed", err)
	}
}

func TestBreakerHeldOpenByLongerRetryAfter(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Step{Status: 503, RetryAfter: "30"})
	c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}),
		resilienthttp.WithoutRateLimit(),
		resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 2}))
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	clk.Sleep(context.Background(), 10*time.Second) // past Timeout, not past Retry-After
	_, err := do(t, c, http.MethodGet, srv.URL+"/", nil)
	var open *resilienthttp.CircuitOpenError
	if !errors.As(err, &open) || srv.Total() != 2 {
		t.Fatalf("err = %v after %d attempts; want the circuit still open", err, srv.Total())
	}
	if d := open.RetryAt.Sub(clk.Now()); d != 20*time.Second {
		t.Errorf("probes again in %v, want 20s (the server's 30s)", d)
	}
}

// A Retry-After beyond MaxRetryAfter does not hold the breaker open: the
// host is back to its Timeout, like the limiter's pause.
func TestBreakerNotHeldByRetryAfterPastMaxRetryAfter(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Step{Status: 503, RetryAfter: "3600"}, servicetest.Step{Status: 503, RetryAfter: "3600"},
		servicetest.Step{Status: 200})
	c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}),
		resilienthttp.WithoutRateLimit(),
		resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 2}))
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	clk.Sleep(context.Background(), 6*time.Second) // past the breaker's 5s Timeout
	if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); err != nil || srv.Total() != 3 {
		t.Fatalf("err = %v after %d attempts; want the half-open probe sent and answered", err, srv.Total())
	}
}

func TestBreakerIsPerHost(t *testing.T) {
	down := servicetest.NewServer(t)
	down.Script("/", servicetest.Statuses(502)...)
	up := servicetest.NewServer(t)
	c, _ := newClient(t, resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 1}))
	do(t, c, http.MethodGet, down.URL+"/", nil)
	if _, err := do(t, c, http.MethodGet, down.URL+"/", nil); !errors.Is(err, resilienthttp.ErrCircuitOpen) {
		t.Fatalf("failing host: %v, want circuit open", err)
	}
	if _, err := do(t, c, http.MethodGet, up.URL+"/", nil); err != nil {
		t.Fatalf("healthy host: %v", err)
	}
}

func TestBreakerOff(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(503)...)
	c, _ := newClient(t, resilienthttp.WithoutBreaker())
	for i := 0; i < 30; i++ {
		do(t, c, http.MethodGet, srv.URL+"/", nil)
	}
	if srv.Total() != 30 {
		t.Errorf("server saw %d of 30", srv.Total())
	}
}

// A host that is down from the first request, and says so quickly (within
// the first-contact wait), gets one request at a time until its breaker
// opens, not one from every caller at once: 16 goroutines, 5 attempts in all.
func TestHostDownFromTheStart(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(503)...)
	c, _ := newClient(t, resilienthttp.WithClock(fastHostClock{newFakeClock()}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				_, err := do(t, c, http.MethodGet, srv.URL+"/", nil)
				if errors.Is(err, resilienthttp.ErrCircuitOpen) {
					mu.Lock()
					open++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if srv.Total() != 5 || open != 400-5 {
		t.Errorf("server saw %d attempts and %d calls were refused by the breaker; want 5 and 395", srv.Total(), open)
	}
}

// The default trip rule's second half: a failure ratio over enough
// requests, with no long run of failures.
func TestBreakerTripsOnFailureRatio(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(500, 200, 500, 200, 500, 200, 500, 200, 500, 500)...)
	c, _ := newClient(t, resilienthttp.WithBreaker(resilienthttp.BreakerSettings{
		MinRequests: 10, FailureRatio: 0.5, ConsecutiveFailures: 100}))
	for i := 0; i < 10; i++ { // POSTs: a 500 is not retried, one attempt each
		_, err := do(t, c, http.MethodPost, srv.URL+"/", strings.NewReader("x"))
		if errors.Is(err, resilienthttp.ErrCircuitOpen) {
			t.Fatalf("call %d refused: fewer than MinRequests had been seen", i+1)
		}
	}
	if _, err := do(t, c, http.MethodPost, srv.URL+"/", strings.NewReader("x")); !errors.Is(err, resilienthttp.ErrCircuitOpen) {
		t.Fatalf("after 6 failures in 10: %v, want the circuit open", err)
	}
}

// IsFailure decides what counts against a host: here 429 does too.
func TestBreakerIsFailure(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(429)...)
	c, _ := newClient(t, resilienthttp.WithoutRetryBudget(), resilienthttp.WithBreaker(resilienthttp.BreakerSettings{
		ConsecutiveFailures: 3,
		IsFailure: func(resp *http.Response, err error) bool {
			return err != nil || resp.StatusCode == http.StatusTooManyRequests
		},
	}))
	_, err := do(t, c, http.MethodGet, srv.URL+"/", nil)
	if !errors.Is(err, resilienthttp.ErrCircuitOpen) || srv.Total() != 3 {
		t.Fatalf("err = %v after %d attempts; want the circuit open after 3 throttled attempts", err, srv.Total())
	}
}

// TestBreakerReadyToTripSeesTheWindowsCounts: a custom ReadyToTrip is
// given the window's counts in the project's own BreakerCounts.
func TestBreakerReadyToTripSeesTheWindowsCounts(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/ok", servicetest.Statuses(200, 200)...)
	srv.Script("/", servicetest.Statuses(500)...)
	var seen []resilienthttp.BreakerCounts
	c, _ := newClient(t, resilienthttp.WithoutRetryBudget(),
		resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}),
		resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ReadyToTrip: func(c resilienthttp.BreakerCounts) bool {
			seen = append(seen, c)
			return c.TotalFailures >= 2
		}}))
	do(t, c, http.MethodGet, srv.URL+"/ok", nil)
	do(t, c, http.MethodGet, srv.URL+"/ok", nil)
	do(t, c, http.MethodGet, srv.URL+"/a", nil)
	do(t, c, http.MethodGet, srv.URL+"/a", nil)
	if _, err := do(t, c, http.MethodGet, srv.URL+"/a", nil); !errors.Is(err, resilienthttp.ErrCircuitOpen) {
		t.Fatalf("third failing call: err = %v, want ErrCircuitOpen", err)
	}
	want := []resilienthttp.BreakerCounts{
		{Requests: 3, TotalSuccesses: 2, TotalFailures: 1, ConsecutiveFailures: 1},
		{Requests: 4, TotalSuccesses: 2, TotalFailures: 2, ConsecutiveFailures: 2},
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("ReadyToTrip saw %+v, want %+v", seen, want)
	}
}
