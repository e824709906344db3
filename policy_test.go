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

// checkInvalidPolicy fails t unless err reports an invalid policy: it
// satisfies errors.Is(err, ErrInvalidPolicy), one of its *PolicyError values
// has Field field, its message names field, and it names no Go type.
func checkInvalidPolicy(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming %s", field)
	}
	if !errors.Is(err, resilienthttp.ErrInvalidPolicy) {
		t.Errorf("errors.Is(%v, ErrInvalidPolicy) = false", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, field) {
		t.Errorf("error %q does not name %s", msg, field)
	}
	for _, leak := range []string{"policyJSON", "resilienthttp.", "map[", "jsonDuration"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error %q names a Go type (%s)", msg, leak)
		}
	}
	var fields []string
	for _, pe := range policyErrors(err) {
		if pe.Field == field {
			return
		}
		fields = append(fields, pe.Field)
	}
	t.Errorf("no *PolicyError with Field %s; fields %q", field, fields)
}

// policyErrors returns the *PolicyError values in err's tree.
func policyErrors(err error) []*resilienthttp.PolicyError {
	switch e := err.(type) {
	case *resilienthttp.PolicyError:
		return []*resilienthttp.PolicyError{e}
	case interface{ Unwrap() []error }:
		var out []*resilienthttp.PolicyError
		for _, e := range e.Unwrap() {
			out = append(out, policyErrors(e)...)
		}
		return out
	}
	return nil
}

func TestPolicyValidateRejects(t *testing.T) {
	rules := func(code int, r resilienthttp.Rule) map[int]resilienthttp.Rule {
		return map[int]resilienthttp.Rule{code: r}
	}
	retry := resilienthttp.RuleRetry
	for _, tc := range []struct {
		name   string
		p      resilienthttp.Policy
		fields []string
	}{
		{"negative MaxAttempts", resilienthttp.Policy{MaxAttempts: -1}, []string{"MaxAttempts"}},
		{"negative BaseDelay", resilienthttp.Policy{BaseDelay: -time.Nanosecond}, []string{"BaseDelay"}},
		{"negative MaxDelay", resilienthttp.Policy{MaxDelay: -time.Second}, []string{"MaxDelay"}},
		{"negative MaxRetryAfter", resilienthttp.Policy{MaxRetryAfter: -time.Second}, []string{"MaxRetryAfter"}},
		{"negative AttemptTimeout", resilienthttp.Policy{AttemptTimeout: -time.Second}, []string{"AttemptTimeout"}},
		{"MaxDelay below BaseDelay", resilienthttp.Policy{BaseDelay: 2 * time.Second, MaxDelay: time.Second}, []string{"MaxDelay"}},
		{"status 700", resilienthttp.Policy{Statuses: rules(700, retry)}, []string{"Statuses[700]"}},
		{"status 600", resilienthttp.Policy{Statuses: rules(600, retry)}, []string{"Statuses[600]"}},
		{"status 99", resilienthttp.Policy{Statuses: rules(99, retry)}, []string{"Statuses[99]"}},
		{"status 0", resilienthttp.Policy{Statuses: rules(0, retry)}, []string{"Statuses[0]"}},
		{"status -1", resilienthttp.Policy{Statuses: rules(-1, retry)}, []string{"Statuses[-1]"}},
		{"status 100", resilienthttp.Policy{Statuses: rules(100, retry)}, []string{"Statuses[100]"}},
		{"status 200", resilienthttp.Policy{Statuses: rules(200, retry)}, []string{"Statuses[200]"}},
		{"status 399", resilienthttp.Policy{Statuses: rules(399, resilienthttp.RuleFail)}, []string{"Statuses[399]"}},
		{"status rule unknown", resilienthttp.Policy{Statuses: rules(500, 9)}, []string{"Statuses[500]"}},
		{"status rule negative", resilienthttp.Policy{Statuses: rules(500, -1)}, []string{"Statuses[500]"}},
		{"ClientErrors unknown", resilienthttp.Policy{ClientErrors: 5}, []string{"ClientErrors"}},
		{"ServerErrors unknown", resilienthttp.Policy{ServerErrors: 5}, []string{"ServerErrors"}},
		{"ConnectErrors unknown", resilienthttp.Policy{ConnectErrors: -1}, []string{"ConnectErrors"}},
		{"SendErrors unknown", resilienthttp.Policy{SendErrors: 99}, []string{"SendErrors"}},
		{"header with a space", resilienthttp.Policy{IdempotencyKeyHeader: "Idempotency Key"}, []string{"IdempotencyKeyHeader"}},
		{"header with a colon", resilienthttp.Policy{IdempotencyKeyHeader: "Idempotency-Key:"}, []string{"IdempotencyKeyHeader"}},
		{"header not ASCII", resilienthttp.Policy{IdempotencyKeyHeader: "Clé"}, []string{"IdempotencyKeyHeader"}},
		{"header with a NUL", resilienthttp.Policy{IdempotencyKeyHeader: "Key\x00"}, []string{"IdempotencyKeyHeader"}},
		{"several at once", resilienthttp.Policy{MaxAttempts: -1, BaseDelay: -1, Statuses: rules(200, retry), SendErrors: 9},
			[]string{"MaxAttempts", "BaseDelay", "Statuses[200]", "SendErrors"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			for _, f := range tc.fields {
				checkInvalidPolicy(t, err, f)
			}
			if n := len(policyErrors(err)); n != len(tc.fields) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tc.fields), err)
			}
		})
	}
}

