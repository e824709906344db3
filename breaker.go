package resilienthttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// BreakerState is the state of one host's circuit breaker.
type BreakerState int

// The states of a circuit breaker. The zero value is BreakerClosed.
const (
	// BreakerClosed lets every attempt through and counts failures.
	BreakerClosed BreakerState = iota
	// BreakerHalfOpen lets a few probe attempts through after the open
	// period; their successes close it, a failure opens it again.
	BreakerHalfOpen
	// BreakerOpen refuses every attempt with a *CircuitOpenError.
	BreakerOpen
)

// String returns "closed", "half-open" or "open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

func breakerState(s gobreaker.State) BreakerState {
	switch s {
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	case gobreaker.StateOpen:
		return BreakerOpen
	}
	return BreakerClosed
}

// BreakerCounts are the attempts a closed breaker has seen within its
// rolling window (BreakerSettings.Interval), which ReadyToTrip judges.
type BreakerCounts struct {
	Requests             uint32 // attempts let through
	TotalSuccesses       uint32
	TotalFailures        uint32
	ConsecutiveSuccesses uint32
	ConsecutiveFailures  uint32
}

func breakerCounts(c gobreaker.Counts) BreakerCounts {
	return BreakerCounts{
		Requests:             c.Requests,
		TotalSuccesses:       c.TotalSuccesses,
		TotalFailures:        c.TotalFailures,
		ConsecutiveSuccesses: c.ConsecutiveSuccesses,
		ConsecutiveFailures:  c.ConsecutiveFailures,
	}
}

// BreakerSettings configures the circuit breakers, one per host, that stop a
// client from sending to a host that is failing. They are built on
// github.com/sony/gobreaker/v2, and the fields named as in its Settings
// have its meaning; every zero field means the default given beside it.
type BreakerSettings struct {
	// MaxRequests is how many probe requests a half-open breaker lets
	// through; that many successes in a row close it. Zero means 3.
	MaxRequests uint32
	// Interval is the length of the rolling window over which failures are
	// counted while closed. Zero means 10s.
	Interval time.Duration
	// BucketPeriod is the granularity of that rolling window. Zero means 1s.
	BucketPeriod time.Duration
	// Timeout is how long a breaker stays open before it lets probes
	// through; a longer Retry-After from the host, up to the client's
	// Policy.MaxRetryAfter, keeps it open longer.
	// Zero means 5s.
	Timeout time.Duration
	// ReadyToTrip decides, after each failure while closed, whether to
	// open. Nil means: ConsecutiveFailures failures in a row while at least
	// half of the window's requests failed (an outage), or at least
	// MinRequests requests in the window with a failure ratio of at least
	// FailureRatio (a sustained brownout).
	ReadyToTrip func(BreakerCounts) bool
	// MinRequests, FailureRatio and ConsecutiveFailures parameterise the
	// default ReadyToTrip. Zero means 40, 0.6 and 5: an outage trips it
	// within five requests, while a brownout that fails a third of
	// requests, which retries ride out, does not, even through the runs of
	// failures such a brownout has by chance.
	MinRequests         uint32
	FailureRatio        float64
	ConsecutiveFailures uint32
	// OnStateChange, if set, is called when a host's breaker changes state.
	// It runs on the goroutine of the request that caused the change, with
	// the breaker's lock held: it must not block or send requests.
	OnStateChange func(host string, from, to BreakerState)
	// IsFailure decides whether an attempt's outcome counts against the
	// host. Nil means: a transport error (but not a request net/http
	// refuses to send) or a 500, 502 or 504; and a 503 only while the host
	// has answered nothing but failures within Interval. A host that
	// answers others while it refuses some with 503 is shedding load (a
	// gateway) or has one disabled service (the documents' 503): the
	// limiter slows down for the first, and neither is a host that is down. Every
	// other response counts as a success (a 404 says nothing about the
	// host's health); a cancelled context counts as neither.
	IsFailure func(resp *http.Response, err error) bool

	defaultFailure bool // IsFailure was nil
}

