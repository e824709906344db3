package resilienthttp

import (
	"context"
	"time"
)

// Clock is the client's source of time. Every wait the client makes goes
// through Sleep and every time it reads goes through Now, so tests can run
// the real retry loop against a real server without real waiting.
//
// A Clock that also has a method
//
//	AfterFunc(d time.Duration, f func()) (stop func() bool)
//
// with time.AfterFunc's meaning (stop reports whether it stopped f from
// running) times Policy.AttemptTimeout with it, as the system clock does; a
// fake clock can then fire the timer when its time is advanced. Without it
// the client runs each attempt's timer on a goroutine that calls Sleep.
//
// The circuit breaker's counting window (BreakerSettings.Interval) is kept
// by gobreaker on the system clock; its open period is timed with this one.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep blocks for d or until ctx is done, whichever comes first, and
	// returns ctx.Err() in the second case. A d <= 0 returns at once.
	Sleep(ctx context.Context, d time.Duration) error
}

// timerClock is a Clock with timers of its own; see Clock.
type timerClock interface {
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// afterFunc runs f on clk after d, unless stop, which reports whether it
// stopped f from running, is called first.
func afterFunc(clk Clock, d time.Duration, f func()) (stop func() bool) {
	if tc, ok := clk.(timerClock); ok {
		return tc.AfterFunc(d, f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fired := make(chan bool, 1)
	go func() {
		ok := clk.Sleep(ctx, d) == nil
		if ok {
			f()
		}
		fired <- ok
	}()
	return func() bool {
		cancel()
		return !<-fired
	}
}

type systemClock struct{}

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

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
