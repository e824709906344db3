package resilienthttp_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// asAPIError returns the *APIError in err's chain, failing the test if there
// is none.
func asAPIError(t *testing.T, err error) *resilienthttp.APIError {
	t.Helper()
	var apiErr *resilienthttp.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v (%T), want an *APIError", err, err)
	}
	return apiErr
}

// asRequestError returns the *RequestError in err's chain, failing the test
// if there is none.
func asRequestError(t *testing.T, err error) *resilienthttp.RequestError {
	t.Helper()
	var reqErr *resilienthttp.RequestError
	if !errors.As(err, &reqErr) {
		t.Fatalf("err = %v (%T), want a *RequestError", err, err)
	}
	return reqErr
}

// checkDisplaySafe fails unless every text field of e is what a caller can
// print or log as is: valid UTF-8, one line, within its documented bound.
func checkDisplaySafe(t *testing.T, e *resilienthttp.APIError) {
	t.Helper()
	for _, f := range []struct {
		name  string
		value string
		max   int
	}{
		{"Code", e.Code, 128}, {"Title", e.Title, 128}, {"Type", e.Type, 128}, {"RequestID", e.RequestID, 128},
		{"Message", e.Message, 512}, {"Detail", e.Detail, 512}, {"Instance", e.Instance, 512},
		{"Error()", e.Error(), 2048},
	} {
		if !utf8.ValidString(f.value) || strings.ContainsAny(f.value, "\r\n\x00") || len(f.value) > f.max {
			t.Errorf("%s = %q (%d bytes): want valid UTF-8 on one line, at most %d bytes", f.name, f.value, len(f.value), f.max)
		}
	}
}

// rawBody fetches path with a plain client and returns the body and header
// the server sends, to compare with what the client kept.
func rawBody(t *testing.T, srv *servicetest.Server, method, path string) ([]byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body) // faulted steps end early; what arrived is the point
	return b, resp.Header
}

// TestAPIErrorFromEveryBodyFormat sends each error document shape the
// services use through Client.Do and checks every field of the *APIError an
// SDK reads.
func TestAPIErrorFromEveryBodyFormat(t *testing.T) {
	const path = "/v3/users/u1"
	tests := []struct {
		name   string
		method string
		step   servicetest.Step
		want   resilienthttp.APIError // the parsed fields only
	}{
		{"error_code", "GET",
			servicetest.Step{Status: 404, Format: servicetest.FormatErrorCode, Code: "IAM.0003", Message: "user not found"},
			resilienthttp.APIError{Code: "IAM.0003", Message: "user not found"}},
		{"nested error, numeric code", "GET",
			servicetest.Step{Status: 401, Format: servicetest.FormatNestedError, Code: "401", Message: "token expired"},
			resilienthttp.APIError{Code: "401", Message: "token expired", Title: "Unauthorized"}},
		{"nested error, string code", "GET",
			servicetest.Step{Status: 403, Format: servicetest.FormatNestedError, Code: "IAM.0002", Message: "no permission"},
			resilienthttp.APIError{Code: "IAM.0002", Message: "no permission", Title: "Forbidden"}},
		{"code and message", "GET",
			servicetest.Step{Status: 404, Format: servicetest.FormatCodeMessage, Code: "APIGW.0101", Message: "api not found"},
			resilienthttp.APIError{Code: "APIGW.0101", Message: "api not found"}},
		{"camel case", "GET",
			servicetest.Step{Status: 409, Format: servicetest.FormatErrorCodeCamel, Code: "VPC.0409", Message: "subnet in use"},
			resilienthttp.APIError{Code: "VPC.0409", Message: "subnet in use"}},
		{"OAuth", "POST",
			servicetest.Step{Status: 400, Format: servicetest.FormatOAuth, Code: "invalid_grant", Message: "refresh token expired"},
			resilienthttp.APIError{Code: "invalid_grant", Message: "refresh token expired"}},
		{"RFC 9457 problem", "GET",
			servicetest.Step{Status: 403, Format: servicetest.FormatProblem, Code: "https://example.com/probs/out-of-credit", Message: "balance 30, cost 50"},
			resilienthttp.APIError{Message: "balance 30, cost 50", Title: "Forbidden", Detail: "balance 30, cost 50",
				Type: "https://example.com/probs/out-of-credit", Instance: path}},
		{"HTML gateway page", "POST", // POST: a 502 is final at once
			servicetest.Step{Status: 502, Format: servicetest.FormatHTML, Message: "upstream <b>down</b>, see https://status.example.com"},
			resilienthttp.APIError{Message: "502 Bad Gateway"}},
		{"HTML labelled as JSON", "GET",
			servicetest.Step{Status: 404, Body: "<html><head><title>404 Not Found</title></head><body><h1>nginx</h1></body></html>",
				Header: http.Header{"Content-Type": {"application/json"}}},
			resilienthttp.APIError{Message: "404 Not Found"}},
		{"plain text", "GET",
			servicetest.Step{Status: 400, Format: servicetest.FormatText, Code: "LB.1", Message: "bad request line"},
			resilienthttp.APIError{Message: "LB.1: bad request line"}},
		{"empty body", "GET",
			servicetest.Step{Status: 404, Format: servicetest.FormatEmpty},
			resilienthttp.APIError{}},
		{"JSON labelled as text/plain", "GET",
			servicetest.Step{Status: 400, Body: `{"error_code":"OBS.0001","error_msg":"bucket name invalid"}`,
				Header: http.Header{"Content-Type": {"text/plain; charset=utf-8"}}},
			resilienthttp.APIError{Code: "OBS.0001", Message: "bucket name invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script(path, tt.step)
			c, _ := newClient(t)
			var body io.Reader
			if tt.method == http.MethodPost {
				body = strings.NewReader(`{"name":"u1"}`)
			}
			resp, err := do(t, c, tt.method, srv.URL+path, body)
			if resp != nil {
				t.Fatalf("got a %d response, want none", resp.StatusCode)
			}
			e := asAPIError(t, err)
			checkDisplaySafe(t, e)
			if srv.Attempts(path) != 1 {
				t.Errorf("server saw %d attempts, want 1", srv.Attempts(path))
			}
			got := resilienthttp.APIError{Code: e.Code, Message: e.Message, Title: e.Title, Detail: e.Detail, Type: e.Type, Instance: e.Instance}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Errorf("parsed fields:\n got %+v\nwant %+v", got, tt.want)
			}
			if e.StatusCode != tt.step.Status || e.Attempts != 1 || e.Method != tt.method || e.URL != srv.URL+path ||
				e.RequestID != "req-1" || e.Reason != resilienthttp.StopNotRetryable || e.Truncated {
				t.Errorf("got StatusCode %d, Attempts %d, Method %q, URL %q, RequestID %q, Reason %q, Truncated %v;\n"+
					"want %d, 1, %q, %q, req-1, %q, false",
					e.StatusCode, e.Attempts, e.Method, e.URL, e.RequestID, e.Reason, e.Truncated,
					tt.step.Status, tt.method, srv.URL+path, resilienthttp.StopNotRetryable)
			}
			sent, header := rawBody(t, srv, tt.method, path)
			if !bytes.Equal(e.Body, sent) {
				t.Errorf("Body = %q, want what the server sent, %q", e.Body, sent)
			}
			if e.Header.Get("X-Request-Id") != "req-1" || e.Header.Get("Content-Type") != header.Get("Content-Type") ||
				e.Header.Get("Content-Length") != header.Get("Content-Length") {
				t.Errorf("Header = %v, want the response's, %v", e.Header, header)
			}
			if e.Code != "" && !strings.Contains(err.Error(), e.Code) || e.Message != "" && !strings.Contains(err.Error(), e.Message) {
				t.Errorf("Error() = %q lacks the code or message", err)
			}
		})
	}
}