func (s BreakerSettings) withDefaults() BreakerSettings {
	if s.MaxRequests == 0 {
		s.MaxRequests = 3
	}
	if s.Interval <= 0 {
		s.Interval = 10 * time.Second
	}
	if s.BucketPeriod <= 0 {
		s.BucketPeriod = time.Second
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	if s.MinRequests == 0 {
		s.MinRequests = 40
	}
	if s.FailureRatio <= 0 {
		s.FailureRatio = 0.6
	}
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = 5
	}
	if s.ReadyToTrip == nil {
		minReq, ratio, consecutive := s.MinRequests, s.FailureRatio, s.ConsecutiveFailures
		s.ReadyToTrip = func(c BreakerCounts) bool {
			return c.ConsecutiveFailures >= consecutive && 2*c.TotalFailures >= c.Requests ||
				c.Requests >= minReq && float64(c.TotalFailures) >= ratio*float64(c.Requests)
		}
	}
	if s.IsFailure == nil {
		s.IsFailure, s.defaultFailure = defaultIsFailure, true
	}
	return s
}

func defaultIsFailure(resp *http.Response, err error) bool {
	if err != nil {
		// A request net/http refuses to send (an invalid header, an
		// unsupported scheme) says nothing of the host either.
		return !isMalformedRequest(err)
	}
	switch resp.StatusCode {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// ErrCircuitOpen is returned, wrapped in a *CircuitOpenError, when a host's
// circuit breaker is open: the call failed at once and sent nothing.
var ErrCircuitOpen = errors.New("resilienthttp: circuit open")

// CircuitOpenError says which host's breaker refused a call and when it will
// let a probe through. errors.Is(err, ErrCircuitOpen) is true.
type CircuitOpenError struct {
	Host string
	// RetryAt is when the breaker lets probes through again; zero while
	// it is half-open and its probes are already in flight.
	RetryAt time.Time
}

// Error names the host and when it probes again.
func (e *CircuitOpenError) Error() string {
	if e.RetryAt.IsZero() {
		return fmt.Sprintf("resilienthttp: circuit open for %s: probes in flight", e.Host)
	}
	return fmt.Sprintf("resilienthttp: circuit open for %s until %s", e.Host, e.RetryAt.UTC().Format(time.RFC3339Nano))
}

// Is makes errors.Is(err, ErrCircuitOpen) true.
func (e *CircuitOpenError) Is(target error) bool { return target == ErrCircuitOpen }

// Outcomes reported to gobreaker; it sees only these.
var (
	errAttemptFailed = errors.New("attempt failed")
	errNotCounted    = errors.New("attempt not counted")
)

// hostBreaker is one host's breaker. gobreaker keeps the counts and the
// half-open probing; the open period is timed here, with the client's Clock,
// because a Retry-After must be able to extend it and tests must be able to
// step through it.
type hostBreaker struct {
	host      string
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	isFailure func(*http.Response, error) bool
	// defaultFailure says isFailure is the default, which the 503 rule
	// refines (see shedding).
	defaultFailure bool
	timeout        time.Duration
	// maxHold is the client's Policy.MaxRetryAfter: a longer Retry-After
	// does not hold the breaker open (see report).
	maxHold   time.Duration
	clock     Clock
	openUntil atomic.Int64 // Unix nanoseconds
	// onOpen, when the client has a GuardStore, tells the fleet that this
	// breaker opened until the given time; nil tells no one.
	onOpen func(until time.Time)
}

func newHostBreaker(host string, s BreakerSettings, maxHold time.Duration, clk Clock, logf func(host string, from, to BreakerState)) *hostBreaker {
	b := &hostBreaker{host: host, isFailure: s.IsFailure, defaultFailure: s.defaultFailure, timeout: s.Timeout, maxHold: maxHold, clock: clk}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         host,
		MaxRequests:  s.MaxRequests,
		Interval:     s.Interval,
		BucketPeriod: s.BucketPeriod,
		// gobreaker half-opens as soon as b lets a request reach it: b
		// holds the open period itself (see allow).
		Timeout:     time.Nanosecond,
		ReadyToTrip: func(c gobreaker.Counts) bool { return s.ReadyToTrip(breakerCounts(c)) },
		IsExcluded:  func(err error) bool { return err == errNotCounted },
		OnStateChange: func(_ string, gfrom, gto gobreaker.State) {
			from, to := breakerState(gfrom), breakerState(gto)
			if to == BreakerOpen {
				until := clk.Now().Add(b.timeout)
				b.extend(until)
				if b.onOpen != nil {
					b.onOpen(until)
				}
			}
			if s.OnStateChange != nil {
				s.OnStateChange(host, from, to)
			}
			if logf != nil {
				logf(host, from, to)
			}
		},
	})
	return b
}

