package resilienthttp_test

import (
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

func TestZeroPolicyIsTheDefault(t *testing.T) {
	zero, def := resilienthttp.Policy{}, resilienthttp.DefaultPolicy()
	for status := 100; status < 600; status++ {
		if zero.StatusRule(status) != def.StatusRule(status) {
			t.Errorf("%d: zero policy %v, default %v", status, zero.StatusRule(status), def.StatusRule(status))
		}
	}
	// And a client given the zero policy retries like the default one.
	srv := servicetest.NewServer(t)
	srv.Script("/z", servicetest.Statuses(502)...)
	c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{}))
	do(t, c, http.MethodGet, srv.URL+"/z", nil)
	if srv.Attempts("/z") != resilienthttp.DefaultMaxAttempts || len(clk.Sleeps()) != resilienthttp.DefaultMaxAttempts-1 {
		t.Errorf("%d attempts, waits %v", srv.Attempts("/z"), clk.Sleeps())
	}
}

func TestStatusOverride(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/c", servicetest.Statuses(409, 409, 200)...)
	c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{Statuses: map[int]resilienthttp.Rule{409: resilienthttp.RuleRetry}, MaxAttempts: 3}))
	resp, err := do(t, c, http.MethodPost, srv.URL+"/c", strings.NewReader("x"))
	if err != nil || resp.StatusCode != 200 || srv.Attempts("/c") != 3 {
		t.Fatalf("%v, %v after %d attempts; want 200 after 3", resp, err, srv.Attempts("/c"))
	}
}

// TestDefaultTable sends every status code the service documents list, with
// an idempotent and a non-idempotent method, to a server that always answers
// it, and checks how many attempts the server saw. Each row is the
// documents' sentence for that code; docs/status-codes.md quotes them all.
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
