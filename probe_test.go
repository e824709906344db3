package resilienthttp_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestPanickingProbeDoesNotWedgeTheHost checks that a base transport
// panicking on a new host's first request lets the panic reach the caller
// and passes the probe's turn on: the next call to the host goes at once as
// the new probe, instead of waiting behind a probe that will never answer.
func TestPanickingProbeDoesNotWedgeTheHost(t *testing.T) {
	srv := servicetest.NewServer(t)
	var calls atomic.Int32
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			panic("base transport broke")
		}
		return srv.Client().Transport.RoundTrip(req)
	})
	c, clk := newClient(t, resilienthttp.WithTransport(base))
	func() {
		defer func() {
			if r := recover(); r != "base transport broke" {
				t.Fatalf("recovered %v, want the base transport's panic", r)
			}
		}()
		do(t, c, http.MethodGet, srv.URL+"/", nil)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("the call after the panic: %v", err)
	}
	resp.Body.Close()
	if waits := clk.Sleeps(); len(waits) != 0 {
		t.Errorf("the call after the panic waited %v, want none: it should be the new probe", waits)
	}
}