// TestAPIErrorFromBrokenBodies feeds Do bodies a service or the network can
// mangle. The call must still end in an *APIError for the status, with
// display-safe fields and the bytes that arrived.
func TestAPIErrorFromBrokenBodies(t *testing.T) {
	deep := strings.Repeat("[", 100_000)
	tests := []struct {
		name          string
		step          servicetest.Step
		wantCode      string
		wantMessage   string // "" means: any non-empty excerpt
		wantBody      string // "" means: what a plain client reads
		wantTruncated bool
	}{
		{name: "truncated JSON",
			step:     servicetest.Step{Status: 400, Body: `{"error_code":"IAM.01","error_msg":"unterminat`},
			wantCode: "", wantMessage: `{"error_code":"IAM.01","error_msg":"unterminat`},
		{name: "members of the wrong type",
			step:     servicetest.Step{Status: 400, Body: `{"error_code":{"x":1},"error_msg":["a"],"code":true,"message":null}`},
			wantCode: ""},
		{name: "numeric error_code",
			step:     servicetest.Step{Status: 400, Body: `{"error_code":12345,"error_msg":"numbers are codes too"}`},
			wantCode: "12345", wantMessage: "numbers are codes too"},
		{name: "100k-deep array",
			step:     servicetest.Step{Status: 400, Body: deep},
			wantBody: deep[:resilienthttp.MaxErrorBody], wantTruncated: true},
		{name: "100k-deep array inside an object",
			step:     servicetest.Step{Status: 400, Body: `{"error":` + deep},
			wantBody: (`{"error":` + deep)[:resilienthttp.MaxErrorBody], wantTruncated: true},
		{name: "invalid UTF-8",
			step:     servicetest.Step{Status: 400, Body: "{\"error_code\":\"BAD\xff\",\"error_msg\":\"caf\xc3\x28 \xed\xa0\x80\"}"},
			wantCode: "BAD\uFFFD"},
		{name: "control and bidi characters",
			step:     servicetest.Step{Status: 400, Body: `{"error_code":"A\u0000B","error_msg":"line1\nline2\r\u202etxt\u0007"}`},
			wantCode: "A B", wantMessage: "line1 line2 txt"},
		{name: "binary",
			step:        servicetest.Step{Status: 400, Body: "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", Header: http.Header{"Content-Type": {"application/json"}}},
			wantMessage: "unparseable error body"},
		{name: "reset mid-body", // servicetest sends half the body, then resets
			step:          servicetest.Step{Status: 404, Fault: servicetest.FaultResetMidBody, Body: `{"error_code":"IAM.0003","error_msg":"user not found"}`},
			wantMessage:   `{"error_code":"IAM.0003","e`,
			wantBody:      `{"error_code":"IAM.0003","e`,
			wantTruncated: true},
		{name: "connection closed mid-body",
			step:          servicetest.Step{Status: 409, Fault: servicetest.FaultTruncatedBody, Body: "upstream connect error or disconnect/reset before headers"},
			wantMessage:   "upstream connect error or di",
			wantBody:      "upstream connect error or di",
			wantTruncated: true},
		{name: "Content-Length longer than the body",
			step: servicetest.Step{Status: 404, Body: `{"error_code":"CL.1","error_msg":"short body"}`,
				Header: http.Header{"Content-Length": {"1000"}}},
			wantCode: "CL.1", wantMessage: "short body",
			wantBody: `{"error_code":"CL.1","error_msg":"short body"}`, wantTruncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/broken", tt.step)
			c, _ := newClient(t)
			_, err := do(t, c, http.MethodGet, srv.URL+"/broken", nil)
			e := asAPIError(t, err)
			checkDisplaySafe(t, e)
			if e.StatusCode != tt.step.Status || e.Attempts != 1 || srv.Attempts("/broken") != 1 {
				t.Errorf("StatusCode %d, Attempts %d, server saw %d; want %d, 1, 1", e.StatusCode, e.Attempts, srv.Attempts("/broken"), tt.step.Status)
			}
			if e.Code != tt.wantCode {
				t.Errorf("Code = %q, want %q", e.Code, tt.wantCode)
			}
			if tt.wantMessage != "" && e.Message != tt.wantMessage || tt.wantMessage == "" && e.Message == "" {
				t.Errorf("Message = %q, want %q (or any excerpt if empty)", e.Message, tt.wantMessage)
			}
			want := tt.wantBody
			if want == "" {
				b, _ := rawBody(t, srv, http.MethodGet, "/broken")
				want = string(b)
			}
			if string(e.Body) != want {
				t.Errorf("Body = %.80q (%d bytes), want %.80q (%d bytes)", e.Body, len(e.Body), want, len(want))
			}
			if e.Truncated != tt.wantTruncated {
				t.Errorf("Truncated = %v, want %v", e.Truncated, tt.wantTruncated)
			}
		})
	}
}

