package resilienthttp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Observer receives the client's events: what each call and each of its
// attempts did, the waits between them and why, and what the per-host
// guards decided. It is a struct of functions, as gobreaker's Settings are,
// rather than an interface: an observer sets only the events it wants, an
// unset field costs the call one nil check and nothing else (no event is
// built, no clock read, nothing allocated), and a later version can add an
// event without breaking anyone's code. The zero Observer observes nothing.
//
// Every function runs synchronously on the goroutine of the call the event
// belongs to (BreakerChange: of the call that caused it), so it must be
// fast and must not block; it must not send requests through the client.
// The events carry redacted URLs only (see RequestError.URL), never a
// credential.
//
// The functions that take a context get the call's: for CallStart the
// caller's, for the other call events the one CallStart returned, and for
// AttemptEnd the one AttemptStart returned. So an observer keeps per-call
// and per-attempt state in the context (a tracing span, say) and needs no
// map of its own. For one call the order is: CallStart; then, per attempt,
// LimiterWait (zero or more), AttemptStart, AttemptEnd, and, if the
// attempt is repeated, Retry or, if the budget stops it, BudgetRefused;
// then CallEnd. An attempt that a guard refused before it was sent (an
// open circuit, a limiter wait past the deadline) has no AttemptStart or
// AttemptEnd: CallEnd's Reason says why the call stopped. A redirect
// followed within an attempt is another AttemptStart and AttemptEnd with
// the same Attempt and a higher Resends.
//
// A call that cannot start (its context already done, an invalid policy)
// has no events.
type Observer struct {
	// CallStart is called when a call begins, before its first attempt.
	// The context it returns becomes the call's: its requests are sent
	// with it, and the call's later events receive it. It must return ctx
	// or a context derived from it.
	CallStart func(ctx context.Context, e CallStart) context.Context
	// CallEnd is called when a call has its final answer, just before Do
	// (or StandardClient's RoundTrip) returns it.
	CallEnd func(ctx context.Context, e CallEnd)
	// AttemptStart is called when an attempt has passed the host's guards
	// and is about to be handed to the base transport. The context it
	// returns, which must be ctx or derived from it, is the attempt's:
	// its request is sent with it, and AttemptEnd receives it. The
	// function may add headers to e.Request (trace context, say); it must
	// not change anything else of it.
	AttemptStart func(ctx context.Context, e AttemptStart) context.Context
	// AttemptEnd is called when an attempt that AttemptStart saw has its
	// response headers or its transport error.
	AttemptEnd func(ctx context.Context, e AttemptEnd)
	// Retry is called when the client has decided to repeat an attempt,
	// before the wait: the same event as WithRetryHook's.
	Retry func(ctx context.Context, e RetryEvent)
	// LimiterWait is called after an attempt waited for its host's rate
	// limiter, once per kind of wait, before the attempt is sent (or
	// fails, if the wait ended with the call's context).
	LimiterWait func(ctx context.Context, e LimiterWait)
	// BudgetRefused is called when the host's retry budget stops a call
	// that the policy would have repeated (StopBudgetExhausted).
	BudgetRefused func(ctx context.Context, e BudgetRefused)
	// BreakerChange is called when a host's circuit breaker changes state,
	// with the breaker's lock held, as BreakerSettings.OnStateChange is.
	// It belongs to a host, not to a call, so it gets no context.
	BreakerChange func(e BreakerChange)
}

// WithObserver adds o to the observers of the client's events. Given more
// than once, every observer gets every event, in the order given; the
// logger (WithLogger) is one more, after them. The zero Observer adds
// nothing, and with no observer an event costs nothing.
func WithObserver(o Observer) Option {
	return func(c *Client) {
		var m Observer
		if c.obs != nil {
			m = *c.obs
		}
		m = mergeObservers(m, o)
		c.obs = &m
	}
}

// noObserver is the observer of a client without any: every event unset.
var noObserver Observer

