package resilienthttp_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// newClient returns a client whose waits are recorded by a fake clock and
// whose jitter always draws the middle of its range.
func newClient(t *testing.T, opts ...resilienthttp.Option) (*resilienthttp.Client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	c := resilienthttp.New(append([]resilienthttp.Option{
		resilienthttp.WithClock(clk),
		resilienthttp.WithRandom(constRand(0.5)),
	}, opts...)...)
	t.Cleanup(c.CloseIdleConnections)
	return c, clk
}

func do(t *testing.T, c *resilienthttp.Client, method, url string, body io.Reader) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

func TestAPIErrorReadsBoundedBodyAndReusesConnection(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/e", servicetest.Step{Status: 404, Body: `{"error_code":"IAM.0003","error_msg":"user not found"}` + strings.Repeat(" ", 100<<10)})
	c, _ := newClient(t)
	for i := 0; i < 5; i++ {
		_, err := do(t, c, http.MethodGet, srv.URL+"/e", nil)
		var apiErr *resilienthttp.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("err = %v, want *APIError", err)
		}
		if len(apiErr.Body) != resilienthttp.MaxErrorBody {
			t.Fatalf("kept %d bytes of body, want %d", len(apiErr.Body), resilienthttp.MaxErrorBody)
		}
	}
	if got := srv.ConnsAccepted(); got != 1 {
		t.Errorf("server accepted %d connections for 5 sequential calls, want 1", got)
	}
}

func TestStandardClientKeepsNetHTTPContract(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/missing", servicetest.Statuses(404)...)
	srv.Script("/flaky", servicetest.Statuses(502, 200)...)
	c, _ := newClient(t)
	hc := c.StandardClient()
	resp, err := hc.Get(srv.URL + "/missing")
	if err != nil || resp.StatusCode != 404 {
		t.Fatalf("got %v, %v; want a 404 response", resp, err)
	}
	resp.Body.Close()
	resp, err = hc.Get(srv.URL + "/flaky")
	if err != nil || resp.StatusCode != 200 || srv.Attempts("/flaky") != 2 {
		t.Fatalf("got %v, %v after %d attempts; want 200 after 2", resp, err, srv.Attempts("/flaky"))
	}
	resp.Body.Close()
}

func TestErrorNamesWhatHappened(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v3/users/u1", servicetest.Step{Status: 404, Body: `{"error_code":"IAM.0003","error_msg":"user not found"}`,
		Header: http.Header{"X-Request-Id": {"4f2a"}}})
	c, _ := newClient(t)
	_, err := do(t, c, http.MethodGet, srv.URL+"/v3/users/u1?token=s3cret&limit=1", nil)
	msg := err.Error()
	for _, want := range []string{"GET " + srv.URL + "/v3/users/u1", "404 Not Found", "IAM.0003", "user not found", "request id 4f2a", "1 attempt)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, missing %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret") || strings.Contains(fmt.Sprintf("%+v %#v", err, err), "s3cret") {
		t.Errorf("error text carries the token: %q", msg)
	}
}

// Through StandardClient net/http's *url.Error names the method and URL; the
// client's own text inside it does not name them again, and still says what
// the client did.
func TestStandardClientErrorNamesTheURLOnce(t *testing.T) {
	srv := servicetest.NewServer(t)
	url := srv.URL + "/v3/users"
	srv.Close() // nothing listens: connection refused, retried, then given up
	c, _ := newClient(t, resilienthttp.WithoutBreaker(), resilienthttp.WithoutRateLimit())
	_, err := c.StandardClient().Get(url)
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if n := strings.Count(msg, url); n != 1 {
		t.Errorf("error names the URL %d times, want once: %q", n, msg)
	}
	if !strings.Contains(msg, "4 attempts") || !strings.Contains(msg, string(resilienthttp.StopAttemptsExhausted)) {
		t.Errorf("error does not say what the client did: %q", msg)
	}
	var reqErr *resilienthttp.RequestError
	if !errors.As(err, &reqErr) || reqErr.URL != url || reqErr.Method != http.MethodGet {
		t.Errorf("errors.As: %+v, want a *RequestError that still has the method and URL", reqErr)
	}
	// Through Do the error stands alone and names them itself.
	_, err = do(t, c, http.MethodGet, url, nil)
	if !strings.HasPrefix(err.Error(), "GET "+url+": ") {
		t.Errorf("Do's error %q does not start with the method and URL", err)
	}
}