// TestAPIErrorFromHugeBody answers with a 1 GiB error body. Do must return
// with the first MaxErrorBody bytes, parsed, without reading or holding the
// rest, also when the status is retried and each attempt gets such a body.
func TestAPIErrorFromHugeBody(t *testing.T) {
	const size = 1 << 30
	for _, tt := range []struct {
		status, attempts int
	}{{404, 1}, {500, resilienthttp.DefaultMaxAttempts}} {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/huge", servicetest.Step{Status: tt.status, Code: "BIG.1", Message: "a gigabyte follows", BodySize: size})
			c, _ := newClient(t)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := do(t, c, http.MethodGet, srv.URL+"/huge", nil)
			runtime.ReadMemStats(&after)
			e := asAPIError(t, err)
			if len(e.Body) != resilienthttp.MaxErrorBody || !e.Truncated {
				t.Errorf("kept %d bytes, Truncated %v; want %d, true", len(e.Body), e.Truncated, resilienthttp.MaxErrorBody)
			}
			if e.Code != "BIG.1" || e.Message != "a gigabyte follows" || e.Attempts != tt.attempts || srv.Attempts("/huge") != tt.attempts {
				t.Errorf("Code %q, Message %q, Attempts %d (server saw %d); want BIG.1, a gigabyte follows, %d",
					e.Code, e.Message, e.Attempts, srv.Attempts("/huge"), tt.attempts)
			}
			// The server streams from a fixed buffer, so this bounds the client.
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d KiB", alloc>>10)
			if alloc > 16<<20 {
				t.Errorf("Do allocated %d MiB for a 1 GiB error body", alloc>>20)
			}
		})
	}
}

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestAPIErrorFromGzipBody: services compress error documents too. net/http
// decompresses only when its transport asked for gzip itself; the error must
// be parsed either way.
func TestAPIErrorFromGzipBody(t *testing.T) {
	const doc = `{"error_code":"GZ.0001","error_msg":"compressed error"}`
	step := servicetest.Step{Status: 400, Body: gzipped(t, doc),
		Header: http.Header{"Content-Encoding": {"gzip"}, "Content-Type": {"application/json"}}}

	t.Run("transport asked for gzip", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/gz", step)
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/gz", nil)
		e := asAPIError(t, err)
		if got := srv.Requests()[0].Header.Get("Accept-Encoding"); got != "gzip" {
			t.Fatalf("client sent Accept-Encoding %q; this case needs the transport's own gzip", got)
		}
		if e.Code != "GZ.0001" || e.Message != "compressed error" || string(e.Body) != doc || e.Truncated {
			t.Errorf("Code %q, Message %q, Body %q, Truncated %v; want the decompressed document", e.Code, e.Message, e.Body, e.Truncated)
		}
	})

	// When the caller sets Accept-Encoding: gzip itself, as SDKs that
	// manage compression do, net/http hands over the compressed bytes; the
	// client decodes them (bounded) so the code is still parsed.
	t.Run("caller asked for gzip", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/gz", step)
		c, _ := newClient(t)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/gz", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		_, err := c.Do(req)
		e := asAPIError(t, err)
		checkDisplaySafe(t, e)
		if e.Code != "GZ.0001" || e.Message != "compressed error" {
			t.Errorf("Code %q, Message %q; want GZ.0001, compressed error (the body was gzip, Content-Encoding said so)", e.Code, e.Message)
		}
	})

	t.Run("Content-Encoding gzip on a body that is not", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/gz", servicetest.Step{Status: 400, Body: doc, Header: http.Header{"Content-Encoding": {"gzip"}}})
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/gz", nil)
		e := asAPIError(t, err)
		checkDisplaySafe(t, e)
		if e.StatusCode != 400 || !e.Truncated || !strings.Contains(e.Message, "unreadable") {
			t.Errorf("StatusCode %d, Truncated %v, Message %q; want 400, true and a message saying the body was unreadable", e.StatusCode, e.Truncated, e.Message)
		}
	})
}

var allSentinels = []struct {
	name string
	err  error
}{
	{"ErrBadRequest", resilienthttp.ErrBadRequest},
	{"ErrUnauthorized", resilienthttp.ErrUnauthorized},
	{"ErrForbidden", resilienthttp.ErrForbidden},
	{"ErrNotFound", resilienthttp.ErrNotFound},
	{"ErrConflict", resilienthttp.ErrConflict},
	{"ErrPreconditionFailed", resilienthttp.ErrPreconditionFailed},
	{"ErrTooManyRequests", resilienthttp.ErrTooManyRequests},
	{"ErrServiceUnavailable", resilienthttp.ErrServiceUnavailable},
	{"ErrServerError", resilienthttp.ErrServerError},
	{"ErrThrottled", resilienthttp.ErrThrottled},
}

