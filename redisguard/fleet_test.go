package redisguard_test

import (
	"context"
	"github.com/redis/go-redis/v9"
	"github.com/resilienthttp/resilienthttp/redisguard"
	"os"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp/redisguard/internal/fleet"
	"github.com/resilienthttp/resilienthttp/redisguard/internal/redistest"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

func TestMain(m *testing.M) {
	// The tests kill Redis on purpose: go-redis's log of every failed
	// dial would bury the tests' own output.
	redis.SetLogger(quiet{})
	fleet.RunIfReplica() // a replica of a fleet test: this process is one
	os.Exit(m.Run())
}

// quiet is a go-redis logger that logs nothing.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// runFleet runs n replicas of job, each this test binary started again,
// and returns their reports.
func runFleet(t *testing.T, n int, job fleet.Job, onHalf func()) []fleet.Report {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reps, err := fleet.Run(exe, []string{"-test.run=^$"}, n, job, onHalf)
	if err != nil {
		t.Fatal(err)
	}
	return reps
}

// sum adds f over the reports.
func sum(reps []fleet.Report, f func(fleet.Report) int) int {
	n := 0
	for _, r := range reps {
		n += f(r)
	}
	return n
}

func TestFleetBreakerTripsOnceForAllReplicas(t *testing.T) {
	srv := redistest.Start(t)
	svc := servicetest.NewServer(t)
	svc.Script("/", servicetest.Statuses(500)...)
	reps := runFleet(t, 4, fleet.Job{Redis: srv.Addr, URL: svc.URL, Calls: 25, Workers: 2}, nil)
	if got := svc.Total(); got > 12 {
		t.Errorf("the server saw %d attempts from 4 replicas, want at most 12: one breaker for the fleet", got)
	}
	if got := sum(reps, func(r fleet.Report) int { return r.Failed }); got != 100 {
		t.Errorf("%d of 100 calls failed, want all: the host is down", got)
	}
	if got := sum(reps, func(r fleet.Report) int { return r.Open }); got < 88 {
		t.Errorf("%d calls refused by the open breaker, want at least 88; reports %+v", got, reps)
	}

	// Without the store each replica's breaker must fail on its own.
	local := servicetest.NewServer(t)
	local.Script("/", servicetest.Statuses(500)...)
	runFleet(t, 4, fleet.Job{URL: local.URL, Calls: 25, Workers: 2}, nil)
	if got := local.Total(); got <= 12 {
		t.Errorf("local guards: the server saw %d attempts, want more than 12 (the fleet's figure means nothing otherwise)", got)
	}
	t.Logf("attempts at the server: shared %d, local %d", svc.Total(), local.Total())
}

// budgetSlack is what the scheduler of a busy 2-core machine may add to
// a budgeted Redis call: the assertions below allow it, no more.
const budgetSlack = 25 * time.Millisecond

func TestFleetSurvivesRedisKilledMidRun(t *testing.T) {
	srv := redistest.Start(t)
	svc := servicetest.NewServer(t, servicetest.WithRateLimit(400, 40), servicetest.WithRateLimitHeaders(servicetest.IETFHeaders))
	job := fleet.Job{Redis: srv.Addr, URL: svc.URL, Calls: 100, Workers: 4, Half: true}
	reps := runFleet(t, 4, job, func() {
		if err := srv.Kill(); err != nil {
			t.Error(err)
		}
	})
	for i, r := range reps {
		if r.Failed != 0 {
			t.Errorf("replica %d: %d calls failed, want 0: %v", i, r.Failed, r.Errors)
		}
		if r.Takes == 0 {
			t.Errorf("replica %d never took from the fleet's bucket: the test does not test the kill", i)
		}
		if d := time.Duration(r.MaxTakeUs) * time.Microsecond; d > redisguard.DefaultBudget+budgetSlack {
			t.Errorf("replica %d: a call waited %v for Redis, past the budget %v", i, d, redisguard.DefaultBudget)
		}
	}
	// A replica may have ended before the kill; the one that said
	// "half" had not.
	if !reps[0].Store.Down {
		t.Errorf("replica 0's store is not down after Redis was killed: %+v", reps[0].Store)
	}
	t.Logf("reports: %+v", reps)
}

func TestFleetWorksWithRedisDownFromTheStart(t *testing.T) {
	srv := redistest.Start(t)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	svc := servicetest.NewServer(t, servicetest.WithRateLimit(400, 40), servicetest.WithRateLimitHeaders(servicetest.IETFHeaders))
	reps := runFleet(t, 2, fleet.Job{Redis: srv.Addr, URL: svc.URL, Calls: 50, Workers: 4}, nil)
	for i, r := range reps {
		if r.Failed != 0 {
			t.Errorf("replica %d: %d calls failed, want 0: %v", i, r.Failed, r.Errors)
		}
		if d := time.Duration(r.MaxTakeUs) * time.Microsecond; d > redisguard.DefaultBudget+budgetSlack {
			t.Errorf("replica %d: a call waited %v for Redis, past the budget %v", i, d, redisguard.DefaultBudget)
		}
		if !r.Store.Down || r.Store.Failures == 0 {
			t.Errorf("replica %d: store %+v, want down after a failure", i, r.Store)
		}
	}
	t.Logf("reports: %+v", reps)
}
