package resilienthttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// The documents' table, written out by hand (not derived from the policy
// code, so that a change to either shows here): for each status, whether a
// GET and a POST are repeated, and whether only with a Retry-After.
var documentedTable = []struct {
	statuses      []int
	get, post     bool
	onlyWithRA    bool
	documentsSay  string
	finalResponse bool // 1xx–3xx: not a failure at all
}{
	{statuses: []int{100, 101, 200, 201, 202, 204, 206, 300, 301, 302, 303, 304, 307, 308}, finalResponse: true, documentsSay: "informational, success, redirection"},
	{statuses: []int{400, 403, 404, 405}, documentsSay: "should not repeat the request without modifications"},
	{statuses: []int{401}, documentsSay: "authorization information incorrect or invalid"},
	{statuses: []int{402, 406, 407, 409, 410, 411, 412, 414, 415, 416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 431, 451, 499}, documentsSay: "client errors, nothing says repeatable"},
	{statuses: []int{408}, get: true, post: true, documentsSay: "may repeat the request without modifications at any later time"},
	{statuses: []int{413}, get: true, post: true, onlyWithRA: true, documentsSay: "temporary only if the response contains Retry-After"},
	{statuses: []int{429}, get: true, post: true, documentsSay: "repeat after the time in the Retry-After header"},
	{statuses: []int{500, 502, 504, 506, 507, 508, 510, 511, 599}, get: true, documentsSay: "server-side failure: only where repeating is safe"},
	{statuses: []int{501, 505}, documentsSay: "not supported"},
	{statuses: []int{503}, get: true, post: true, onlyWithRA: true, documentsSay: "should not repeat without modifications, unless Retry-After says temporary"},
}

// TestDecideDefaultTable runs every row of the documents' table through the
// pure decision, with no server: GET and POST, with and without a
// Retry-After, as the first attempt of a call with time and budget left.
func TestDecideDefaultTable(t *testing.T) {
	p := DefaultPolicy()
	now := time.Unix(1e9, 0)
	for _, row := range documentedTable {
		for _, status := range row.statuses {
			for _, method := range []string{"GET", "POST"} {
				for _, withRA := range []bool{false, true} {
					name := fmt.Sprintf("%d/%s/retry-after=%v", status, method, withRA)
					f := facts{status: status, safe: isIdempotentMethod(method), now: now, budgetLeft: true, jitter: 0.5}
					if withRA && status >= 400 {
						f.retryAfter, f.hasRetryAfter = 2*time.Second, true
					}
					d := decide(&p, &f)
					checkRow(t, name, row.get, row.post, row.onlyWithRA, row.finalResponse, method, withRA, d)
				}
			}
		}
	}
}

