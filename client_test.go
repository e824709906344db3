package resilienthttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// newClient returns a client whose waits are recorded by a fake clock and
// whose jitter always draws the middle of its range.
func newClient(t *testing.T, opts ...resilienthttp.Option) (*resilienthttp.Client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	c := resilienthttp.New(append([]resilienthttp.Option{
		resilienthttp.WithClock(clk),
		resilienthttp.WithRandom(constRand(0.5)),
	}, opts...)...)
	t.Cleanup(c.CloseIdleConnections)
	return c, clk
}

func do(t *testing.T, c *resilienthttp.Client, method, url string, body io.Reader) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// TestDefaultTable sends every status code the service documents list, with
// an idempotent and a non-idempotent method, to a server that always answers
// it, and checks how many attempts the server saw. Each row is the
// documents' sentence for that code (shared/seeds) as DESIGN.md reads it.
func TestDefaultTable(t *testing.T) {
	const all = resilienthttp.DefaultMaxAttempts
	type row struct {
		status     int
		retryAfter string
		get, post  int // attempts the server sees
	}
	rows := []row{
		// 2xx and 3xx are answers, not failures: returned after one attempt.
		{status: 200, get: 1, post: 1}, {status: 201, get: 1, post: 1}, {status: 202, get: 1, post: 1},
		{status: 203, get: 1, post: 1}, {status: 204, get: 1, post: 1}, {status: 205, get: 1, post: 1},
		{status: 206, get: 1, post: 1}, {status: 300, get: 1, post: 1}, {status: 301, get: 1, post: 1},
		{status: 302, get: 1, post: 1}, {status: 303, get: 1, post: 1}, {status: 304, get: 1, post: 1},
		{status: 305, get: 1, post: 1}, {status: 306, get: 1, post: 1}, {status: 307, get: 1, post: 1},
		// "should not repeat the request without modifications"
		{status: 400, get: 1, post: 1}, {status: 403, get: 1, post: 1},
		{status: 404, get: 1, post: 1}, {status: 405, get: 1, post: 1},
		// "authorization information … incorrect or invalid": no refresh hook, no repeat
		{status: 401, get: 1, post: 1},
		// client errors nothing says are repeatable
		{status: 402, get: 1, post: 1}, {status: 406, get: 1, post: 1}, {status: 407, get: 1, post: 1},
		{status: 409, get: 1, post: 1}, {status: 410, get: 1, post: 1}, {status: 411, get: 1, post: 1},
		{status: 412, get: 1, post: 1}, {status: 414, get: 1, post: 1}, {status: 415, get: 1, post: 1},
		{status: 416, get: 1, post: 1}, {status: 417, get: 1, post: 1}, {status: 422, get: 1, post: 1},
		{status: 418, get: 1, post: 1}, // not in the documents: the 4xx class rule
		// "may repeat the request without modifications at any later time"
		{status: 408, get: all, post: all},
		// temporary only "if the response contains Retry-After"
		{status: 413, get: 1, post: 1},
		{status: 413, retryAfter: "1", get: all, post: all},
		// "repeat requests after the time specified in the Retry-After header"
		{status: 429, get: all, post: all},
		{status: 429, retryAfter: "1", get: all, post: all},
		// server-side failures: repeated only where repeating is safe
		{status: 500, get: all, post: 1}, {status: 502, get: all, post: 1}, {status: 504, get: all, post: 1},
		{status: 599, get: all, post: 1}, // not in the documents: the 5xx class rule
		// not supported: permanent
		{status: 501, get: 1, post: 1}, {status: 505, get: 1, post: 1},
		// "should not repeat without modifications", unless the server
		// declares the condition temporary with Retry-After
		{status: 503, get: 1, post: 1},
		{status: 503, retryAfter: "1", get: all, post: all},
	}
	srv := servicetest.NewServer(t)
	for _, r := range rows {
		for _, m := range []struct {
			method string
			want   int
		}{{http.MethodGet, r.get}, {http.MethodPost, r.post}} {
			name := fmt.Sprintf("%d_RA%s_%s", r.status, r.retryAfter, m.method)
			t.Run(name, func(t *testing.T) {
				path := "/" + name
				srv.Script(path, servicetest.Step{Status: r.status, RetryAfter: r.retryAfter})
				c, _ := newClient(t) // fresh guards: this is the policy's table alone
				var body io.Reader
				if m.method == http.MethodPost {
					body = strings.NewReader(`{"name":"x"}`)
				}
				resp, err := do(t, c, m.method, srv.URL+path, body)
				if got := srv.Attempts(path); got != m.want {
					t.Errorf("server saw %d attempts, want %d", got, m.want)
				}
				if r.status < 400 {
					if err != nil || resp.StatusCode != r.status {
						t.Fatalf("got %v, %v; want a %d response", resp, err, r.status)
					}
					return
				}
				var apiErr *resilienthttp.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("err = %v (%T), want *APIError", err, err)
				}
				if apiErr.StatusCode != r.status || apiErr.Attempts != m.want {
					t.Errorf("APIError{StatusCode: %d, Attempts: %d}, want %d, %d", apiErr.StatusCode, apiErr.Attempts, r.status, m.want)
				}
				wantReason := resilienthttp.StopNotRetryable
				if m.want == all {
					wantReason = resilienthttp.StopAttemptsExhausted
				}
				if apiErr.Reason != wantReason {
					t.Errorf("Reason = %q, want %q", apiErr.Reason, wantReason)
				}
			})
		}
	}
}

