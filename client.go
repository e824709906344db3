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
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	randv2 "math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/sony/gobreaker/v2"

	"github.com/resilienthttp/resilienthttp/internal/errbody"
)

// Client sends requests with the retries its Policy allows. It is safe for
// concurrent use; create one per service (or per SDK) and reuse it, so its
// connection pool is reused.
type Client struct {
	policy        Policy // defaults applied
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
	requestIDs    []string
	errorsIn2xx   bool

	limiter *LimiterSettings // nil: off
	breaker *BreakerSettings // nil: off
	budget  *RetryBudget     // nil: off
	hostKey func(*http.Request) string
	hosts   sync.Map // host key → *host

	loop *retryablehttp.Client
}

// Option configures a Client.
type Option func(*Client)

// WithPolicy sets the retry policy for every call; zero fields of p keep
// their defaults. A call can override it with ContextWithPolicy.
func WithPolicy(p Policy) Option { return func(c *Client) { c.policy = p } }

// WithTransport sets the RoundTripper that carries each attempt. The default
// is a clone of http.DefaultTransport, owned by the client, that keeps up to
// 100 idle connections per host instead of 2.
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.base = rt } }

// WithClock sets the source of time for waits between attempts. The default
// is the system clock.
func WithClock(clk Clock) Option { return func(c *Client) { c.clock = clk } }

// WithRandom sets the source of jitter: a function returning values in
// [0, 1), safe for concurrent use. The default is math/rand/v2.Float64.
func WithRandom(rnd func() float64) Option { return func(c *Client) { c.rnd = rnd } }

// WithPrepareRetry sets a hook called before each retry, after the wait,
// with the request about to be sent. Its header is the call's own copy, so an
// SDK can re-sign the request (signatures carry a timestamp) or refresh a
// token there. An error ends the call with StopPrepareFailed.
func WithPrepareRetry(fn func(*http.Request) error) Option {
	return func(c *Client) { c.prepareRetry = fn }
}

// WithCredentialRefresh sets a hook that lets a call answered 401 be repeated
// once: fn gets the request about to be sent (its header is the call's own
// copy) and must refresh its credentials, which is the modification the
// documents require before repeating. Without it, 401 fails at once.
func WithCredentialRefresh(fn func(*http.Request) error) Option {
	return func(c *Client) { c.refresh = fn }
}

// WithIdempotencyKeys makes the client give every request with a
// non-idempotent method (POST, PATCH, …) that lacks one an idempotency-key
// header (Policy.IdempotencyKeyHeader), the same value on every attempt of
// the call, so it can be retried like a GET: the server deduplicates by it.
// Use it only for services that honour the header. newKey returns a fresh
// key; nil means a 128-bit random key from crypto/rand.
func WithIdempotencyKeys(newKey func() string) Option {
	return func(c *Client) {
		if newKey == nil {
			newKey = rand.Text
		}
		c.newKey = newKey
	}
}

// WithAttemptHeaders makes every attempt carry its number (1, 2, …) in the
// header named attempt and a random id, the same on every attempt of a call,
// in the header named invocation, so server logs can tell a retry from a new
// call. An empty name leaves that header out. Both are off by default.
func WithAttemptHeaders(attempt, invocation string) Option {
	return func(c *Client) { c.attemptHeader, c.invocationHdr = attempt, invocation }
}

// WithMaxBufferedBody sets how many bytes of a request body that can be
// neither re-created (GetBody) nor rewound (io.Seeker) are kept in memory to
// replay it. A larger body is sent once with retries off for that call. The
// default is DefaultMaxBufferedBody; n <= 0 keeps it.
func WithMaxBufferedBody(n int64) Option {
	return func(c *Client) {
		if n > 0 {
			c.maxBuffered = n
		}
	}
}

// WithLogger sets where the client logs retries and give-ups, at debug level,
// with redacted URLs. The default, nil, logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// WithRetryHook sets a function called before each retry's wait with what
// happened and what the client decided. It runs on the calling goroutine and
// must not block.
func WithRetryHook(fn func(RetryEvent)) Option { return func(c *Client) { c.onRetry = fn } }

