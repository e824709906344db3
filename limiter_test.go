package resilienthttp_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

func TestRetryAfterPausesTheWholeHost(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/busy", servicetest.Step{Status: 429, RetryAfter: "30"})
	c, clk := newClient(t)
	within := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}
	// The wait is past this caller's deadline: the call returns at once…
	ctx, cancel := within()
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/busy", nil)
	if _, err := c.Do(req); !errors.Is(err, resilienthttp.ErrTooManyRequests) {
		t.Fatalf("err = %v, want the 429", err)
	}
	// …but the host asked every caller to stay away for 30s. A call that
	// cannot wait that long fails without sending anything.
	ctx, cancel = within()
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/other", nil)
	_, err := c.Do(req)
	var rl *resilienthttp.RateLimitError
	if !errors.Is(err, resilienthttp.ErrRateLimited) || !errors.As(err, &rl) || srv.Attempts("/other") != 0 {
		t.Fatalf("err = %v, server saw %d; want ErrRateLimited and nothing sent", err, srv.Attempts("/other"))
	}
	if rl.Wait != 30*time.Second {
		t.Errorf("RateLimitError.Wait = %v, want 30s", rl.Wait)
	}
	// A call without a deadline waits the pause out, then goes.
	if _, err := do(t, c, http.MethodGet, srv.URL+"/other", nil); err != nil {
		t.Fatal(err)
	}
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 30*time.Second {
		t.Errorf("waits = %v, want [30s]", got)
	}
}

// No server-requested pause or pace takes a host away for longer than
// MaxRetryAfter: the call told to wait longer returns with the wait, and the
// next call goes out at once and hears the server itself. Absurd values are
// treated the same way.
func TestNoHostPauseLongerThanMaxRetryAfter(t *testing.T) {
	inAnHour := func(now time.Time) string { return strconv.FormatInt(now.Add(time.Hour).Unix(), 10) }
	for _, tc := range []struct {
		name string
		step func(now time.Time) servicetest.Step
	}{
		{"429, Retry-After a day", func(time.Time) servicetest.Step { return servicetest.Step{Status: 429, RetryAfter: "86400"} }},
		{"503, Retry-After an hour", func(time.Time) servicetest.Step { return servicetest.Step{Status: 503, RetryAfter: "3600"} }},
		{"429, Retry-After 9000000000", func(time.Time) servicetest.Step { return servicetest.Step{Status: 429, RetryAfter: "9000000000"} }},
		{"429, Retry-After in the year 9999", func(time.Time) servicetest.Step {
			return servicetest.Step{Status: 429, RetryAfter: "Fri, 31 Dec 9999 23:59:59 GMT"}
		}},
		{"200, RateLimit r=0 for a day", func(time.Time) servicetest.Step {
			return servicetest.Step{Header: http.Header{"Ratelimit": {`"d";r=0;t=86400`}}}
		}},
		{"200, X-RateLimit-Remaining 0 for an hour", func(now time.Time) servicetest.Step {
			return servicetest.Step{Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {inAnHour(now)}}}
		}},
		{"200, RateLimit-Policy one a day", func(time.Time) servicetest.Step {
			return servicetest.Step{Header: http.Header{"Ratelimit-Policy": {`"d";q=1;w=86400`}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newClient(t, resilienthttp.WithoutBreaker())
			srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now))
			srv.Script("/told", tc.step(clk.Now()))
			_, err := do(t, c, http.MethodGet, srv.URL+"/told", nil)
			var apiErr *resilienthttp.APIError
			if errors.As(err, &apiErr) && apiErr.Reason != resilienthttp.StopRetryAfterTooLong && apiErr.RetryAfter > 0 {
				t.Errorf("the told call: %v, want it returned with the wait (%q)", err, resilienthttp.StopRetryAfterTooLong)
			}
			for i := 0; i < 3; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/next", nil)
				resp, err := c.Do(req)
				cancel()
				if err != nil {
					t.Fatalf("call %d after it: %v, want it sent and answered", i+1, err)
				}
				resp.Body.Close()
			}
			if n := srv.Attempts("/next"); n != 3 {
				t.Errorf("server saw %d later calls, want 3", n)
			}
			for _, d := range clk.Sleeps() {
				if d > resilienthttp.DefaultMaxRetryAfter {
					t.Errorf("a caller waited %v, longer than MaxRetryAfter", d)
				}
			}
		})
	}
}

func TestRetryAfterPauseOff(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/busy", servicetest.Step{Status: 429, RetryAfter: "120"})
	c, clk := newClient(t, resilienthttp.WithoutRateLimit())
	do(t, c, http.MethodGet, srv.URL+"/busy", nil)
	if _, err := do(t, c, http.MethodGet, srv.URL+"/other", nil); err != nil || len(clk.Sleeps()) != 0 {
		t.Fatalf("err %v, waits %v; want the other call sent at once", err, clk.Sleeps())
	}
}

