package resilienthttp

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestFirstContactProbe checks that a new host gets one request at a time
// until it answers well: its rate-limit headers can then pace the rest, and
// a host down from the start is not sent every caller's request at once.
func TestFirstContactProbe(t *testing.T) {
	h := newHostLimiter(LimiterSettings{}, time.Now())
	clk := systemClock{}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	held := func() bool {
		_, err := h.wait(done, "h", clk) // a done context returns at once if held
		return errors.Is(err, context.Canceled)
	}
	probe, err := h.wait(context.Background(), "h", clk)
	if err != nil || !probe {
		t.Fatalf("first caller: probe %v, %v; want the probe", probe, err)
	}
	if !held() {
		t.Fatal("second caller went while the probe was out")
	}
	h.endProbe(answeredWell(&http.Response{StatusCode: 503}, nil))
	if probe, err := h.wait(context.Background(), "h", clk); err != nil || !probe {
		t.Fatalf("after a failed probe: probe %v, %v; want the next caller to be the probe", probe, err)
	}
	if !held() {
		t.Fatal("a caller went alongside the second probe")
	}
	h.endProbe(answeredWell(&http.Response{StatusCode: 404}, nil))
	for i := 0; i < 3; i++ {
		if probe, err := h.wait(done, "h", clk); err != nil || probe {
			t.Fatalf("after a good answer: probe %v, %v; want everyone through", probe, err)
		}
	}
}

// eventClock is a fake clock that runs event during the first wait, as
// something another request does while this caller sleeps.
type eventClock struct {
	now    time.Time
	event  func(now time.Time)
	sleeps []time.Duration
}

func (c *eventClock) Now() time.Time { return c.now }
func (c *eventClock) Sleep(_ context.Context, d time.Duration) error {
	if len(c.sleeps) == 0 {
		c.event(c.now)
	}
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *eventClock) total() (t time.Duration) {
	for _, d := range c.sleeps {
		t += d
	}
	return t
}

// waitTwice spends a fresh limiter's burst, then waits for the next slot,
// with event run during that wait.
func waitTwice(t *testing.T, s LimiterSettings, event func(h *hostLimiter, now time.Time)) *eventClock {
	t.Helper()
	clk := &eventClock{now: time.Unix(1_800_000_000, 0)}
	h := newHostLimiter(s, clk.now)
	clk.event = func(now time.Time) { event(h, now) }
	close(h.probed)
	h.wait(context.Background(), "h", clk)
	if _, err := h.wait(context.Background(), "h", clk); err != nil {
		t.Fatal(err)
	}
	return clk
}

// TestLongLimiterWaitIsRepriced checks that a caller queued at a slow pace
// goes at the new pace when it rises (as adaptive pacing raises it when
// successes come in), instead of sleeping out its old slot.
func TestLongLimiterWaitIsRepriced(t *testing.T) {
	clk := waitTwice(t, LimiterSettings{Rate: 1, Burst: 1}, func(h *hostLimiter, now time.Time) {
		h.lim.Load().SetLimitAt(now, 1000)
	})
	if clk.sleeps[0] != maxReservation || clk.total() > maxReservation+2*time.Millisecond {
		t.Errorf("waits = %v, want one step of %v, then the raised pace (not the 1s slot)", clk.sleeps, maxReservation)
	}
}

// TestPauseBeginningDuringALimiterWait checks that a caller already queued
// in the limiter when the host asks for a pause (a 429 with Retry-After seen
// by another request) does not go out into it.
func TestPauseBeginningDuringALimiterWait(t *testing.T) {
	clk := waitTwice(t, LimiterSettings{Rate: 10, Burst: 1}, func(h *hostLimiter, now time.Time) {
		h.pauseUntil(now.Add(5 * time.Second))
	})
	if clk.total() < 5*time.Second {
		t.Errorf("waits = %v: the caller went out before the pause that began while it waited had passed", clk.sleeps)
	}
}

// TestObserveCountsEveryAnswerButThrottling checks which outcomes count as
// accepted requests for adaptive pacing: every answer but a 429 or a 503
// with Retry-After, whatever its status; a transport error is no answer.
func TestObserveCountsEveryAnswerButThrottling(t *testing.T) {
	withRA := http.Header{"Retry-After": {"0"}}
	for _, tc := range []struct {
		name     string
		resp     *http.Response
		accepted bool
	}{
		{"200", &http.Response{StatusCode: 200}, true},
		{"404", &http.Response{StatusCode: 404}, true},
		{"500", &http.Response{StatusCode: 500}, true},
		{"503 without Retry-After", &http.Response{StatusCode: 503}, true},
		{"503 with Retry-After", &http.Response{StatusCode: 503, Header: withRA}, false},
		{"429", &http.Response{StatusCode: 429}, false},
		{"429 with Retry-After", &http.Response{StatusCode: 429, Header: withRA}, false},
		{"transport error", nil, false},
	} {
		for _, limited := range []bool{false, true} {
			clk := &eventClock{now: time.Unix(1_800_000_000, 0)}
			s := LimiterSettings{}
			if limited {
				s.Rate = 10 // past the cheap path: increase does the counting
			}
			h := newHostLimiter(s, clk.now)
			h.observe(tc.resp, clk)
			if got := h.accepted.Load() == 1; got != tc.accepted {
				t.Errorf("%s (limited %v): accepted %v, want %v", tc.name, limited, got, tc.accepted)
			}
		}
	}
}