// WithRequestIDHeaders sets the response headers read, in order, for
// APIError.RequestID. The default is DefaultRequestIDHeaders.
func WithRequestIDHeaders(names ...string) Option {
	return func(c *Client) { c.requestIDs = names }
}

// WithErrorsIn2xx makes a final 2xx response whose body is an error document
// with an error code (such as {"error_code":"BSS.1001","error_msg":…}, which
// some billing APIs answer with 200) an *APIError too. Only the start of the
// body, up to MaxErrorBody, is inspected; a response that is not such a
// document is returned whole.
func WithErrorsIn2xx() Option { return func(c *Client) { c.errorsIn2xx = true } }

// WithRateLimit configures the per-host rate limiter: a fixed limit if
// s.Rate is set, adaptive pacing from 429s and rate-limit headers unless
// s.Static, and pauses for Retry-After. The zero LimiterSettings is the
// default New uses.
func WithRateLimit(s LimiterSettings) Option { return func(c *Client) { c.limiter = &s } }

// WithoutRateLimit turns the rate limiter off: no pacing, and a Retry-After
// delays only the call that received it.
func WithoutRateLimit() Option { return func(c *Client) { c.limiter = nil } }

// WithBreaker configures the per-host circuit breakers. The zero
// BreakerSettings is the default New uses.
func WithBreaker(s BreakerSettings) Option { return func(c *Client) { c.breaker = &s } }

// WithoutBreaker turns the circuit breakers off.
func WithoutBreaker() Option { return func(c *Client) { c.breaker = nil } }

// WithRetryBudget configures the per-host retry budget. The zero RetryBudget
// is the default New uses.
func WithRetryBudget(b RetryBudget) Option { return func(c *Client) { c.budget = &b } }

// WithoutRetryBudget turns the retry budget off: only the policy limits
// retries.
func WithoutRetryBudget() Option { return func(c *Client) { c.budget = nil } }

// WithHostKey sets how requests are grouped for the rate limiter, circuit
// breaker and retry budget. The default is the request URL's host (with
// port), so each service endpoint has its own state. State is kept for
// every key seen for the life of the client.
func WithHostKey(key func(*http.Request) string) Option { return func(c *Client) { c.hostKey = key } }

// RetryEvent describes an attempt the client is about to repeat.
type RetryEvent struct {
	Method string
	URL    string // redacted
	// Attempt is the number of the attempt that just failed, from 1.
	Attempt int
	// Status is the attempt's response status, or 0 after a transport error.
	Status int
	// Err is the attempt's transport error, if any.
	Err error
	// RetryAfter is the wait the server asked for, if it asked.
	RetryAfter time.Duration
	// Wait is how long the client waits before the next attempt.
	Wait time.Duration
}

// New returns a Client with the default policy and the given options.
func New(opts ...Option) *Client {
	c := &Client{
		policy:      DefaultPolicy(),
		clock:       systemClock{},
		rnd:         randv2.Float64,
		maxBuffered: DefaultMaxBufferedBody,
		requestIDs:  DefaultRequestIDHeaders,
		limiter:     &LimiterSettings{},
		breaker:     &BreakerSettings{},
		budget:      &RetryBudget{},
	}
	for _, opt := range opts {
		opt(c)
	}
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
		t := http.DefaultTransport.(*http.Transport).Clone()
		// net/http keeps 2 idle connections per host; a service SDK's
		// concurrent callers would then open and close connections all day.
		t.MaxIdleConnsPerHost = t.MaxIdleConns
		c.base = t
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
	return c
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
	return c.do(req, false)
}

// StandardClient returns an *http.Client that sends every request through c,
// with the same retries, but keeps net/http's contract: a final 404 is a
// response, not an error. Use it where code expects an *http.Client, such as
// a generated OpenAPI client.
func (c *Client) StandardClient() *http.Client {
	return &http.Client{Transport: standardTransport{c}}
}

// CloseIdleConnections closes the idle connections of the client's
// transport, if it has any. The client itself never does so.
func (c *Client) CloseIdleConnections() {
	if ci, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

type standardTransport struct{ c *Client }

func (t standardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.c.do(req, true)
}

type callKey struct{}

type overridesKey struct{}

// overrides is what a caller set on a call's context.
type overrides struct {
	policy     *Policy
	idempotent bool
}

// ContextWithPolicy returns a context that makes a call use p instead of the
// client's policy (zero fields of p keep their defaults), for an operation
// that needs other rules, such as one that must never be retried
// (Policy{MaxAttempts: 1}).
func ContextWithPolicy(ctx context.Context, p Policy) context.Context {
	o := overrides{}
	if prev, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		o = *prev
	}
	p = p.withDefaults()
	o.policy = &p
	return context.WithValue(ctx, overridesKey{}, &o)
}

