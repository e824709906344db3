package servicetest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// An Option configures a Server in New or NewServer. Options panic on
// invalid arguments, since those are mistakes in the test itself.
type Option func(*config)

type config struct {
	now    func() time.Time
	format ErrorFormat

	rps        float64
	burst      int
	rlHeaders  RateLimitHeaders
	retryAfter string // fixed Retry-After for 429s; computed if empty
	limitCode  int    // the status of refusals; 0 means 429

	failRatio    float64
	failStatuses []int
	failSeed     int64

	commitRatio  float64
	commitStatus int
	commitSeed   int64
}

// WithClock sets the clock used by the rate limiter, rate-limit headers and
// Request.Time; the default is time.Now. now must be safe for concurrent
// use and should not go backwards.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithErrorFormat sets the body format for error responses whose Step has
// FormatDefault, including the server's own 429s and injected failures.
func WithErrorFormat(f ErrorFormat) Option {
	if f <= FormatDefault || f >= numFormats {
		panic(fmt.Sprintf("servicetest: WithErrorFormat(%d): unknown format", f))
	}
	return func(c *config) { c.format = f }
}

// WithRateLimit puts a token bucket refilling at rps tokens per second and
// holding at most burst tokens in front of every path. It starts full, and
// each request takes a token at the server's clock. A request that finds
// none is answered 429 Too Many Requests with a Retry-After of the whole
// seconds until a token is free (at least 1; see WithRateLimitRetryAfter)
// and the default error body. It panics unless rps > 0 and burst >= 1.
func WithRateLimit(rps float64, burst int) Option {
	if !(rps > 0) || math.IsInf(rps, 0) || burst < 1 {
		panic(fmt.Sprintf("servicetest: WithRateLimit(%v, %d): need 0 < rps < +Inf and burst >= 1", rps, burst))
	}
	return func(c *config) { c.rps, c.burst = rps, burst }
}

// WithRateLimitRetryAfter makes WithRateLimit's 429s carry a fixed
// Retry-After of d, rounded up to whole seconds.
func WithRateLimitRetryAfter(d time.Duration) Option {
	return func(c *config) { c.retryAfter = RetryAfterSeconds(d) }
}

// WithRateLimitStatus makes WithRateLimit refuse with code instead of 429.
// With 503 the refusals carry no Retry-After (unless
// WithRateLimitRetryAfter sets one), as a gateway's default load shedding
// does (nginx's limit_req answers 503 and nothing else). It panics unless
// code is 429 or 503.
func WithRateLimitStatus(code int) Option {
	if code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable {
		panic(fmt.Sprintf("servicetest: WithRateLimitStatus(%d): need 429 or 503", code))
	}
	return func(c *config) { c.limitCode = code }
}

// RateLimitHeaders selects the headers describing the WithRateLimit bucket
// that are sent on every response. Values may be combined with |.
type RateLimitHeaders uint8

const (
	// IETFHeaders sends the structured fields of
	// draft-ietf-httpapi-ratelimit-headers-09:
	//
	//	RateLimit-Policy: "default";q=<rate·w>;w=<seconds to refill a full bucket, at least 1>
	//	RateLimit: "default";r=<tokens left>;t=<seconds until the bucket is full>
	IETFHeaders RateLimitHeaders = 1 << iota

	// XRateLimitHeaders sends the common X-RateLimit-Limit (burst),
	// X-RateLimit-Remaining (tokens left) and X-RateLimit-Reset (Unix time
	// in seconds, by the server's clock, when the bucket is full).
	XRateLimitHeaders
)

// WithRateLimitHeaders sets which rate-limit headers to send; by default
// none are sent. It has no effect without WithRateLimit.
func WithRateLimitHeaders(h RateLimitHeaders) Option {
	return func(c *config) { c.rlHeaders = h }
}

// WithFailureRatio answers about ratio of all requests (0 to 1) with a
// status chosen from statuses and the default error body, before they reach
// their script. The choices come from a PCG generator seeded with seed, so
// the same seed and the same arrival order give the same failures.
func WithFailureRatio(ratio float64, statuses []int, seed int64) Option {
	if !(ratio >= 0 && ratio <= 1) || len(statuses) == 0 {
		panic(fmt.Sprintf("servicetest: WithFailureRatio(%v, %v): need 0 <= ratio <= 1 and a status", ratio, statuses))
	}
	for _, st := range statuses {
		if err := (Step{Status: st}).validate(); err != nil {
			panic("servicetest: WithFailureRatio: " + err.Error())
		}
	}
	statuses = append([]int(nil), statuses...)
	return func(c *config) { c.failRatio, c.failStatuses, c.failSeed = ratio, statuses, seed }
}

// WithCommitThenFail makes about ratio of the writes (POST, PUT, PATCH)
// that would succeed commit and then answer status instead, like a
// Step with Commit set. The choices come from a PCG generator seeded with
// seed, drawn once per such write in arrival order.
func WithCommitThenFail(ratio float64, status int, seed int64) Option {
	if err := (Step{Status: status}).validate(); err != nil || !(ratio >= 0 && ratio <= 1) {
		panic(fmt.Sprintf("servicetest: WithCommitThenFail(%v, %d): need 0 <= ratio <= 1 and a status in 200-599", ratio, status))
	}
	return func(c *config) { c.commitRatio, c.commitStatus, c.commitSeed = ratio, status, seed }
}

// admit takes a token for a request at now and adds the configured
// rate-limit headers to h. When it refuses, it also returns the
// Retry-After to send. s.mu must be held.
func (s *Server) admit(now time.Time, h http.Header) (ok bool, retryAfter string) {
	lim := s.st.limiter
	if lim == nil {
		return true, ""
	}
	ok = lim.AllowN(now, 1)
	tokens, burst := lim.TokensAt(now), float64(s.cfg.burst)
	remaining := strconv.Itoa(int(max(math.Floor(tokens), 0)))
	reset := seconds((burst - tokens) / s.cfg.rps)
	if !ok {
		retryAfter = s.cfg.retryAfter
		if retryAfter == "" && s.cfg.limitCode != http.StatusServiceUnavailable {
			retryAfter = strconv.FormatInt(max(seconds((1-tokens)/s.cfg.rps), 1), 10)
		}
	}
	if s.cfg.rlHeaders&IETFHeaders != 0 {
		window := max(seconds(burst/s.cfg.rps), 1)
		// The quota is what the bucket admits per window at its sustained
		// rate: a client dividing q by w gets the server's rate, even when
		// the bucket refills in under a second.
		quota := int64(s.cfg.rps * float64(window))
		h.Set("RateLimit-Policy", fmt.Sprintf(`"default";q=%d;w=%d`, quota, window))
		h.Set("RateLimit", fmt.Sprintf(`"default";r=%s;t=%d`, remaining, reset))
	}
	if s.cfg.rlHeaders&XRateLimitHeaders != 0 {
		h.Set("X-RateLimit-Limit", strconv.Itoa(s.cfg.burst))
		h.Set("X-RateLimit-Remaining", remaining)
		h.Set("X-RateLimit-Reset", strconv.FormatInt(now.Unix()+reset, 10))
	}
	return ok, retryAfter
}

// seconds rounds a number of seconds up to a whole number in [0, 2^31),
// forgiving the float error in the limiter's token arithmetic.
func seconds(x float64) int64 {
	return int64(min(max(math.Ceil(x-1e-9), 0), math.MaxInt32))
}