// withLogger returns obs (nil: none) with the logger l (nil: none) as its
// last consumer, or noObserver when there is neither.
func withLogger(obs *Observer, l *slog.Logger) *Observer {
	var m Observer
	if obs != nil {
		m = *obs
	}
	if l != nil {
		m = mergeObservers(m, logObserver(l))
	}
	if m.CallStart == nil && m.CallEnd == nil && m.AttemptStart == nil && m.AttemptEnd == nil && m.Retry == nil &&
		m.LimiterWait == nil && m.BudgetRefused == nil && m.BreakerChange == nil {
		return &noObserver
	}
	return &m
}

// CallStart describes a call that begins.
type CallStart struct {
	// Request is the caller's request. The observer must not change it
	// nor read its body.
	Request *http.Request
	Method  string
	URL     string // redacted
	// Host is the key of the host's guards (see WithHostKey).
	Host string
}

// CallEnd describes a call that has its final answer.
type CallEnd struct {
	Method string
	URL    string // redacted
	Host   string
	// Attempts is the number of attempts sent; 0 when a guard refused the
	// first one.
	Attempts int
	// Status is the status of the last response, 0 if none came.
	Status int
	// Reason says why the client stopped; empty when the call succeeded
	// (a final status below 400 and no error), and when it failed before
	// any attempt (see StopReason).
	Reason StopReason
	// RetryAfter is the last response's Retry-After, if it had one: with
	// StopDeadline or StopRetryAfterTooLong, the wait the client did not
	// take.
	RetryAfter time.Duration
	// Err is the error the call returns (a *RequestError or an
	// *APIError), nil when it returns a response.
	Err error
	// Duration is the call's time from CallStart, by the client's Clock.
	Duration time.Duration
}

// AttemptStart describes an attempt about to be sent.
type AttemptStart struct {
	// Request is the attempt's request, with its own header map: the
	// observer may add headers to it.
	Request *http.Request
	URL     string // redacted
	Host    string
	// Attempt is the attempt's number within the call, from 1.
	Attempt int
	// Resends is how many requests the call sent before this one,
	// retries and redirects alike (OpenTelemetry's
	// http.request.resend_count): 0 for the first.
	Resends int
}

// AttemptEnd describes how an attempt ended.
type AttemptEnd struct {
	// Request is AttemptStart's.
	Request *http.Request
	Host    string
	Attempt int
	Resends int
	Status  int   // 0 after a transport error
	Err     error // the transport error, if any
	// ErrorClass names the kind of transport error in a few words
	// ("timeout", "connect", …; see ErrorClass); empty when a response
	// came.
	ErrorClass string
	// RetryAfter is the response's Retry-After, for a status of 400 or
	// more that had one.
	RetryAfter time.Duration
	// Duration is the time to the response headers or the error, by the
	// client's Clock.
	Duration time.Duration
}

// LimiterWaitReason says why an attempt waited for its host's limiter.
type LimiterWaitReason int

// The reasons of a limiter wait.
const (
	// LimiterPace: the host's pace (a fixed Rate, or one learned from 429s
	// and rate-limit headers) had no room for the attempt yet.
	LimiterPace LimiterWaitReason = iota
	// LimiterPause: the host was paused by a Retry-After (or an exhausted
	// rate-limit window) that another attempt received, or held for a
	// moment after another attempt was refused while the host is paced.
	LimiterPause
	// LimiterFirstContact: the attempt waited for the answer of the
	// host's first-contact probe (see LimiterSettings).
	LimiterFirstContact
	numWaitReasons // must stay last
)

// String returns "pace", "pause" or "first-contact".
func (r LimiterWaitReason) String() string {
	switch r {
	case LimiterPace:
		return "pace"
	case LimiterPause:
		return "pause"
	case LimiterFirstContact:
		return "first-contact"
	}
	return "unknown"
}

// LimiterWait describes an attempt's wait for its host's rate limiter.
type LimiterWait struct {
	Host   string
	Reason LimiterWaitReason
	// Wait is how long the attempt waited, by the client's Clock (for a
	// wait that the call's context ended, how long it was to wait).
	Wait time.Duration
}