// TestSentinels checks errors.Is against every sentinel, for each status,
// both on the error Do returns and wrapped by an SDK.
func TestSentinels(t *testing.T) {
	tests := []struct {
		name   string
		step   servicetest.Step
		is     []error
		reason string // why a row is here, when it is not obvious
	}{
		{name: "400", step: servicetest.Step{Status: 400}, is: []error{resilienthttp.ErrBadRequest}},
		{name: "401", step: servicetest.Step{Status: 401}, is: []error{resilienthttp.ErrUnauthorized}},
		{name: "403", step: servicetest.Step{Status: 403}, is: []error{resilienthttp.ErrForbidden}},
		{name: "404", step: servicetest.Step{Status: 404}, is: []error{resilienthttp.ErrNotFound}},
		{name: "409", step: servicetest.Step{Status: 409}, is: []error{resilienthttp.ErrConflict}},
		{name: "412", step: servicetest.Step{Status: 412}, is: []error{resilienthttp.ErrPreconditionFailed}},
		{name: "405", step: servicetest.Step{Status: 405}},
		{name: "410", step: servicetest.Step{Status: 410}},
		{name: "418", step: servicetest.Step{Status: 418}},
		{name: "422", step: servicetest.Step{Status: 422}},
		{name: "429", step: servicetest.Step{Status: 429}, is: []error{resilienthttp.ErrTooManyRequests, resilienthttp.ErrThrottled}},
		{name: "429 Retry-After", step: servicetest.Step{Status: 429, RetryAfter: "1"}, is: []error{resilienthttp.ErrTooManyRequests, resilienthttp.ErrThrottled}},
		{name: "500", step: servicetest.Step{Status: 500}, is: []error{resilienthttp.ErrServerError}},
		{name: "501", step: servicetest.Step{Status: 501}, is: []error{resilienthttp.ErrServerError}},
		{name: "502", step: servicetest.Step{Status: 502}, is: []error{resilienthttp.ErrServerError}},
		{name: "504", step: servicetest.Step{Status: 504}, is: []error{resilienthttp.ErrServerError}},
		{name: "599", step: servicetest.Step{Status: 599}, is: []error{resilienthttp.ErrServerError}},
		{name: "503", step: servicetest.Step{Status: 503}, is: []error{resilienthttp.ErrServiceUnavailable, resilienthttp.ErrServerError}},
		{name: "503 Retry-After", step: servicetest.Step{Status: 503, RetryAfter: "1"},
			is: []error{resilienthttp.ErrServiceUnavailable, resilienthttp.ErrServerError, resilienthttp.ErrThrottled}},
		{name: "503 Retry-After date", step: servicetest.Step{Status: 503, RetryAfter: servicetest.RetryAfterDate(time.Now().Add(time.Hour))},
			is: []error{resilienthttp.ErrServiceUnavailable, resilienthttp.ErrServerError, resilienthttp.ErrThrottled}},
		// The client honours x-ms-retry-after-ms as Retry-After, so the 503
		// is throttling, not only the literal header.
		{name: "503 x-ms-retry-after-ms", step: servicetest.Step{Status: 503, Header: http.Header{"X-Ms-Retry-After-Ms": {"1500"}}},
			is:     []error{resilienthttp.ErrServiceUnavailable, resilienthttp.ErrServerError, resilienthttp.ErrThrottled},
			reason: "retried after the server's wait, so throttled"},
		// A malformed Retry-After does not make a 503 temporary (one
		// attempt, not Retryable), so it is not throttling either.
		{name: "503 malformed Retry-After", step: servicetest.Step{Status: 503, RetryAfter: "soon"},
			is:     []error{resilienthttp.ErrServiceUnavailable, resilienthttp.ErrServerError},
			reason: "not retried: the server did not validly ask to come back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/s", tt.step)
			c, _ := newClient(t)
			_, err := do(t, c, http.MethodGet, srv.URL+"/s", nil)
			asAPIError(t, err)
			wrapped := fmt.Errorf("sdk: get thing: %w", err)
			for _, s := range allSentinels {
				want := false
				for _, w := range tt.is {
					want = want || w == s.err
				}
				if got := errors.Is(err, s.err); got != want {
					t.Errorf("errors.Is(err, %s) = %v, want %v %s", s.name, got, want, tt.reason)
				}
				if got := errors.Is(wrapped, s.err); got != want {
					t.Errorf("errors.Is(wrapped, %s) = %v, want %v", s.name, got, want)
				}
			}
		})
	}

	t.Run("errors that are not status errors match no sentinel", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/reset", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})
		srv.Script("/billing", servicetest.Step{Status: 200, Body: `{"error_code":"BSS.1001","error_msg":"insufficient balance"}`})
		c, _ := newClient(t, resilienthttp.WithErrorsIn2xx())
		_, resetErr := do(t, c, http.MethodPost, srv.URL+"/reset", strings.NewReader("x"))
		asRequestError(t, resetErr)
		_, in2xx := do(t, c, http.MethodGet, srv.URL+"/billing", nil)
		asAPIError(t, in2xx)
		for _, err := range []error{resetErr, in2xx, errors.New("not ours"), context.Canceled} {
			for _, s := range allSentinels {
				if errors.Is(err, s.err) {
					t.Errorf("errors.Is(%v, %s) = true", err, s.name)
				}
			}
		}
	})
}

// failures produces one error of each kind Do returns, each from a real
// call, with the facts a caller checks about it.
type failure struct {
	name       string
	run        func(t *testing.T) error
	apiErr     bool // else a *RequestError
	reason     resilienthttp.StopReason
	attempts   int   // -1: not checked (a context that ended before sending still counts 1)
	cause      error // what errors.Is must reach, if anything
	retryable  bool
	retryAfter time.Duration
}

