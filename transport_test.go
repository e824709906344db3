package resilienthttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// AttemptTimeout is timed on the client's Clock: a test (or an SDK's own
// fake time) steps through a one-minute bound without waiting a minute. A
// timed-out GET is repeated; a timed-out POST is not.
func TestAttemptTimeoutIsRetriedForGET(t *testing.T) {
	arrived := make(chan struct{}, 1)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that net/http notices the client leaving
		if n.Add(1) == 1 || r.Method == http.MethodPost {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-r.Context().Done() // hang until the client gives the attempt up
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{AttemptTimeout: time.Minute}))
	advanceOnArrival := func() {
		go func() {
			<-arrived
			clk.Advance(time.Minute)
		}()
	}
	advanceOnArrival()
	resp, err := do(t, c, http.MethodGet, srv.URL+"/slow", nil)
	if err != nil || resp.StatusCode != 200 || n.Load() != 2 {
		t.Fatalf("got %v, %v after %d attempts, want 200 after 2", resp, err, n.Load())
	}
	if got := clk.Timers(); len(got) != 2 || got[0] != time.Minute {
		t.Errorf("timers on the client's clock: %v, want one of 1m per attempt", got)
	}
	advanceOnArrival()
	_, err = do(t, c, http.MethodPost, srv.URL+"/slowpost", strings.NewReader("x"))
	if !errors.Is(err, resilienthttp.ErrAttemptTimeout) || n.Load() != 3 {
		t.Fatalf("POST: %v after %d attempts, want ErrAttemptTimeout after 1", err, n.Load()-2)
	}
}

func TestAttemptTimeoutDoesNotCutTheBody(t *testing.T) {
	srv := servicetest.NewServer(t)
	body := strings.Repeat("x", 1<<20)
	srv.Script("/big", servicetest.Step{Body: body})
	c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{AttemptTimeout: time.Minute}))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour) // the bound ended with the headers: nothing left to fire
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != len(body) {
		t.Fatalf("read %d bytes, %v; want %d", len(b), err, len(body))
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

func TestConnectionsStayNearConcurrency(t *testing.T) {
	srv := servicetest.NewServer(t, servicetest.WithFailureRatio(0.3, []int{500, 502, 503, 404}, 3))
	srv.Script("/huge-error", servicetest.Step{Status: 500, Body: strings.Repeat("e", 1<<20)})
	// Eight goroutines' backoff waits move the fake clock far faster than
	// real time; the client's time bounds on error bodies (a second) would
	// then cut bodies a real clock would read whole. Timers stay still here.
	c, _ := newClient(t, resilienthttp.WithoutBreaker(), resilienthttp.WithClock(stillTimers{newFakeClock()}))
	const workers, calls = 8, 250
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				path := "/x"
				if i%125 == 124 {
					path = "/huge-error" // too big to drain: costs its connection
				}
				do(t, c, http.MethodGet, srv.URL+path, nil)
			}
		}(w)
	}
	wg.Wait()
	// Each huge error body closes one connection on purpose (draining 1 MiB
	// costs more than a new connection); everything else is reused.
	huge := srv.Attempts("/huge-error")
	if got, limit := srv.ConnsAccepted(), workers+huge; got > limit {
		t.Errorf("server accepted %d connections for %d attempts from %d goroutines, want at most %d", got, srv.Total(), workers, limit)
	}
	t.Logf("%d attempts, %d connections accepted (%d closed for oversized bodies)", srv.Total(), srv.ConnsAccepted(), huge)
}

