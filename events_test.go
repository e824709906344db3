package resilienthttp_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// eventLog is an Observer that writes every event as a line, as an
// operator's dashboard would see it, and keeps the events themselves.
type eventLog struct {
	mu       sync.Mutex
	lines    []string
	ends     []resilienthttp.CallEnd
	retries  []resilienthttp.RetryEvent
	attempts []resilienthttp.AttemptEnd
	waits    []resilienthttp.LimiterWait
}

type ctxMark struct{}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *eventLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// observer returns the Observer. Its start hooks mark the contexts they
// return, and the other hooks note which mark they got, so a test sees the
// contexts flow from call to attempt.
func (l *eventLog) observer() resilienthttp.Observer {
	mark := func(ctx context.Context) any { return ctx.Value(ctxMark{}) }
	return resilienthttp.Observer{
		CallStart: func(ctx context.Context, e resilienthttp.CallStart) context.Context {
			l.add("call start %s %s", e.Method, e.URL)
			return context.WithValue(ctx, ctxMark{}, "call")
		},
		AttemptStart: func(ctx context.Context, e resilienthttp.AttemptStart) context.Context {
			l.add("attempt %d start resends=%d ctx=%v", e.Attempt, e.Resends, mark(ctx))
			e.Request.Header.Set("X-Observed", fmt.Sprint(e.Attempt))
			return context.WithValue(ctx, ctxMark{}, "attempt")
		},
		AttemptEnd: func(ctx context.Context, e resilienthttp.AttemptEnd) {
			l.add("attempt %d end status=%d class=%q retry-after=%s ctx=%v", e.Attempt, e.Status, e.ErrorClass, e.RetryAfter, mark(ctx))
			l.mu.Lock()
			l.attempts = append(l.attempts, e)
			l.mu.Unlock()
		},
		Retry: func(ctx context.Context, e resilienthttp.RetryEvent) {
			l.add("retry after attempt %d status=%d server-asked=%v ctx=%v", e.Attempt, e.Status, e.ServerAsked, mark(ctx))
			l.mu.Lock()
			l.retries = append(l.retries, e)
			l.mu.Unlock()
		},
		LimiterWait: func(ctx context.Context, e resilienthttp.LimiterWait) {
			l.add("limiter wait %s %s ctx=%v", e.Reason, e.Wait, mark(ctx))
			l.mu.Lock()
			l.waits = append(l.waits, e)
			l.mu.Unlock()
		},
		BudgetRefused: func(ctx context.Context, e resilienthttp.BudgetRefused) {
			l.add("budget refused attempt %d status=%d", e.Attempt, e.Status)
		},
		BreakerChange: func(e resilienthttp.BreakerChange) {
			l.add("breaker %s -> %s", e.From, e.To)
		},
		CallEnd: func(ctx context.Context, e resilienthttp.CallEnd) {
			l.add("call end attempts=%d status=%d reason=%q ctx=%v", e.Attempts, e.Status, e.Reason, mark(ctx))
			l.mu.Lock()
			l.ends = append(l.ends, e)
			l.mu.Unlock()
		},
	}
}

func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("events:\n\t%s\nwant:\n\t%s", joinLines(got), joinLines(want))
	}
}

func joinLines(s []string) string {
	out := ""
	for i, l := range s {
		if i > 0 {
			out += "\n\t"
		}
		out += l
	}
	return out
}