// Generated OpenAPI clients read and close an error response's body before
// the SDK asks ParseAPIError about it: the client kept what it read.
func TestParseAPIErrorAfterTheCallerReadTheBody(t *testing.T) {
	const doc = `{"error_code":"IAM.0003","error_msg":"user not found"}`
	srv := servicetest.NewServer(t)
	srv.Script("/v3/users/u1", servicetest.Step{Status: 404, Body: doc})
	srv.Script("/v3/users/big", servicetest.Step{Status: 500, Body: doc, BodySize: 2 * resilienthttp.MaxErrorBody})
	c, _ := newClient(t)
	resp, err := c.StandardClient().Get(srv.URL + "/v3/users/u1")
	if err != nil {
		t.Fatal(err)
	}
	read, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(read) != doc {
		t.Fatalf("caller read %q, %v; want the whole body", read, err)
	}
	e := resilienthttp.ParseAPIError(resp)
	if e.Code != "IAM.0003" || e.Message != "user not found" || string(e.Body) != doc || e.Truncated {
		t.Errorf("ParseAPIError after the caller's read: %+v", *e)
	}
	// A body longer than MaxErrorBody: the caller reads all of it, the
	// error keeps its head, marked truncated.
	resp, err = c.StandardClient().Get(srv.URL + "/v3/users/big")
	if err != nil {
		t.Fatal(err)
	}
	read, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	e = resilienthttp.ParseAPIError(resp)
	if len(read) != 2*resilienthttp.MaxErrorBody || len(e.Body) != resilienthttp.MaxErrorBody || !e.Truncated || e.Code != "IAM.0003" {
		t.Errorf("caller read %d bytes; error kept %d, truncated %v, code %q", len(read), len(e.Body), e.Truncated, e.Code)
	}
}