func TestRedirectToAnotherHostDropsCredentials(t *testing.T) {
	target := servicetest.NewServer(t)
	other := strings.Replace(target.URL, "127.0.0.1", "localhost", 1)
	origin := servicetest.NewServer(t)
	origin.Script("/near", servicetest.Step{Status: http.StatusTemporaryRedirect, // same host name, other port
		Header: http.Header{"Location": {target.URL + "/landed"}}})
	origin.Script("/away", servicetest.Step{Status: http.StatusTemporaryRedirect,
		Header: http.Header{"Location": {other + "/landed"}}})
	c, _ := newClient(t)
	creds := http.Header{"Authorization": {"Bearer s3cret"}, "X-Auth-Token": {"tok"}, "X-Subject-Token": {"subj"}, "Cookie": {"sid=1"}}
	for _, path := range []string{"/near", "/away"} {
		req, _ := http.NewRequest(http.MethodGet, origin.URL+path, nil)
		for k, v := range creds {
			req.Header[k] = v
		}
		if _, err := c.Do(req); err != nil {
			t.Fatal(err)
		}
	}
	reqs := target.Requests()
	for k := range creds {
		if reqs[0].Header.Get(k) == "" {
			t.Errorf("same-host redirect dropped %s", k)
		}
		if v := reqs[1].Header.Get(k); v != "" {
			t.Errorf("redirect to another host carried %s: %q", k, v)
		}
	}
}

// WithHostKey groups hosts: two endpoints of one service share a breaker.
func TestHostKeyGroupsHosts(t *testing.T) {
	a := servicetest.NewServer(t)
	a.Script("/", servicetest.Statuses(502)...)
	b := servicetest.NewServer(t)
	c, _ := newClient(t,
		resilienthttp.WithHostKey(func(*http.Request) string { return "one-service" }),
		resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 1}))
	do(t, c, http.MethodGet, a.URL+"/", nil)
	_, err := do(t, c, http.MethodGet, b.URL+"/", nil)
	var open *resilienthttp.CircuitOpenError
	if !errors.As(err, &open) || open.Host != "one-service" || b.Total() != 0 {
		t.Fatalf("err = %v, b saw %d; want b refused under the shared key", err, b.Total())
	}
}

// trickler answers status with the first bytes of an error document, then
// sends nothing more until the client goes away: a body that would hold a
// reader for as long as the server likes.
func trickler(t *testing.T, status int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(status)
		w.Write([]byte(`{"error_code":"SVC.0001",`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The client's read of an error body is part of the attempt: bounded by
// AttemptTimeout when set, by a second otherwise, on the client's Clock.
// What was read is kept, marked Truncated.
func TestErrorBodyReadIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy resilienthttp.Policy
		bound  time.Duration
	}{
		{"AttemptTimeout", resilienthttp.Policy{AttemptTimeout: time.Minute}, time.Minute},
		{"default", resilienthttp.Policy{}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := trickler(t, http.StatusNotFound)
			c, clk := newClient(t, resilienthttp.WithPolicy(tc.policy))
			clk.armed = make(chan time.Duration, 4)
			done := make(chan error, 1)
			go func() {
				_, err := do(t, c, http.MethodGet, srv.URL+"/v1/items/x", nil)
				done <- err
			}()
			for d := range clk.armed { // the send timer, if any, then the body's
				if d == tc.bound && (tc.policy.AttemptTimeout == 0 || len(clk.Timers()) == 2) {
					break
				}
			}
			clk.Advance(tc.bound)
			e := asAPIError(t, <-done)
			// What was read is kept: all the server sent, or the part of
			// it that reached the client before the bound cut the read.
			sent := `{"error_code":"SVC.0001",`
			if e.StatusCode != 404 || !e.Truncated || !strings.HasPrefix(sent, string(e.Body)) || e.Attempts != 1 {
				t.Errorf("got %d, truncated %v, body %q, %d attempts; want the 404 with what was read, truncated",
					e.StatusCode, e.Truncated, e.Body, e.Attempts)
			}
		})
	}
}

// A retryable 500 whose body trickles does not spend the caller's deadline:
// each drain before a retry is cut short, and the call ends with the
// *APIError, not with context.DeadlineExceeded. Real time, as in production.
func TestTricklingRetryableBodyKeepsTheDeadline(t *testing.T) {
	srv := trickler(t, http.StatusInternalServerError)
	c := resilienthttp.New(resilienthttp.WithRandom(constRand(0.5)), resilienthttp.WithoutBreaker(),
		resilienthttp.WithPolicy(resilienthttp.Policy{AttemptTimeout: 500 * time.Millisecond}))
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/jobs", nil)
	_, err := c.Do(req)
	e := asAPIError(t, err)
	if e.StatusCode != 500 || e.Attempts != 4 || !e.Truncated || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v (%d attempts, truncated %v); want the 500 after 4 attempts, truncated", err, e.Attempts, e.Truncated)
	}
}

