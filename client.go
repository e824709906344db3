// Package resilienthttp is an HTTP client for service SDKs that decides, for
// every answer, whether to repeat the request or fail, from what the status
// code is documented to mean: 408 may be repeated as is, 429 after
// Retry-After, 503 and the other 4xx not without a modification, and 5xx only
// when repeating cannot duplicate a write. Final error responses come back as
// *APIError, with the service's error code and message parsed from the body.
//
// The retry loop is go-retryablehttp's, driven by a Policy (policy.go).
package resilienthttp

import (
	"log/slog"
	"math"
	randv2 "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Client sends requests with the retries its Policy allows. It is safe for
// concurrent use; create one per service (or per SDK) and reuse it, so its
// connection pool is reused.
//
// The zero Client (var c Client, or new(Client)) is ready to use and behaves
// as New() with no options: it takes its defaults on first use, by Do or by
// a request through StandardClient's client. A Client must not be copied
// after first use.
type Client struct {
	// ready is set once the fields below are: by New, or by setupOnce on a
	// zero Client's first use. Checking it is the only cost the zero
	// Client adds to a call.
	ready     atomic.Bool
	setupOnce sync.Once

	policy        Policy // defaults applied
	policyErr     error  // what Validate said of the policy given
	base          http.RoundTripper
	clock         Clock
	rnd           func() float64
	prepareRetry  func(*http.Request) error
	refresh       func(*http.Request) error
	newKey        func() string
	attemptHeader string
	invocationHdr string
	maxBuffered   int64
	logger        *slog.Logger
	onRetry       func(RetryEvent)
	// obs is every observer's and the logger's, merged: an unset field is
	// an event no one observes. Never nil once set up; a pointer, so that
	// observers add one word to the Client.
	obs         *Observer
	requestIDs  []string
	errorsIn2xx bool

	limiter *LimiterSettings // nil: off
	breaker *BreakerSettings // nil: off
	budget  *RetryBudget     // nil: off
	hostKey func(*http.Request) string
	store   GuardStore // nil: guards not shared
	hosts   hostRegistry

	loop *retryablehttp.Client
}

// New returns a Client with the default policy and the given options.
// It accepts any Policy: if the one given with WithPolicy is invalid
// (Policy.Validate), every call fails at once, sending nothing, with a
// *RequestError for which errors.Is(err, ErrInvalidPolicy).
func New(opts ...Option) *Client {
	c := new(Client)
	c.setup(opts)
	return c
}

// setup gives c its defaults, applies opts, builds the retry loop and marks
// c ready. It runs once per Client, before any other goroutine sees the
// fields it sets.
func (c *Client) setup(opts []Option) {
	c.policy = DefaultPolicy()
	c.clock = systemClock{}
	c.rnd = randv2.Float64
	c.maxBuffered = DefaultMaxBufferedBody
	c.requestIDs = slices.Clone(DefaultRequestIDHeaders)
	c.limiter = &LimiterSettings{}
	c.breaker = &BreakerSettings{}
	c.budget = &RetryBudget{}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	c.obs = withLogger(c.obs, c.logger)
	c.policyErr = c.policy.Validate()
	c.policy = c.policy.withDefaults()
	if c.breaker != nil {
		s := c.breaker.withDefaults()
		c.breaker = &s
	}
	if c.budget != nil {
		b := c.budget.withDefaults()
		c.budget = &b
	}
	if c.base == nil {
		c.base = defaultTransport()
	}
	c.loop = &retryablehttp.Client{
		// The loop's http.Client sees a transport without
		// CloseIdleConnections, so go-retryablehttp's habit of closing the
		// pool's idle connections whenever it gives up is a no-op here: one
		// failed call must not cost every other call its connection.
		HTTPClient: &http.Client{
			Transport:     attemptTransport{c},
			CheckRedirect: checkRedirect,
		},
		RetryMax:     math.MaxInt32, // the policy decides; see decide
		CheckRetry:   c.checkRetry,
		Backoff:      func(time.Duration, time.Duration, int, *http.Response) time.Duration { return 0 },
		PrepareRetry: c.prepare,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
	}
	c.ready.Store(true)
}

// defaultTransport returns the transport of a Client without WithTransport:
// its own clone of http.DefaultTransport, or, if an application or a test has
// replaced http.DefaultTransport with another RoundTripper (a tracing
// wrapper, a test double), that RoundTripper as is, which cannot be cloned.
func defaultTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	// net/http keeps 2 idle connections per host; a service SDK's
	// concurrent callers would then open and close connections all day.
	t.MaxIdleConnsPerHost = t.MaxIdleConns
	return t
}

// setupZero makes a zero Client ready on its first use. On a ready Client
// it is one atomic load.
func (c *Client) setupZero() {
	if !c.ready.Load() {
		c.setupZeroSlow()
	}
}

// setupZeroSlow is apart from setupZero so that the closure is built only
// on the slow path.
func (c *Client) setupZeroSlow() {
	c.setupOnce.Do(func() { c.setup(nil) })
}

// Do sends req, repeating it as the policy allows, and returns the final
// response when its status is below 400. A final status of 400 or more is
// returned as a nil response and an *APIError (its body read up to
// MaxErrorBody, the rest drained, the response closed). Other failures are a
// *RequestError whose cause errors.Is and errors.As reach.
//
// As with http.Client.Do, the request body is closed, even on errors, and
// the caller must close the returned response's body.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	c.setupZero()
	return c.do(req, false)
}

// Policy returns a copy of the policy c applies to calls that do not set
// their own with ContextWithPolicy, with every zero field filled in with its
// default (so it reads like DefaultPolicy() with the client's changes). The
// copy shares nothing with c: changing its Statuses or RetryHintHeaders
// changes no other call. An SDK starts a per-call policy from it, so the
// call keeps the SDK's rules and changes only what it means to:
//
//	p := c.Policy()
//	p.MaxAttempts = 1
//	ctx = resilienthttp.ContextWithPolicy(ctx, p)
//
// On a zero Client it returns DefaultPolicy().
func (c *Client) Policy() Policy {
	c.setupZero()
	return c.policy.clone()
}

// StandardClient returns an *http.Client that sends every request through c,
// with the same retries, but keeps net/http's contract: a final 404 is a
// response, not an error. Use it where code expects an *http.Client, such as
// a generated OpenAPI client. Its CloseIdleConnections is c's.
func (c *Client) StandardClient() *http.Client {
	return &http.Client{Transport: standardTransport{c}}
}

// CloseIdleConnections closes the idle connections of the client's
// transport, if it has any. The client itself never does so. On a zero
// Client not yet used it does nothing.
func (c *Client) CloseIdleConnections() {
	if !c.ready.Load() {
		return
	}
	if ci, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// standardTransport is the transport of StandardClient's *http.Client.
type standardTransport struct{ c *Client }

func (t standardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.setupZero()
	return t.c.do(req, true)
}

// CloseIdleConnections makes http.Client.CloseIdleConnections on
// StandardClient's client reach the Client's transport; net/http skips a
// transport without this method.
func (t standardTransport) CloseIdleConnections() { t.c.CloseIdleConnections() }
