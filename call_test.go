package resilienthttp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

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

// TestLoggerRecordsGiveUps: WithLogger is documented to log "retries and
// give-ups".
// One debug record per retry, then one saying why the call stopped.
func TestLoggerRecordsGiveUps(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/down", servicetest.Step{Status: 502})
	var logs bytes.Buffer
	c, _ := newClient(t, resilienthttp.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if _, err := do(t, c, http.MethodGet, srv.URL+"/down", nil); err == nil {
		t.Fatal("want an error")
	}
	var retries, others []map[string]any
	dec := json.NewDecoder(&logs)
	for dec.More() {
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "resilienthttp: retrying" {
			retries = append(retries, rec)
		} else {
			others = append(others, rec)
		}
	}
	if len(retries) != resilienthttp.DefaultMaxAttempts-1 {
		t.Errorf("%d retry records, want %d", len(retries), resilienthttp.DefaultMaxAttempts-1)
	}
	for i, rec := range retries {
		if rec["attempt"] != float64(i+1) || rec["status"] != float64(502) || rec["url"] != srv.URL+"/down" || rec["level"] != "DEBUG" {
			t.Errorf("retry record %d = %v", i+1, rec)
		}
	}
	if len(others) != 1 || !strings.Contains(fmt.Sprint(others[0]), string(resilienthttp.StopAttemptsExhausted)) {
		t.Errorf("give-up records = %v, want one saying %q", others, resilienthttp.StopAttemptsExhausted)
	}
}

// TestErrorsIn2xx: some billing APIs answer errors with 200.
func TestErrorsIn2xx(t *testing.T) {
	const billingErr = `{"error_code":"BSS.1001","error_msg":"insufficient balance"}`
	t.Run("error document with a code becomes an APIError", func(t *testing.T) {
		for _, body := range []string{
			billingErr,
			`{"errorCode":"BSS.1001","errorMessage":"insufficient balance"}`,
			`{"error":{"code":"BSS.1001","message":"insufficient balance"}}`,
		} {
			srv := servicetest.NewServer(t)
			srv.Script("/v2/orders", servicetest.Step{Status: 200, Body: body})
			c, _ := newClient(t, resilienthttp.WithErrorsIn2xx())
			resp, err := do(t, c, http.MethodPost, srv.URL+"/v2/orders", strings.NewReader(`{"sku":"x"}`))
			if resp != nil {
				t.Fatalf("%s: got a response, want an error", body)
			}
			e := asAPIError(t, err)
			if e.StatusCode != 200 || e.Code != "BSS.1001" || e.Message != "insufficient balance" || e.Attempts != 1 ||
				e.RequestID != "req-1" || string(e.Body) != body || e.Method != http.MethodPost {
				t.Errorf("%s: got %+v", body, *e)
			}
			if srv.Attempts("/v2/orders") != 1 || resilienthttp.Retryable(err) || errors.Is(err, resilienthttp.ErrServerError) {
				t.Errorf("%s: %d attempts, Retryable %v, ErrServerError %v; want 1, false, false",
					body, srv.Attempts("/v2/orders"), resilienthttp.Retryable(err), errors.Is(err, resilienthttp.ErrServerError))
			}
			if want := "POST " + srv.URL + "/v2/orders: 200 OK: BSS.1001: insufficient balance (request id req-1, 1 attempt)"; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err, want)
			}
		}
	})
	t.Run("success documents are returned whole", func(t *testing.T) {
		big := `{"code":"0","message":"ok","data":"` + strings.Repeat("d", 3*resilienthttp.MaxErrorBody) + `"}`
		for _, body := range []string{
			`{"code":0,"message":"ok","data":{}}`,
			`{"code":"0","message":"success","data":{"id":"o-1"}}`,
			`{"type":"about:blank","title":"fine"}`,
			"plain text",
			"",
			big,
		} {
			srv := servicetest.NewServer(t)
			srv.Script("/v2/orders", servicetest.Step{Status: 200, Body: body})
			c, _ := newClient(t, resilienthttp.WithErrorsIn2xx())
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/orders", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%.40s: %v", body, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(got) != body {
				t.Errorf("read %d bytes (%v), want the %d the server sent", len(got), err, len(body))
			}
		}
	})
	t.Run("without the option a 200 is a response", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/v2/orders", servicetest.Step{Status: 200, Body: billingErr})
		c, _ := newClient(t)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/orders", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != billingErr {
			t.Errorf("got %d %q, want 200 %q", resp.StatusCode, got, billingErr)
		}
	})
}

