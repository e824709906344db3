package resilienthttp_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

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
