package servicetest

import (
	"context"
	"slices"
	"sync"
	"time"
)

// A Clock is a fake clock for one test: time stands still until Sleep or
// Advance moves it, and no call waits in real time. One Clock can drive
// both sides of a test: the server, through WithClock(clk.Now), and a
// client that takes its time from a Now and a Sleep (such as
// resilienthttp.WithClock(clk), which it satisfies without this package
// importing that one). A client told to wait 30 s for a Retry-After then
// waits no real time, and the server's rate limiter and dates see the 30 s
// pass.
//
// Its methods are safe for concurrent use. The zero Clock is not usable;
// create one with NewClock.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*clockTimer
}

type clockTimer struct {
	at   time.Time
	f    func()
	done bool
}

// NewClock returns a Clock that reads start until it is moved.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep returns ctx.Err(), leaving the time as it is, if ctx is done;
// otherwise it moves the clock forward by d at once (firing the timers it
// passes) and returns nil. A d <= 0 moves nothing.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Advance moves the clock forward by d and runs, on the caller's
// goroutine and in the order they are due, the functions of the timers
// whose time it reaches. A d <= 0 moves nothing but still runs timers
// already due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
	var due []*clockTimer
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t)
		default:
			kept = append(kept, t)
		}
	}
	clear(c.timers[len(kept):]) // let the fired and stopped timers go
	c.timers = kept
	c.mu.Unlock()
	// Stable: timers due at the same time run in the order they were set.
	slices.SortStableFunc(due, func(a, b *clockTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f() // unlocked: f may read or move the clock
	}
}

// AfterFunc runs f when the clock reaches d from now (on the goroutine of
// the Sleep or Advance that moves it there), as time.AfterFunc does in real
// time; a d <= 0 is due at the next Advance or Sleep. stop cancels it and
// reports whether it did so before f ran. A client that times attempts
// with this method (resilienthttp's AttemptTimeout does) then times out
// only when the test moves the clock past the timeout.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &clockTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}