// TestEventsOfRetried429: an operator sees the 429, the wait the server
// asked for and the success, in order, each with the context of its call
// or attempt; the header an observer adds reaches the server on every
// attempt, and the caller's request is left alone.
func TestEventsOfRetried429(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/items", servicetest.Step{Status: 429, RetryAfter: "2"}, servicetest.Step{Status: 200})
	var log eventLog
	var sentWith []any // the context mark each attempt reached the base transport with
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		sentWith = append(sentWith, req.Context().Value(ctxMark{}))
		return http.DefaultTransport.RoundTrip(req)
	})
	c, clk := newClient(t, resilienthttp.WithObserver(log.observer()), resilienthttp.WithTransport(base))
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/items?api_key=s3cr3t", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	url := srv.URL + "/v1/items?api_key=REDACTED"
	wantLines(t, log.Lines(),
		"call start GET "+url,
		"attempt 1 start resends=0 ctx=call",
		`attempt 1 end status=429 class="" retry-after=2s ctx=attempt`,
		"retry after attempt 1 status=429 server-asked=true ctx=call",
		"attempt 2 start resends=1 ctx=call",
		`attempt 2 end status=200 class="" retry-after=0s ctx=attempt`,
		`call end attempts=2 status=200 reason="" ctx=call`)
	// The wait: Retry-After plus its jitter (a fifth of it, drawn at 0.5).
	if w := log.retries[0].Wait; w != 2200*time.Millisecond || !slices.Contains(clk.Sleeps(), w) {
		t.Errorf("retry wait = %s (slept %v), want 2.2s, slept", w, clk.Sleeps())
	}
	if d := log.ends[0].Duration; d < 2200*time.Millisecond {
		t.Errorf("call duration = %s, want at least the 2.2s wait", d)
	}
	for i, r := range srv.Requests() {
		if got := r.Header.Get("X-Observed"); got != fmt.Sprint(i+1) {
			t.Errorf("attempt %d carried X-Observed %q", i+1, got)
		}
	}
	if !slices.Equal(sentWith, []any{"attempt", "attempt"}) {
		t.Errorf("attempts were sent with contexts marked %v, want the attempts'", sentWith)
	}
	if req.Header.Get("X-Observed") != "" {
		t.Error("the observer's header leaked into the caller's request")
	}
}

// TestEventsOfOpenBreaker: the breaker's opening is an event, the call it
// stopped says so, and a call it refuses outright sends nothing and has no
// attempt events.
func TestEventsOfOpenBreaker(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/items", servicetest.Step{Status: 500})
	var log eventLog
	c, _ := newClient(t, resilienthttp.WithObserver(log.observer()),
		resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 2}))
	for range 2 {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/v1/items", nil); !errors.Is(err, resilienthttp.ErrCircuitOpen) {
			t.Fatalf("err = %v, want ErrCircuitOpen", err)
		}
	}
	wantLines(t, log.Lines(),
		"call start GET "+srv.URL+"/v1/items",
		"attempt 1 start resends=0 ctx=call",
		`attempt 1 end status=500 class="" retry-after=0s ctx=attempt`,
		"retry after attempt 1 status=500 server-asked=false ctx=call",
		"attempt 2 start resends=1 ctx=call",
		"breaker closed -> open",
		`attempt 2 end status=500 class="" retry-after=0s ctx=attempt`,
		"retry after attempt 2 status=500 server-asked=false ctx=call",
		`call end attempts=2 status=500 reason="circuit open" ctx=call`,
		"call start GET "+srv.URL+"/v1/items",
		`call end attempts=0 status=0 reason="circuit open" ctx=call`)
	if n := srv.Attempts("/v1/items"); n != 2 {
		t.Errorf("server saw %d attempts, want 2", n)
	}
}

// TestEventsOfPOSTNotRepeated: a POST answered 502 is one attempt, no
// retry, and a call that stopped as not retryable.
func TestEventsOfPOSTNotRepeated(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/orders", servicetest.Step{Status: 502})
	var log eventLog
	c, _ := newClient(t, resilienthttp.WithObserver(log.observer()))
	_, err := do(t, c, http.MethodPost, srv.URL+"/v1/orders", nil)
	var apiErr *resilienthttp.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	wantLines(t, log.Lines(),
		"call start POST "+srv.URL+"/v1/orders",
		"attempt 1 start resends=0 ctx=call",
		`attempt 1 end status=502 class="" retry-after=0s ctx=attempt`,
		`call end attempts=1 status=502 reason="not retryable" ctx=call`)
	if !errors.As(log.ends[0].Err, &apiErr) {
		t.Errorf("CallEnd.Err = %v, want the *APIError Do returned", log.ends[0].Err)
	}
}

