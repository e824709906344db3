package servicetest

import (
	"context"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clk := NewClock(start)
	equal(t, "Now", clk.Now(), start)

	if err := clk.Sleep(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	equal(t, "after Sleep(30s)", clk.Now().Sub(start), 30*time.Second)
	clk.Advance(time.Minute)
	equal(t, "after Advance(1m)", clk.Now().Sub(start), 90*time.Second)
	clk.Advance(-time.Hour)
	equal(t, "never backwards", clk.Now().Sub(start), 90*time.Second)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	equal(t, "Sleep on a done ctx", clk.Sleep(ctx, time.Hour), context.Canceled)
	equal(t, "and time stands", clk.Now().Sub(start), 90*time.Second)

	var fired []string
	clk.AfterFunc(2*time.Second, func() { fired = append(fired, "2s") })
	clk.AfterFunc(time.Second, func() { fired = append(fired, "1s") })
	stop := clk.AfterFunc(time.Second, func() { fired = append(fired, "stopped") })
	equal(t, "stop before due", stop(), true)
	clk.Advance(999 * time.Millisecond)
	equal(t, "none due yet", len(fired), 0)
	if err := clk.Sleep(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	equal(t, "fired in due order", fmtStrings(fired), "[1s 2s]")
	equal(t, "stop after firing", stop(), false)
}

// One clock drives the server: its rate limiter refills as the clock moves.
func TestClockDrivesTheServer(t *testing.T) {
	clk := NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	s := NewServer(t, WithClock(clk.Now), WithRateLimit(1, 1))
	equal(t, "first", get(t, s, "/x").status, 200)
	r := get(t, s, "/x")
	equal(t, "second, at once", r.status, 429)
	equal(t, "Retry-After", r.header.Get("Retry-After"), "1")
	clk.Sleep(context.Background(), time.Second)
	equal(t, "third, a fake second later", get(t, s, "/x").status, 200)
	reqs := s.Requests()
	equal(t, "recorded time", reqs[2].Time.Sub(reqs[0].Time), time.Second)
}

func fmtStrings(v []string) string {
	out := "["
	for i, s := range v {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out + "]"
}