func failures() []failure {
	const all = resilienthttp.DefaultMaxAttempts
	get := func(steps ...servicetest.Step) func(t *testing.T) error {
		return func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", steps...)
			c, _ := newClient(t)
			_, err := do(t, c, http.MethodGet, srv.URL+"/f", nil)
			return err
		}
	}
	return []failure{
		{name: "final 404", run: get(servicetest.Step{Status: 404}),
			apiErr: true, reason: resilienthttp.StopNotRetryable, attempts: 1},
		{name: "GET 502 until attempts ran out", run: get(servicetest.Step{Status: 502}),
			apiErr: true, reason: resilienthttp.StopAttemptsExhausted, attempts: all, retryable: true},
		{name: "POST 500", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", servicetest.Step{Status: 500})
			c, _ := newClient(t)
			_, err := do(t, c, http.MethodPost, srv.URL+"/f", strings.NewReader("{}"))
			return err
		}, apiErr: true, reason: resilienthttp.StopNotRetryable, attempts: 1},
		{name: "503 without Retry-After", run: get(servicetest.Step{Status: 503}),
			apiErr: true, reason: resilienthttp.StopNotRetryable, attempts: 1},
		{name: "429 Retry-After beyond MaxRetryAfter", run: get(servicetest.Step{Status: 429, RetryAfter: "120"}),
			apiErr: true, reason: resilienthttp.StopRetryAfterTooLong, attempts: 1, retryable: true, retryAfter: 2 * time.Minute},
		{name: "503 Retry-After past the deadline", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", servicetest.Step{Status: 503, RetryAfter: "30"})
			c, _ := newClient(t)
			// The deadline is 10 s away: the 30 s the server asks for does
			// not fit, so the call returns at once, without waiting.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/f", nil)
			_, err := c.Do(req)
			return err
		}, apiErr: true, reason: resilienthttp.StopDeadline, attempts: 1, retryable: true, retryAfter: 30 * time.Second},
		{name: "GET reset until attempts ran out", run: get(servicetest.Step{Fault: servicetest.FaultResetBeforeResponse}),
			reason: resilienthttp.StopAttemptsExhausted, attempts: all, cause: syscall.ECONNRESET, retryable: true},
		{name: "POST reset", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})
			c, _ := newClient(t)
			_, err := do(t, c, http.MethodPost, srv.URL+"/f", strings.NewReader("{}"))
			return err
		}, reason: resilienthttp.StopNotRetryable, attempts: 1, cause: syscall.ECONNRESET},
		{name: "connection refused", run: func(t *testing.T) error {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			c, _ := newClient(t)
			_, err = do(t, c, http.MethodGet, "http://"+addr+"/f", nil)
			return err
		}, reason: resilienthttp.StopAttemptsExhausted, attempts: all, cause: syscall.ECONNREFUSED, retryable: true},
		{name: "context cancelled before sending", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			c, _ := newClient(t)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/f", nil)
			_, err := c.Do(req)
			if srv.Total() != 0 {
				t.Errorf("server saw %d requests, want none", srv.Total())
			}
			return err
		}, reason: resilienthttp.StopContextDone, attempts: -1, cause: context.Canceled},
		{name: "context cancelled during the wait after a 500", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", servicetest.Step{Status: 500})
			ctx, cancel := context.WithCancel(context.Background())
			c, _ := newClient(t, resilienthttp.WithClock(&cancellingClock{fakeClock: newFakeClock(), cancel: cancel}))
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/f", nil)
			_, err := c.Do(req)
			return err
		}, reason: resilienthttp.StopContextDone, attempts: 1, cause: context.Canceled},
		{name: "deadline already passed", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			c, _ := newClient(t)
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/f", nil)
			_, err := c.Do(req)
			return err
		}, reason: resilienthttp.StopContextDone, attempts: -1, cause: context.DeadlineExceeded},
		// The guards New turns on by default end calls too.
		{name: "circuit opened between attempts", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", servicetest.Step{Status: 502})
			c, _ := newClient(t, fiveFailuresOpen)
			do(t, c, http.MethodGet, srv.URL+"/f", nil) // 4 failures in a row
			_, err := do(t, c, http.MethodGet, srv.URL+"/f", nil)
			if srv.Attempts("/f") != all+1 {
				t.Errorf("server saw %d attempts, want %d: the 5th failure opens the breaker", srv.Attempts("/f"), all+1)
			}
			return err
		}, reason: resilienthttp.StopCircuitOpen, attempts: 1, cause: resilienthttp.ErrCircuitOpen, retryable: true},
		// An open circuit is a host failing for now: Retryable whether or
		// not the call had sent an attempt before the breaker refused it.
		{name: "circuit open before the first attempt", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", servicetest.Step{Status: 502})
			c, _ := newClient(t, fiveFailuresOpen)
			do(t, c, http.MethodGet, srv.URL+"/f", nil)
			do(t, c, http.MethodGet, srv.URL+"/f", nil) // opens the breaker
			_, err := do(t, c, http.MethodGet, srv.URL+"/f", nil)
			if srv.Attempts("/f") != all+1 {
				t.Errorf("server saw %d attempts, want %d: nothing sent while open", srv.Attempts("/f"), all+1)
			}
			return err
		}, reason: resilienthttp.StopCircuitOpen, attempts: 0, cause: resilienthttp.ErrCircuitOpen, retryable: true},
		// A call the rate limiter refuses because its wait would pass the
		// deadline gave up for want of time, as one stopped by a Retry-After
		// past the deadline does: Retryable.
		{name: "client-side rate limit past the deadline", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			c, _ := newClient(t, resilienthttp.WithRateLimit(resilienthttp.LimiterSettings{Rate: 0.1, Burst: 1, Static: true}))
			do(t, c, http.MethodGet, srv.URL+"/f", nil) // spends the burst: the next slot is 10 s away
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/f", nil)
			_, err := c.Do(req)
			if srv.Attempts("/f") != 1 {
				t.Errorf("server saw %d attempts, want 1: the limited call sends nothing", srv.Attempts("/f"))
			}
			return err
		}, reason: resilienthttp.StopRateLimited, attempts: 0, cause: resilienthttp.ErrRateLimited, retryable: true},
		{name: "prepare-retry hook failed", run: func(t *testing.T) error {
			srv := servicetest.NewServer(t)
			srv.Script("/f", servicetest.Step{Status: 502})
			c, _ := newClient(t, resilienthttp.WithPrepareRetry(func(*http.Request) error { return errSigning }))
			_, err := do(t, c, http.MethodGet, srv.URL+"/f", nil)
			return err
		}, reason: resilienthttp.StopPrepareFailed, attempts: 1, cause: errSigning},
	}
}

var errSigning = errors.New("signing key unavailable")

// fiveFailuresOpen spells out the breaker the circuit rows rely on: five
// failures in a row open it.
var fiveFailuresOpen = resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 5})

// TestErrorsAsThroughEveryKindOfFailure: whatever went wrong, errors.As
// finds exactly one of *APIError and *RequestError, with the facts of the
// call, also through an SDK's fmt.Errorf wrapping; errors.Is reaches the
// cause.
func TestErrorsAsThroughEveryKindOfFailure(t *testing.T) {
	for _, f := range failures() {
		t.Run(f.name, func(t *testing.T) {
			err := f.run(t)
			if err == nil {
				t.Fatal("no error")
			}
			for _, e := range []error{err, fmt.Errorf("sdk: %w", err), fmt.Errorf("outer: %w", fmt.Errorf("sdk: %w", err))} {
				var apiErr *resilienthttp.APIError
				var reqErr *resilienthttp.RequestError
				isAPI, isReq := errors.As(e, &apiErr), errors.As(e, &reqErr)
				if isAPI != f.apiErr || isReq == f.apiErr {
					t.Fatalf("%v: errors.As found *APIError %v, *RequestError %v; want exactly the *APIError: %v", e, isAPI, isReq, f.apiErr)
				}
				var reason resilienthttp.StopReason
				var attempts int
				if isAPI {
					reason, attempts = apiErr.Reason, apiErr.Attempts
					if apiErr.RetryAfter != f.retryAfter {
						t.Errorf("RetryAfter = %v, want %v", apiErr.RetryAfter, f.retryAfter)
					}
				} else {
					reason, attempts = reqErr.Reason, reqErr.Attempts
					if reqErr.Err == nil {
						t.Error("RequestError.Err is nil")
					}
				}
				if reason != f.reason || f.attempts >= 0 && attempts != f.attempts {
					t.Errorf("Reason %q, Attempts %d; want %q, %d", reason, attempts, f.reason, f.attempts)
				}
				if f.cause != nil && !errors.Is(e, f.cause) {
					t.Errorf("errors.Is(%v, %v) = false", e, f.cause)
				}
				for _, ctxErr := range []error{context.Canceled, context.DeadlineExceeded} {
					if ctxErr != f.cause && errors.Is(e, ctxErr) {
						t.Errorf("errors.Is(%v, %v) = true", e, ctxErr)
					}
				}
			}
		})
	}
}