// The same 2xx error document is an APIError that is not retryable, whatever
// the earlier attempts of the call were: the record of a retried 429 does
// not carry over to it.
func TestErrorsIn2xxAfterARetriedFailure(t *testing.T) {
	const doc = `{"error_code":"BSS.1001","error_msg":"insufficient balance"}`
	srv := servicetest.NewServer(t)
	srv.Script("/v2/orders", servicetest.Step{Status: 429, RetryAfter: "1"}, servicetest.Step{Status: 200, Body: doc})
	c, _ := newClient(t, resilienthttp.WithErrorsIn2xx(), resilienthttp.WithoutRateLimit())
	_, err := do(t, c, http.MethodGet, srv.URL+"/v2/orders", nil)
	e := asAPIError(t, err)
	if e.StatusCode != 200 || e.Attempts != 2 || e.Code != "BSS.1001" {
		t.Fatalf("got %+v, want the 200 document after 2 attempts", *e)
	}
	if resilienthttp.Retryable(err) || e.RetryAfter != 0 || e.Reason != resilienthttp.StopNotRetryable {
		t.Errorf("Retryable %v, RetryAfter %v, Reason %q; want false, 0, %q (as on a first answer)",
			resilienthttp.Retryable(err), e.RetryAfter, e.Reason, resilienthttp.StopNotRetryable)
	}
}

// An SDK's per-call policy starts from the client's: the SDK's rules stay,
// only what the call changes differs, and changing the copy changes no
// other call.
func TestPolicyIsACopyToStartFrom(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v3/users/u1", servicetest.Statuses(404)...)
	c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{
		MaxAttempts: 4,
		Statuses:    map[int]resilienthttp.Rule{404: resilienthttp.RuleRetry},
	}))

	p := c.Policy()
	if p.Statuses[404] != resilienthttp.RuleRetry || p.MaxAttempts != 4 || p.BaseDelay != resilienthttp.DefaultBaseDelay {
		t.Fatalf("Policy() = %+v, want the client's 404 rule, 4 attempts and defaults filled in", p)
	}
	p.MaxAttempts = 2
	p.Statuses[404] = resilienthttp.RuleFail // must not reach the client
	p.Statuses[404] = resilienthttp.RuleRetry
	p.Statuses[409] = resilienthttp.RuleRetry
	if got := c.Policy(); got.Statuses[409] != resilienthttp.RuleDefault || len(got.Statuses) != 1 {
		t.Errorf("changing the copy's Statuses changed the client's: %v", got.Statuses)
	}

	ctx := resilienthttp.ContextWithPolicy(context.Background(), p)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v3/users/u1", nil)
	_, err := c.Do(req)
	var apiErr *resilienthttp.APIError
	if !errors.As(err, &apiErr) || apiErr.Attempts != 2 || srv.Attempts("/v3/users/u1") != 2 {
		t.Fatalf("per-call policy from c.Policy(): %v after %d attempts, want a 404 after 2 (the SDK's rule kept)", err, srv.Attempts("/v3/users/u1"))
	}

	var zero resilienthttp.Client
	if got, want := zero.Policy(), resilienthttp.DefaultPolicy(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("zero Client's Policy() = %+v, want DefaultPolicy() %+v", got, want)
	}
}