// ContextIdempotent returns a context that marks a call as safe to repeat
// whatever its method, for an operation the SDK knows to be idempotent (a
// POST that only reads, say).
func ContextIdempotent(ctx context.Context) context.Context {
	o := overrides{}
	if prev, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		o = *prev
	}
	o.idempotent = true
	return context.WithValue(ctx, overridesKey{}, &o)
}

// call is the state of one logical request across its attempts. The retry
// loop runs on the caller's goroutine, so it needs no lock.
type call struct {
	c      *Client
	p      *Policy
	ctx    context.Context
	req    *http.Request // the caller's
	safe   bool          // repeating cannot duplicate an effect
	single bool          // the body can be sent only once
	host   *host         // the guards of the request's host

	attempts       int
	allowed        bool // the policy would repeat the last outcome
	lastStatus     int
	retryAfter     time.Duration
	wait           time.Duration
	reason         StopReason
	refreshPending bool
	refreshed      bool
}

func (c *Client) do(req *http.Request, standard bool) (*http.Response, error) {
	if req == nil || req.URL == nil {
		return nil, errors.New("resilienthttp: nil request or request URL")
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Reason: StopContextDone, Err: err}
	}
	cl := &call{c: c, p: &c.policy, ctx: ctx, req: req, host: c.hostFor(req)}
	if o, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		if o.policy != nil {
			cl.p = o.policy
		}
		cl.safe = o.idempotent
	}
	cl.safe = cl.safe || isIdempotentMethod(req.Method) || req.Header.Get(cl.p.IdempotencyKeyHeader) != ""

	out := req.WithContext(context.WithValue(ctx, callKey{}, cl))
	if (c.newKey != nil && !cl.safe) || c.attemptHeader != "" || c.invocationHdr != "" {
		out.Header = req.Header.Clone()
		if out.Header == nil {
			out.Header = make(http.Header)
		}
		if c.newKey != nil && !cl.safe {
			out.Header.Set(cl.p.IdempotencyKeyHeader, c.newKey())
			cl.safe = true
		}
		if c.attemptHeader != "" {
			out.Header.Set(c.attemptHeader, "1")
		}
		if c.invocationHdr != "" {
			out.Header.Set(c.invocationHdr, rand.Text())
		}
	}

	replay, once, length, err := replayableBody(req, c.maxBuffered)
	if err != nil {
		closeBody(req)
		return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Err: err}
	}
	out.Body, out.GetBody = nil, nil
	lreq, _ := retryablehttp.FromRequest(out) // cannot fail without a body
	switch {
	case replay != nil:
		if err := lreq.SetBody(retryablehttp.ReaderFunc(replay)); err != nil {
			closeBody(req)
			return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Err: err}
		}
		lreq.ContentLength = length // SetBody guesses; the caller knew
	case once != nil:
		// Left out of the loop's rewinding: sent as is, once.
		lreq.Body, lreq.ContentLength = io.NopCloser(once), length
		cl.single = true
	}

	resp, err := c.loop.Do(lreq)
	closeBody(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		reqErr := cl.requestError(err)
		cl.logGiveUp(reqErr.Err)
		return nil, reqErr
	}
	if resp.StatusCode >= 400 {
		cl.logGiveUp(nil)
	}
	if standard {
		return resp, nil
	}
	if resp.StatusCode >= 400 {
		return nil, cl.apiError(resp)
	}
	if c.errorsIn2xx && resp.StatusCode < 300 {
		return cl.checkErrorIn2xx(resp)
	}
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// checkRetry is the loop's CheckRetry: it records the attempt and asks the
// call to decide. It never returns an error, so the loop hands back the
// attempt's own response or error.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	cl, _ := ctx.Value(callKey{}).(*call)
	if cl == nil {
		return false, nil
	}
	return cl.decide(resp, err), nil
}