func TestPolicyValidateAccepts(t *testing.T) {
	for name, p := range map[string]resilienthttp.Policy{
		"zero":                     {},
		"DefaultPolicy":            resilienthttp.DefaultPolicy(),
		"RFC9110Policy":            resilienthttp.RFC9110Policy(),
		"retries off":              {MaxAttempts: 1},
		"BaseDelay above default":  {BaseDelay: 10 * time.Second}, // MaxDelay unset: raised to BaseDelay
		"MaxDelay equal BaseDelay": {BaseDelay: time.Second, MaxDelay: time.Second},
		"status bounds":            {Statuses: map[int]resilienthttp.Rule{400: resilienthttp.RuleRetry, 599: resilienthttp.RuleFail, 503: resilienthttp.RuleDefault}},
		"every rule":               {ClientErrors: resilienthttp.RuleRetryWithRetryAfter, ServerErrors: resilienthttp.RuleRetry, ConnectErrors: resilienthttp.RuleFail, SendErrors: resilienthttp.RuleDefault},
		"header of every tchar":    {IdempotencyKeyHeader: "!#$%&'*+-.^_`|~09AZaz"},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A client or a call given an invalid policy sends nothing and says why.
func TestInvalidPolicyFailsEveryCallSendingNothing(t *testing.T) {
	srv := servicetest.NewServer(t)
	bad := resilienthttp.Policy{MaxAttempts: -1}
	c, _ := newClient(t, resilienthttp.WithPolicy(bad))
	_, err := do(t, c, http.MethodGet, srv.URL+"/v3/users", nil)
	var reqErr *resilienthttp.RequestError
	if !errors.Is(err, resilienthttp.ErrInvalidPolicy) || !errors.As(err, &reqErr) || reqErr.Attempts != 0 ||
		!strings.Contains(err.Error(), "MaxAttempts") {
		t.Errorf("client with %+v: %v, want a *RequestError naming MaxAttempts and matching ErrInvalidPolicy", bad, err)
	}
	// A valid per-call policy replaces the client's invalid one…
	ctx := resilienthttp.ContextWithPolicy(context.Background(), resilienthttp.Policy{MaxAttempts: 1})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v3/users", nil)
	if resp, err := c.Do(req); err != nil {
		t.Errorf("valid per-call policy: %v", err)
	} else {
		resp.Body.Close()
	}
	// …and an invalid one fails the call on a good client.
	good, _ := newClient(t)
	ctx = resilienthttp.ContextWithPolicy(context.Background(), resilienthttp.Policy{Statuses: map[int]resilienthttp.Rule{200: resilienthttp.RuleRetry}})
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v3/users", nil)
	if _, err := good.Do(req); !errors.Is(err, resilienthttp.ErrInvalidPolicy) {
		t.Errorf("invalid per-call policy: %v, want ErrInvalidPolicy", err)
	}
	if n := srv.Total(); n != 1 {
		t.Errorf("server saw %d requests, want only the one with the valid policy", n)
	}
}

// The server's retry hints, end to end: the attempts the service saw, the
// error and its reason.
func TestServerRetryHints(t *testing.T) {
	srv := servicetest.NewServer(t)
	hint := func(name, v string) http.Header { return http.Header{name: {v}} }
	call := func(c *resilienthttp.Client, method, path, key string) error {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"name":"ann"}`)
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	t.Run("false stops a 429 the table would repeat", func(t *testing.T) {
		c, clk := newClient(t)
		srv.Script("/v1/a", servicetest.Step{Status: 429, RetryAfter: "1", Header: hint("X-Should-Retry", "false")}, servicetest.Step{})
		err := call(c, http.MethodGet, "/v1/a", "")
		var apiErr *resilienthttp.APIError
		if !errors.As(err, &apiErr) || apiErr.Reason != resilienthttp.StopServerSaidNoRetry || resilienthttp.Retryable(err) ||
			!strings.Contains(err.Error(), "server said not to retry") {
			t.Fatalf("err = %v, want an *APIError stopped because the server said not to retry, not Retryable", err)
		}
		if n := srv.Attempts("/v1/a"); n != 1 || len(clk.Sleeps()) != 0 {
			t.Errorf("server saw %d attempts after waits %v, want 1 and no wait", n, clk.Sleeps())
		}
	})
	t.Run("true repeats a keyed POST 400", func(t *testing.T) {
		c, _ := newClient(t)
		srv.Script("/v1/b", servicetest.Step{Status: 400, Header: hint("X-Should-Retry", "true")}, servicetest.Step{Status: 201})
		if err := call(c, http.MethodPost, "/v1/b", "k-1"); err != nil || srv.Attempts("/v1/b") != 2 {
			t.Fatalf("err = %v after %d attempts, want success after 2", err, srv.Attempts("/v1/b"))
		}
	})
	t.Run("true does not repeat a POST without a key", func(t *testing.T) {
		c, _ := newClient(t)
		srv.Script("/v1/c", servicetest.Step{Status: 500, Header: hint("X-Should-Retry", "true")}, servicetest.Step{Status: 201})
		err := call(c, http.MethodPost, "/v1/c", "")
		var apiErr *resilienthttp.APIError
		if !errors.As(err, &apiErr) || apiErr.Attempts != 1 || srv.Attempts("/v1/c") != 1 || srv.DuplicateCommits() != 0 {
			t.Fatalf("err = %v after %d attempts, want the 500 after 1", err, srv.Attempts("/v1/c"))
		}
	})
	t.Run("Stripe-Should-Retry: true repeats a GET 409", func(t *testing.T) {
		c, _ := newClient(t)
		srv.Script("/v1/d", servicetest.Step{Status: 409, Header: hint("Stripe-Should-Retry", "true")}, servicetest.Step{})
		if err := call(c, http.MethodGet, "/v1/d", ""); err != nil || srv.Attempts("/v1/d") != 2 {
			t.Fatalf("err = %v after %d attempts, want success after 2", err, srv.Attempts("/v1/d"))
		}
	})
	t.Run("the policy's own header list", func(t *testing.T) {
		c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{RetryHintHeaders: []string{"X-Acme-Retry"}}))
		srv.Script("/v1/e", servicetest.Step{Status: 429, RetryAfter: "1", Header: hint("X-Should-Retry", "false")}, servicetest.Step{})
		if err := call(c, http.MethodGet, "/v1/e", ""); err != nil || srv.Attempts("/v1/e") != 2 {
			t.Errorf("X-Should-Retry not listed: err = %v after %d attempts, want success after 2", err, srv.Attempts("/v1/e"))
		}
		srv.Script("/v1/f", servicetest.Step{Status: 429, RetryAfter: "1", Header: hint("X-Acme-Retry", "false")}, servicetest.Step{})
		if err := call(c, http.MethodGet, "/v1/f", ""); err == nil || srv.Attempts("/v1/f") != 1 {
			t.Errorf("X-Acme-Retry: false: err = %v after %d attempts, want the 429 after 1", err, srv.Attempts("/v1/f"))
		}
	})
}