// TestEventsOfRetryAfterPastDeadline: a Retry-After the deadline cannot
// wait for is not slept; the call's end says why and what the server
// asked for.
func TestEventsOfRetryAfterPastDeadline(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/items", servicetest.Step{Status: 429, RetryAfter: "30"})
	var log eventLog
	c, clk := newClient(t, resilienthttp.WithObserver(log.observer()))
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(5*time.Second))
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/items", nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("want an error")
	}
	wantLines(t, log.Lines(),
		"call start GET "+srv.URL+"/v1/items",
		"attempt 1 start resends=0 ctx=call",
		`attempt 1 end status=429 class="" retry-after=30s ctx=attempt`,
		`call end attempts=1 status=429 reason="next attempt would pass the deadline" ctx=call`)
	if e := log.ends[0]; e.RetryAfter != 30*time.Second {
		t.Errorf("CallEnd.RetryAfter = %s, want 30s", e.RetryAfter)
	}
	if s := clk.Sleeps(); len(s) != 0 {
		t.Errorf("slept %v, want no sleep", s)
	}
}

// TestEventsOfTransportError: a connection refused is an attempt without a
// status, with its error class, and a retry.
func TestEventsOfTransportError(t *testing.T) {
	srv := servicetest.New()
	url := srv.URL + "/v1/items"
	srv.Close() // nothing listens: connection refused
	var log eventLog
	c, _ := newClient(t, resilienthttp.WithObserver(log.observer()), resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 2}))
	if _, err := do(t, c, http.MethodGet, url, nil); err == nil {
		t.Fatal("want an error")
	}
	wantLines(t, log.Lines(),
		"call start GET "+url,
		"attempt 1 start resends=0 ctx=call",
		`attempt 1 end status=0 class="connect" retry-after=0s ctx=attempt`,
		"retry after attempt 1 status=0 server-asked=false ctx=call",
		"attempt 2 start resends=1 ctx=call",
		`attempt 2 end status=0 class="connect" retry-after=0s ctx=attempt`,
		`call end attempts=2 status=0 reason="attempts exhausted" ctx=call`)
}

// TestEventsOfLimiterWaits: each kind of limiter wait is reported with its
// reason and its length, on the call's context.
func TestEventsOfLimiterWaits(t *testing.T) {
	t.Run("pause", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/a", servicetest.Step{Status: 429, RetryAfter: "1"})
		var log eventLog
		c, _ := newClient(t, resilienthttp.WithObserver(log.observer()), resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}))
		do(t, c, http.MethodGet, srv.URL+"/a", nil) // pauses the host for 1s
		do(t, c, http.MethodGet, srv.URL+"/b", nil)
		wantWaits(t, log.waits, resilienthttp.LimiterWait{Host: hostOf(srv), Reason: resilienthttp.LimiterPause, Wait: time.Second})
		if !slices.Contains(log.Lines(), "limiter wait pause 1s ctx=call") {
			t.Errorf("events %v lack the pause on the call's context", log.Lines())
		}
	})
	t.Run("pace", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		var log eventLog
		c, _ := newClient(t, resilienthttp.WithObserver(log.observer()), resilienthttp.WithRateLimit(resilienthttp.LimiterSettings{Rate: 2}))
		for range 3 {
			do(t, c, http.MethodGet, srv.URL+"/a", nil)
		}
		// Two per second, a burst of one: the second and third calls wait
		// half a second each, taken in steps but reported whole.
		w := resilienthttp.LimiterWait{Host: hostOf(srv), Reason: resilienthttp.LimiterPace, Wait: 500 * time.Millisecond}
		wantWaits(t, log.waits, w, w)
	})
	t.Run("first-contact", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
			first := false
			once.Do(func() { first = true })
			if first {
				close(entered)
				<-release // the probe's answer is late
			}
			return http.DefaultTransport.RoundTrip(req)
		})
		var log eventLog
		c, _ := newClient(t, resilienthttp.WithObserver(log.observer()), resilienthttp.WithTransport(base))
		probeDone := make(chan struct{})
		go func() {
			defer close(probeDone)
			do(t, c, http.MethodGet, srv.URL+"/a", nil)
		}()
		<-entered
		do(t, c, http.MethodGet, srv.URL+"/a", nil) // waits out the probe's 100 ms
		close(release)
		<-probeDone
		wantWaits(t, log.waits, resilienthttp.LimiterWait{Host: hostOf(srv), Reason: resilienthttp.LimiterFirstContact, Wait: 100 * time.Millisecond})
	})
}