func checkRow(t *testing.T, name string, get, post, onlyWithRA, final bool, method string, withRA bool, d decision) {
	t.Helper()
	want := get
	if method == "POST" {
		want = post
	}
	if onlyWithRA && !withRA {
		want = false
	}
	switch {
	case final:
		if d.retry || !d.succeeded || d.retryable || !d.sent {
			t.Errorf("%s: %+v, want a final success", name, d)
		}
	case want:
		wantWait := 50 * time.Millisecond // backoff: half of BaseDelay's first bound
		if withRA {
			wantWait = 2*time.Second + 200*time.Millisecond // the floor plus half of a fifth
		}
		if !d.retry || !d.retryable || d.wait != wantWait || d.reason != "" {
			t.Errorf("%s: %+v, want a retry after %v", name, d, wantWait)
		}
	default:
		if d.retry || d.retryable || d.reason != StopNotRetryable || d.wait != 0 {
			t.Errorf("%s: %+v, want no retry, reason %q", name, d, StopNotRetryable)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestDecideTransportErrors covers the table's rows for failures without a
// response: before the request was sent (any method), after (idempotent
// only), and those no repeat can cure.
func TestDecideTransportErrors(t *testing.T) {
	p := DefaultPolicy()
	cases := []struct {
		name      string
		err       error
		get, post bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true, true},
		{"DNS failure", &net.DNSError{Err: "no such host", Name: "x.invalid"}, true, true},
		{"proxy connect", &net.OpError{Op: "proxyconnect", Err: syscall.ECONNREFUSED}, true, true},
		{"reset after write", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, true, false},
		{"EOF", io.ErrUnexpectedEOF, true, false},
		{"attempt timeout", ErrAttemptTimeout, true, false},
		{"read timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, true, false},
		{"certificate", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false, false},
		{"bad scheme", errors.New(`unsupported protocol scheme "ftp"`), false, false},
		{"invalid header", errors.New(`net/http: invalid header field name "a b"`), false, false},
		{"redirect loop", errTooManyRedirects, false, false},
	}
	for _, c := range cases {
		for _, method := range []string{"GET", "POST"} {
			d := decide(&p, &facts{err: c.err, sent: true, safe: isIdempotentMethod(method), budgetLeft: true, jitter: 0})
			want := c.get
			if method == "POST" {
				want = c.post
			}
			if d.retry != want || d.retryable != want || !d.sent {
				t.Errorf("%s/%s: %+v, want retry %v", c.name, method, d, want)
			}
		}
	}
}

// TestDecideStops covers why a retryable failure is not repeated, in the
// order the decision checks them, and what each costs.
func TestDecideStops(t *testing.T) {
	p := DefaultPolicy()
	now := time.Unix(1e9, 0)
	base := facts{status: 500, safe: true, now: now, budgetLeft: true, jitter: 0.5}
	cases := []struct {
		name string
		edit func(*facts)
		want decision
	}{
		{"circuit open: nothing sent", func(f *facts) { f.status, f.err = 0, &CircuitOpenError{Host: "h"} },
			decision{reason: StopCircuitOpen, retryable: true}},
		{"rate limited: nothing sent", func(f *facts) { f.status, f.err = 0, &RateLimitError{Host: "h"} },
			decision{reason: StopRateLimited, retryable: true}},
		{"context done during the attempt", func(f *facts) { f.status, f.err, f.ctxDone, f.sent = 0, context.Canceled, true, true },
			decision{reason: StopContextDone, sent: true}},
		{"context done while waiting for the limiter: nothing sent", func(f *facts) { f.status, f.err, f.ctxDone = 0, context.DeadlineExceeded, true },
			decision{reason: StopContextDone}},
		{"attempts exhausted", func(f *facts) { f.attempts = 3 },
			decision{reason: StopAttemptsExhausted, retryable: true, sent: true, spendsBudget: true}},
		{"budget exhausted", func(f *facts) { f.budgetLeft = false },
			decision{reason: StopBudgetExhausted, retryable: true, sent: true, spendsBudget: true}},
		{"budget exhausted but the server set the pace", func(f *facts) {
			f.budgetLeft, f.retryAfter, f.hasRetryAfter = false, time.Second, true
		}, decision{retry: true, wait: 1100 * time.Millisecond, retryable: true, sent: true}},
		{"body sent once", func(f *facts) { f.bodyOnce = true },
			decision{reason: StopBodyNotReplayable, retryable: true, sent: true, spendsBudget: true}},
		{"context done after the answer", func(f *facts) { f.ctxDone = true },
			decision{reason: StopContextDone, retryable: true, sent: true, spendsBudget: true}},
		{"Retry-After past MaxRetryAfter", func(f *facts) { f.retryAfter, f.hasRetryAfter = 2*time.Minute, true },
			decision{reason: StopRetryAfterTooLong, retryable: true, sent: true}},
		{"Retry-After past the deadline", func(f *facts) {
			f.retryAfter, f.hasRetryAfter, f.deadline = 10*time.Second, true, now.Add(5*time.Second)
		}, decision{reason: StopDeadline, retryable: true, sent: true}},
		{"backoff past the deadline", func(f *facts) { f.deadline = now.Add(10 * time.Millisecond) },
			decision{reason: StopDeadline, retryable: true, sent: true, spendsBudget: true}},
		{"backoff within the deadline", func(f *facts) { f.deadline = now.Add(time.Second) },
			decision{retry: true, wait: 50 * time.Millisecond, retryable: true, sent: true, spendsBudget: true}},
		{"third retry backs off longer", func(f *facts) { f.attempts = 2 },
			decision{retry: true, wait: 200 * time.Millisecond, retryable: true, sent: true, spendsBudget: true}},
		{"401 with a refresh hook: repeated at once", func(f *facts) { f.status, f.canRefresh = 401, true },
			decision{retry: true, retryable: true, sent: true, refresh: true}},
		{"401 refreshed already", func(f *facts) { f.status = 401 },
			decision{reason: StopNotRetryable, sent: true}},
	}
	for _, c := range cases {
		f := base
		c.edit(&f)
		if got := decide(&p, &f); got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// TestDecideFollowsThePolicy checks that every field of Policy reaches the
// decision.
func TestDecideFollowsThePolicy(t *testing.T) {
	p := Policy{
		MaxAttempts: 2, BaseDelay: time.Second, MaxDelay: 3 * time.Second, MaxRetryAfter: 10 * time.Second,
		Statuses:     map[int]Rule{404: RuleRetry, 500: RuleFail},
		ClientErrors: RuleRetryIdempotent, ServerErrors: RuleRetryWithRetryAfter,
		ConnectErrors: RuleFail, SendErrors: RuleRetry,
	}.withDefaults()
	retries := func(f facts) bool { f.budgetLeft, f.jitter = true, 0.5; return decide(&p, &f).retry }
	checks := []struct {
		name string
		f    facts
		want bool
	}{
		{"Statuses: 404 retried", facts{status: 404}, true},
		{"Statuses: 500 fails", facts{status: 500, safe: true}, false},
		{"ClientErrors: 418 GET", facts{status: 418, safe: true}, true},
		{"ClientErrors: 418 POST", facts{status: 418}, false},
		{"ServerErrors: 599 without Retry-After", facts{status: 599, safe: true}, false},
		{"ServerErrors: 599 with Retry-After", facts{status: 599, retryAfter: time.Second, hasRetryAfter: true}, true},
		{"ConnectErrors", facts{err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, sent: true, safe: true}, false},
		{"SendErrors: POST reset", facts{err: io.ErrUnexpectedEOF, sent: true}, true},
		{"MaxAttempts", facts{status: 404, attempts: 1}, false},
		{"MaxRetryAfter", facts{status: 429, retryAfter: 11 * time.Second, hasRetryAfter: true}, false},
	}
	for _, c := range checks {
		if got := retries(c.f); got != c.want {
			t.Errorf("%s: retry %v, want %v", c.name, got, c.want)
		}
	}
	if d := decide(&p, &facts{status: 404, budgetLeft: true, jitter: 0.5}); d.wait != 500*time.Millisecond {
		t.Errorf("BaseDelay: wait %v, want 500ms", d.wait)
	}
}

// TestDecideRetryHints covers the server's own word on repeating
// (Policy.RetryHintHeaders): "false" always stops; "true" repeats what the
// table would not, only where repeating is safe; the wait and the stops
// apply as to any retry.
func TestDecideRetryHints(t *testing.T) {
	p := DefaultPolicy()
	now := time.Unix(1e9, 0)
	stop := decision{reason: StopServerSaidNoRetry, sent: true}
	cases := []struct {
		name string
		f    facts
		want decision
	}{
		{"false on a 429 with Retry-After: stops", facts{status: 429, hint: hintStop, retryAfter: time.Second, hasRetryAfter: true}, stop},
		{"false on a GET 500: stops", facts{status: 500, safe: true, hint: hintStop}, stop},
		{"false on a 503 with Retry-After: stops", facts{status: 503, hint: hintStop, retryAfter: time.Second, hasRetryAfter: true}, stop},
		{"false on a 401 with a refresh hook: stops, no refresh", facts{status: 401, canRefresh: true, hint: hintStop}, stop},
		{"false on a 2xx: a success", facts{status: 200, hint: hintStop}, decision{reason: StopNotRetryable, sent: true, succeeded: true}},
		{"true on a GET 400: repeated after backoff", facts{status: 400, safe: true, hint: hintRetry},
			decision{retry: true, wait: 50 * time.Millisecond, retryable: true, sent: true, spendsBudget: true}},
		{"true on a POST 400: not safe, not repeated", facts{status: 400, hint: hintRetry}, decision{reason: StopNotRetryable, sent: true}},
		{"true on a keyed POST 400: repeated", facts{status: 400, safe: true, hint: hintRetry},
			decision{retry: true, wait: 50 * time.Millisecond, retryable: true, sent: true, spendsBudget: true}},
		{"true on a POST 500: not safe, not repeated", facts{status: 500, hint: hintRetry}, decision{reason: StopNotRetryable, sent: true}},
		{"true on a GET 503 without Retry-After: repeated", facts{status: 503, safe: true, hint: hintRetry},
			decision{retry: true, wait: 50 * time.Millisecond, retryable: true, sent: true, spendsBudget: true}},
		{"true with Retry-After: waits as asked", facts{status: 409, safe: true, hint: hintRetry, retryAfter: 2 * time.Second, hasRetryAfter: true},
			decision{retry: true, wait: 2200 * time.Millisecond, retryable: true, sent: true}},
		{"true, attempts used up", facts{status: 400, safe: true, hint: hintRetry, attempts: 3},
			decision{reason: StopAttemptsExhausted, retryable: true, sent: true, spendsBudget: true}},
		{"true, budget used up", facts{status: 400, safe: true, hint: hintRetry, budgetLeft: false},
			decision{reason: StopBudgetExhausted, retryable: true, sent: true, spendsBudget: true}},
		{"true on a transport error: no answer, no hint", facts{err: io.ErrUnexpectedEOF, sent: true, hint: hintNone},
			decision{reason: StopNotRetryable, sent: true}},
	}
	for _, c := range cases {
		f := c.f
		f.now, f.jitter = now, 0.5
		if c.name != "true, budget used up" {
			f.budgetLeft = true
		}
		if got := decide(&p, &f); got != c.want {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

func TestReadRetryHint(t *testing.T) {
	defaults := DefaultPolicy().RetryHintHeaders
	cases := []struct {
		name   string
		header http.Header
		names  []string
		want   retryHint
	}{
		{"none", http.Header{}, defaults, hintNone},
		{"X-Should-Retry: true", http.Header{"X-Should-Retry": {"true"}}, defaults, hintRetry},
		{"X-Should-Retry: false", http.Header{"X-Should-Retry": {"false"}}, defaults, hintStop},
		{"Stripe-Should-Retry: FALSE, spaced", http.Header{"Stripe-Should-Retry": {" FALSE "}}, defaults, hintStop},
		{"not a boolean", http.Header{"X-Should-Retry": {"yes"}}, defaults, hintNone},
		{"the first valid value of the first header wins", http.Header{"X-Should-Retry": {"maybe", "true"}, "Stripe-Should-Retry": {"false"}}, defaults, hintRetry},
		{"a header not listed is not read", http.Header{"X-Should-Retry": {"false"}}, []string{"X-Acme-Retry"}, hintNone},
		{"a listed header of its own", http.Header{"X-Acme-Retry": {"false"}}, []string{"x-acme-retry"}, hintStop},
		{"no names, no hint", http.Header{"X-Should-Retry": {"false"}}, []string{}, hintNone},
	}
	for _, c := range cases {
		if got := readRetryHint(c.header, c.names); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