func TestFixedRateLimit(t *testing.T) {
	srv := servicetest.NewServer(t)
	c, clk := newClient(t, resilienthttp.WithRateLimit(resilienthttp.LimiterSettings{Rate: 10, Burst: 2}))
	for i := 0; i < 5; i++ {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Two at once (the burst), then one every 100ms.
	want := "[100ms 100ms 100ms]"
	if got := durations(clk.Sleeps()); got != want {
		t.Errorf("waits = %s, want %s", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/late", nil)
	if _, err := c.Do(req); !errors.Is(err, resilienthttp.ErrRateLimited) || srv.Attempts("/late") != 0 {
		t.Fatalf("err = %v, want ErrRateLimited at once with nothing sent", err)
	}
}

func durations(ds []time.Duration) string {
	s := "["
	for i, d := range ds {
		if i > 0 {
			s += " "
		}
		s += d.Round(time.Millisecond).String()
	}
	return s + "]"
}

func TestAdaptivePacingSlowsOnA429(t *testing.T) {
	clk := newFakeClock()
	srv := servicetest.NewServer(t)
	srv.Script("/", append(servicetest.Statuses(200, 200, 200, 200), servicetest.Step{Status: 429}, servicetest.Step{Status: 200})...)
	c := resilienthttp.New(resilienthttp.WithClock(clk), resilienthttp.WithRandom(constRand(0)))
	defer c.CloseIdleConnections()
	for i := 0; i < 4; i++ {
		do(t, c, http.MethodGet, srv.URL+"/", nil)
	}
	if len(clk.Sleeps()) != 0 {
		t.Fatalf("unlimited client waited %v", clk.Sleeps())
	}
	// The 429 (no Retry-After) is retried; from then on the host is paced
	// at what it accepted per second (4), climbing with each success.
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	before := len(clk.Sleeps())
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	var paced time.Duration
	for _, d := range clk.Sleeps()[before:] {
		paced += d
	}
	if paced <= 0 || paced > 250*time.Millisecond {
		t.Errorf("after a 429 the next call waited %v, want a wait of at most 250ms (≥4 req/s)", paced)
	}
}

func TestRateLimitHeadersPaceBeforeThe429(t *testing.T) {
	for _, h := range []servicetest.RateLimitHeaders{servicetest.IETFHeaders} {
		clk := newFakeClock()
		srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now), servicetest.WithRateLimit(50, 5),
			servicetest.WithRateLimitHeaders(h))
		c := resilienthttp.New(resilienthttp.WithClock(clk), resilienthttp.WithRandom(constRand(0)))
		defer c.CloseIdleConnections()
		for i := 0; i < 40; i++ {
			if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		for _, r := range srv.Requests() {
			if r.Status == http.StatusTooManyRequests {
				t.Fatalf("the server answered 429 to request %s: the headers should have paced the client", r.ID)
			}
		}
		// 40 calls at 49/s after the first (which declared the quota and
		// left a burst of 4, of which the client spends 3): about 36/49 s
		// of waiting.
		var total time.Duration
		for _, d := range clk.Sleeps() {
			total += d
		}
		if total < 600*time.Millisecond || total > 800*time.Millisecond {
			t.Errorf("waited %v in all, want about 735ms", total)
		}
	}
}

func TestExhaustedRateLimitWindowPausesTheHost(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Step{Header: http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"3"}}},
		servicetest.Step{})
	c, clk := newClient(t)
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	do(t, c, http.MethodGet, srv.URL+"/", nil)
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 3*time.Second {
		t.Errorf("waits = %v, want [3s] until the window resets", got)
	}
}

func TestManyGoroutinesOneHost(t *testing.T) {
	srv := servicetest.NewServer(t, servicetest.WithFailureRatio(0.2, []int{500, 429, 503}, 7))
	c, _ := newClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64*10)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				_, err := do(t, c, http.MethodGet, srv.URL+"/g"+strconv.Itoa(g), nil)
				var apiErr *resilienthttp.APIError
				var reqErr *resilienthttp.RequestError
				if err != nil && !errors.As(err, &apiErr) && !errors.As(err, &reqErr) {
					errs <- err
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("untyped error: %v", err)
	}
	if n := srv.Total(); n < 640 || n > 640*4 {
		t.Errorf("server saw %d attempts for 640 calls", n)
	}
}