// pollUntil reports whether cond holds within d, checking it every
// millisecond. It is for effects that arrive on another goroutine with no
// event to wait on, such as the server noticing a closed connection.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// After a brownout, the *http.Client from StandardClient closes the client's
// idle connections when asked, as net/http's own clients do.
func TestStandardClientCloseIdleConnections(t *testing.T) {
	srv := servicetest.NewServer(t, servicetest.WithFailureRatio(0.3, []int{500, 502, 503, 504}, 7))
	c, _ := newClient(t)
	sc := c.StandardClient()
	const goroutines, calls = 16, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < calls; i += goroutines {
				resp, err := sc.Get(srv.URL + "/p" + strconv.Itoa(i%5))
				if err != nil {
					if !errors.Is(err, resilienthttp.ErrCircuitOpen) {
						t.Error(err)
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	open := srv.ConnsOpen()
	if open == 0 {
		t.Fatal("no connection open after the calls: nothing to close")
	}
	sc.CloseIdleConnections()
	if !pollUntil(5*time.Second, func() bool { return srv.ConnsOpen() == 0 }) {
		t.Fatalf("%d of %d connections still open 5s after CloseIdleConnections, want 0", srv.ConnsOpen(), open)
	}
}

// countingTransport stands in for a RoundTripper an application put in
// http.DefaultTransport (a tracing or metrics wrapper).
type countingTransport struct {
	rt *http.Transport
	n  atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(req)
}

func (c *countingTransport) CloseIdleConnections() { c.rt.CloseIdleConnections() }

// An application or a test may replace http.DefaultTransport with any
// RoundTripper; the client then sends through it instead of panicking.
// Not parallel: it changes a global.
func TestReplacedDefaultTransport(t *testing.T) {
	orig := http.DefaultTransport
	wrapper := &countingTransport{rt: orig.(*http.Transport).Clone()}
	http.DefaultTransport = wrapper
	t.Cleanup(func() {
		http.DefaultTransport = orig
		wrapper.rt.CloseIdleConnections()
	})
	srv := servicetest.NewServer(t)
	srv.Script("/flaky", servicetest.Statuses(502, 200)...)

	c, _ := newClient(t) // New must not panic
	if _, err := do(t, c, http.MethodGet, srv.URL+"/flaky", nil); err != nil {
		t.Fatal(err)
	}
	if got := wrapper.n.Load(); got != 2 || srv.Total() != 2 {
		t.Fatalf("replaced DefaultTransport carried %d of %d attempts, want 2 of 2", got, srv.Total())
	}

	var zero resilienthttp.Client // initialised on first use, from the same default
	t.Cleanup(zero.CloseIdleConnections)
	if _, err := do(t, &zero, http.MethodGet, srv.URL+"/ok", nil); err != nil {
		t.Fatal(err)
	}
	if got := wrapper.n.Load(); got != 3 {
		t.Fatalf("replaced DefaultTransport carried %d attempts after the zero Client's call, want 3", got)
	}
}

// The zero Client, declared or from new, is ready to use: it retries a 503
// that carries Retry-After as New() does, through Do and StandardClient,
// waiting at least as long as asked. The calls run at once, since each waits
// a real second: the zero Client has the system clock.
func TestZeroClientWorksLikeNew(t *testing.T) {
	srv := servicetest.NewServer(t)
	type call struct {
		name     string
		c        *resilienthttp.Client
		standard bool // through StandardClient
		status   int
		err      error
	}
	var cases []call
	for _, cc := range []struct {
		name string
		make func() *resilienthttp.Client
	}{
		{"New()", func() *resilienthttp.Client { return resilienthttp.New() }},
		{"var Client", func() *resilienthttp.Client { var c resilienthttp.Client; return &c }},
		{"new(Client)", func() *resilienthttp.Client { return new(resilienthttp.Client) }},
	} {
		for _, via := range []string{"Do", "StandardClient"} {
			c := cc.make()
			t.Cleanup(c.CloseIdleConnections)
			cases = append(cases, call{name: cc.name + "/" + via, c: c, standard: via == "StandardClient"})
		}
	}
	var wg sync.WaitGroup
	for i := range cases {
		cs := &cases[i]
		path := "/busy/" + strconv.Itoa(i)
		srv.Script(path, servicetest.Step{Status: 503, RetryAfter: "1"}, servicetest.Step{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			var resp *http.Response
			if cs.standard {
				resp, cs.err = cs.c.StandardClient().Do(req)
			} else {
				resp, cs.err = cs.c.Do(req)
			}
			if resp != nil {
				cs.status = resp.StatusCode
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	reqs := srv.Requests()
	for i, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			var times []time.Time
			for _, r := range reqs {
				if r.Path == "/busy/"+strconv.Itoa(i) {
					times = append(times, r.Time)
				}
			}
			if cs.err != nil || cs.status != 200 || len(times) != 2 {
				t.Fatalf("got %d, %v after %d attempts; want 200 after 2", cs.status, cs.err, len(times))
			}
			if gap := times[1].Sub(times[0]); gap < time.Second {
				t.Errorf("retried after %v, want at least the 1s Retry-After asked", gap)
			}
		})
	}
}

// The first calls on a zero Client may come from many goroutines at once;
// it is initialised once (the race detector checks how).
func TestZeroClientConcurrentFirstUse(t *testing.T) {
	srv := servicetest.NewServer(t)
	c := new(resilienthttp.Client)
	t.Cleanup(c.CloseIdleConnections)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	if srv.Total() != 16 {
		t.Errorf("server saw %d requests, want 16", srv.Total())
	}
}

// A client keeps its own copy of the request-id header names: changing the
// caller's slice, or DefaultRequestIDHeaders, after New changes nothing.
// Not parallel: it changes a global.
func TestRequestIDHeadersAreCopied(t *testing.T) {
	header := http.Header{"X-Request-Id": {"from-request-id"}, "X-Trace": {"from-trace"}, "X-Other": {"from-other"}}
	requestID := func(t *testing.T, c *resilienthttp.Client) string {
		t.Helper()
		srv := servicetest.NewServer(t)
		srv.Script("/id", servicetest.Step{Status: 404, Header: header})
		_, err := do(t, c, http.MethodGet, srv.URL+"/id", nil)
		return asAPIError(t, err).RequestID
	}
	t.Run("WithRequestIDHeaders", func(t *testing.T) {
		names := []string{"X-Trace"}
		c, _ := newClient(t, resilienthttp.WithRequestIDHeaders(names...))
		names[0] = "X-Other"
		if got := requestID(t, c); got != "from-trace" {
			t.Errorf("RequestID = %q, want %q from X-Trace", got, "from-trace")
		}
	})
	t.Run("DefaultRequestIDHeaders", func(t *testing.T) {
		saved := slices.Clone(resilienthttp.DefaultRequestIDHeaders)
		t.Cleanup(func() { copy(resilienthttp.DefaultRequestIDHeaders, saved) })
		c, _ := newClient(t)
		resilienthttp.DefaultRequestIDHeaders[0] = "X-Other"
		if got := requestID(t, c); got != "from-request-id" {
			t.Errorf("RequestID = %q, want %q from X-Request-Id", got, "from-request-id")
		}
	})
}