// BudgetRefused describes a retry the host's retry budget did not allow.
type BudgetRefused struct {
	Method  string
	URL     string // redacted
	Host    string
	Attempt int   // the number of the attempt that failed, from 1
	Status  int   // its status, 0 after a transport error
	Err     error // its transport error, if any
}

// BreakerChange describes a host's circuit breaker changing state.
type BreakerChange struct {
	Host     string
	From, To BreakerState
}

// ErrorClass names the kind of a transport error in a word or two, for
// metrics and logs that need few distinct values: "timeout" (the attempt's
// or the context's deadline, or a network timeout), "canceled", "dns",
// "connect" (nothing was sent), "tls", "reset" (the connection broke after
// the request was sent), "redirects" (too many), "malformed" (net/http
// refused to send the request), and "transport" for any other. It returns
// "" for a nil error.
func ErrorClass(err error) string {
	if err == nil {
		return ""
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrAttemptTimeout) || errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, errTooManyRedirects):
		return "redirects"
	case errors.As(err, &dnsErr):
		return "dns"
	case isCertError(err) || errors.As(err, new(tls.RecordHeaderError)) || errors.As(err, new(*tls.AlertError)):
		return "tls"
	case errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect"):
		return "connect"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE):
		return "reset"
	case isMalformedRequest(err):
		return "malformed"
	}
	return "transport"
}

// mergeObservers returns one Observer that calls each of obs in turn.
func mergeObservers(obs ...Observer) Observer {
	var m Observer
	for _, o := range obs {
		m.CallStart = chainCtx(m.CallStart, o.CallStart)
		m.CallEnd = chain(m.CallEnd, o.CallEnd)
		m.AttemptStart = chainCtx(m.AttemptStart, o.AttemptStart)
		m.AttemptEnd = chain(m.AttemptEnd, o.AttemptEnd)
		m.Retry = chain(m.Retry, o.Retry)
		m.LimiterWait = chain(m.LimiterWait, o.LimiterWait)
		m.BudgetRefused = chain(m.BudgetRefused, o.BudgetRefused)
		switch a, b := m.BreakerChange, o.BreakerChange; {
		case a != nil && b != nil:
			m.BreakerChange = func(e BreakerChange) { a(e); b(e) }
		case b != nil:
			m.BreakerChange = b
		}
	}
	return m
}

func chain[E any](a, b func(context.Context, E)) func(context.Context, E) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(ctx context.Context, e E) { a(ctx, e); b(ctx, e) }
}

func chainCtx[E any](a, b func(context.Context, E) context.Context) func(context.Context, E) context.Context {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(ctx context.Context, e E) context.Context { return b(a(ctx, e), e) }
}

// limiterWaits is how long the current attempt of a call waited for its
// limiter, by reason; the limiter notes them (noteLimiterWait) and the
// transport reports them.
type limiterWaits [numWaitReasons]time.Duration

// noteLimiterWait records, for the call ctx belongs to, a wait of d for
// the limiter, when the call has an observer for it. The limiter calls it
// only where it waited, never on the hot path.
func noteLimiterWait(ctx context.Context, why LimiterWaitReason, d time.Duration) {
	if cl, _ := ctx.Value(callKey{}).(*call); cl != nil && cl.c.obs.LimiterWait != nil && d > 0 {
		cl.events().limWaits[why] += d
	}
}

// reportLimiterWaits hands the waits the limiter noted for cl's attempt to
// the observer.
func (cl *call) reportLimiterWaits(ctx context.Context, host string) {
	if cl.ev == nil {
		return // no wait noted
	}
	for why, d := range cl.ev.limWaits {
		if d > 0 {
			cl.c.obs.LimiterWait(ctx, LimiterWait{Host: host, Reason: LimiterWaitReason(why), Wait: d})
		}
	}
	cl.ev.limWaits = limiterWaits{}
}
