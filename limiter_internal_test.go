package resilienthttp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"
)

// TestFirstContactProbe checks that a new host gets one probe at a time
// until it answers well, and that a call waiting for the probe goes as soon
// as the probe answers: as the next probe if the answer was bad, alongside
// everyone if it was good.
func TestFirstContactProbe(t *testing.T) {
	clk := blockingClock{now: time.Unix(1_800_000_000, 0)}
	h := newHostLimiter(LimiterSettings{}, DefaultMaxRetryAfter, clk.now)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	held := func() bool {
		_, err := h.wait(done, "h", clk) // a done context returns at once if held
		return errors.Is(err, context.Canceled)
	}
	waiter := func() <-chan bool {
		probe := make(chan bool, 1)
		go func() {
			p, err := h.wait(context.Background(), "h", clk)
			if err != nil {
				t.Error(err)
			}
			probe <- p
		}()
		return probe
	}
	probe, err := h.wait(context.Background(), "h", clk)
	if err != nil || !probe {
		t.Fatalf("first caller: probe %v, %v; want the probe", probe, err)
	}
	if !held() {
		t.Fatal("second caller went at once while the probe was out")
	}
	next := waiter()
	h.endProbe(answeredWell(&answer{resp: &http.Response{StatusCode: 503}}))
	if !<-next {
		t.Fatal("after a failed probe the next caller was not the probe")
	}
	if !held() {
		t.Fatal("a caller went at once alongside the second probe")
	}
	next = waiter()
	h.endProbe(answeredWell(&answer{resp: &http.Response{StatusCode: 404}}))
	if <-next {
		t.Fatal("after a good answer a waiting caller went as a probe")
	}
	for i := 0; i < 3; i++ {
		if probe, err := h.wait(done, "h", clk); err != nil || probe {
			t.Fatalf("after a good answer: probe %v, %v; want everyone through", probe, err)
		}
	}
}

// blockingClock's Sleep ends only with its context, so a caller waiting for
// the probe can only be let go by the probe's answer.
type blockingClock struct{ now time.Time }

func (c blockingClock) Now() time.Time { return c.now }
func (blockingClock) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		<-ctx.Done()
	}
	return ctx.Err()
}

// TestFirstContactWaitIsBounded checks that a call waits for the probe's
// answer at most firstContactWait after the probe went out, and never into
// its deadline, then goes alongside it.
func TestFirstContactWaitIsBounded(t *testing.T) {
	clk := &eventClock{now: time.Unix(1_800_000_000, 0), event: func(time.Time) {}}
	h := newHostLimiter(LimiterSettings{}, DefaultMaxRetryAfter, clk.now)
	if probe, _ := h.wait(context.Background(), "h", clk); !probe {
		t.Fatal("first caller is not the probe")
	}
	clk.now = clk.now.Add(30 * time.Millisecond)
	if probe, err := h.wait(context.Background(), "h", clk); probe || err != nil {
		t.Fatalf("probe %v, %v; want to go alongside the probe", probe, err)
	}
	if want := firstContactWait - 30*time.Millisecond; len(clk.sleeps) != 1 || clk.sleeps[0] != want {
		t.Fatalf("waits = %v, want [%v]: the rest of firstContactWait since the probe went out", clk.sleeps, want)
	}
	if _, err := h.wait(context.Background(), "h", clk); err != nil || len(clk.sleeps) != 1 {
		t.Fatalf("%v, waits = %v; want a call past firstContactWait to go at once", err, clk.sleeps)
	}

	h = newHostLimiter(LimiterSettings{}, DefaultMaxRetryAfter, clk.now)
	h.wait(context.Background(), "h", clk)
	ctx, cancel := context.WithDeadline(context.Background(), clk.now.Add(firstContactWait/2))
	defer cancel()
	if probe, err := h.wait(ctx, "h", clk); probe || err != nil || len(clk.sleeps) != 1 {
		t.Fatalf("probe %v, %v, waits = %v; want a call whose deadline is nearer to go at once", probe, err, clk.sleeps)
	}
}