func hostOf(srv *servicetest.Server) string { return srv.URL[len("http://"):] }

func wantWaits(t *testing.T, got []resilienthttp.LimiterWait, want ...resilienthttp.LimiterWait) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("limiter waits = %+v, want %+v", got, want)
	}
}

// TestEventsOfBudgetRefusal: once the host's retry budget is spent, the
// retry it refuses is an event and the call's end says why.
func TestEventsOfBudgetRefusal(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/a", servicetest.Step{Status: 500})
	var log eventLog
	c, _ := newClient(t, resilienthttp.WithObserver(log.observer()), resilienthttp.WithoutBreaker(),
		resilienthttp.WithRetryBudget(resilienthttp.RetryBudget{MaxTokens: 4}), resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 10}))
	do(t, c, http.MethodGet, srv.URL+"/a", nil)
	// 4 tokens: retries stop while 2 or fewer would be left.
	got := log.Lines()
	want := []string{
		"budget refused attempt 2 status=500",
		`call end attempts=2 status=500 reason="retry budget exhausted" ctx=call`,
	}
	if len(got) < 2 || !slices.Equal(got[len(got)-2:], want) {
		t.Errorf("events end with %v, want %v", got, want)
	}
}

// TestObserversAllHearEvents: observers given in turn all hear every event,
// and each start hook gets the context the one before returned.
func TestObserversAllHearEvents(t *testing.T) {
	srv := servicetest.NewServer(t)
	var first, second eventLog
	c, _ := newClient(t, resilienthttp.WithObserver(first.observer()), resilienthttp.WithObserver(resilienthttp.Observer{}),
		resilienthttp.WithObserver(second.observer()))
	do(t, c, http.MethodGet, srv.URL+"/a", nil)
	lines := func(attemptCtx string) []string {
		return []string{
			"call start GET " + srv.URL + "/a",
			"attempt 1 start resends=0 ctx=" + attemptCtx,
			`attempt 1 end status=200 class="" retry-after=0s ctx=attempt`,
			`call end attempts=1 status=200 reason="" ctx=call`,
		}
	}
	wantLines(t, first.Lines(), lines("call")...)
	// The second's AttemptStart gets the context the first's returned.
	wantLines(t, second.Lines(), lines("attempt")...)
}

// TestErrorClass: the classes a dashboard groups transport errors by.
func TestErrorClass(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{resilienthttp.ErrAttemptTimeout, "timeout"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "timeout"},
		{context.Canceled, "canceled"},
		{&net.DNSError{Err: "no such host", Name: "svc.invalid", IsNotFound: true}, "dns"},
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "connect"},
		{&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, "reset"},
		{io.ErrUnexpectedEOF, "reset"},
		{x509.UnknownAuthorityError{}, "tls"},
		{errors.New(`unsupported protocol scheme "ftp"`), "malformed"},
		{errors.New("something else"), "transport"},
	} {
		if got := resilienthttp.ErrorClass(tc.err); got != tc.want {
			t.Errorf("ErrorClass(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestEventsOfRedirect: a redirect followed within an attempt is another
// request of the same attempt, one more resend, with the observer's header.
func TestEventsOfRedirect(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/old", servicetest.Step{Status: 307, Header: http.Header{"Location": {"/new"}}})
	var log eventLog
	c, _ := newClient(t, resilienthttp.WithObserver(log.observer()))
	if _, err := do(t, c, http.MethodGet, srv.URL+"/old", nil); err != nil {
		t.Fatal(err)
	}
	wantLines(t, log.Lines(),
		"call start GET "+srv.URL+"/old",
		"attempt 1 start resends=0 ctx=call",
		`attempt 1 end status=307 class="" retry-after=0s ctx=attempt`,
		"attempt 1 start resends=1 ctx=call",
		`attempt 1 end status=200 class="" retry-after=0s ctx=attempt`,
		`call end attempts=1 status=200 reason="" ctx=call`)
	for _, r := range srv.Requests() {
		if r.Header.Get("X-Observed") != "1" {
			t.Errorf("%s carried X-Observed %q, want 1", r.Path, r.Header.Get("X-Observed"))
		}
	}
}
