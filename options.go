package resilienthttp

import (
	"crypto/rand"
	"log/slog"
	randv2 "math/rand/v2"
	"net/http"
	"slices"
	"time"
)

// Option configures a Client.
//
// A nil argument to an option that takes a function, an interface or a
// pointer means that option's default, as if the option had not been given,
// even after an earlier option set something else; a nil Option is ignored.
type Option func(*Client)

// WithPolicy sets the retry policy for every call; zero fields of p keep
// their defaults. A call can override it with ContextWithPolicy.
func WithPolicy(p Policy) Option { return func(c *Client) { c.policy = p } }

// WithTransport sets the RoundTripper that carries each attempt. The default
// is a clone of http.DefaultTransport, owned by the client, that keeps up to
// 100 idle connections per host instead of 2; if http.DefaultTransport has
// been replaced by a RoundTripper that is not an *http.Transport, the default
// is that RoundTripper itself, shared and unchanged (CloseIdleConnections
// then reaches it, if it has the method). The default is taken when New runs,
// or on a zero Client's first use. Nil means the default.
func WithTransport(rt http.RoundTripper) Option { return func(c *Client) { c.base = rt } }

// WithClock sets the source of time for waits between attempts, and for the
// rate limiter and circuit breakers. The default, and what nil means, is the
// system clock.
func WithClock(clk Clock) Option {
	return func(c *Client) {
		if clk == nil {
			clk = systemClock{}
		}
		c.clock = clk
	}
}

// WithRandom sets the source of jitter: a function returning values in
// [0, 1), safe for concurrent use. The default, and what nil means, is
// math/rand/v2.Float64.
func WithRandom(rnd func() float64) Option {
	return func(c *Client) {
		if rnd == nil {
			rnd = randv2.Float64
		}
		c.rnd = rnd
	}
}

// WithPrepareRetry sets a hook called before each retry, after the wait,
// with the request about to be sent. Its header is the call's own copy, so an
// SDK can re-sign the request (signatures carry a timestamp) or refresh a
// token there. An error ends the call with StopPrepareFailed. Nil, the
// default, means no hook.
func WithPrepareRetry(fn func(*http.Request) error) Option {
	return func(c *Client) { c.prepareRetry = fn }
}

// WithCredentialRefresh sets a hook that lets a call answered 401 be repeated
// once: fn gets the request about to be sent (its header is the call's own
// copy) and must refresh its credentials, which is the modification the
// documents require before repeating. Without it (or with nil), 401 fails at
// once.
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

// WithLogger sets where the client logs retries, give-ups, rate-limiter waits
// and retry-budget refusals, at debug level, with redacted URLs, and
// circuit-breaker state changes, at info and warn level. The logger is one
// consumer of the client's events (see Observer), after any WithObserver's.
// The default, nil, logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// WithRetryHook sets a function called before each retry's wait with what
// happened and what the client decided. It runs on the calling goroutine and
// must not block. Nil, the default, means no hook.
func WithRetryHook(fn func(RetryEvent)) Option { return func(c *Client) { c.onRetry = fn } }

// WithRequestIDHeaders sets the response headers read, in order, for
// APIError.RequestID; with no names, none is read. The default is
// DefaultRequestIDHeaders. The client keeps its own copy of names.
func WithRequestIDHeaders(names ...string) Option {
	names = slices.Clone(names)
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
// breaker and retry budget: key returns a request's group, and its keys
// are used as they come. The default is the request URL's host and port,
// so each service endpoint has its own state, normalised so that every
// spelling of one address shares it: the name in ASCII lower case, the
// port without leading zeros, and no port when it is empty or the scheme's
// default (80 for http, 443 for https). So http://API.Example.com:0080/
// and http://api.example.com/ share state; localhost and 127.0.0.1 do not,
// nor do svc. and svc, which can resolve apart.
//
// A key's state is dropped once it has not been used for ten minutes, and
// the client keeps the state of at most 1024 keys (more only for as long
// as over 128 new keys arrive at the same instant): a new key that would
// pass that first drops the least recently used eighth. A key in use by a
// call when dropped keeps its state for that call; used again after it
// was dropped, it starts afresh. Nil means the default.
func WithHostKey(key func(*http.Request) string) Option { return func(c *Client) { c.hostKey = key } }

// RetryEvent describes an attempt the client is about to repeat.
type RetryEvent struct {
	Method string
	URL    string // redacted
	// Host is the key of the host's guards (see WithHostKey).
	Host string
	// Attempt is the number of the attempt that just failed, from 1.
	Attempt int
	// Status is the attempt's response status, or 0 after a transport error.
	Status int
	// Err is the attempt's transport error, if any.
	Err error
	// ErrorClass names the kind of Err (see ErrorClass); empty when the
	// attempt got a response.
	ErrorClass string
	// RetryAfter is the wait the server asked for, if it asked.
	RetryAfter time.Duration
	// ServerAsked says the wait follows the server's Retry-After (or an
	// equivalent header), rather than the policy's backoff.
	ServerAsked bool
	// Wait is how long the client waits before the next attempt.
	Wait time.Duration
}