// TestInformationalThenFinal covers the 1xx rows: net/http consumes an
// interim 100 and returns the final answer; 101 is itself final. Neither is
// a failure. servicetest scripts final statuses only, hence the handler.
func TestInformationalThenFinal(t *testing.T) {
	for _, status := range []int{100, 101} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			var attempts int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				attempts++
				w.WriteHeader(status)
				if status == 100 {
					w.WriteHeader(http.StatusOK)
				}
			}))
			defer srv.Close()
			c, _ := newClient(t)
			resp, err := do(t, c, http.MethodGet, srv.URL, nil)
			want := status
			if status == 100 {
				want = 200
			}
			if err != nil || resp.StatusCode != want || attempts != 1 {
				t.Fatalf("got %v, %v after %d attempts; want %d after 1", resp, err, attempts, want)
			}
		})
	}
}

func TestRFC9110PolicyRetries503WithBackoff(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/x", servicetest.Statuses(503, 503, 200)...)
	c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.RFC9110Policy()))
	resp, err := do(t, c, http.MethodGet, srv.URL+"/x", nil)
	if err != nil || resp.StatusCode != 200 || srv.Attempts("/x") != 3 {
		t.Fatalf("got %v, %v after %d attempts; want 200 after 3", resp, err, srv.Attempts("/x"))
	}
	// Full jitter drawing 0.5 of a bound that doubles from 100ms.
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	if got := clk.Sleeps(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	// A POST still is not repeated: 503 may follow a partial write.
	srv.Script("/p", servicetest.Statuses(503, 200)...)
	if _, err := do(t, c, http.MethodPost, srv.URL+"/p", strings.NewReader("x")); err == nil || srv.Attempts("/p") != 1 {
		t.Fatalf("POST: err %v after %d attempts; want an error after 1", err, srv.Attempts("/p"))
	}
}