// decide applies the policy to an attempt's outcome. When it returns true it
// has set cl.wait; when false, cl.reason says why (empty when the response
// is simply final).
func (cl *call) decide(resp *http.Response, err error) bool {
	retry := cl.decideRetry(resp, err)
	if retry && resp != nil {
		// go-retryablehttp drains only 4 KiB before closing, which costs a
		// connection for any longer error body; drain up to maxDrain first.
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	}
	return retry
}

func (cl *call) decideRetry(resp *http.Response, err error) bool {
	p, c := cl.p, cl.c
	var rule Rule
	var ra time.Duration
	var hasRA bool
	var now time.Time // read only on failures: the clock costs on the hot path
	switch {
	// A guard stopped the call for now; the policy would have gone on, so
	// the failure is Retryable later, as one stopped by a deadline is.
	case err != nil && errors.Is(err, ErrCircuitOpen):
		cl.reason, cl.allowed = StopCircuitOpen, true
		return false
	case err != nil && errors.Is(err, ErrRateLimited):
		cl.reason, cl.allowed = StopRateLimited, true
		return false
	case err != nil && cl.ctx.Err() != nil:
		cl.attempts++
		cl.reason = StopContextDone
		return false
	case err != nil:
		cl.attempts++
		now = c.clock.Now()
		rule = classify(err, p)
	default:
		cl.attempts++
		cl.lastStatus = resp.StatusCode
		if resp.StatusCode < 400 {
			if cl.host.budget != nil {
				cl.host.budget.succeeded()
			}
			return false
		}
		now = c.clock.Now()
		ra, hasRA = retryAfter(resp.Header, now)
		cl.retryAfter = ra
		rule = p.StatusRule(resp.StatusCode)
		if resp.StatusCode == http.StatusUnauthorized && c.refresh != nil && !cl.refreshed {
			rule, cl.refreshPending = RuleRetry, true
		}
	}
	cl.allowed = rule.allows(cl.safe, hasRA)
	budgetLeft := true
	if cl.allowed && ra <= 0 && !cl.refreshPending && cl.host.budget != nil {
		budgetLeft = cl.host.budget.failed()
	}
	switch {
	case !cl.allowed:
		cl.reason = StopNotRetryable
		return false
	case cl.attempts >= p.MaxAttempts:
		cl.reason = StopAttemptsExhausted
		return false
	case !budgetLeft:
		cl.reason = StopBudgetExhausted
		return false
	case cl.single:
		cl.reason = StopBodyNotReplayable
		return false
	case cl.ctx.Err() != nil:
		cl.reason = StopContextDone
		return false
	}

	var wait time.Duration
	switch {
	case cl.refreshPending:
		// The refreshed credential is the modification; no reason to wait.
	case ra > 0:
		if ra > p.MaxRetryAfter {
			cl.reason = StopRetryAfterTooLong
			return false
		}
		wait = afterRetryAfter(p, ra, c.rnd)
	default:
		wait = backoff(p, cl.attempts, c.rnd)
	}
	if deadline, ok := cl.ctx.Deadline(); ok {
		left := deadline.Sub(now)
		if ra > left || wait > left {
			cl.reason = StopDeadline
			return false
		}
	}
	cl.wait = wait
	if c.onRetry != nil || c.logger != nil {
		cl.report(resp, err, ra, wait)
	}
	return true
}

func (cl *call) report(resp *http.Response, err error, ra, wait time.Duration) {
	ev := RetryEvent{
		Method:     cl.req.Method,
		URL:        redactURL(cl.req.URL),
		Attempt:    cl.attempts,
		Err:        unwrapURLError(err),
		RetryAfter: ra,
		Wait:       wait,
	}
	if resp != nil {
		ev.Status = resp.StatusCode
	}
	if cl.c.onRetry != nil {
		cl.c.onRetry(ev)
	}
	if cl.c.logger != nil {
		cl.c.logger.LogAttrs(cl.ctx, slog.LevelDebug, "resilienthttp: retrying",
			slog.String("method", ev.Method), slog.String("url", ev.URL),
			slog.Int("attempt", ev.Attempt), slog.Int("status", ev.Status),
			slog.Any("error", ev.Err), slog.Duration("retry_after", ra), slog.Duration("wait", wait))
	}
}