// TestRetryableAgreesWithTheClient: Retryable says "the client would have
// gone on" exactly when the call stopped for want of attempts or time, not
// because repeating could not help.
func TestRetryableAgreesWithTheClient(t *testing.T) {
	for _, f := range failures() {
		t.Run(f.name, func(t *testing.T) {
			err := f.run(t)
			if got := resilienthttp.Retryable(err); got != f.retryable {
				t.Errorf("Retryable(%v) = %v, want %v", err, got, f.retryable)
			}
			if got := resilienthttp.Retryable(fmt.Errorf("sdk: %w", err)); got != f.retryable {
				t.Errorf("Retryable(wrapped) = %v, want %v", got, f.retryable)
			}
			// The client's own decision: it repeated (or would have, but for
			// attempts or time) exactly the retryable ones.
			stoppedForWant := f.reason == resilienthttp.StopAttemptsExhausted || f.reason == resilienthttp.StopRetryAfterTooLong ||
				f.reason == resilienthttp.StopDeadline || f.reason == resilienthttp.StopCircuitOpen || f.reason == resilienthttp.StopRateLimited
			if stoppedForWant != f.retryable {
				t.Errorf("table: reason %q with retryable %v", f.reason, f.retryable)
			}
		})
	}
	for _, err := range []error{nil, errors.New("not ours"), io.EOF, context.Canceled, context.DeadlineExceeded,
		&url.Error{Op: "Get", URL: "http://x", Err: syscall.ECONNRESET}} {
		if resilienthttp.Retryable(err) {
			t.Errorf("Retryable(%v) = true for an error the package did not make", err)
		}
	}
}

// TestParseAPIError describes responses an SDK got from StandardClient or
// any http.Client.
func TestParseAPIError(t *testing.T) {
	const errDoc = `{"error_code":"IAM.0003","error_msg":"user not found"}`
	t.Run("from StandardClient", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/v3/users/u1", servicetest.Step{Status: 404, Body: errDoc, Header: http.Header{"Content-Type": {"application/json"}}})
		c, _ := newClient(t)
		resp, err := c.StandardClient().Get(srv.URL + "/v3/users/u1?token=s3cr3t&limit=1")
		if err != nil {
			t.Fatal(err)
		}
		e := resilienthttp.ParseAPIError(resp)
		if e == nil {
			t.Fatal("ParseAPIError = nil for a 404")
		}
		wantURL := srv.URL + "/v3/users/u1?limit=1&token=REDACTED"
		if e.StatusCode != 404 || e.Code != "IAM.0003" || e.Message != "user not found" || e.RequestID != "req-1" ||
			e.Method != http.MethodGet || e.URL != wantURL || e.Attempts != 1 || string(e.Body) != errDoc || e.Truncated ||
			e.Header.Get("Content-Type") != "application/json" {
			t.Errorf("got %+v", *e)
		}
		if !errors.Is(e, resilienthttp.ErrNotFound) || resilienthttp.Retryable(e) {
			t.Errorf("errors.Is(ErrNotFound) %v, Retryable %v; want true, false", errors.Is(e, resilienthttp.ErrNotFound), resilienthttp.Retryable(e))
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err == nil || err == io.EOF {
			t.Errorf("reading the body after ParseAPIError: %v, want the error of a closed body", err)
		}
		// The body was drained before it was closed: the next call reuses
		// the connection.
		resp, err = c.StandardClient().Get(srv.URL + "/v3/users/u1")
		if err != nil {
			t.Fatal(err)
		}
		if e := resilienthttp.ParseAPIError(resp); e == nil || e.RequestID != "req-2" {
			t.Errorf("second call: %v", e)
		}
		if got := srv.ConnsAccepted(); got != 1 {
			t.Errorf("server accepted %d connections for 2 sequential calls, want 1", got)
		}
	})

	// A response from StandardClient is the last of the call's attempts:
	// ParseAPIError reports what the client did, not a fresh guess.
	t.Run("from StandardClient after retries", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/jobs", servicetest.Step{Status: 502})
		c, _ := newClient(t)
		resp, err := c.StandardClient().Get(srv.URL + "/jobs")
		if err != nil {
			t.Fatal(err)
		}
		e := resilienthttp.ParseAPIError(resp)
		if srv.Attempts("/jobs") != resilienthttp.DefaultMaxAttempts {
			t.Fatalf("server saw %d attempts, want %d", srv.Attempts("/jobs"), resilienthttp.DefaultMaxAttempts)
		}
		if e.Attempts != resilienthttp.DefaultMaxAttempts || e.Reason != resilienthttp.StopAttemptsExhausted || e.RequestID != "req-4" {
			t.Errorf("Attempts %d, Reason %q, RequestID %q; want %d, %q, req-4",
				e.Attempts, e.Reason, e.RequestID, resilienthttp.DefaultMaxAttempts, resilienthttp.StopAttemptsExhausted)
		}
		if !resilienthttp.Retryable(e) {
			t.Error("Retryable = false for a GET that ran out of attempts on 502")
		}
	})

	t.Run("from a plain http.Client, connection reused", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		// Longer than MaxErrorBody: ParseAPIError must drain the rest.
		srv.Script("/e", servicetest.Step{Status: 409, Code: "VPC.0409", Message: "in use", BodySize: 100 << 10})
		hc := srv.Client()
		for i := 1; i <= 3; i++ {
			req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/e", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			e := resilienthttp.ParseAPIError(resp)
			if e == nil || e.StatusCode != 409 || e.Code != "VPC.0409" || e.Method != http.MethodDelete ||
				len(e.Body) != resilienthttp.MaxErrorBody || !e.Truncated || e.RequestID != fmt.Sprintf("req-%d", i) {
				t.Fatalf("call %d: got %+v", i, e)
			}
			if !errors.Is(e, resilienthttp.ErrConflict) {
				t.Error("not ErrConflict")
			}
		}
		if got := srv.ConnsAccepted(); got != 1 {
			t.Errorf("server accepted %d connections for 3 sequential calls, want 1", got)
		}
	})

	t.Run("nil below 400, body left alone", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/ok", servicetest.Step{Status: 200, Body: "all fine"}, servicetest.Step{Status: 304})
		for _, want := range []int{200, 304} {
			resp, err := srv.Client().Get(srv.URL + "/ok")
			if err != nil {
				t.Fatal(err)
			}
			if e := resilienthttp.ParseAPIError(resp); e != nil {
				t.Errorf("%d: ParseAPIError = %v, want nil", want, e)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if wantBody := map[int]string{200: "all fine", 304: ""}[want]; err != nil || string(b) != wantBody || resp.StatusCode != want {
				t.Errorf("%d: body %q, %v; want %q", resp.StatusCode, b, err, wantBody)
			}
		}
		if resilienthttp.ParseAPIError(nil) != nil {
			t.Error("ParseAPIError(nil) != nil")
		}
	})
}