// TestFirstContactProbeSettings checks which settings have a probe: all but
// a fixed Rate and NoFirstContactProbe.
func TestFirstContactProbeSettings(t *testing.T) {
	for _, tc := range []struct {
		s     LimiterSettings
		probe bool
	}{
		{LimiterSettings{}, true},
		{LimiterSettings{Static: true}, true},
		{LimiterSettings{Rate: math.Inf(1)}, true}, // no fixed limit
		{LimiterSettings{Rate: 10}, false},
		{LimiterSettings{NoFirstContactProbe: true}, false},
	} {
		h := newHostLimiter(tc.s, DefaultMaxRetryAfter, time.Now())
		if probe, _ := h.wait(context.Background(), "h", systemClock{}); probe != tc.probe {
			t.Errorf("%+v: first caller is the probe: %v, want %v", tc.s, probe, tc.probe)
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
	if len(c.sleeps) == 0 && c.event != nil {
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
	s.NoFirstContactProbe = true
	h := newHostLimiter(s, DefaultMaxRetryAfter, clk.now)
	clk.event = func(now time.Time) { event(h, now) }
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
// Every answer that is not the host refusing for load counts as an accepted
// request for adaptive pacing: a 429 is a refusal, and so is a 503 on a path
// the host has answered well (a gateway shedding load); a 503 on a path it
// never answered well is that service's own answer; a transport error is
// no answer.
func TestObserveCountsEveryAnswerButThrottling(t *testing.T) {
	withRA := http.Header{"Retry-After": {"0"}}
	req, _ := http.NewRequest(http.MethodGet, "http://h/v1/items", nil)
	respond := func(status int, h http.Header) *http.Response {
		return &http.Response{StatusCode: status, Header: h, Request: req}
	}
	for _, tc := range []struct {
		name      string
		resp      *http.Response
		pathKnown bool // the host answered the path well before
		accepted  bool
	}{
		{"200", respond(200, nil), false, true},
		{"404", respond(404, nil), false, true},
		{"500", respond(500, nil), false, true},
		{"503 of a disabled service", respond(503, nil), false, true},
		{"503 with Retry-After of a disabled service", respond(503, withRA), false, true},
		{"503 on a path answered well", respond(503, nil), true, false},
		{"503 with Retry-After on a path answered well", respond(503, withRA), true, false},
		{"429", respond(429, nil), false, false},
		{"429 with Retry-After", respond(429, withRA), false, false},
		{"transport error", nil, false, false},
	} {
		for _, limited := range []bool{false, true} {
			clk := &eventClock{now: time.Unix(1_800_000_000, 0)}
			s := LimiterSettings{}
			if limited {
				s.Rate = 10 // past the cheap path: increase does the counting
			}
			h := newHostLimiter(s, DefaultMaxRetryAfter, clk.now)
			if tc.pathKnown {
				h.good.add(req)
			}
			var a answer
			if tc.resp != nil {
				a.read(tc.resp, nil, clk)
			}
			h.observe(&a, clk)
			if got := h.accepted.Load() == 1; got != tc.accepted {
				t.Errorf("%s (limited %v): accepted %v, want %v", tc.name, limited, got, tc.accepted)
			}
		}
	}
}

// Routes, not paths: ids fold into one route, services stay apart.
func TestPathHashFoldsIDs(t *testing.T) {
	route := func(path string) uint64 {
		req, _ := http.NewRequest(http.MethodGet, "http://h"+path, nil)
		return pathHash(req)
	}
	same := [][2]string{
		{"/v1/items/123", "/v1/items/456"},
		{"/v3/users/u1", "/v3/users/u2"},
		{"/v1.1/0a1b2c/clusters", "/v1.1/ffee99/clusters"},
	}
	for _, p := range same {
		if route(p[0]) != route(p[1]) {
			t.Errorf("%s and %s are two routes, want one", p[0], p[1])
		}
	}
	apart := [][2]string{
		{"/v1/items/1", "/v1/jobs/1"},
		{"/v1/disabled", "/v1/users"},
		{"/v1/items", "/v1/items/1"},
	}
	for _, p := range apart {
		if route(p[0]) == route(p[1]) {
			t.Errorf("%s and %s are one route, want two", p[0], p[1])
		}
	}
	if route("/") == 0 || pathHash(nil) != 0 {
		t.Error("the empty slot")
	}
}

// One pause per wave: the first refusal's Retry-After pauses the host; once
// the limiter paces it, a short Retry-After holds only the call that got it
// (the pace slows instead, and the other callers back off for a few
// intervals of the pace, longer with each refusal still being waited out),
// and a long one (maintenance) pauses it again.
func TestOnePausePerWave(t *testing.T) {
	clk := &eventClock{now: time.Unix(1_800_000_000, 0)}
	h := newHostLimiter(LimiterSettings{}, DefaultMaxRetryAfter, clk.now)
	req, _ := http.NewRequest(http.MethodGet, "http://h/v1/items/1", nil)
	refuse := func(retryAfter string) {
		var a answer
		a.read(&http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {retryAfter}}, Request: req}, nil, clk)
		a.cuts = h.cuts() // sent now, after any cut so far
		h.observe(&a, clk)
	}
	paused := func() time.Duration { return time.Duration(h.pausedUntil.Load() - clk.now.UnixNano()) }
	held := func() time.Duration { return time.Duration(h.heldUntil.Load() - clk.now.UnixNano()) }
	for i := 0; i < 50; i++ { // the host accepted 50 before it refused
		var a answer
		a.read(&http.Response{StatusCode: 200, Request: req}, nil, clk)
		h.observe(&a, clk)
	}

	refuse("1")
	if got := paused(); got != time.Second {
		t.Fatalf("first refusal: host paused %v, want 1s", got)
	}
	clk.now = clk.now.Add(3 * time.Second)
	pace := h.lim.Load().Limit()
	interval := time.Duration(float64(time.Second) / float64(pace))
	refuse("1")
	if got := paused(); got > 0 {
		t.Errorf("a short Retry-After while pacing paused the host for %v, want no pause", got)
	}
	if got := held(); got != 4*interval {
		t.Errorf("a short Retry-After while pacing held the host for %v, want 4 intervals of the pace, %v", got, 4*interval)
	}
	now := h.lim.Load().Limit()
	if now >= pace {
		t.Errorf("pace %v after the refusal, want below %v", now, pace)
	}
	clk.now = clk.now.Add(4 * interval)
	refuse("1") // the first refused caller is still waiting: hold twice as long
	if got, want := held(), 2*4*time.Duration(float64(time.Second)/float64(now)); got != want || got > maxBackOff {
		t.Errorf("a second refusal within the first one's Retry-After held the host for %v, want %v", got, want)
	}
	refuse("30")
	if got := paused(); got != 30*time.Second {
		t.Errorf("a long Retry-After while pacing: host paused %v, want 30s", got)
	}
}

// Partitions are kept apart: the quota a partition declares paces the scope
// while it is the only partition the scope has met; once responses name a
// second partition, partitioned fields no longer pace it.
func TestPartitionsKeptApart(t *testing.T) {
	clk := &eventClock{now: time.Unix(1_800_000_000, 0)}
	h := newHostLimiter(LimiterSettings{}, DefaultMaxRetryAfter, clk.now)
	req, _ := http.NewRequest(http.MethodGet, "http://h/v1/items/1", nil)
	answerWith := func(policy string) {
		var a answer
		a.read(&http.Response{StatusCode: 200, Header: http.Header{"Ratelimit-Policy": {policy}}, Request: req}, nil, clk)
		h.observe(&a, clk)
	}
	answerWith(`"user";q=10;w=1;pk=:YWxpY2U=:`)
	if got := float64(h.lim.Load().Limit()); got < 9 || got > 10 {
		t.Fatalf("one partition's quota of 10/s: pace %v, want it paced just under 10", got)
	}
	answerWith(`"user";q=1000;w=1;pk=:Ym9i:`)
	answerWith(`"user";q=50;w=1;pk=:YWxpY2U=:`)
	if got := float64(h.lim.Load().Limit()); got < 9 || got > 10 {
		t.Errorf("after a second partition: pace %v, want the fields of neither applied", got)
	}
	if _, ok := parseRateLimitHeaders(http.Header{"Ratelimit": {`"user";r=3;t=1;pk=:Ym9i:`}}, clk.now); !ok {
		t.Error("a partitioned RateLimit field not parsed")
	}
}

// TestFirstContactRamp checks that the callers of a host that has just
// answered its first-contact probe go at the ramp's pace rather than all at
// once, that the ramp ends by itself, and that a declared quota or a
// refusal takes its place.
func TestFirstContactRamp(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://h/v1/items", nil)
	answerWith := func(h *hostLimiter, clk Clock, status int, header http.Header) {
		var a answer
		a.read(&http.Response{StatusCode: status, Header: header, Request: req}, nil, clk)
		h.observe(&a, clk)
	}
	probed := func(header http.Header) (*hostLimiter, *eventClock) {
		clk := &eventClock{now: time.Unix(1_800_000_000, 0), event: func(time.Time) {}}
		h := newHostLimiter(LimiterSettings{}, DefaultMaxRetryAfter, clk.now)
		if probe, err := h.wait(context.Background(), "h", clk); !probe || err != nil {
			t.Fatalf("first caller: probe %v, %v; want the probe", probe, err)
		}
		answerWith(h, clk, 200, header)
		h.endProbe(true)
		return h, clk
	}

	h, clk := probed(nil)
	const callers = 40 // all at once, as the callers held back by the probe
	for range callers {
		if _, err := h.wait(context.Background(), "h", clk); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]time.Duration, callers-rampBurst)
	for i := range want {
		want[i] = time.Second / rampStart
	}
	if fmt.Sprint(clk.sleeps) != fmt.Sprint(want) {
		t.Errorf("%d callers at first contact waited %v, want the first %d at once and the rest %v apart",
			callers, clk.sleeps, rampBurst, time.Second/rampStart)
	}
	clk.now = clk.now.Add(rampFor)
	clk.sleeps = nil
	for range callers {
		h.wait(context.Background(), "h", clk)
	}
	if len(clk.sleeps) != 0 || h.limited.Load() {
		t.Errorf("after rampFor: waits %v, paced %v; want the host unpaced", clk.sleeps, h.limited.Load())
	}

	h, _ = probed(http.Header{"Ratelimit-Policy": {`"default";q=50;w=1`}})
	if h.ramping.Load() || float64(h.lim.Load().Limit()) != 50*headerHeadroom {
		t.Errorf("a quota declared by the probe's answer: ramping %v at %v, want the declared pace", h.ramping.Load(), h.lim.Load().Limit())
	}

	h, clk = probed(nil)
	for range 19 {
		answerWith(h, clk, 200, nil)
	}
	answerWith(h, clk, 429, http.Header{"Retry-After": {"1"}})
	if h.ramping.Load() || float64(h.lim.Load().Limit()) != 2*20 {
		t.Errorf("a refusal during the ramp: ramping %v at %v, want the first cut, to twice the 20 accepted a second",
			h.ramping.Load(), h.lim.Load().Limit())
	}
}

// TestPaceResumesWithTheBurstTheHostAccepted checks that after the first
// refusals' Retry-After pause, half as many callers as the host accepted
// at once before it refused go at once, and the rest at the new pace: the
// server's bucket has refilled during the pause, and half leaves room for
// other clients that were refused with this one and resume with it.
func TestPaceResumesWithTheBurstTheHostAccepted(t *testing.T) {
	clk := &eventClock{now: time.Unix(1_800_000_000, 0), event: func(time.Time) {}}
	h := newHostLimiter(LimiterSettings{NoFirstContactProbe: true}, DefaultMaxRetryAfter, clk.now)
	req, _ := http.NewRequest(http.MethodGet, "http://h/v1/items", nil)
	answer := func(status int, header http.Header) {
		var a answer
		a.read(&http.Response{StatusCode: status, Header: header, Request: req}, nil, clk)
		h.observe(&a, clk)
	}
	for range 20 {
		answer(200, nil)
	}
	answer(429, http.Header{"Retry-After": {"1"}})
	if got := float64(h.lim.Load().Limit()); got != 40 {
		t.Fatalf("pace after the first refusal %v, want 40 (twice the 20 accepted a second)", got)
	}
	clk.now = clk.now.Add(time.Second) // the pause is over
	for range 25 {
		if _, err := h.wait(context.Background(), "h", clk); err != nil {
			t.Fatal(err)
		}
	}
	var want []time.Duration
	for range 15 {
		want = append(want, 25*time.Millisecond)
	}
	if fmt.Sprint(clk.sleeps) != fmt.Sprint(want) {
		t.Errorf("25 callers after the pause waited %v, want 10 at once and the rest %v apart", clk.sleeps, 25*time.Millisecond)
	}
}

// A wave of refusals is one cut for the requests queued before it, and
// every refusal of a request queued after it, once waveTime has passed,
// is a further cut: the cut fell short while other clients spend the same
// quota. The count of cuts an attempt noted when it joined the queue is
// what tells them apart.
func TestRefusalsQueuedBeforeACutShareIt(t *testing.T) {
	clk := &eventClock{now: time.Unix(1_800_000_000, 0), event: func(time.Time) {}}
	h := newHostLimiter(LimiterSettings{NoFirstContactProbe: true}, DefaultMaxRetryAfter, clk.now)
	req, _ := http.NewRequest(http.MethodGet, "http://h/v1/items", nil)
	answer := func(status int, cuts uint32) {
		var a answer
		a.read(&http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"1"}}, Request: req}, nil, clk)
		a.cuts = cuts
		h.observe(&a, clk)
	}
	for range 50 {
		answer(200, 0)
	}
	answer(429, 0) // the first wave: the host pauses, the pace is cut once
	clk.now = clk.now.Add(2 * time.Second)
	for range 50 {
		answer(200, 1)
	}
	queued := h.cuts() // these requests joined the queue before the next cut
	pace := h.lim.Load().Limit()
	answer(429, queued)
	cut := h.lim.Load().Limit()
	if cut >= pace || h.cuts() != queued+1 {
		t.Fatalf("a refusal after the pause: pace %v from %v, cuts %d from %d; want one cut", cut, pace, h.cuts(), queued)
	}
	for range 3 {
		answer(429, queued) // in flight with it: one wave
	}
	if got := h.lim.Load().Limit(); got != cut || h.cuts() != queued+1 {
		t.Errorf("refusals of requests queued before the cut: pace %v, cuts %d; want %v and %d", got, h.cuts(), cut, queued+1)
	}
	answer(429, h.cuts()) // queued after the cut, but a gateway's queue may hold older ones still
	if got := h.lim.Load().Limit(); got != cut || h.cuts() != queued+1 {
		t.Errorf("a refusal within waveTime of the cut: pace %v, cuts %d; want %v and %d", got, h.cuts(), cut, queued+1)
	}
	clk.now = clk.now.Add(waveTime)
	answer(429, queued) // queued before the cut and slow to come back (a slow upstream): still its wave
	if got := h.lim.Load().Limit(); got != cut || h.cuts() != queued+1 {
		t.Errorf("a late refusal of a request queued before the cut: pace %v, cuts %d; want %v and %d", got, h.cuts(), cut, queued+1)
	}
	answer(429, h.cuts()) // queued after the cut, refused past waveTime: it fell short
	if got := h.lim.Load().Limit(); got >= cut || h.cuts() != queued+2 {
		t.Errorf("a refusal of a request queued after the cut: pace %v, cuts %d; want below %v and %d", got, h.cuts(), cut, queued+2)
	}
}