// TestRedirectDropsCredentialShapedHeaders: a redirect to another host
// carries none of the headers whose names look like credentials, whatever a
// service calls them (X-Goog-Api-Key, X-Vault-Token, …), and every ordinary
// header (Idempotency-Key, traceparent, …). A redirect within the host name
// keeps them all, as net/http does; a chain that left the host and comes
// back does not get them back, since the other host chose where it leads.
func TestRedirectDropsCredentialShapedHeaders(t *testing.T) {
	for _, tt := range []struct {
		name     string
		standard bool // through StandardClient
		hops     func(origin, target *servicetest.Server, other string) (first string, land *servicetest.Server)
		keep     bool
	}{
		{name: "another host", keep: false, hops: func(origin, target *servicetest.Server, other string) (string, *servicetest.Server) {
			origin.Script("/go", redirectTo(other+"/landed"))
			return origin.URL + "/go", target
		}},
		{name: "another host, 302", keep: false, hops: func(origin, target *servicetest.Server, other string) (string, *servicetest.Server) {
			origin.Script("/go", servicetest.Step{Status: http.StatusFound, Header: http.Header{"Location": {other + "/landed"}}})
			return origin.URL + "/go", target
		}},
		{name: "another host via StandardClient", standard: true, keep: false, hops: func(origin, target *servicetest.Server, other string) (string, *servicetest.Server) {
			origin.Script("/go", redirectTo(other+"/landed"))
			return origin.URL + "/go", target
		}},
		{name: "same host name, other port", keep: true, hops: func(origin, target *servicetest.Server, other string) (string, *servicetest.Server) {
			origin.Script("/go", redirectTo(target.URL+"/landed"))
			return origin.URL + "/go", target
		}},
		{name: "away and back", keep: false, hops: func(origin, target *servicetest.Server, other string) (string, *servicetest.Server) {
			origin.Script("/go", redirectTo(other+"/bounce"))
			target.Script("/bounce", redirectTo(origin.URL+"/landed"))
			return origin.URL + "/go", origin
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			origin, target := servicetest.NewServer(t), servicetest.NewServer(t)
			other := strings.Replace(target.URL, "127.0.0.1", "localhost", 1)
			first, land := tt.hops(origin, target, other)
			req, _ := http.NewRequest(http.MethodGet, first, nil)
			for _, k := range append(append([]string(nil), credentialHeaders...), ordinaryHeaders...) {
				req.Header.Set(k, "v-"+k)
			}
			req.Header["x-lowercase-token"] = []string{"v-lower"} // set past canonicalization
			c, _ := newClient(t)
			var resp *http.Response
			var err error
			if tt.standard {
				resp, err = c.StandardClient().Do(req)
			} else {
				resp, err = c.Do(req)
			}
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("got %v, %v; want a 200 after the redirect", resp, err)
			}
			resp.Body.Close()
			var got http.Header
			for _, r := range land.Requests() {
				if r.Path == "/landed" {
					got = r.Header
				}
			}
			if got == nil {
				t.Fatal("the redirect did not land")
			}
			for _, k := range append([]string{"X-Lowercase-Token"}, credentialHeaders...) {
				if v := got.Get(k); (v != "") != tt.keep {
					t.Errorf("%s arrived as %q; want it kept: %v", k, v, tt.keep)
				}
			}
			for _, k := range ordinaryHeaders {
				if k == "Content-Type" && strings.HasSuffix(tt.name, "302") {
					continue // net/http drops the body's headers with the body
				}
				if got.Get(k) != "v-"+k {
					t.Errorf("%s arrived as %q, want it kept", k, got.Get(k))
				}
			}
		})
	}
}

// redirectTo is a 307: the request goes on as it was, body headers included.
func redirectTo(location string) servicetest.Step {
	return servicetest.Step{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {location}}}
}