// logGiveUp records, at debug level, why a call that failed stopped.
func (cl *call) logGiveUp(err error) {
	if cl.c.logger == nil || cl.reason == "" {
		return
	}
	cl.c.logger.LogAttrs(cl.ctx, slog.LevelDebug, "resilienthttp: giving up",
		slog.String("method", cl.req.Method), slog.String("url", redactURL(cl.req.URL)),
		slog.Int("attempts", cl.attempts), slog.Int("status", cl.lastStatus),
		slog.String("reason", string(cl.reason)), slog.Any("error", err))
}

// prepare is the loop's PrepareRetry: it waits as decided, then gives the
// request its own header copy for the next attempt's changes.
func (c *Client) prepare(req *http.Request) error {
	cl, _ := req.Context().Value(callKey{}).(*call)
	if cl == nil {
		return nil
	}
	if err := c.clock.Sleep(cl.ctx, cl.wait); err != nil {
		cl.reason = StopContextDone
		return err
	}
	if c.attemptHeader == "" && c.prepareRetry == nil && !cl.refreshPending {
		return nil
	}
	// The loop's copy of the request shares the caller's header map; hooks
	// must not write into it.
	req.Header = req.Header.Clone()
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if c.attemptHeader != "" {
		req.Header.Set(c.attemptHeader, strconv.Itoa(cl.attempts+1))
	}
	if cl.refreshPending {
		cl.refreshPending, cl.refreshed = false, true
		if err := c.refresh(req); err != nil {
			cl.reason = StopPrepareFailed
			return fmt.Errorf("resilienthttp: credential refresh: %w", err)
		}
	}
	if c.prepareRetry != nil {
		if err := c.prepareRetry(req); err != nil {
			cl.reason = StopPrepareFailed
			return fmt.Errorf("resilienthttp: prepare retry: %w", err)
		}
	}
	return nil
}

func (cl *call) requestError(err error) *RequestError {
	err = unwrapURLError(err)
	if cl.reason == "" && cl.ctx.Err() != nil {
		cl.reason = StopContextDone
	}
	return &RequestError{
		Method:     cl.req.Method,
		URL:        redactURL(cl.req.URL),
		Attempts:   cl.attempts,
		LastStatus: cl.lastStatus,
		Reason:     cl.reason,
		Err:        err,
		retryable:  cl.allowed && cl.reason != StopContextDone && cl.reason != StopPrepareFailed,
	}
}

func (cl *call) apiError(resp *http.Response) *APIError {
	e := newAPIError(resp, cl.req.Method, redactURL(cl.req.URL), cl.c.requestIDs)
	e.Attempts = cl.attempts
	e.Reason = cl.reason
	e.RetryAfter = cl.retryAfter
	e.retryable = cl.allowed
	return e
}