func TestRecoversAndReturnsFinalResponse(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/jobs", append(servicetest.Statuses(500, 502, 504), servicetest.Step{Status: 200, Body: "done"})...)
	c, clk := newClient(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" || srv.Attempts("/v1/jobs") != 4 {
		t.Fatalf("body %q after %d attempts, want \"done\" after 4", b, srv.Attempts("/v1/jobs"))
	}
	want := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	if got := clk.Sleeps(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestIdempotencyKeyMakesPOSTRepeatable(t *testing.T) {
	t.Run("caller's key", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/orders", servicetest.Statuses(500, 502, 201)...)
		c, _ := newClient(t)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"order_id":"o-1"}`))
		req.Header.Set("Idempotency-Key", "k-1")
		resp, err := c.Do(req)
		if err != nil || resp.StatusCode != 201 || srv.Attempts("/orders") != 3 {
			t.Fatalf("got %v, %v after %d attempts; want 201 after 3", resp, err, srv.Attempts("/orders"))
		}
		resp.Body.Close()
	})
	t.Run("generated key, stable across attempts", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/orders", servicetest.Statuses(500, 500, 201)...)
		n := 0
		c, _ := newClient(t, resilienthttp.WithIdempotencyKeys(func() string { n++; return "gen-" + strconv.Itoa(n) }))
		if _, err := do(t, c, http.MethodPost, srv.URL+"/orders", strings.NewReader("{}")); err != nil {
			t.Fatal(err)
		}
		reqs := srv.Requests()
		if len(reqs) != 3 {
			t.Fatalf("server saw %d attempts, want 3", len(reqs))
		}
		for _, r := range reqs {
			if got := r.Header.Get("Idempotency-Key"); got != "gen-1" {
				t.Errorf("attempt %d: Idempotency-Key %q, want gen-1", r.Attempt, got)
			}
		}
		// GET needs no key and gets none.
		srv.Script("/g", servicetest.Statuses(200)...)
		do(t, c, http.MethodGet, srv.URL+"/g", nil)
		if got := srv.Requests()[3].Header.Get("Idempotency-Key"); got != "" {
			t.Errorf("GET got Idempotency-Key %q", got)
		}
	})
	t.Run("default generator", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/orders", servicetest.Statuses(502, 201)...)
		c, _ := newClient(t, resilienthttp.WithIdempotencyKeys(nil))
		do(t, c, http.MethodPost, srv.URL+"/orders", strings.NewReader("{}"))
		reqs := srv.Requests()
		if len(reqs) != 2 || reqs[0].Header.Get("Idempotency-Key") == "" || reqs[0].Header.Get("Idempotency-Key") != reqs[1].Header.Get("Idempotency-Key") {
			t.Fatalf("want 2 attempts with one non-empty key, got %d", len(reqs))
		}
	})
}

func TestPerCallOverrides(t *testing.T) {
	srv := servicetest.NewServer(t)
	c, _ := newClient(t)

	srv.Script("/search", servicetest.Statuses(500, 200)...)
	req, _ := http.NewRequestWithContext(resilienthttp.ContextIdempotent(context.Background()),
		http.MethodPost, srv.URL+"/search", strings.NewReader(`{"q":"x"}`))
	resp, err := c.Do(req)
	if err != nil || srv.Attempts("/search") != 2 {
		t.Fatalf("idempotent POST: %v after %d attempts, want success after 2", err, srv.Attempts("/search"))
	}
	resp.Body.Close()

	srv.Script("/once", servicetest.Statuses(500, 200)...)
	req, _ = http.NewRequestWithContext(resilienthttp.ContextWithPolicy(context.Background(), resilienthttp.Policy{MaxAttempts: 1}),
		http.MethodGet, srv.URL+"/once", nil)
	if _, err := c.Do(req); err == nil || srv.Attempts("/once") != 1 {
		t.Fatalf("no-retry GET: %v after %d attempts, want an error after 1", err, srv.Attempts("/once"))
	}
}

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

func TestContextCancelledDuringWait(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/c", servicetest.Statuses(500)...)
	ctx, cancel := context.WithCancel(context.Background())
	// The wait is where the caller gives up: cancel from the clock.
	clk := &cancellingClock{fakeClock: newFakeClock(), cancel: cancel}
	c := resilienthttp.New(resilienthttp.WithClock(clk), resilienthttp.WithRandom(constRand(0.5)))
	defer c.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/c", nil)
	_, err := c.Do(req)
	var reqErr *resilienthttp.RequestError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &reqErr) {
		t.Fatalf("err = %v, want a *RequestError wrapping context.Canceled", err)
	}
	if reqErr.Attempts != 1 || reqErr.LastStatus != 500 || reqErr.Reason != resilienthttp.StopContextDone {
		t.Errorf("got %+v, want 1 attempt, last status 500, reason %q", reqErr, resilienthttp.StopContextDone)
	}
	if srv.Attempts("/c") != 1 {
		t.Errorf("server saw %d attempts, want 1", srv.Attempts("/c"))
	}
}

type cancellingClock struct {
	*fakeClock
	cancel context.CancelFunc
}

func (c *cancellingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.cancel()
	return c.fakeClock.Sleep(ctx, d)
}

func TestCancelledBeforeFirstAttempt(t *testing.T) {
	srv := servicetest.NewServer(t)
	c, _ := newClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
	_, err := c.Do(req)
	if !errors.Is(err, context.Canceled) || srv.Total() != 0 {
		t.Fatalf("err = %v, server saw %d; want context.Canceled and nothing sent", err, srv.Total())
	}
}

func TestDeadlineExceededIsReachable(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/slow", servicetest.Step{Delay: time.Minute})
	c, _ := newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/slow", nil)
	_, err := c.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if srv.Attempts("/slow") != 1 {
		t.Errorf("server saw %d attempts, want 1", srv.Attempts("/slow"))
	}
}

func TestTransportErrors(t *testing.T) {
	t.Run("connection refused is retried for any method", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c, clk := newClient(t)
		_, err = do(t, c, http.MethodPost, "http://"+addr+"/x", strings.NewReader("x"))
		var reqErr *resilienthttp.RequestError
		if !errors.As(err, &reqErr) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err = %v, want *RequestError wrapping ECONNREFUSED", err)
		}
		if reqErr.Attempts != 4 || reqErr.Reason != resilienthttp.StopAttemptsExhausted || len(clk.Sleeps()) != 3 {
			t.Errorf("got %+v after waits %v, want 4 attempts, attempts exhausted, 3 waits", reqErr, clk.Sleeps())
		}
	})
	t.Run("reset after the request was sent: GET retried, POST not", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/r", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/r", nil)
		if !errors.Is(err, syscall.ECONNRESET) || srv.Attempts("/r") != 4 {
			t.Fatalf("GET: %v after %d attempts, want ECONNRESET after 4", err, srv.Attempts("/r"))
		}
		srv.Script("/w", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})
		_, err = do(t, c, http.MethodPost, srv.URL+"/w", strings.NewReader("x"))
		var reqErr *resilienthttp.RequestError
		if !errors.As(err, &reqErr) || srv.Attempts("/w") != 1 || reqErr.Reason != resilienthttp.StopNotRetryable {
			t.Fatalf("POST: %v after %d attempts, want a not-retryable *RequestError after 1", err, srv.Attempts("/w"))
		}
	})
	t.Run("bad scheme fails at once", func(t *testing.T) {
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, "ftp://127.0.0.1/x", nil)
		var reqErr *resilienthttp.RequestError
		if !errors.As(err, &reqErr) || reqErr.Attempts != 1 || reqErr.Reason != resilienthttp.StopNotRetryable {
			t.Fatalf("err = %v, want a not-retryable *RequestError after 1 attempt", err)
		}
	})
	t.Run("TLS verification failure fails at once", func(t *testing.T) {
		var attempts int
		// servicetest serves plain HTTP only; this needs a TLS server.
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { attempts++ }))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake failure is the point
		srv.StartTLS()
		defer srv.Close()
		c, _ := newClient(t) // does not trust the test CA
		_, err := do(t, c, http.MethodGet, srv.URL, nil)
		var reqErr *resilienthttp.RequestError
		if !errors.As(err, &reqErr) || reqErr.Attempts != 1 || reqErr.Reason != resilienthttp.StopNotRetryable {
			t.Fatalf("err = %v, want a not-retryable *RequestError after 1 attempt", err)
		}
	})
	t.Run("redirect loop fails at once", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/loop", servicetest.Step{Status: http.StatusFound, Header: http.Header{"Location": {"/loop"}}})
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/loop", nil)
		var reqErr *resilienthttp.RequestError
		if !errors.As(err, &reqErr) || reqErr.Reason != resilienthttp.StopNotRetryable || srv.Attempts("/loop") != 10 {
			t.Fatalf("err = %v after %d requests, want a not-retryable error after 10 (one call, net/http's redirect limit)", err, srv.Attempts("/loop"))
		}
	})
}

func TestAttemptTimeoutIsRetriedForGET(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/slow", servicetest.Step{Delay: time.Minute}, servicetest.Step{Status: 200})
	c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{AttemptTimeout: 20 * time.Millisecond}))
	resp, err := do(t, c, http.MethodGet, srv.URL+"/slow", nil)
	if err != nil || resp.StatusCode != 200 || srv.Attempts("/slow") != 2 {
		t.Fatalf("got %v, %v after %d attempts, want 200 after 2", resp, err, srv.Attempts("/slow"))
	}
	srv.Script("/slowpost", servicetest.Step{Delay: time.Minute})
	_, err = do(t, c, http.MethodPost, srv.URL+"/slowpost", strings.NewReader("x"))
	if !errors.Is(err, resilienthttp.ErrAttemptTimeout) || srv.Attempts("/slowpost") != 1 {
		t.Fatalf("POST: %v after %d attempts, want ErrAttemptTimeout after 1", err, srv.Attempts("/slowpost"))
	}
}

func TestAttemptTimeoutDoesNotCutTheBody(t *testing.T) {
	srv := servicetest.NewServer(t)
	body := strings.Repeat("x", 1<<20)
	srv.Script("/big", servicetest.Step{Body: body})
	c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{AttemptTimeout: time.Minute}))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != len(body) {
		t.Fatalf("read %d bytes, %v; want %d", len(b), err, len(body))
	}
}

func TestPrepareRetryCanResign(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/s", servicetest.Statuses(500, 500, 200)...)
	n := 0
	c, _ := newClient(t, resilienthttp.WithPrepareRetry(func(r *http.Request) error {
		n++
		r.Header.Set("X-Sdk-Date", "t"+strconv.Itoa(n))
		return nil
	}))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/s", nil)
	req.Header.Set("X-Sdk-Date", "t0")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var got []string
	for _, r := range srv.Requests() {
		got = append(got, r.Header.Get("X-Sdk-Date"))
	}
	if fmt.Sprint(got) != "[t0 t1 t2]" {
		t.Errorf("signatures seen = %v, want [t0 t1 t2]", got)
	}
	if req.Header.Get("X-Sdk-Date") != "t0" {
		t.Errorf("the caller's request was modified: %q", req.Header.Get("X-Sdk-Date"))
	}

	srv.Script("/f", servicetest.Statuses(500, 200)...)
	c, _ = newClient(t, resilienthttp.WithPrepareRetry(func(*http.Request) error { return errors.New("no key") }))
	_, err = do(t, c, http.MethodGet, srv.URL+"/f", nil)
	var reqErr *resilienthttp.RequestError
	if !errors.As(err, &reqErr) || reqErr.Reason != resilienthttp.StopPrepareFailed || srv.Attempts("/f") != 1 {
		t.Fatalf("err = %v after %d attempts, want StopPrepareFailed after 1", err, srv.Attempts("/f"))
	}
}

func TestCredentialRefreshRepeats401Once(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/me", servicetest.Statuses(401, 200)...)
	c, clk := newClient(t, resilienthttp.WithCredentialRefresh(func(r *http.Request) error {
		r.Header.Set("X-Auth-Token", "fresh")
		return nil
	}))
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/me", strings.NewReader("x"))
	req.Header.Set("X-Auth-Token", "stale")
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("got %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	reqs := srv.Requests()
	if len(reqs) != 2 || reqs[1].Header.Get("X-Auth-Token") != "fresh" || clk.Sleeps()[0] != 0 {
		t.Fatalf("want 2 attempts, the second with the fresh token and no wait; got %d, waits %v", len(reqs), clk.Sleeps())
	}
	// A second 401 is final.
	srv.Script("/no", servicetest.Statuses(401)...)
	if _, err := do(t, c, http.MethodGet, srv.URL+"/no", nil); err == nil || srv.Attempts("/no") != 2 {
		t.Fatalf("%v after %d attempts, want an error after 2", err, srv.Attempts("/no"))
	}
}

func TestAttemptHeaders(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/a", servicetest.Statuses(502, 502, 200)...)
	c, _ := newClient(t, resilienthttp.WithAttemptHeaders("X-Attempt", "X-Invocation-Id"))
	if _, err := do(t, c, http.MethodGet, srv.URL+"/a", nil); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	id := reqs[0].Header.Get("X-Invocation-Id")
	for i, r := range reqs {
		if got := r.Header.Get("X-Attempt"); got != strconv.Itoa(i+1) {
			t.Errorf("attempt %d carried X-Attempt %q", i+1, got)
		}
		if got := r.Header.Get("X-Invocation-Id"); got != id || got == "" {
			t.Errorf("attempt %d carried invocation id %q, want %q", i+1, got, id)
		}
	}
	do(t, c, http.MethodGet, srv.URL+"/a", nil)
	if srv.Requests()[3].Header.Get("X-Invocation-Id") == id {
		t.Error("a new call reused the invocation id")
	}
	// Off by default.
	c, _ = newClient(t)
	do(t, c, http.MethodGet, srv.URL+"/b", nil)
	if h := srv.Requests()[4].Header; h.Get("X-Attempt") != "" || h.Get("X-Invocation-Id") != "" {
		t.Errorf("default client sent attempt headers: %v", h)
	}
}

func TestAPIErrorReadsBoundedBodyAndReusesConnection(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/e", servicetest.Step{Status: 404, Body: `{"error_code":"IAM.0003","error_msg":"user not found"}` + strings.Repeat(" ", 100<<10)})
	c, _ := newClient(t)
	for i := 0; i < 5; i++ {
		_, err := do(t, c, http.MethodGet, srv.URL+"/e", nil)
		var apiErr *resilienthttp.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("err = %v, want *APIError", err)
		}
		if len(apiErr.Body) != resilienthttp.MaxErrorBody {
			t.Fatalf("kept %d bytes of body, want %d", len(apiErr.Body), resilienthttp.MaxErrorBody)
		}
	}
	if got := srv.ConnsAccepted(); got != 1 {
		t.Errorf("server accepted %d connections for 5 sequential calls, want 1", got)
	}
}

func TestGivingUpKeepsIdleConnections(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/ok", servicetest.Statuses(200)...)
	srv.Script("/down", servicetest.Statuses(500)...)
	c, _ := newClient(t)
	do(t, c, http.MethodGet, srv.URL+"/ok", nil)
	for i := 0; i < 3; i++ {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/down", nil); err == nil {
			t.Fatal("want an error")
		}
		do(t, c, http.MethodGet, srv.URL+"/ok", nil)
	}
	if got := srv.ConnsAccepted(); got != 1 {
		t.Errorf("server accepted %d connections, want 1: giving up must not close the pool", got)
	}
}

func TestStandardClientKeepsNetHTTPContract(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/missing", servicetest.Statuses(404)...)
	srv.Script("/flaky", servicetest.Statuses(502, 200)...)
	c, _ := newClient(t)
	hc := c.StandardClient()
	resp, err := hc.Get(srv.URL + "/missing")
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("got %v, %v; want a 404 response", resp, err)
	}
	resp.Body.Close()
	resp, err = hc.Get(srv.URL + "/flaky")
	if err != nil || resp.StatusCode != 200 || srv.Attempts("/flaky") != 2 {
		t.Fatalf("got %v, %v after %d attempts; want 200 after 2", resp, err, srv.Attempts("/flaky"))
	}
	resp.Body.Close()
}

func TestErrorNamesWhatHappened(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v3/users/u1", servicetest.Step{Status: 404, Body: `{"error_code":"IAM.0003","error_msg":"user not found"}`,
		Header: http.Header{"X-Request-Id": {"4f2a"}}})
	c, _ := newClient(t)
	_, err := do(t, c, http.MethodGet, srv.URL+"/v3/users/u1?token=s3cret&limit=1", nil)
	msg := err.Error()
	for _, want := range []string{"GET " + srv.URL + "/v3/users/u1", "404 Not Found", "IAM.0003", "user not found", "request id 4f2a", "1 attempt)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, missing %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") || strings.Contains(fmt.Sprintf("%+v %#v", err, err), "s3cret") {
		t.Errorf("error text carries the token: %q", msg)
	}
}