// TestErrorIsOneDocumentedLine checks Error() exactly, for the ways a call
// ends in an *APIError.
func TestErrorIsOneDocumentedLine(t *testing.T) {
	tests := []struct {
		name  string
		query string
		step  servicetest.Step
		ctx   func() (context.Context, context.CancelFunc)
		want  string // after "GET <srv.URL>/v3/users/u1<query>: "
	}{
		{name: "final answer",
			step: servicetest.Step{Status: 404, Code: "IAM.0003", Message: "user not found"},
			want: "404 Not Found: IAM.0003: user not found (request id req-1, 1 attempt)"},
		{name: "redacted query",
			query: "?token=s3cr3t&limit=1",
			step:  servicetest.Step{Status: 404, Code: "IAM.0003", Message: "user not found"},
			want:  "404 Not Found: IAM.0003: user not found (request id req-1, 1 attempt)"},
		{name: "attempts exhausted",
			step: servicetest.Step{Status: 502, Code: "LB.502", Message: "upstream down"},
			want: "502 Bad Gateway: LB.502: upstream down (request id req-4, 4 attempts, attempts exhausted)"},
		{name: "retry-after too long",
			step: servicetest.Step{Status: 429, RetryAfter: "120", Code: "APIGW.0308", Message: "throttled"},
			want: "429 Too Many Requests: APIGW.0308: throttled (request id req-1, 1 attempt, retry-after exceeds MaxRetryAfter: server asked to wait 2m0s)"},
		{name: "retry-after past the deadline",
			step: servicetest.Step{Status: 503, RetryAfter: "30", Code: "SVC.503", Message: "maintenance"},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 10*time.Second)
			},
			want: "503 Service Unavailable: SVC.503: maintenance (request id req-1, 1 attempt, next attempt would pass the deadline: server asked to wait 30s)"},
		{name: "multi-line message",
			step: servicetest.Step{Status: 400, Code: "E.1", Message: "first line\r\nsecond line\n\tthird"},
			want: "400 Bad Request: E.1: first line second line third (request id req-1, 1 attempt)"},
		{name: "no code, no request id",
			step: servicetest.Step{Status: 404, Format: servicetest.FormatEmpty, Header: http.Header{"X-Request-Id": nil}},
			want: "404 Not Found (1 attempt)"},
		{name: "status without text",
			step: servicetest.Step{Status: 499, Code: "NGX.499", Message: "client closed"},
			want: "499: NGX.499: client closed (request id req-1, 1 attempt)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/v3/users/u1", tt.step)
			c, _ := newClient(t)
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v3/users/u1"+tt.query, nil)
			_, err := c.Do(req)
			asAPIError(t, err)
			u := srv.URL + "/v3/users/u1"
			if tt.query != "" {
				u += "?limit=1&token=REDACTED"
			}
			if want := "GET " + u + ": " + tt.want; err.Error() != want {
				t.Errorf("Error() =\n%q\nwant\n%q", err.Error(), want)
			}
		})
	}

	t.Run("request error", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/r", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/r?sig=s3cr3t", nil)
		asRequestError(t, err)
		msg := err.Error()
		prefix, suffix := "GET "+srv.URL+"/r?sig=REDACTED: ", ": connection reset by peer (4 attempts, attempts exhausted)"
		if !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, suffix) || strings.ContainsAny(msg, "\r\n") {
			t.Errorf("Error() = %q, want one line %q…%q", msg, prefix, suffix)
		}
	})
	t.Run("request error after a status", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/c", servicetest.Step{Status: 500})
		ctx, cancel := context.WithCancel(context.Background())
		c, _ := newClient(t, resilienthttp.WithClock(&cancellingClock{fakeClock: newFakeClock(), cancel: cancel}))
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/c", nil)
		_, err := c.Do(req)
		if want := "GET " + srv.URL + "/c: context canceled (1 attempt, last status 500, context done)"; err == nil || err.Error() != want {
			t.Errorf("Error() = %q, want %q", err, want)
		}
	})
}

// TestRequestID: the id a support ticket needs, from whichever header the
// service uses.
func TestRequestID(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name   string
		header http.Header // X-Request-Id: nil removes servicetest's own
		opts   []resilienthttp.Option
		want   string
	}{
		{"X-Request-Id", nil, nil, "req-1"},
		{"X-Openstack-Request-Id", http.Header{"X-Request-Id": nil, "X-Openstack-Request-Id": {"req-os"}}, nil, "req-os"},
		{"X-Amzn-Requestid", http.Header{"X-Request-Id": nil, "X-Amzn-Requestid": {"req-amzn"}}, nil, "req-amzn"},
		{"X-Ms-Request-Id", http.Header{"X-Request-Id": nil, "X-Ms-Request-Id": {"req-ms"}}, nil, "req-ms"},
		{"X-Request-Id wins", http.Header{"X-Request-Id": {"req-x"}, "X-Openstack-Request-Id": {"req-os"},
			"X-Amzn-Requestid": {"req-amzn"}, "X-Ms-Request-Id": {"req-ms"}}, nil, "req-x"},
		{"OpenStack before Amazon", http.Header{"X-Request-Id": nil, "X-Openstack-Request-Id": {"req-os"},
			"X-Amzn-Requestid": {"req-amzn"}, "X-Ms-Request-Id": {"req-ms"}}, nil, "req-os"},
		{"Amazon before Azure", http.Header{"X-Request-Id": nil, "X-Amzn-Requestid": {"req-amzn"},
			"X-Ms-Request-Id": {"req-ms"}}, nil, "req-amzn"},
		{"empty X-Request-Id skipped", http.Header{"X-Request-Id": {""}, "X-Ms-Request-Id": {"req-ms"}}, nil, "req-ms"},
		{"none", http.Header{"X-Request-Id": nil}, nil, ""},
		{"bounded", http.Header{"X-Request-Id": {long}}, nil, long[:125] + "…"},
		{"WithRequestIDHeaders", http.Header{"X-Trace": {"trace-9"}}, []resilienthttp.Option{resilienthttp.WithRequestIDHeaders("X-Trace")}, "trace-9"},
		{"WithRequestIDHeaders replaces the defaults", nil, []resilienthttp.Option{resilienthttp.WithRequestIDHeaders("X-Trace")}, ""},
		{"WithRequestIDHeaders order", http.Header{"X-Trace": {"trace-9"}, "X-Span": {"span-1"}},
			[]resilienthttp.Option{resilienthttp.WithRequestIDHeaders("X-Span", "X-Trace")}, "span-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/id", servicetest.Step{Status: 404, Header: tt.header})
			c, _ := newClient(t, tt.opts...)
			_, err := do(t, c, http.MethodGet, srv.URL+"/id", nil)
			e := asAPIError(t, err)
			if e.RequestID != tt.want {
				t.Errorf("RequestID = %q, want %q", e.RequestID, tt.want)
			}
			if inText := strings.Contains(err.Error(), "request id "); inText != (tt.want != "") {
				t.Errorf("Error() = %q: request id shown %v, want %v", err, inText, tt.want != "")
			}
		})
	}
	t.Run("the final attempt's id", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/id", servicetest.Step{Status: 500})
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/id", nil)
		if e := asAPIError(t, err); e.RequestID != "req-4" {
			t.Errorf("RequestID = %q, want req-4 (the last of 4 attempts)", e.RequestID)
		}
	})
}

