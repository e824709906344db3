package resilienthttp

import (
	"net/http"
	"testing"
	"time"
)

// FuzzRetryAfter feeds retryAfter arbitrary Retry-After, Date and
// retry-after-ms values, as any server (or anything between it and the
// client) can send. The wait decides how long a caller blocks, so whatever
// arrives it must be a valid answer: no panic, never negative, zero when
// the header was not valid, the same for the same input, and never a wait
// that an earlier header in the documented order does not justify.
func FuzzRetryAfter(f *testing.F) {
	// Seeds that live in testdata/fuzz/FuzzRetryAfter cover each form; these
	// add the combinations.
	f.Add("120", "", "")
	f.Add("Sun, 22 Nov 2026 10:00:30 GMT", "Sun, 22 Nov 2026 10:00:00 GMT", "")
	f.Add("2", "", "1500")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, retryAfterValue, date, ms string) {
		h := http.Header{}
		if retryAfterValue != "" {
			h.Set("Retry-After", retryAfterValue)
		}
		if date != "" {
			h.Set("Date", date)
		}
		if ms != "" {
			h.Set("Retry-After-Ms", ms)
		}
		wait, ok := retryAfter(h, now)
		if wait < 0 {
			t.Fatalf("retryAfter(%q) = %v, negative", h, wait)
		}
		if !ok && wait != 0 {
			t.Fatalf("retryAfter(%q) = %v, false: a wait from an invalid header", h, wait)
		}
		if w2, ok2 := retryAfter(h, now); w2 != wait || ok2 != ok {
			t.Fatalf("retryAfter(%q) gave %v, %v then %v, %v", h, wait, ok, w2, ok2)
		}
		// A valid millisecond header is the answer, whatever follows it.
		if n, valid := parseDigits(ms, maxRetryAfterSeconds*1000); valid {
			if !ok || wait != time.Duration(n)*time.Millisecond {
				t.Fatalf("retry-after-ms %q: got %v, %v; want %v", ms, wait, ok, time.Duration(n)*time.Millisecond)
			}
			return
		}
		// Otherwise a delay-seconds Retry-After is.
		if n, valid := parseDigits(retryAfterValue, maxRetryAfterSeconds); valid {
			if !ok || wait != time.Duration(n)*time.Second {
				t.Fatalf("Retry-After %q: got %v, %v; want %v", retryAfterValue, wait, ok, time.Duration(n)*time.Second)
			}
			return
		}
		// Otherwise only an HTTP-date can make it valid.
		if _, err := http.ParseTime(retryAfterValue); ok && err != nil {
			t.Fatalf("Retry-After %q is neither seconds nor an HTTP-date, yet got %v, true", retryAfterValue, wait)
		}
	})
}

// FuzzRateLimitHeaders feeds parseRateLimitHeaders arbitrary rate-limit
// fields. What it returns paces every request to a host, so whatever arrives
// it must be sane: no panic, no negative or non-finite quota, no negative
// burst or reset, and exhausted only with a reset to wait for.
func FuzzRateLimitHeaders(f *testing.F) {
	f.Add(`"default";q=100;w=60`, `"default";r=50;t=30`, "", "")
	f.Add(`"a";q=10;w=1, "b";q=1000;w=86400`, `"a";r=0;t=1`, "", "")
	f.Add("", "", "0", "1800000060")
	f.Add(`"x";q=-1;w=0`, `garbage;r=;t`, "-3", "soon")
	f.Add(`;;;,,,`, `"d";r=99999999999999999999;t=99999999999999999999`, "99999999999999999999", "9")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, policy, fields, remaining, reset string) {
		h := http.Header{}
		for k, v := range map[string]string{"Ratelimit-Policy": policy, "Ratelimit": fields,
			"X-Ratelimit-Remaining": remaining, "X-Ratelimit-Reset": reset} {
			if v != "" {
				h.Set(k, v)
			}
		}
		info, _ := parseRateLimitHeaders(h, now)
		if info.quota < 0 || info.quota != info.quota || info.quota > 1e19 {
			t.Fatalf("%q: quota %v", h, info.quota)
		}
		if info.burst < 0 || info.reset < 0 {
			t.Fatalf("%q: burst %d, reset %v", h, info.burst, info.reset)
		}
		if info.exhausted && info.reset <= 0 {
			t.Fatalf("%q: exhausted with nothing to wait for", h)
		}
		if hasRateLimitHeaders(h) != (policy != "" || fields != "" || remaining != "") {
			t.Fatalf("%q: hasRateLimitHeaders disagrees with the fields present", h)
		}
	})
}
