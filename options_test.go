package resilienthttp_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// A nil argument to an option means that option's default, even after an
// earlier option set something else; so does a nil Option. Each client here
// retries a GET answered 500, 500, 200.
func TestNilOptionsMeanDefaults(t *testing.T) {
	tests := []struct {
		name   string
		opt    resilienthttp.Option
		sleeps int // waits the fake clock set before opt should see
	}{
		{"WithClock(nil)", resilienthttp.WithClock(nil), 0}, // the system clock waits instead
		{"WithRandom(nil)", resilienthttp.WithRandom(nil), 2},
		{"WithTransport(nil)", resilienthttp.WithTransport(nil), 2},
		{"WithPrepareRetry(nil)", resilienthttp.WithPrepareRetry(nil), 2},
		{"WithCredentialRefresh(nil)", resilienthttp.WithCredentialRefresh(nil), 2},
		{"WithIdempotencyKeys(nil)", resilienthttp.WithIdempotencyKeys(nil), 2},
		{"WithLogger(nil)", resilienthttp.WithLogger(nil), 2},
		{"WithRetryHook(nil)", resilienthttp.WithRetryHook(nil), 2},
		{"WithHostKey(nil)", resilienthttp.WithHostKey(nil), 2},
		{"nil Option", nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/flaky", servicetest.Statuses(500, 500, 200)...)
			c, clk := newClient(t,
				resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: time.Millisecond}), // real waits stay short
				tt.opt)
			resp, err := do(t, c, http.MethodGet, srv.URL+"/flaky", nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || srv.Total() != 3 {
				t.Fatalf("status %d after %d attempts, want 200 after 3", resp.StatusCode, srv.Total())
			}
			if got := len(clk.Sleeps()); got != tt.sleeps {
				t.Errorf("fake clock asked for %d waits, want %d", got, tt.sleeps)
			}
		})
	}
}
