package resilienthttp

import (
	"net/http"
	"testing"
	"time"
)

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

func TestParseRateLimitHeaders(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		h    http.Header
		want rateLimitInfo
		ok   bool
	}{
		{"none", http.Header{}, rateLimitInfo{}, false},
		{"IETF policy and fields", http.Header{"Ratelimit-Policy": {`"default";q=100;w=10`}, "Ratelimit": {`"default";r=50;t=30`}},
			rateLimitInfo{quota: 10, burst: 50, reset: 30 * time.Second}, true},
		{"several policies: the tightest", http.Header{"Ratelimit-Policy": {`"burst";q=100;w=1, "day";q=1000;w=86400`}},
			rateLimitInfo{quota: 1000.0 / 86400}, true},
		{"a quota of bytes sets no pace, and its remainder is not requests left", http.Header{
			"Ratelimit-Policy": {`"req";q=100;w=10, "bytes";q=5000;w=1;qu="content-bytes"`},
			"Ratelimit":        {`"req";r=40;t=3, "bytes";r=0;t=1`}},
			rateLimitInfo{quota: 10, burst: 40, reset: 3 * time.Second}, true},
		{"concurrent requests are not a rate", http.Header{"Ratelimit-Policy": {`"conc";q=4;qu="concurrent-requests"`}},
			rateLimitInfo{}, false},
		{"qu=requests is the default", http.Header{"Ratelimit-Policy": {`"default";q=50;w=5;qu="requests"`}},
			rateLimitInfo{quota: 10}, true},
		{"policy without window", http.Header{"Ratelimit-Policy": {`"default";q=20`}}, rateLimitInfo{quota: 20}, true},
		{"exhausted", http.Header{"Ratelimit": {`"default";r=0;t=7`}}, rateLimitInfo{reset: 7 * time.Second, exhausted: true}, true},
		{"malformed ignored", http.Header{"Ratelimit-Policy": {`"default";q=-1;w=x`}, "Ratelimit": {`garbage`}}, rateLimitInfo{}, false},
		{"draft-03 fields", http.Header{"Ratelimit-Remaining": {"3"}, "Ratelimit-Reset": {"2"}}, rateLimitInfo{burst: 3, reset: 2 * time.Second}, true},
		{"X- delta seconds", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"5"}},
			rateLimitInfo{reset: 5 * time.Second, exhausted: true}, true},
		{"X- Unix time against Date", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1800000060"},
			"Date": {now.Add(-time.Hour).UTC().Format(http.TimeFormat)}}, rateLimitInfo{reset: time.Hour + time.Minute, exhausted: true}, true},
		{"X- reset in the past", http.Header{"X-Ratelimit-Remaining": {"0"}, "X-Ratelimit-Reset": {"1700000000"}}, rateLimitInfo{}, true},
		{"X- malformed", http.Header{"X-Ratelimit-Remaining": {"-1"}, "X-Ratelimit-Reset": {"soon"}}, rateLimitInfo{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRateLimitHeaders(tt.h, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