// refuses returns a *CircuitOpenError while the breaker's open period lasts,
// without taking a probe's place; nil otherwise.
func (b *hostBreaker) refuses() error {
	if until := b.openUntil.Load(); until != 0 && until > b.clock.Now().UnixNano() {
		return &CircuitOpenError{Host: b.host, RetryAt: time.Unix(0, until)}
	}
	return nil
}

// allow asks whether an attempt may go to the host. It returns gobreaker's
// function for the attempt's outcome, to hand to report, or a
// *CircuitOpenError.
func (b *hostBreaker) allow() (func(error), error) {
	if until := b.openUntil.Load(); until != 0 {
		if until > b.clock.Now().UnixNano() {
			return nil, &CircuitOpenError{Host: b.host, RetryAt: time.Unix(0, until)}
		}
		b.openUntil.CompareAndSwap(until, 0) // spares later attempts the clock
	}
	done, err := b.cb.Allow()
	if err != nil {
		// gobreaker.ErrTooManyRequests: half-open, probes in flight.
		return nil, &CircuitOpenError{Host: b.host}
	}
	return done, nil
}

// breakerOutcome is how the breaker counted an attempt.
type breakerOutcome int

const (
	outcomeNotCounted breakerOutcome = iota
	outcomeSuccess
	outcomeFailure
)

// report tells gobreaker how an attempt that allow let through ended, and
// returns how it counted it.
func (b *hostBreaker) report(done func(error), ctx context.Context, a *answer) breakerOutcome {
	switch {
	case ctx.Err() != nil && a.err != nil:
		done(errNotCounted)
	case b.shedding(a):
		done(errNotCounted)
	case b.isFailure(a.resp, a.err):
		done(errAttemptFailed)
		// Open now (this failure may have tripped it): a longer
		// Retry-After holds it open. gobreaker's own State is not asked,
		// since asking moves it past its nominal timeout to half-open.
		if a.retryAfter > 0 && a.retryAfter <= b.maxHold && b.openUntil.Load() != 0 {
			if now := b.clock.Now(); b.openUntil.Load() > now.UnixNano() {
				b.extend(now.Add(a.retryAfter))
			}
		}
		return outcomeFailure
	default:
		done(nil)
		return outcomeSuccess
	}
	return outcomeNotCounted
}

// shedding reports whether a 503 came from a host that is answering other
// requests within the breaker's window: a gateway shedding load, or one
// disabled service of the host (the documents' 503). Neither is a host
// that is down, so with the default IsFailure such a 503 counts neither
// way; it counts as a failure only while the host answers nothing else.
func (b *hostBreaker) shedding(a *answer) bool {
	return b.defaultFailure && a.status() == http.StatusServiceUnavailable && b.cb.Counts().TotalSuccesses > 0
}

// extend keeps the breaker open at least until t.
func (b *hostBreaker) extend(t time.Time) {
	for {
		cur := b.openUntil.Load()
		if t.UnixNano() <= cur || b.openUntil.CompareAndSwap(cur, t.UnixNano()) {
			return
		}
	}
}