// checkErrorIn2xx reads the start of a 2xx body and returns an *APIError if
// it is an error document with a code; otherwise the response, whole.
func (cl *call) checkErrorIn2xx(resp *http.Response) (*http.Response, error) {
	head, err := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	if err != nil {
		resp.Body.Close()
		return nil, cl.requestError(err)
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	// Only shapes that exist to report errors count: a success document may
	// well carry {"code":0,"message":"ok"}.
	switch f := errbody.Parse(resp.Header.Get("Content-Type"), head); f.Format {
	case errbody.FormatErrorCode, errbody.FormatErrorCodeCamel, errbody.FormatNestedError, errbody.FormatOAuth:
		if f.Code != "" {
			return nil, cl.apiError(resp)
		}
	}
	return resp, nil
}

// unwrapURLError drops net/http's *url.Error wrapper, whose text carries the
// request URL with its query (tokens included); the client reports a
// redacted URL of its own.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// ErrAttemptTimeout is the cause of an attempt that Policy.AttemptTimeout
// cut short. The call may still retry it, as a transport error after the
// request was sent.
var ErrAttemptTimeout error = attemptTimeoutError{}

type attemptTimeoutError struct{}

func (attemptTimeoutError) Error() string { return "resilienthttp: attempt timed out" }
func (attemptTimeoutError) Timeout() bool { return true }

// attemptTransport carries one attempt: it bounds it by the policy's
// AttemptTimeout and hands it to the base transport. It deliberately has no
// CloseIdleConnections method (see New).
type attemptTransport struct{ c *Client }

func (t attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, ctx := t.c, req.Context()
	var h *host
	if cl, ok := ctx.Value(callKey{}).(*call); ok && req.URL == cl.req.URL {
		h = cl.host // not redirected: the call already looked it up
	} else {
		h = c.hostFor(req)
	}
	if h.breaker != nil {
		// Fail fast on an open circuit before queueing behind the limiter.
		if err := h.breaker.refuses(); err != nil {
			return nil, err
		}
	}
	probe := false
	if h.limiter != nil {
		var err error
		if probe, err = h.limiter.wait(ctx, h.key, c.clock); err != nil {
			return nil, err
		}
	}
	var done func(error)
	if h.breaker != nil {
		// Asked after the wait: the circuit may have opened meanwhile.
		var err error
		if done, err = h.breaker.allow(); err != nil {
			if probe {
				h.limiter.endProbe(false)
			}
			return nil, err
		}
	}
	resp, err := t.send(req)
	if done != nil {
		h.breaker.report(done, ctx, resp, err)
	}
	if h.limiter != nil {
		h.limiter.observe(resp, c.clock)
		if probe {
			// After the breaker has counted this attempt, so the next probe
			// sees the circuit it may have opened.
			h.limiter.endProbe(answeredWell(resp, err))
		}
	}
	return resp, err
}

// send hands the attempt to the base transport, bounded by the policy's
// AttemptTimeout.
func (t attemptTransport) send(req *http.Request) (*http.Response, error) {
	cl, _ := req.Context().Value(callKey{}).(*call)
	if cl == nil || cl.p.AttemptTimeout <= 0 {
		return t.c.base.RoundTrip(req)
	}
	// Like http.Transport's ResponseHeaderTimeout, the bound ends with the
	// response headers: reading the body is the caller's business, under
	// the caller's context.
	ctx, cancel := context.WithCancelCause(req.Context())
	timer := time.AfterFunc(cl.p.AttemptTimeout, func() { cancel(ErrAttemptTimeout) })
	resp, err := t.c.base.RoundTrip(req.WithContext(ctx))
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, ErrAttemptTimeout
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose releases an attempt's context once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// host holds the guards of one host key; a nil guard is turned off.
type host struct {
	key     string
	limiter *hostLimiter
	breaker *hostBreaker
	budget  *retryTokens
}

// hostFor returns the guards of req's host, creating them on first use.
// Lookups are lock-free once a host exists.
func (c *Client) hostFor(req *http.Request) *host {
	key := req.URL.Host
	if c.hostKey != nil {
		key = c.hostKey(req)
	}
	if h, ok := c.hosts.Load(key); ok {
		return h.(*host)
	}
	h := &host{key: key}
	if c.limiter != nil {
		h.limiter = newHostLimiter(*c.limiter, c.clock.Now())
	}
	if c.breaker != nil {
		h.breaker = newHostBreaker(key, *c.breaker, c.clock, c.logStateChange)
	}
	if c.budget != nil {
		h.budget = newRetryTokens(*c.budget)
	}
	actual, _ := c.hosts.LoadOrStore(key, h)
	return actual.(*host)
}

func (c *Client) logStateChange(host string, from, to gobreaker.State) {
	if c.logger == nil {
		return
	}
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	c.logger.LogAttrs(context.Background(), level, "resilienthttp: circuit breaker state change",
		slog.String("host", host), slog.String("from", from.String()), slog.String("to", to.String()))
}

// errTooManyRedirects replaces net/http's untyped "stopped after 10
// redirects" so the policy can tell it apart without matching text.
var errTooManyRedirects = errors.New("resilienthttp: stopped after 10 redirects")

// checkRedirect keeps net/http's limit of 10 redirects, and extends its
// rule of not forwarding Authorization and Cookie to another host to every
// header that carries a credential (X-Auth-Token, X-Subject-Token, API keys).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errTooManyRedirects
	}
	if req.URL.Hostname() != via[0].URL.Hostname() {
		for _, k := range sensitiveHeaders {
			req.Header.Del(k)
		}
	}
	return nil
}
