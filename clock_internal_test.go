package resilienthttp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp/servicetest"
)

// servicetest's fake clock is a Clock, with timers of its own, without
// servicetest importing this package: one fake clock can drive a client and
// the service it calls.
var (
	_ Clock      = (*servicetest.Clock)(nil)
	_ timerClock = (*servicetest.Clock)(nil)
)

// sleepOnlyClock is a Clock without timers of its own: its Sleep returns
// when the test releases it, or when its context is done.
type sleepOnlyClock struct {
	systemClock // Now only; AfterFunc is hidden below
	release     chan struct{}
	asked       chan time.Duration
}

func (c *sleepOnlyClock) Sleep(ctx context.Context, d time.Duration) error {
	c.asked <- d
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A Clock with only Now and Sleep still times AttemptTimeout: a goroutine
// sleeps on it, and stop ends that goroutine whether or not it fired.
func TestAfterFuncOnAClockWithoutTimers(t *testing.T) {
	clk := &sleepOnlyClock{release: make(chan struct{}), asked: make(chan time.Duration, 1)}
	var c Clock = struct{ Clock }{clk} // hides systemClock's AfterFunc
	var fired atomic.Bool
	stop := afterFunc(c, time.Minute, func() { fired.Store(true) })
	if d := <-clk.asked; d != time.Minute {
		t.Fatalf("slept %v, want 1m", d)
	}
	if !stop() || fired.Load() {
		t.Fatalf("stop before the time: stopped %v, fired %v; want true, false", !fired.Load(), fired.Load())
	}

	stop = afterFunc(c, time.Second, func() { fired.Store(true) })
	<-clk.asked
	clk.release <- struct{}{}
	if stop() || !fired.Load() {
		t.Fatalf("stop after the time: fired %v, want the function run and stop to say so", fired.Load())
	}
}

// The system clock's timers are time.AfterFunc's: stopped in time, they do
// not fire.
func TestSystemClockAfterFunc(t *testing.T) {
	var fired atomic.Bool
	stop := afterFunc(systemClock{}, time.Hour, func() { fired.Store(true) })
	if !stop() || fired.Load() {
		t.Fatal("a timer stopped an hour early fired, or stop said it did")
	}
}
