package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/resilienthttp/resilienthttp"
)

// The settings every contender shares where its library lets them be set:
// the same attempt budget and the same backoff bounds.
const (
	maxAttempts = 4
	backoffMin  = 100 * time.Millisecond
	backoffMax  = 5 * time.Second
)

// The circuit-breaker settings given to the two peers that get one. Both
// libraries can express the same rule, so both get it: open when at least
// half of at least breakerMinCalls attempts in the last breakerWindow failed
// (5xx or transport error), stay open breakerOpenFor, then let a probe
// through. The minimum volume keeps a brownout of ~30% failures from
// tripping it on a short unlucky run.
const (
	breakerMinCalls = 20
	breakerWindow   = 10 * time.Second
	breakerOpenFor  = 5 * time.Second
)

// contenderKeys lists the contenders in table order. Keys name them in
// results.json and in the -contenders flag.
var contenderKeys = []string{"nethttp", "retryablehttp", "retryablehttp-guarded", "failsafe", "resilienthttp"}

// extraContenderKeys are variants run only when named with -contenders,
// to isolate one of resilienthttp's guards.
var extraContenderKeys = []string{"resilienthttp-nobreaker"}

// contenderNames are the row labels of the tables.
var contenderNames = map[string]string{
	"nethttp":                 "net/http",
	"retryablehttp":           "go-retryablehttp",
	"retryablehttp-guarded":   "retryablehttp + x/time/rate + gobreaker",
	"failsafe":                "failsafe-go (failsafehttp)",
	"resilienthttp":           "resilienthttp.New()",
	"resilienthttp-nobreaker": "resilienthttp.New(WithoutBreaker())",
}

// chartNames are shorter labels for the charts and their titles.
var chartNames = map[string]string{
	"nethttp":                 "net/http",
	"retryablehttp":           "retryablehttp",
	"retryablehttp-guarded":   "retryablehttp+rate+gobreaker",
	"failsafe":                "failsafe-go",
	"resilienthttp":           "resilienthttp",
	"resilienthttp-nobreaker": "resilienthttp (no breaker)",
}

// contenderConfigs describes, for results.json and the README, how each
// contender is set up.
var contenderConfigs = map[string]string{
	"nethttp":                 "&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}; no retries",
	"retryablehttp":           "retryablehttp.NewClient() with RetryMax=3, RetryWaitMin=100ms, RetryWaitMax=5s, Logger=nil; otherwise defaults (DefaultRetryPolicy, DefaultBackoff, cleanhttp pooled transport)",
	"retryablehttp-guarded":   "as go-retryablehttp, with HTTPClient.Transport wrapped in a RoundTripper doing rate.Limiter.Wait then gobreaker.CircuitBreaker.Execute (trips when >=50% of >=20 attempts in 10s were 5xx/transport errors, open 5s); CheckRetry = DefaultRetryPolicy except gobreaker.ErrOpenState/ErrTooManyRequests are not retried; limiter rate.NewLimiter(quota) when told, else rate.Inf",
	"failsafe":                "&http.Client{Transport: failsafehttp.NewRoundTripper(cloned DefaultTransport, retry, breaker[, limiter])}; retry = failsafehttp.NewRetryPolicyBuilder() (Retry-After via DelayFunc) .WithMaxRetries(3).WithBackoff(100ms, 5s).WithJitterFactor(0.25).AbortOnErrors(circuitbreaker.ErrOpen).ReturnLastFailure(); breaker = 5xx/transport errors, WithFailureRateThreshold(0.5, 20, 10s), WithDelay(5s); limiter (told only) = ratelimiter.NewSmoothBuilder(quota rps, 1s).WithMaxWaitTime(5s)",
	"resilienthttp":           "resilienthttp.New() with its defaults; never told the quota",
	"resilienthttp-nobreaker": "resilienthttp.New(resilienthttp.WithoutBreaker()): the retry budget alone bounds an outage",
}

// hasBreaker marks the contenders with a circuit breaker of their own.
var hasBreaker = map[string]bool{"retryablehttp-guarded": true, "failsafe": true, "resilienthttp": true}

// breakerOpen reports whether err is a call refused by the contender's own
// circuit breaker, open or half-open, rather than by the server.
func breakerOpen(err error) bool {
	return err != nil && (errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) ||
		errors.Is(err, circuitbreaker.ErrOpen) || errors.Is(err, resilienthttp.ErrCircuitOpen))
}

// quota is a server's rate limit, for the contenders that can be told it.
type quota struct {
	rps   float64
	burst int
}

// setup is what a scenario tells the contenders it builds.
type setup struct {
	// told, when set, is the server's quota, given to the peers' client-side
	// limiters. resilienthttp is never told.
	told *quota
}

// request is one logical call, described independently of any library so
// that each contender can build it the way its own docs say.
type request struct {
	method string
	url    string
	// Exactly one of the following bodies is set, or none.
	body   []byte    // a small body held in memory
	file   *os.File  // a large body that can be rewound
	stream io.Reader // a large body that cannot
	size   int64     // length of file or stream
}

