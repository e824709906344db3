package resilienthttp

import (
	"net/http"
	"time"
)

// maxRetryAfterSeconds keeps seconds*time.Second inside int64; a larger value
// is treated as malformed rather than as a wait of centuries.
const maxRetryAfterSeconds = int64((1<<63 - 1) / int64(time.Second))

// retryAfter returns the wait a response asks for and whether it asked
// validly. It reads, in order:
//
//   - retry-after-ms and x-ms-retry-after-ms: integer milliseconds (Azure);
//   - Retry-After as delay-seconds (RFC 9110 §10.2.3: 1*DIGIT);
//   - Retry-After as an HTTP-date in any of the three formats RFC 9110
//     §5.6.7 requires a recipient to accept, measured against the response's
//     own Date header (so a skewed client clock neither stretches nor cuts
//     the wait), or against now when Date is absent or malformed.
//
// Negative, fractional, overflowing and unparsable values are not valid
// (ok is false). A date in the past is valid and asks for no wait.
func retryAfter(h http.Header, now time.Time) (wait time.Duration, ok bool) {
	for _, key := range [...]string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := h.Get(key); v != "" {
			if ms, ok := parseDigits(v, maxRetryAfterSeconds*1000); ok {
				return time.Duration(ms) * time.Millisecond, true
			}
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if s, ok := parseDigits(v, maxRetryAfterSeconds); ok {
		return time.Duration(s) * time.Second, true
	}
	if v[0] >= '0' && v[0] <= '9' || v[0] == '-' || v[0] == '+' {
		return 0, false // a malformed number, not a date
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		now = d
	}
	if wait := at.Sub(now); wait > 0 {
		return wait, true
	}
	return 0, true
}

// parseDigits parses a non-empty run of ASCII digits no greater than max.
// Unlike strconv it rejects signs, spaces and underscores, as RFC 9110's
// 1*DIGIT does.
func parseDigits(s string, max int64) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > max {
			return 0, false
		}
	}
	return n, true
}

// backoff returns the wait before retry number n (1 for the first retry):
// exponential with full jitter. The bound doubles from BaseDelay and is
// capped at MaxDelay before jitter is drawn, so the wait is uniform in
// [0, min(MaxDelay, BaseDelay·2^(n-1))]. Full jitter spreads clients that
// failed together over the whole window instead of bunching them at its
// edge. jitter is a random draw in [0, 1).
func backoff(p *Policy, n int, jitter float64) time.Duration {
	bound := p.BaseDelay
	for i := 1; i < n && bound < p.MaxDelay; i++ {
		bound *= 2
	}
	if bound > p.MaxDelay {
		bound = p.MaxDelay
	}
	return time.Duration(jitter * float64(bound))
}

// retryAfterJitter is the share of a server-requested wait added, at random,
// after it. Honouring Retry-After exactly makes every caller told "1" wake in
// the same millisecond and spend the server's burst at once; spreading them
// over the next fifth of the wait keeps the server's floor while letting its
// token bucket refill between them.
const retryAfterJitter = 0.2

// afterRetryAfter returns the wait for a server-requested delay d: never less
// than d, plus up to retryAfterJitter·d (at most MaxDelay) of jitter.
func afterRetryAfter(p *Policy, d time.Duration, jitter float64) time.Duration {
	spread := time.Duration(retryAfterJitter * float64(d))
	if spread > p.MaxDelay {
		spread = p.MaxDelay
	}
	return d + time.Duration(jitter*float64(spread))
}
