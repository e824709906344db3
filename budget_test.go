package resilienthttp_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

func TestRetryBudgetBoundsAnOutage(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Statuses(500)...)
	c, _ := newClient(t, resilienthttp.WithoutBreaker())
	var stopped int
	for i := 0; i < 50; i++ {
		_, err := do(t, c, http.MethodGet, srv.URL+"/", nil)
		var apiErr *resilienthttp.APIError
		if errors.As(err, &apiErr) && apiErr.Reason == resilienthttp.StopBudgetExhausted {
			stopped++
		}
	}
	// 100 tokens, one per failure; a retry needs more than 50 left: the
	// first 12 calls make 4 attempts each (52 left), the 13th makes 2 and
	// stops at 50, and every call after it makes one.
	if got := srv.Total(); got != 12*4+2+37 {
		t.Errorf("server saw %d attempts for 50 calls, want 87", got)
	}
	if stopped != 38 {
		t.Errorf("%d calls stopped by the budget, want 38", stopped)
	}

	// Successes earn the retries back: more than half the tokens.
	srv.Script("/", servicetest.Statuses(200)...)
	for i := 0; i < 51; i++ {
		do(t, c, http.MethodGet, srv.URL+"/ok", nil)
	}
	srv.Script("/flaky", servicetest.Statuses(502, 200)...)
	if _, err := do(t, c, http.MethodGet, srv.URL+"/flaky", nil); err != nil {
		t.Fatalf("after recovery: %v, want the retry allowed again", err)
	}
}

func TestRetryBudgetRidesOutABrownout(t *testing.T) {
	srv := servicetest.NewServer(t, servicetest.WithFailureRatio(0.3, []int{500, 502, 504}, 1))
	c, _ := newClient(t)
	failed := 0
	for i := 0; i < 1000; i++ {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); err != nil {
			failed++
		}
	}
	// 0.3⁴ of calls fail all four attempts: 0.81%.
	if failed > 10 {
		t.Errorf("%d of 1000 calls failed with 30%% of attempts failing; want at most 1%%", failed)
	}
	if per := float64(srv.Total()) / 1000; per > 1.5 {
		t.Errorf("%.2f attempts per call, want at most 1.5", per)
	}
}

func TestRetryAfterNeedsNoBudget(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/", servicetest.Step{Status: 503, RetryAfter: "1"})
	c, _ := newClient(t, resilienthttp.WithoutBreaker(), resilienthttp.WithRetryBudget(resilienthttp.RetryBudget{MaxTokens: 1}))
	for i := 0; i < 5; i++ {
		do(t, c, http.MethodGet, srv.URL+"/", nil)
	}
	if got := srv.Total(); got != 20 {
		t.Errorf("server saw %d attempts, want 20: retries the server asked for are not budgeted", got)
	}
}