// Static keeps a host's pace where the settings put it: a 429 is retried
// after its backoff, and later calls are not slowed.
func TestStaticLimiterIgnores429s(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", append(servicetest.Statuses(200, 429), servicetest.Statuses(200)...)...)
	c, clk := newClient(t, resilienthttp.WithRateLimit(resilienthttp.LimiterSettings{Static: true}))
	for i := 0; i < 4; i++ {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := durations(clk.Sleeps()); got != "[50ms]" {
		t.Errorf("waits = %s, want only the 429's backoff [50ms]", got)
	}
}

// TestAdaptivePacingRecoversWhenAdmittedAnswersAre4xx runs the same calls
// against a token bucket (50/s, burst 10) whose admitted answers are 200s,
// then one whose admitted answers are 404s (lookups of missing items). A
// 404 the bucket let through is as much an accepted request as a 200: after
// the 429s the pace must climb back the same way, not stay at the 1/s
// floor.
func TestAdaptivePacingRecoversWhenAdmittedAnswersAre4xx(t *testing.T) {
	const calls = 200
	waited := func(status int) time.Duration {
		clk := newFakeClock()
		clk.now = time.Unix(1_800_000_000, 0) // the same slot boundaries every run
		srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now), servicetest.WithRateLimit(50, 10))
		srv.Script("/items", servicetest.Statuses(status)...)
		c, _ := newClient(t, resilienthttp.WithClock(clk), resilienthttp.WithRandom(constRand(0)))
		for i := 0; i < calls; i++ {
			_, err := do(t, c, http.MethodGet, srv.URL+"/items", nil)
			var apiErr *resilienthttp.APIError
			if status < 400 && err != nil || status >= 400 && (!errors.As(err, &apiErr) || apiErr.StatusCode != status) {
				t.Fatalf("%d: call %d: %v, want the scripted %d", status, i, err, status)
			}
		}
		var total time.Duration
		for _, d := range clk.Sleeps() {
			total += d
		}
		return total
	}
	ok, notFound := waited(200), waited(404)
	// At the 1/s floor the calls would take about 200s; at the bucket's
	// 50/s, 4s plus the pauses the 429s ask for.
	if notFound > calls*time.Second/10 || notFound > ok+ok/4 {
		t.Errorf("%d calls answered 404 waited %v in all, want about what 200s wait (%v)", calls, notFound, ok)
	}
	t.Logf("waits: 200s %v, 404s %v", ok, notFound)
}

// A call whose context ends while it waits for the limiter sent nothing, and
// its error says so: no attempt counted.
func TestAttemptsCountOnlyWhatWasSent(t *testing.T) {
	srv := servicetest.NewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	clk := &cancellingClock{fakeClock: newFakeClock(), cancel: cancel}
	c := resilienthttp.New(resilienthttp.WithClock(clk),
		resilienthttp.WithRateLimit(resilienthttp.LimiterSettings{Rate: 1, Burst: 1}))
	defer c.CloseIdleConnections()
	if _, err := do(t, c, http.MethodGet, srv.URL+"/v3/users", nil); err != nil {
		t.Fatal(err) // spends the limiter's one token
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v3/users", nil)
	_, err := c.Do(req) // waits for the next token; the clock cancels the wait
	var reqErr *resilienthttp.RequestError
	if !errors.As(err, &reqErr) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a *RequestError wrapping context.Canceled", err)
	}
	if reqErr.Attempts != 0 || srv.Total() != 1 || !strings.Contains(err.Error(), "0 attempts") {
		t.Errorf("Attempts %d, server saw %d requests in all, error %q; want 0 attempts for the waiting call", reqErr.Attempts, srv.Total(), err)
	}
}

// A gateway that sheds load answers 503 with no Retry-After (nginx's
// default limit_req). Those 503s are returned, as the documents say, but
// they slow the client down like 429s do, and they do not open the breaker
// of a host that is answering others: throttling turns into pacing, not
// into an outage.
func TestGateway503SheddingPacesAndKeepsTheCircuitClosed(t *testing.T) {
	c, clk := newClient(t)
	srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now),
		servicetest.WithRateLimit(100, 10), servicetest.WithRateLimitStatus(503))
	start := clk.Now()
	var answered, shed int
	for i := 0; i < 300; i++ {
		_, err := do(t, c, http.MethodGet, srv.URL+"/v1/items", nil)
		switch {
		case err == nil:
			answered++
		case errors.Is(err, resilienthttp.ErrServiceUnavailable):
			shed++
		default:
			t.Fatalf("call %d: %v, want 200 or the gateway's 503", i+1, err)
		}
	}
	took := clk.Now().Sub(start)
	if shed > 15 || took > 4*time.Second {
		t.Errorf("%d answered, %d shed (want ≤ 15) in %v of fake time (want ≤ 4s; ideal 2.9s)", answered, shed, took)
	}
}

