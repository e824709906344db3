package resilienthttp

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Clock is the client's source of time. Every wait the client makes between
// attempts goes through Sleep, so tests can run the real retry loop against a
// real server without real waiting.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep blocks for d or until ctx is done, whichever comes first, and
	// returns ctx.Err() in the second case. A d <= 0 returns at once.
	Sleep(ctx context.Context, d time.Duration) error
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

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
// edge. rnd returns a value in [0, 1).
func backoff(p *Policy, n int, rnd func() float64) time.Duration {
	bound := p.BaseDelay
	for i := 1; i < n && bound < p.MaxDelay; i++ {
		bound *= 2
	}
	if bound > p.MaxDelay {
		bound = p.MaxDelay
	}
	return time.Duration(rnd() * float64(bound))
}

// retryAfterJitter is the share of a server-requested wait added, at random,
// after it. Honouring Retry-After exactly makes every caller told "1" wake in
// the same millisecond and spend the server's burst at once; spreading them
// over the next fifth of the wait keeps the server's floor while letting its
// token bucket refill between them.
const retryAfterJitter = 0.2

// afterRetryAfter returns the wait for a server-requested delay d: never less
// than d, plus up to retryAfterJitter·d (at most MaxDelay) of jitter.
func afterRetryAfter(p *Policy, d time.Duration, rnd func() float64) time.Duration {
	spread := time.Duration(retryAfterJitter * float64(d))
	if spread > p.MaxDelay {
		spread = p.MaxDelay
	}
	return d + time.Duration(rnd()*float64(spread))
}

// rateLimitInfo is what a response's rate-limit headers say.
type rateLimitInfo struct {
	quota     float64       // requests per second a policy allows (q/w); 0 if undeclared
	burst     int           // requests left in the window now; 0 if unknown
	reset     time.Duration // until the window resets
	exhausted bool          // nothing left until reset
}

// parseRateLimitHeaders reads, in order of precedence, the IETF draft's
// structured RateLimit-Policy ("default";q=100;w=60) and RateLimit
// ("default";r=50;t=30) fields (draft-ietf-httpapi-ratelimit-headers), the
// earlier drafts' RateLimit-Remaining/RateLimit-Reset, and the common
// X-RateLimit-Remaining/X-RateLimit-Reset (delta seconds, or a Unix time
// measured against the response's Date). Malformed fields are ignored; ok
// reports that anything usable was found.
func parseRateLimitHeaders(h http.Header, now time.Time) (info rateLimitInfo, ok bool) {
	// Keys are written canonical and read from the map directly: this runs
	// on every response, and Header.Get would allocate to canonicalise them.
	if v := headerValue(h, "Ratelimit-Policy"); v != "" {
		for _, item := range sfItems(v) {
			q, w := sfParam(item, "q"), sfParam(item, "w")
			if q <= 0 {
				continue
			}
			if w <= 0 {
				w = 1 // the draft's default window is one second
			}
			if r := float64(q) / float64(w); info.quota == 0 || r < info.quota {
				info.quota = r
			}
			ok = true
		}
	}
	remaining, reset := int64(-1), int64(-1)
	if v := headerValue(h, "Ratelimit"); v != "" {
		for _, item := range sfItems(v) {
			if r := sfParam(item, "r"); r >= 0 && (remaining < 0 || r < remaining) {
				remaining, reset = r, sfParam(item, "t")
			}
		}
	}
	if remaining < 0 {
		remaining, reset = headerInt(h, "Ratelimit-Remaining"), headerInt(h, "Ratelimit-Reset")
	}
	if remaining < 0 {
		remaining, reset = headerInt(h, "X-Ratelimit-Remaining"), headerInt(h, "X-Ratelimit-Reset")
		if reset > 1e9 { // a Unix time, not a delta
			if d, err := http.ParseTime(h.Get("Date")); err == nil {
				now = d
			}
			reset = max(reset-now.Unix(), 0)
		}
	}
	if remaining >= 0 {
		ok = true
		info.burst = int(min(remaining, 1<<20))
		if reset >= 0 && reset <= maxRetryAfterSeconds {
			info.reset = time.Duration(reset) * time.Second
			info.exhausted = remaining == 0 && reset > 0
		}
	}
	return info, ok
}

// hasRateLimitHeaders reports whether h has any field parseRateLimitHeaders
// reads, without parsing.
func hasRateLimitHeaders(h http.Header) bool {
	for _, k := range [...]string{"Ratelimit-Policy", "Ratelimit", "Ratelimit-Remaining", "X-Ratelimit-Remaining"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// sfItems splits a structured-field list into its members.
func sfItems(v string) []string { return strings.Split(v, ",") }

// sfParam returns the integer parameter name of a structured-field list
// member ("default";q=100;w=60), or -1 if absent or not a plain integer.
func sfParam(item, name string) int64 {
	for _, p := range strings.Split(item, ";")[1:] {
		k, val, found := strings.Cut(strings.TrimSpace(p), "=")
		if found && k == name {
			if n, ok := parseDigits(strings.TrimSpace(val), maxRetryAfterSeconds); ok {
				return n
			}
			return -1
		}
	}
	return -1
}

// headerValue is h.Get for a key already in canonical form.
func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func headerInt(h http.Header, canonicalKey string) int64 {
	if n, ok := parseDigits(headerValue(h, canonicalKey), 1<<62); ok {
		return n
	}
	return -1
}

// RetryBudget limits retries to a host by how its recent attempts went, like
// gRPC's retry throttling: every attempt that fails in a way the policy
// would retry takes a token, every success gives back TokenRatio tokens, and
// retries stop while the host holds MaxTokens/2 tokens or fewer. A host that
// fails everything gets about MaxTokens/2 retries in all, however many calls
// are made, so retries cannot multiply the load on a service that is down
// even before its breaker opens; a host that fails less than
// TokenRatio/(1+TokenRatio) of attempts is not throttled, and MaxTokens is
// large enough that the runs of failures a brownout has by chance do not
// empty it. Retries the server asked for with Retry-After neither take nor
// need tokens.
//
// The zero value is the default: MaxTokens 100, TokenRatio 1.
type RetryBudget struct {
	MaxTokens  float64
	TokenRatio float64
}

func (b RetryBudget) withDefaults() RetryBudget {
	if b.MaxTokens <= 0 {
		b.MaxTokens = 100
	}
	if b.TokenRatio <= 0 {
		b.TokenRatio = 1
	}
	return b
}

// retryTokens is one host's budget, in thousandths of a token so it fits
// an atomic integer.
type retryTokens struct {
	milli      atomic.Int64
	max, ratio int64
}

func newRetryTokens(b RetryBudget) *retryTokens {
	t := &retryTokens{max: int64(b.MaxTokens * 1000), ratio: int64(b.TokenRatio * 1000)}
	t.milli.Store(t.max)
	return t
}

func (t *retryTokens) add(delta int64) int64 {
	for {
		cur := t.milli.Load()
		next := min(max(cur+delta, 0), t.max)
		if t.milli.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// succeeded gives back TokenRatio tokens.
func (t *retryTokens) succeeded() { t.add(t.ratio) }

// failed takes a token and reports whether a retry is still allowed.
func (t *retryTokens) failed() bool { return t.add(-1000) > t.max/2 }