// TestAPIErrorGzipBodyLimitCountsDecodedBytes: when the caller asked for
// gzip itself, net/http passes the compressed body through and the client
// decodes it. MaxErrorBody counts decoded bytes, so even incompressible data
// (more compressed bytes than decoded ones) fills Body, and Truncated says
// whether the body held more: decoded bytes past the limit, or compressed
// bytes past what was read.
func TestAPIErrorGzipBodyLimitCountsDecodedBytes(t *testing.T) {
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.NewChaCha8([32]byte{10}).Read(b) // seeded: the same bytes every run
		return b
	}
	for _, tt := range []struct {
		name      string
		data      []byte
		truncated bool
	}{
		{"incompressible 100 KiB", random(100 << 10), true},
		{"incompressible, one byte over", random(resilienthttp.MaxErrorBody + 1), true},
		{"incompressible, exactly MaxErrorBody", random(resilienthttp.MaxErrorBody), false},
		{"incompressible 1 KiB", random(1 << 10), false},
		{"compressible 1 MiB", bytes.Repeat([]byte("error "), 1<<20/6), true},
	} {
		step := servicetest.Step{Status: 500, Body: gzipped(t, string(tt.data)),
			Header: http.Header{"Content-Encoding": {"gzip"}, "Content-Type": {"application/octet-stream"}}}
		check := func(t *testing.T, e *resilienthttp.APIError) {
			t.Helper()
			want := tt.data[:min(len(tt.data), resilienthttp.MaxErrorBody)]
			if !bytes.Equal(e.Body, want) || e.Truncated != tt.truncated {
				t.Errorf("kept %d bytes (the data's start: %v), Truncated %v; want %d, Truncated %v",
					len(e.Body), bytes.Equal(e.Body, want), e.Truncated, len(want), tt.truncated)
			}
		}
		t.Run(tt.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/gz", step)
			c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}))
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/gz", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			_, err := c.Do(req)
			check(t, asAPIError(t, err))

			// ParseAPIError reads a response from any client the same way.
			req, _ = http.NewRequest(http.MethodGet, srv.URL+"/gz", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			check(t, resilienthttp.ParseAPIError(resp))
		})
	}
}

// A call that finally failed names the idempotency key its attempts
// carried, so the caller can repeat it later under the same key.
func TestErrorsCarryTheIdempotencyKey(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v3/users", servicetest.Statuses(500)...)
	srv.Script("/v3/groups", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})

	t.Run("caller's key", func(t *testing.T) {
		c, _ := newClient(t)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v3/users", strings.NewReader(`{"name":"ann"}`))
		req.Header.Set("Idempotency-Key", "k-1")
		_, err := c.Do(req)
		var apiErr *resilienthttp.APIError
		if !errors.As(err, &apiErr) || apiErr.IdempotencyKey != "k-1" || apiErr.Attempts != 4 {
			t.Fatalf("err = %#v, want an *APIError after 4 attempts with IdempotencyKey k-1", err)
		}
	})
	t.Run("generated key, on APIError and RequestError", func(t *testing.T) {
		n := 0
		c, _ := newClient(t, resilienthttp.WithIdempotencyKeys(func() string { n++; return "gen-" + strconv.Itoa(n) }))
		srv.Reset()
		srv.Script("/v3/users", servicetest.Statuses(500)...)
		srv.Script("/v3/groups", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})
		_, err := do(t, c, http.MethodPost, srv.URL+"/v3/users", strings.NewReader(`{}`))
		var apiErr *resilienthttp.APIError
		if !errors.As(err, &apiErr) || apiErr.IdempotencyKey != "gen-1" {
			t.Fatalf("err = %v, want an *APIError with IdempotencyKey gen-1", err)
		}
		if sent := srv.Requests()[0].Header.Get("Idempotency-Key"); sent != apiErr.IdempotencyKey {
			t.Errorf("the attempts carried %q, the error says %q", sent, apiErr.IdempotencyKey)
		}
		_, err = do(t, c, http.MethodPost, srv.URL+"/v3/groups", strings.NewReader(`{}`))
		var reqErr *resilienthttp.RequestError
		if !errors.As(err, &reqErr) || reqErr.IdempotencyKey != "gen-2" {
			t.Fatalf("err = %#v, want a *RequestError with IdempotencyKey gen-2", err)
		}
	})
	t.Run("none", func(t *testing.T) {
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/v3/users", nil)
		var apiErr *resilienthttp.APIError
		if !errors.As(err, &apiErr) || apiErr.IdempotencyKey != "" {
			t.Fatalf("err = %v, want an *APIError without a key", err)
		}
	})
	t.Run("ParseAPIError", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v3/users", strings.NewReader(`{}`))
		req.Header.Set("Idempotency-Key", "k-9")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if e := resilienthttp.ParseAPIError(resp); e == nil || e.IdempotencyKey != "k-9" {
			t.Fatalf("ParseAPIError = %v, want IdempotencyKey k-9", e)
		}
	})
}