// A service the documents' way: one disabled service of the host answers
// 503 ("the requested service is invalid"), with or without Retry-After,
// to every call. Its calls fail; the rest of the host is neither slowed nor
// cut off.
func TestDisabledService503LeavesTheRestOfTheHostAlone(t *testing.T) {
	for _, retryAfter := range []string{"", "5"} {
		c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}))
		srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now))
		srv.Script("/v1/disabled", servicetest.Step{Status: 503, RetryAfter: retryAfter})
		// The host has answered (a host that answers nothing but 503 is
		// down, as far as anyone can tell, and its breaker opens).
		if _, err := do(t, c, http.MethodGet, srv.URL+"/v1/users", nil); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Second) // past the first-contact ramp: these calls come one at a time
		for round := 0; round < 5; round++ {
			for i := 0; i < 10; i++ {
				if _, err := do(t, c, http.MethodGet, srv.URL+"/v1/disabled", nil); !errors.Is(err, resilienthttp.ErrServiceUnavailable) {
					t.Fatalf("Retry-After %q: disabled call: %v, want its 503", retryAfter, err)
				}
			}
			before := len(clk.Sleeps())
			for i := 0; i < 10; i++ {
				if _, err := do(t, c, http.MethodGet, srv.URL+"/v1/users", nil); err != nil {
					t.Fatalf("Retry-After %q: round %d: the rest of the host: %v, want 200", retryAfter, round, err)
				}
			}
			if waits := clk.Sleeps()[before:]; len(waits) != 0 {
				t.Fatalf("Retry-After %q: round %d: the rest of the host waited %v, want no wait", retryAfter, round, waits)
			}
		}
	}
}

// Many APIs limit per operation: with LimiterSettings.Key scoping the
// limiter by route, a 429 on one operation pauses and slows only that one;
// the others keep their full pace. Without it the host is one scope.
func TestLimiterScopedPerOperation(t *testing.T) {
	byPath := func(r *http.Request) string { return r.Method + " " + r.URL.Path }
	for _, tc := range []struct {
		name      string
		key       func(*http.Request) string
		wantWaits bool
	}{
		{"one scope per host", nil, true},
		{"scoped by operation", byPath, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}),
				resilienthttp.WithRateLimit(resilienthttp.LimiterSettings{Key: tc.key}))
			srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now))
			srv.Script("/v1/exports", servicetest.Step{Status: 429, RetryAfter: "30"})
			do(t, c, http.MethodGet, srv.URL+"/v1/users", nil) // the host has answered
			clk.Advance(time.Second)                           // past the first-contact ramp
			if _, err := do(t, c, http.MethodPost, srv.URL+"/v1/exports", nil); !errors.Is(err, resilienthttp.ErrTooManyRequests) {
				t.Fatalf("the throttled operation: %v, want its 429", err)
			}
			before := len(clk.Sleeps())
			for i := 0; i < 20; i++ {
				if _, err := do(t, c, http.MethodGet, srv.URL+"/v1/users", nil); err != nil {
					t.Fatal(err)
				}
			}
			waits := clk.Sleeps()[before:]
			if (len(waits) > 0) != tc.wantWaits {
				t.Errorf("the other operation waited %v; want waits %v", waits, tc.wantWaits)
			}
		})
	}
}

// Replicas without a shared store that are told the same quota by the
// host's RateLimit headers share it as clients that were never told do:
// refused at the declared pace, each slows to its share, and a token
// bucket's "none left, full in t" (RateLimit r=0) holds a replica for one
// interval of the pace, not for t. Before, each replica kept the whole
// declared pace and stopped for a second at every r=0: here 16 s for 2 s
// of work, and 4 processes of redisguard's fleet bench took 28 to 37 s
// for 4.9 s.
func TestReplicasToldOneQuotaShareIt(t *testing.T) {
	const replicas, calls = 2, 400
	clk := newFakeClock()
	srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now), servicetest.WithRateLimit(200, 20),
		servicetest.WithRateLimitHeaders(servicetest.IETFHeaders))
	var cs [replicas]*resilienthttp.Client
	for i := range cs {
		cs[i] = resilienthttp.New(resilienthttp.WithClock(clk), resilienthttp.WithRandom(constRand(0.5)),
			resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}))
		t.Cleanup(cs[i].CloseIdleConnections)
	}
	start, refused := clk.Now(), 0
	for i := range calls { // taking turns, as two processes' calls interleave
		_, err := do(t, cs[i%replicas], http.MethodGet, srv.URL+"/v1/items", nil)
		switch {
		case errors.Is(err, resilienthttp.ErrTooManyRequests):
			refused++
		case err != nil:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	took, ideal := clk.Now().Sub(start), time.Duration(calls-refused-20)*time.Second/200
	// The replicas' first refusal pauses them for its Retry-After (1s).
	if limit := time.Second + ideal*3/2; refused > calls/20 || took > limit {
		t.Errorf("%d of %d calls refused in %v of fake time; want at most %d refused, in at most %v (one pause, then 1.5× the ideal %v)",
			refused, calls, took, calls/20, limit, ideal)
	}
}
