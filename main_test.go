package resilienthttp_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock stands in for time in the client's waits: Sleep returns at once,
// records what was asked and moves Now forward, so a test runs the real retry
// loop against a real server and asserts the waits without waiting. Its
// timers (AttemptTimeout) fire when its time passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	timers []*fakeTimer
	// armed, if set, hears the duration of every timer started.
	armed chan time.Duration
}

type fakeTimer struct {
	d    time.Duration
	at   time.Time
	f    func()
	done bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	f.mu.Unlock()
	f.Advance(d)
	return ctx.Err()
}

// Advance moves the clock forward by d and fires the timers it passes.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	if d > 0 {
		f.now = f.now.Add(d)
	}
	var due []func()
	for _, t := range f.timers {
		if !t.done && !t.at.After(f.now) {
			t.done = true
			due = append(due, t.f)
		}
	}
	f.mu.Unlock()
	for _, fn := range due {
		fn()
	}
}

func (f *fakeClock) AfterFunc(d time.Duration, fn func()) (stop func() bool) {
	f.mu.Lock()
	t := &fakeTimer{d: d, at: f.now.Add(d), f: fn}
	f.timers = append(f.timers, t)
	armed := f.armed
	f.mu.Unlock()
	if armed != nil {
		armed <- d
	}
	return func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		stopped := !t.done
		t.done = true
		return stopped
	}
}

// Timers returns the durations of the timers started on the clock.
func (f *fakeClock) Timers() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ds []time.Duration
	for _, t := range f.timers {
		ds = append(ds, t.d)
	}
	return ds
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// stillTimers is a fakeClock whose timers never fire, for tests where
// fake time runs ahead of real time only because many goroutines sleep.
type stillTimers struct{ *fakeClock }

func (stillTimers) AfterFunc(time.Duration, func()) func() bool { return func() bool { return true } }

// constRand returns a jitter source that always draws v.
func constRand(v float64) func() float64 { return func() float64 { return v } }
