package resilienthttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// slowFirstContact sends a first GET to a new host, which the server holds
// (a Step.Delay of a minute), and once it is out, five GETs to another path
// of the same host. It checks that the five are all answered while the slow
// one is still in flight, then cancels the slow one, so that nothing depends
// on how long anything takes. It returns the waits the client's clock
// recorded.
func slowFirstContact(t *testing.T, opts ...resilienthttp.Option) []time.Duration {
	t.Helper()
	srv := servicetest.NewServer(t)
	srv.Script("/slow", servicetest.Step{Delay: time.Minute})
	slowOut := make(chan struct{})
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Path == "/slow" {
			close(slowOut) // the slow GET has its turn: the fast ones come second
		}
		return srv.Client().Transport.RoundTrip(req)
	})
	c, clk := newClient(t, append([]resilienthttp.Option{resilienthttp.WithTransport(base)}, opts...)...)

	slowCtx, cancelSlow := context.WithCancel(context.Background())
	defer cancelSlow()
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		req, _ := http.NewRequestWithContext(slowCtx, http.MethodGet, srv.URL+"/slow", nil)
		c.Do(req)
	}()
	<-slowOut

	// A regression holds the fast calls behind the slow one: the deadline
	// makes the test fail rather than hang.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/fast", nil)
			resp, err := c.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	select {
	case <-slowDone:
		t.Error("the slow first call ended before the fast calls were answered")
	default:
	}
	for err := range errs {
		if err != nil {
			t.Errorf("fast call held behind the slow first one: %v", err)
		}
	}
	if n := srv.Attempts("/fast"); n != 5 {
		t.Errorf("server saw %d fast GETs, want 5", n)
	}
	cancelSlow()
	<-slowDone
	return clk.Sleeps()
}

// TestSlowFirstAnswerDoesNotHoldOtherCalls checks that calls to a new host
// wait for the first call's answer only briefly: a slow first answer does
// not hold them.
func TestSlowFirstAnswerDoesNotHoldOtherCalls(t *testing.T) {
	for _, d := range slowFirstContact(t) {
		// The fake clock returns at once; what was asked is bounded.
		if d > 100*time.Millisecond {
			t.Errorf("a call waited %v for the first answer, want at most 100ms", d)
		}
	}
}

// TestNoFirstContactProbeWithFixedRate checks that a fixed Rate, the pace
// the caller declared, goes without the first-contact probe: within the
// burst, calls to a new host go out together without any wait.
func TestNoFirstContactProbeWithFixedRate(t *testing.T) {
	s := resilienthttp.LimiterSettings{Rate: 1000, Burst: 10}
	if waits := slowFirstContact(t, resilienthttp.WithRateLimit(s)); len(waits) != 0 {
		t.Errorf("waits = %v, want none", waits)
	}
}

// TestPanickingProbeDoesNotWedgeTheHost checks that a base transport
// panicking on a new host's first request lets the panic reach the caller
// and passes the probe's turn on: the next call to the host goes at once as
// the new probe, instead of waiting behind a probe that will never answer.
func TestPanickingProbeDoesNotWedgeTheHost(t *testing.T) {
	srv := servicetest.NewServer(t)
	var calls atomic.Int32
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			panic("base transport broke")
		}
		return srv.Client().Transport.RoundTrip(req)
	})
	c, clk := newClient(t, resilienthttp.WithTransport(base))
	func() {
		defer func() {
			if r := recover(); r != "base transport broke" {
				t.Fatalf("recovered %v, want the base transport's panic", r)
			}
		}()
		do(t, c, http.MethodGet, srv.URL+"/", nil)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("the call after the panic: %v", err)
	}
	resp.Body.Close()
	if waits := clk.Sleeps(); len(waits) != 0 {
		t.Errorf("the call after the panic waited %v, want none: it should be the new probe", waits)
	}
}

// TestFirstContactProbeOff checks NoFirstContactProbe: calls to a new host
// go out together without any wait.
func TestFirstContactProbeOff(t *testing.T) {
	s := resilienthttp.LimiterSettings{NoFirstContactProbe: true}
	if waits := slowFirstContact(t, resilienthttp.WithRateLimit(s)); len(waits) != 0 {
		t.Errorf("waits = %v, want none", waits)
	}
}

// fastHostClock is a fakeClock for a host that answers within the
// first-contact wait (100 ms): a wait that short ends only with its context,
// so a call waiting for the probe goes on the probe's answer, as it would in
// real time, and not at once, as fakeClock would let it. Longer waits return
// at once. A short wait left unanswered for 5 s panics rather than hangs.
type fastHostClock struct{ *fakeClock }

func (c fastHostClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 || d > 100*time.Millisecond {
		return c.fakeClock.Sleep(ctx, d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Second):
		panic("fastHostClock: a short wait that no answer ended")
	}
}

// A first GET to a new host that hangs with no deadline of its own does not
// hold the calls behind it: fifty calls with 2 s deadlines all reach the
// server. Real time: the client's own clock, as an SDK has it.
func TestHungFirstRequestHoldsNoOne(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/hang", servicetest.Step{Delay: time.Hour})
	hangOut := make(chan struct{})
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Path == "/hang" {
			close(hangOut)
		}
		return srv.Client().Transport.RoundTrip(req)
	})
	c := resilienthttp.New(resilienthttp.WithTransport(base))
	hangCtx, stopHang := context.WithCancel(context.Background())
	hung := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(hangCtx, http.MethodGet, srv.URL+"/hang", nil)
		_, err := c.Do(req)
		hung <- err
	}()
	<-hangOut
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/users", nil)
			resp, err := c.Do(req)
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if n, seen := failed.Load(), srv.Attempts("/users"); n != 0 || seen != 50 {
		t.Errorf("%d of 50 calls failed and the server saw %d; want all 50 answered", n, seen)
	}
	stopHang()
	if err := <-hung; !errors.Is(err, context.Canceled) {
		t.Errorf("the hung call ended with %v, want context.Canceled", err)
	}
	c.CloseIdleConnections()
}