// Past slow start, a client refused at a pace above what the host took
// at the last refusal cuts to just under what it now takes, as one alone
// on the host would; refused below it, it is one of several spending the
// quota, and cuts by steadyFactor, not to just under its own share.
func TestCrowdedClientCutsItsShare(t *testing.T) {
	setup := func(measured float64) (*hostLimiter, *eventClock, func(int)) {
		clk := &eventClock{now: time.Unix(1_800_000_000, 0), event: func(time.Time) {}}
		h := newHostLimiter(LimiterSettings{NoFirstContactProbe: true}, DefaultMaxRetryAfter, clk.now)
		req, _ := http.NewRequest(http.MethodGet, "http://h/v1/items", nil)
		answer := func(status int) {
			var a answer
			a.read(&http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"1"}}, Request: req}, nil, clk)
			a.cuts = h.cuts()
			h.observe(&a, clk)
		}
		h.mu.Lock()
		h.decreases, h.measured = 2, measured
		h.mu.Unlock()
		h.adapting.Store(true)
		h.setLimit(100, clk.now)
		for range 60 { // 110 a second accepted over the last half second
			clk.now = clk.now.Add(9 * time.Millisecond)
			answer(200)
		}
		h.lim.Load().SetLimitAt(clk.now, 105)
		return h, clk, answer
	}
	h, _, answer := setup(90) // refused above what the host took last time
	answer(429)
	if got := float64(h.lim.Load().Limit()); got < 100 || got >= 105 {
		t.Errorf("refused above the last measure at 105 a second: pace %v, want just under the 110 a second it got", got)
	}
	h, _, answer = setup(120) // refused below it: others take the rest
	answer(429)
	if got := float64(h.lim.Load().Limit()); got != 105*steadyFactor {
		t.Errorf("refused below the last measure at 105 a second: pace %v, want %v", got, 105*steadyFactor)
	}
}

// Past slow start the pace climbs by an amount per second that is the
// same for every client refused in the same first wave (a share of the
// pace that wave set, or timeRaise, whichever is more), doubling with
// each second without a cut: clients that share a quota even out, and a
// host that first took many requests is climbed back to as fast.
func TestClimbPastSlowStartScalesWithTheFirstCut(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct{ base, want float64 }{
		{400, climbShare * 400 * 2 * 0.1}, // 1 s calm doubles it; 100 ms since the last raise
		{20, timeRaise * 2 * 0.1},
	} {
		h := newHostLimiter(LimiterSettings{}, DefaultMaxRetryAfter, now)
		h.decreases, h.basePace = 2, tc.base
		h.lastCut, h.lastRaise = now.Add(-time.Second), now.Add(-100*time.Millisecond)
		if got := h.raiseStep(50, now); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("first cut's pace %v: a raise 100 ms after the last, 1 s after a cut, of %v, want %v", tc.base, got, tc.want)
		}
	}
}