// outcome is what one logical call came to, as the caller sees it.
type outcome struct {
	// status is the final status the caller learns: the response's, or the
	// one an error carries (resilienthttp's APIError), or 0.
	status int
	// err is the error the library returned, nil when it returned a response.
	err error
	// elapsed is the time the call took, body read included.
	elapsed time.Duration
}

// ok reports whether the call succeeded from the caller's point of view.
func (o outcome) ok() bool { return o.err == nil && o.status >= 200 && o.status < 400 }

// contender is one client under test, built fresh for every scenario run so
// no state (pools, breakers, limiters) leaks from one run into the next.
type contender struct {
	key string
	// do sends r and reads the whole response body.
	do func(ctx context.Context, r request) outcome
	// closeIdle closes the idle connections of the contender's own transport,
	// whatever wrappers sit on top of it.
	closeIdle func()
}

// newContender builds the contender named key.
func newContender(key string, s setup) *contender {
	switch key {
	case "nethttp":
		return newPlain()
	case "retryablehttp":
		return newRetryable()
	case "retryablehttp-guarded":
		return newGuarded(s)
	case "failsafe":
		return newFailsafe(s)
	case "resilienthttp":
		return newResilient("resilienthttp")
	case "resilienthttp-nobreaker":
		return newResilient("resilienthttp-nobreaker", resilienthttp.WithoutBreaker())
	}
	panic("unknown contender " + key)
}

// timed runs fn and sets the outcome's elapsed time.
func timed(fn func() outcome) outcome {
	start := time.Now()
	o := fn()
	o.elapsed = time.Since(start)
	return o
}

// stdRequest builds an *http.Request the way net/http users do; http.NewRequest
// sets GetBody for the in-memory body, so net/http itself can replay it.
func stdRequest(ctx context.Context, r request) (*http.Request, error) {
	var body io.Reader
	switch {
	case r.body != nil:
		body = bytes.NewReader(r.body)
	case r.file != nil:
		body = r.file
	case r.stream != nil:
		body = r.stream
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, err
	}
	if r.file != nil || r.stream != nil {
		req.ContentLength = r.size // a competent caller knows it; saves chunking
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// finish reads and closes a response the caller got, as callers must for
// the connection to be reused.
func finish(resp *http.Response, err error) outcome {
	if err != nil {
		return outcome{err: err}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return outcome{status: resp.StatusCode, err: err}
}

// newPlain is the floor: net/http with no retries, on its own clone of the
// default transport so the run's connection counts are its own.
func newPlain() *contender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &http.Client{Transport: tr}
	return httpContender("nethttp", c, tr.CloseIdleConnections)
}

// httpContender runs requests through an *http.Client.
func httpContender(key string, c *http.Client, closeIdle func()) *contender {
	return &contender{
		key: key,
		do: func(ctx context.Context, r request) outcome {
			return timed(func() outcome {
				req, err := stdRequest(ctx, r)
				if err != nil {
					return outcome{err: err}
				}
				return finish(c.Do(req))
			})
		},
		closeIdle: closeIdle,
	}
}

// newRetryableClient is go-retryablehttp with its defaults except the shared
// attempt budget and backoff bounds, and no logger.
func newRetryableClient() *retryablehttp.Client {
	rc := retryablehttp.NewClient()
	rc.RetryMax = maxAttempts - 1
	rc.RetryWaitMin = backoffMin
	rc.RetryWaitMax = backoffMax
	rc.Logger = nil
	return rc
}

// retryableDo sends r through rc, passing the body the way
// retryablehttp.NewRequest takes it: []byte is replayed from memory, an
// io.ReadSeeker (*os.File) is rewound, any other io.Reader is read into
// memory first.
func retryableDo(ctx context.Context, rc *retryablehttp.Client, r request) outcome {
	var raw any
	switch {
	case r.body != nil:
		raw = r.body
	case r.file != nil:
		raw = r.file
	case r.stream != nil:
		raw = r.stream
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, r.url, raw)
	if err != nil {
		return outcome{err: err}
	}
	if r.file != nil || r.stream != nil {
		req.ContentLength = r.size // NewRequest cannot learn a file's length
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return finish(rc.Do(req))
}

func newRetryable() *contender {
	rc := newRetryableClient()
	return &contender{
		key: "retryablehttp",
		do: func(ctx context.Context, r request) outcome {
			return timed(func() outcome { return retryableDo(ctx, rc, r) })
		},
		closeIdle: rc.HTTPClient.CloseIdleConnections,
	}
}

// errServerFailure tells gobreaker that an attempt which did get a response
// failed (5xx); guardTransport turns it back into the response.
var errServerFailure = errors.New("bench: server error response")

// guardTransport is the RoundTripper a user wires by hand to put a client-side
// rate limiter and a circuit breaker under go-retryablehttp: every attempt
// first waits for the limiter, then runs inside the breaker. It is the
// minimal wrapper, with no CloseIdleConnections method, as such wrappers
// usually are; so go-retryablehttp's CloseIdleConnections on give-up does
// not reach the pool (see the README).
type guardTransport struct {
	next    http.RoundTripper
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[*http.Response]
}

func (t *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.limiter.Wait(req.Context()); err != nil {
		return nil, err
	}
	resp, err := t.breaker.Execute(func() (*http.Response, error) {
		resp, err := t.next.RoundTrip(req)
		if err == nil && resp.StatusCode >= 500 {
			return resp, errServerFailure
		}
		return resp, err
	})
	if errors.Is(err, errServerFailure) {
		return resp, nil // counted as a failure; the caller still gets the response
	}
	return resp, err
}

func newGuarded(s setup) *contender {
	rc := newRetryableClient()
	base := rc.HTTPClient.Transport.(*http.Transport)
	lim := rate.NewLimiter(rate.Inf, 0)
	if s.told != nil {
		lim = rate.NewLimiter(rate.Limit(s.told.rps), s.told.burst)
	}
	cb := gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
		Name:         "bench",
		MaxRequests:  1,
		Interval:     breakerWindow,
		BucketPeriod: time.Second, // a rolling window, as failsafe-go's
		Timeout:      breakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= breakerMinCalls && 2*c.TotalFailures >= c.Requests
		},
		// A call the caller gave up on says nothing about the server.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		},
	})
	rc.HTTPClient.Transport = &guardTransport{next: base, limiter: lim, breaker: cb}
	// The opt-out: an open breaker means "do not send", and retrying it
	// would only spin through the attempt budget with backoff sleeps.
	rc.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return false, nil
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	return &contender{
		key: "retryablehttp-guarded",
		do: func(ctx context.Context, r request) outcome {
			return timed(func() outcome { return retryableDo(ctx, rc, r) })
		},
		closeIdle: base.CloseIdleConnections,
	}
}

