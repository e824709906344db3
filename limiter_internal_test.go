package resilienthttp

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestFirstContactProbe checks that a new host gets one request before the
// others go, so its rate-limit headers can pace them.
func TestFirstContactProbe(t *testing.T) {
	h := newHostLimiter(LimiterSettings{}, time.Now())
	clk := systemClock{}
	if err := h.wait(context.Background(), "h", clk); err != nil {
		t.Fatalf("probe: %v", err)
	}
	// A second caller is held at the gate: with its context already done
	// it returns the context's error instead of going through.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.wait(done, "h", clk); !errors.Is(err, context.Canceled) {
		t.Fatalf("second caller before the probe's answer: %v, want held at the gate", err)
	}
	h.observe(&http.Response{StatusCode: 200, Header: http.Header{}}, clk)
	if err := h.wait(context.Background(), "h", clk); err != nil {
		t.Fatalf("after the probe's answer: %v", err)
	}
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
