package resilienthttp_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

func TestRetryAfterIsTheFloor(t *testing.T) {
	srv := servicetest.NewServer(t)
	c, clk := newClient(t, resilienthttp.WithRandom(constRand(0.999)))
	srv.Script("/q", servicetest.Step{Status: 429, RetryAfter: "2"}, servicetest.Step{Status: 200})
	if _, err := do(t, c, http.MethodGet, srv.URL+"/q", nil); err != nil {
		t.Fatal(err)
	}
	got := clk.Sleeps()
	if len(got) != 1 || got[0] < 2*time.Second || got[0] > 2*time.Second+400*time.Millisecond {
		t.Fatalf("waits = %v, want one wait in [2s, 2.4s]", got)
	}

	// With jitter drawing 0 the wait is exactly the server's.
	c, clk = newClient(t, resilienthttp.WithRandom(constRand(0)))
	srv.Script("/q2", servicetest.Step{Status: 503, Header: http.Header{"Retry-After-Ms": {"1500"}}}, servicetest.Step{Status: 200})
	if _, err := do(t, c, http.MethodPost, srv.URL+"/q2", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 1500*time.Millisecond {
		t.Fatalf("waits = %v, want [1.5s]", got)
	}
}

func TestRetryAfterHTTPDateUsesServerDate(t *testing.T) {
	// The server's clock says 10:00:00 and asks for 10:00:30; the client's
	// clock is hours off. The wait is the server's 30 s.
	serverNow := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	formats := map[string]string{
		"IMF-fixdate": serverNow.Add(30 * time.Second).Format(http.TimeFormat),
		"RFC 850":     serverNow.Add(30 * time.Second).Format(time.RFC850),
		"asctime":     serverNow.Add(30 * time.Second).Format(time.ANSIC),
	}
	for name, date := range formats {
		t.Run(name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/d", servicetest.Step{Status: 429, RetryAfter: date,
				Header: http.Header{"Date": {serverNow.Format(http.TimeFormat)}}}, servicetest.Step{Status: 200})
			c, clk := newClient(t, resilienthttp.WithRandom(constRand(0)))
			if _, err := do(t, c, http.MethodGet, srv.URL+"/d", nil); err != nil {
				t.Fatal(err)
			}
			if got := clk.Sleeps(); len(got) != 1 || got[0] != 30*time.Second {
				t.Fatalf("waits = %v, want [30s]", got)
			}
		})
	}
}

func TestMalformedRetryAfterFallsBackToBackoff(t *testing.T) {
	for _, v := range []string{"", "-1", "1.5", "99999999999999999999", "soon", "+3", " 2 x", "Mon, 32 Foo 2026 99:00:00 GMT"} {
		t.Run(v, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/r", servicetest.Step{Status: 429, RetryAfter: v}, servicetest.Step{Status: 200})
			c, clk := newClient(t)
			if _, err := do(t, c, http.MethodGet, srv.URL+"/r", nil); err != nil {
				t.Fatal(err)
			}
			if got := clk.Sleeps(); len(got) != 1 || got[0] != 50*time.Millisecond {
				t.Fatalf("waits = %v, want the backoff [50ms]", got)
			}
			// 503 with a malformed Retry-After has not declared itself
			// temporary: one attempt.
			srv.Script("/u", servicetest.Step{Status: 503, RetryAfter: v})
			if _, err := do(t, c, http.MethodGet, srv.URL+"/u", nil); err == nil || srv.Attempts("/u") != 1 {
				t.Fatalf("503: %v after %d attempts, want an error after 1", err, srv.Attempts("/u"))
			}
		})
	}
}

func TestRetryAfterBeyondLimitReturnsAtOnce(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/slow", servicetest.Step{Status: 429, RetryAfter: "120"})
	c, clk := newClient(t)
	_, err := do(t, c, http.MethodGet, srv.URL+"/slow", nil)
	var apiErr *resilienthttp.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if apiErr.RetryAfter != 120*time.Second || apiErr.Reason != resilienthttp.StopRetryAfterTooLong || apiErr.Attempts != 1 {
		t.Errorf("got RetryAfter %v, Reason %q, Attempts %d; want 2m0s, %q, 1", apiErr.RetryAfter, apiErr.Reason, apiErr.Attempts, resilienthttp.StopRetryAfterTooLong)
	}
	if len(clk.Sleeps()) != 0 {
		t.Errorf("slept %v", clk.Sleeps())
	}
	if !strings.Contains(err.Error(), "server asked to wait 2m0s") {
		t.Errorf("Error() = %q does not say how long", err)
	}
}

func TestRetryAfterPastDeadlineReturnsAtOnce(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/d", servicetest.Step{Status: 503, RetryAfter: "30"})
	c, clk := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/d", nil)
	_, err := c.Do(req)
	var apiErr *resilienthttp.APIError
	if !errors.As(err, &apiErr) || apiErr.Reason != resilienthttp.StopDeadline || apiErr.RetryAfter != 30*time.Second {
		t.Fatalf("err = %#v, want *APIError with Reason %q and RetryAfter 30s", err, resilienthttp.StopDeadline)
	}
	if srv.Attempts("/d") != 1 || len(clk.Sleeps()) != 0 {
		t.Errorf("%d attempts, waits %v; want 1 attempt and no wait", srv.Attempts("/d"), clk.Sleeps())
	}
}

// One servicetest.Clock drives the client and the service: a 30 s
// Retry-After is waited on the fake clock, which the service sees pass,
// and an attempt's timer fires only when the test's time passes it.
func TestOneFakeClockDrivesClientAndService(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clk := servicetest.NewClock(start)
	srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now))
	srv.Script("/v3/users", servicetest.Step{Status: 429, RetryAfter: "30"}, servicetest.Step{Body: `{"users":[]}`})
	c := resilienthttp.New(resilienthttp.WithClock(clk), resilienthttp.WithRandom(constRand(0)),
		resilienthttp.WithPolicy(resilienthttp.Policy{AttemptTimeout: 5 * time.Second}))
	defer c.CloseIdleConnections()

	if _, err := do(t, c, http.MethodGet, srv.URL+"/v3/users", nil); err != nil {
		t.Fatalf("%v, want success after the 429 (an attempt's timer must not fire before its time)", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("service saw %d attempts, want 2", len(reqs))
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < 30*time.Second {
		t.Errorf("the service saw the retry %v after the 429, want at least the 30s asked", gap)
	}
	if reqs[0].Time != start {
		t.Errorf("first attempt at %v by the service's clock, want the start %v", reqs[0].Time, start)
	}
}