// newFailsafe is failsafe-go as its HTTP page shows it: a failsafehttp
// RoundTripper under an http.Client, with the retry policy from
// failsafehttp.NewRetryPolicyBuilder (which retries 429/5xx/transport errors
// and waits Retry-After on 429/503) and a circuit breaker. Policies compose
// outermost first, so every attempt passes the breaker (and, when told, the
// limiter) on its own.
func newFailsafe(s setup) *contender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	retry := failsafehttp.NewRetryPolicyBuilder().
		WithMaxRetries(maxAttempts-1).
		WithBackoff(backoffMin, backoffMax).
		WithJitterFactor(0.25).
		// The opt-out: an open breaker is not a reason to retry.
		AbortOnErrors(circuitbreaker.ErrOpen).
		// Hand back the last response (a 503, say), as an http.Client
		// caller expects, rather than a retrypolicy.ExceededError.
		ReturnLastFailure().
		Build()
	breaker := circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(func(resp *http.Response, err error) bool {
			if err != nil {
				return !errors.Is(err, ratelimiter.ErrExceeded) && !errors.Is(err, context.Canceled)
			}
			return resp != nil && resp.StatusCode >= 500
		}).
		WithFailureRateThreshold(0.5, breakerMinCalls, breakerWindow).
		WithDelay(breakerOpenFor).
		Build()
	policies := []failsafe.Policy[*http.Response]{retry, breaker}
	if s.told != nil {
		// Smooth: one permit every 1/rps, never a burst above the server's.
		lim := ratelimiter.NewSmoothBuilder[*http.Response](uint(s.told.rps), time.Second).
			WithMaxWaitTime(backoffMax).
			Build()
		policies = append(policies, lim)
	}
	c := &http.Client{Transport: failsafehttp.NewRoundTripper(tr, policies...)}
	return httpContender("failsafe", c, tr.CloseIdleConnections)
}

// newResilient is resilienthttp.New() with its defaults and opts.
func newResilient(key string, opts ...resilienthttp.Option) *contender {
	c := resilienthttp.New(opts...)
	return &contender{
		key: key,
		do: func(ctx context.Context, r request) outcome {
			return timed(func() outcome {
				req, err := stdRequest(ctx, r)
				if err != nil {
					return outcome{err: err}
				}
				resp, err := c.Do(req)
				if err != nil {
					// A final status >= 400 is an *APIError; the caller still
					// learns the status from it.
					var apiErr *resilienthttp.APIError
					if errors.As(err, &apiErr) {
						return outcome{status: apiErr.StatusCode, err: err}
					}
					var reqErr *resilienthttp.RequestError
					if errors.As(err, &reqErr) {
						return outcome{status: reqErr.LastStatus, err: err}
					}
					return outcome{err: err}
				}
				return finish(resp, nil)
			})
		},
		closeIdle: c.CloseIdleConnections,
	}
}
