package resilienthttp

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	serverDate := now.Add(-time.Hour).Format(http.TimeFormat) // the client's clock runs an hour fast
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
		ok     bool
	}{
		{"absent", http.Header{}, 0, false},
		{"seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second, true},
		{"zero", http.Header{"Retry-After": {"0"}}, 0, true},
		{"empty", http.Header{"Retry-After": {""}}, 0, false},
		{"negative", http.Header{"Retry-After": {"-1"}}, 0, false},
		{"plus sign", http.Header{"Retry-After": {"+1"}}, 0, false},
		{"fractional", http.Header{"Retry-After": {"1.5"}}, 0, false},
		{"overflowing", http.Header{"Retry-After": {"99999999999999999999"}}, 0, false},
		{"past int64 duration", http.Header{"Retry-After": {"9223372037"}}, 0, false},
		{"largest", http.Header{"Retry-After": {"9223372036"}}, 9223372036 * time.Second, true},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0, false},
		{"number then garbage", http.Header{"Retry-After": {"5s"}}, 0, false},
		{"IMF-fixdate", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second, true},
		{"RFC 850", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(time.RFC850)}}, 90 * time.Second, true},
		{"asctime", http.Header{"Retry-After": {now.Add(90 * time.Second).Format(time.ANSIC)}}, 90 * time.Second, true},
		{"date in the past", http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0, true},
		{"date against server Date", http.Header{"Retry-After": {now.Add(-time.Hour + 10*time.Second).Format(http.TimeFormat)}, "Date": {serverDate}}, 10 * time.Second, true},
		{"malformed server Date ignored", http.Header{"Retry-After": {now.Add(10 * time.Second).Format(http.TimeFormat)}, "Date": {"yesterday"}}, 10 * time.Second, true},
		{"far future date", http.Header{"Retry-After": {"Fri, 31 Dec 9999 23:59:59 GMT"}}, 1<<63 - 1, true},
		{"non-GMT zone", http.Header{"Retry-After": {"Sun, 22 Nov 2026 10:00:10 PST"}}, 0, false},
		{"retry-after-ms", http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond, true},
		{"x-ms-retry-after-ms", http.Header{"X-Ms-Retry-After-Ms": {"1200"}}, 1200 * time.Millisecond, true},
		{"malformed ms falls to Retry-After", http.Header{"Retry-After-Ms": {"x"}, "Retry-After": {"2"}}, 2 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := retryAfter(tt.header, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("retryAfter = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestBackoffGrowsToCapWithFullJitter(t *testing.T) {
	p := Policy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	top := 0.9999999
	wantBounds := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, b := range wantBounds {
		bound := b * time.Millisecond
		if got := backoff(&p, i+1, top); got > bound || got < bound*99/100 {
			t.Errorf("retry %d: top of jitter %v, want just under %v", i+1, got, bound)
		}
		if got := backoff(&p, i+1, 0); got != 0 {
			t.Errorf("retry %d: bottom of jitter %v, want 0", i+1, got)
		}
	}
	// A very late retry must not overflow the doubling.
	if got := backoff(&p, 500, top); got > time.Second || got < 0 {
		t.Errorf("retry 500: %v", got)
	}
}

func TestRetryAfterJitterIsAfterTheFloor(t *testing.T) {
	p := DefaultPolicy()
	if got := afterRetryAfter(&p, time.Second, 0); got != time.Second {
		t.Errorf("bottom = %v, want 1s", got)
	}
	if got := afterRetryAfter(&p, time.Second, 0.5); got != 1100*time.Millisecond {
		t.Errorf("middle = %v, want 1.1s", got)
	}
	// The spread is capped by MaxDelay.
	if got := afterRetryAfter(&p, time.Minute, 1); got != time.Minute+p.MaxDelay {
		t.Errorf("top for 1m = %v, want 1m5s", got)
	}
}

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
