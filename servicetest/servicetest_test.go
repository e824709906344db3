package servicetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manually advanced clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request through c and reads the whole response.
func do(t *testing.T, c *http.Client, method, url string, header http.Header, body string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return result{resp.StatusCode, resp.Header, b}
}

func get(t *testing.T, s *Server, path string) result {
	t.Helper()
	return do(t, s.Client(), http.MethodGet, s.URL+path, nil, "")
}

// freshClient returns a client that opens a new connection per request, so
// net/http never retries a faulted request on its own.
func freshClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func statuses(t *testing.T, s *Server, path string, n int) []int {
	t.Helper()
	var got []int
	for range n {
		got = append(got, get(t, s, path).status)
	}
	return got
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestUnscriptedPathAnswers200(t *testing.T) {
	s := NewServer(t)
	for i := 1; i <= 2; i++ {
		r := get(t, s, "/anything")
		equal(t, "status", r.status, 200)
		equal(t, "body", string(r.body), "")
		equal(t, "X-Request-Id", r.header.Get("X-Request-Id"), "req-"+strconv.Itoa(i))
	}
}

func TestScriptRepeatsLastStep(t *testing.T) {
	s := NewServer(t)
	s.Script("/v1/orders", Statuses(503, 503, 200)...)
	got := statuses(t, s, "/v1/orders", 5)
	equal(t, "statuses", fmtInts(got), "[503 503 200 200 200]")
	equal(t, "Attempts", s.Attempts("/v1/orders"), 5)
	equal(t, "Attempts(other)", s.Attempts("/other"), 0)
	equal(t, "Total", s.Total(), 5)

	s.Script("/v1/orders", Statuses(500, 201)...) // restarts the sequence
	equal(t, "rescripted", fmtInts(statuses(t, s, "/v1/orders", 3)), "[500 201 201]")
	s.Script("/v1/orders") // removed: back to the default
	equal(t, "unscripted", get(t, s, "/v1/orders").status, 200)
}

func TestDefaultScriptRunsPerPath(t *testing.T) {
	s := NewServer(t)
	s.Script("", Statuses(500, 204)...)
	s.Script("/own", Statuses(418)...)
	equal(t, "/a", fmtInts(statuses(t, s, "/a", 3)), "[500 204 204]")
	equal(t, "/b", fmtInts(statuses(t, s, "/b", 2)), "[500 204]")
	equal(t, "/", fmtInts(statuses(t, s, "/", 1)), "[500]")
	equal(t, "/own", fmtInts(statuses(t, s, "/own", 2)), "[418 418]")
}

func fmtInts(v []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, n := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte(']')
	return b.String()
}

func TestStepFields(t *testing.T) {
	clock := newFakeClock()
	s := NewServer(t, WithClock(clock.Now))
	date := clock.Now().Add(90 * time.Second)
	s.Script("/x",
		Step{Status: 202, Header: http.Header{"X-Custom": {"a", "b"}}, Body: "accepted"},
		Step{Status: 503, RetryAfter: RetryAfterSeconds(1500 * time.Millisecond)},
		Step{Status: 429, RetryAfter: RetryAfterDate(date), Body: "slow down", Code: "ignored"},
		Step{Status: 400, Code: "BAD.1", Message: "bad <input>", Header: http.Header{"X-Request-Id": {"mine"}}},
		Step{},
	)
	r := get(t, s, "/x")
	equal(t, "status", r.status, 202)
	equal(t, "X-Custom", strings.Join(r.header.Values("X-Custom"), ","), "a,b")
	equal(t, "body", string(r.body), "accepted")

	r = get(t, s, "/x")
	equal(t, "status", r.status, 503)
	equal(t, "Retry-After", r.header.Get("Retry-After"), "2")
	equal(t, "Content-Type", r.header.Get("Content-Type"), "application/json")
	equal(t, "generated body", string(r.body), `{"error_code":"SVC.503","error_msg":"Service Unavailable"}`)

	r = get(t, s, "/x")
	equal(t, "Retry-After date", r.header.Get("Retry-After"), "Thu, 02 Jan 2025 03:05:35 GMT")
	equal(t, "verbatim body", string(r.body), "slow down")

	r = get(t, s, "/x")
	equal(t, "status", r.status, 400)
	equal(t, "X-Request-Id override", r.header.Get("X-Request-Id"), "mine")
	var e struct {
		ErrorCode string `json:"error_code"`
		ErrorMsg  string `json:"error_msg"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatal(err)
	}
	equal(t, "error_code", e.ErrorCode, "BAD.1")
	equal(t, "error_msg", e.ErrorMsg, "bad <input>")

	r = get(t, s, "/x")
	equal(t, "zero step status", r.status, 200)
	equal(t, "zero step Retry-After", r.header.Get("Retry-After"), "")
	equal(t, "RetryAfterSeconds(-1)", RetryAfterSeconds(-time.Second), "0")
}

func TestErrorFormats(t *testing.T) {
	tests := []struct {
		name   string
		step   Step
		ctype  string
		decode func([]byte) (any, error) // nil for non-JSON formats
		want   string                    // compact JSON of the decoded value, or a substring of the body
	}{
		{"ErrorCode", Step{Status: 500, Format: FormatErrorCode, Code: "S3M.0001", Message: `quote " and \`},
			"application/json", decodeAs[struct {
				Code string `json:"error_code"`
				Msg  string `json:"error_msg"`
			}], `{"error_code":"S3M.0001","error_msg":"quote \" and \\"}`},
		{"NestedNumeric", Step{Status: 401, Format: FormatNestedError, Code: "401", Message: "token expired"},
			"application/json", decodeAs[map[string]map[string]any],
			`{"error":{"code":401,"message":"token expired","title":"Unauthorized"}}`},
		{"NestedString", Step{Status: 403, Format: FormatNestedError, Code: "IAM.0002"},
			"application/json", decodeAs[map[string]map[string]any],
			`{"error":{"code":"IAM.0002","message":"Forbidden","title":"Forbidden"}}`},
		{"NestedDefault", Step{Status: 502, Format: FormatNestedError},
			"application/json", decodeAs[map[string]map[string]any],
			`{"error":{"code":502,"message":"Bad Gateway","title":"Bad Gateway"}}`},
		{"CodeMessage", Step{Status: 404, Format: FormatCodeMessage, Code: "APIGW.0101", Message: "not found"},
			"application/json", decodeAs[map[string]string], `{"code":"APIGW.0101","message":"not found"}`},
		{"ErrorCodeCamel", Step{Status: 409, Format: FormatErrorCodeCamel},
			"application/json", decodeAs[map[string]string], `{"errorCode":"SVC.409","errorMessage":"Conflict"}`},
		{"OAuth", Step{Status: 400, Format: FormatOAuth, Code: "invalid_grant", Message: "expired"},
			"application/json", decodeAs[map[string]string], `{"error":"invalid_grant","error_description":"expired"}`},
		{"OAuthDefault5xx", Step{Status: 503, Format: FormatOAuth},
			"application/json", decodeAs[map[string]string], `{"error":"server_error","error_description":"Service Unavailable"}`},
		{"Problem", Step{Status: 403, Format: FormatProblem, Code: "https://example.com/probs/credit", Message: "out of credit"},
			"application/problem+json", decodeAs[map[string]any],
			`{"detail":"out of credit","instance":"/fmt","status":403,"title":"Forbidden","type":"https://example.com/probs/credit"}`},
		{"ProblemDefault", Step{Status: 500, Format: FormatProblem},
			"application/problem+json", decodeAs[map[string]any],
			`{"detail":"Internal Server Error","instance":"/fmt","status":500,"title":"Internal Server Error","type":"about:blank"}`},
		{"HTML", Step{Status: 504, Format: FormatHTML, Message: "<script>"},
			"text/html; charset=utf-8", nil, "<title>504 Gateway Timeout</title>"},
		{"Text", Step{Status: 502, Format: FormatText, Code: "LB.1", Message: "upstream down"},
			"text/plain; charset=utf-8", nil, "LB.1: upstream down\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t)
			s.Script("/fmt", tt.step)
			r := get(t, s, "/fmt")
			equal(t, "status", r.status, tt.step.Status)
			equal(t, "Content-Type", r.header.Get("Content-Type"), tt.ctype)
			if tt.decode == nil {
				if !bytes.Contains(r.body, []byte(tt.want)) {
					t.Errorf("body %q does not contain %q", r.body, tt.want)
				}
				if bytes.Contains(r.body, []byte("<script>")) {
					t.Errorf("body %q contains the unescaped message", r.body)
				}
				return
			}
			v, err := tt.decode(r.body)
			if err != nil {
				t.Fatalf("decoding %s: %v", r.body, err)
			}
			got, _ := json.Marshal(v)
			equal(t, "decoded body", string(got), tt.want)
		})
	}
}

func decodeAs[T any](b []byte) (any, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(&v)
	return v, err
}

func TestWithErrorFormat(t *testing.T) {
	s := NewServer(t, WithErrorFormat(FormatOAuth))
	s.Script("/a", Step{Status: 400}, Step{Status: 400, Format: FormatCodeMessage})
	equal(t, "server default", string(get(t, s, "/a").body), `{"error":"invalid_request","error_description":"Bad Request"}`)
	equal(t, "step override", string(get(t, s, "/a").body), `{"code":"SVC.400","message":"Bad Request"}`)
}

func TestDelay(t *testing.T) {
	s := NewServer(t)
	const d = 30 * time.Millisecond
	s.Script("/slow", Step{Delay: d, Body: "late"})
	start := time.Now()
	r := get(t, s, "/slow")
	if elapsed := time.Since(start); elapsed < d {
		t.Errorf("answered after %v, want at least %v", elapsed, d)
	}
	equal(t, "body", string(r.body), "late")
}

func TestDelayEndsWhenClientLeaves(t *testing.T) {
	s := NewServer(t)
	s.Script("/slow", Step{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/slow", nil)
	_, err := s.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	// Cleanup's Close would block for an hour if the handler ignored it.
}

func TestCloseEndsDelay(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script("/slow", Step{Delay: time.Hour})
	errc := make(chan error, 1)
	go func() {
		resp, err := freshClient(t).Get(s.URL + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, func() bool { return s.Total() == 1 })
	s.Close()
	if err := <-errc; err == nil {
		t.Fatal("request succeeded across Close, want an error")
	}
}

// waitFor spins until cond holds; the server offers no event to wait on
// for a request that is still in its handler.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		runtime.Gosched()
	}
}

func TestFaultResetBeforeResponse(t *testing.T) {
	s := NewServer(t)
	s.Script("/reset", Step{Fault: FaultResetBeforeResponse})
	_, err := freshClient(t).Post(s.URL+"/reset", "text/plain", strings.NewReader("payload"))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("err = %v, want ECONNRESET", err)
	}
	reqs := s.Requests()
	equal(t, "requests", len(reqs), 1)
	equal(t, "recorded body", string(reqs[0].Body), "payload")
	equal(t, "recorded status", reqs[0].Status, 0)
	equal(t, "commits", s.Commits(reqs[0].CommitKey), 0)
}

func TestFaultResetMidBody(t *testing.T) {
	s := NewServer(t)
	s.Script("/mid", Step{Fault: FaultResetMidBody, Body: "0123456789"})
	resp, err := freshClient(t).Get(s.URL + "/mid")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	equal(t, "status", resp.StatusCode, 200)
	equal(t, "ContentLength", resp.ContentLength, 10)
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading body: err = %v, want ECONNRESET", err)
	}
	equal(t, "partial body", string(b), "01234")
}

func TestFaultTruncatedBody(t *testing.T) {
	s := NewServer(t)
	s.Script("/trunc", Step{Status: 201, Fault: FaultTruncatedBody})
	resp, err := freshClient(t).Get(s.URL + "/trunc")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	equal(t, "status", resp.StatusCode, 201)
	equal(t, "ContentLength", resp.ContentLength, 64)
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading body: err = %v, want io.ErrUnexpectedEOF", err)
	}
	equal(t, "partial body length", len(b), 32)
}

func TestFaultHangEndsWhenClientLeaves(t *testing.T) {
	s := NewServer(t)
	s.Script("/hang", Step{Status: 200, Fault: FaultHangAfterHeaders})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/hang", nil)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	equal(t, "status", resp.StatusCode, 200)
	cancel()
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.Canceled) {
		t.Fatalf("reading body: err = %v, want context.Canceled", err)
	}
}

func TestFaultHangEndsWhenServerCloses(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script("/hang", Step{Status: 503, Fault: FaultHangAfterHeaders})
	resp, err := freshClient(t).Get(s.URL + "/hang")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	equal(t, "status", resp.StatusCode, 503)
	s.Close() // must not wait for the hang
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading body: err = %v, want io.ErrUnexpectedEOF", err)
	}
	s.Close() // idempotent
}

func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	s := NewServer(t, WithClock(clock.Now), WithRateLimit(1, 2))
	s.Script("/r", Statuses(503, 200)...)
	equal(t, "first", get(t, s, "/r").status, 503)
	equal(t, "second", get(t, s, "/r").status, 200)
	r := get(t, s, "/r")
	equal(t, "third", r.status, 429)
	equal(t, "Retry-After", r.header.Get("Retry-After"), "1")
	equal(t, "body", string(r.body), `{"error_code":"SVC.429","error_msg":"Too Many Requests"}`)
	equal(t, "no headers by default", r.header.Get("RateLimit"), "")
	equal(t, "still limited", get(t, s, "/r").status, 429)

	clock.Advance(999 * time.Millisecond)
	equal(t, "Retry-After near refill", get(t, s, "/r").header.Get("Retry-After"), "1")
	clock.Advance(time.Millisecond)
	equal(t, "after refill", get(t, s, "/r").status, 200)
	equal(t, "Attempts", s.Attempts("/r"), 6)
}

// A gateway's default load shedding: 503, and no Retry-After unless asked.
func TestRateLimitStatus(t *testing.T) {
	clock := newFakeClock()
	s := NewServer(t, WithClock(clock.Now), WithRateLimit(1, 1), WithRateLimitStatus(503))
	equal(t, "first", get(t, s, "/").status, 200)
	r := get(t, s, "/")
	equal(t, "refused", r.status, 503)
	equal(t, "no Retry-After", r.header.Get("Retry-After"), "")
	clock.Advance(time.Second)
	equal(t, "after refill", get(t, s, "/").status, 200)

	told := NewServer(t, WithClock(clock.Now), WithRateLimit(1, 1), WithRateLimitStatus(503), WithRateLimitRetryAfter(2*time.Second))
	get(t, told, "/")
	r = get(t, told, "/")
	equal(t, "503 with a fixed Retry-After", r.status, 503)
	equal(t, "its Retry-After", r.header.Get("Retry-After"), "2")
}

func TestRateLimitRetryAfterRoundsUp(t *testing.T) {
	clock := newFakeClock()
	s := NewServer(t, WithClock(clock.Now), WithRateLimit(0.25, 1))
	get(t, s, "/")
	equal(t, "computed", get(t, s, "/").header.Get("Retry-After"), "4")
	clock.Advance(2500 * time.Millisecond)
	equal(t, "rounded up", get(t, s, "/").header.Get("Retry-After"), "2")

	fixed := NewServer(t, WithClock(clock.Now), WithRateLimit(0.25, 1), WithRateLimitRetryAfter(30*time.Second))
	get(t, fixed, "/")
	equal(t, "fixed", get(t, fixed, "/").header.Get("Retry-After"), "30")
}

func TestRateLimitHeaders(t *testing.T) {
	clock := newFakeClock()
	s := NewServer(t, WithClock(clock.Now), WithRateLimit(2, 4), WithRateLimitHeaders(IETFHeaders|XRateLimitHeaders))
	policy := regexp.MustCompile(`^"default";q=(\d+);w=(\d+)$`)
	limit := regexp.MustCompile(`^"default";r=(\d+);t=(\d+)$`)
	want := []struct {
		status    int
		remaining string
		reset     int64
	}{{200, "3", 1}, {200, "2", 1}, {200, "1", 2}, {200, "0", 2}, {429, "0", 2}}
	for i, w := range want {
		r := get(t, s, "/")
		equal(t, "status", r.status, w.status)
		m := policy.FindStringSubmatch(r.header.Get("RateLimit-Policy"))
		if m == nil || m[1] != "4" || m[2] != "2" {
			t.Errorf("request %d: RateLimit-Policy = %q, want q=4;w=2", i, r.header.Get("RateLimit-Policy"))
		}
		m = limit.FindStringSubmatch(r.header.Get("RateLimit"))
		if m == nil || m[1] != w.remaining || m[2] != strconv.FormatInt(w.reset, 10) {
			t.Errorf("request %d: RateLimit = %q, want r=%s;t=%d", i, r.header.Get("RateLimit"), w.remaining, w.reset)
		}
		equal(t, "X-RateLimit-Limit", r.header.Get("X-RateLimit-Limit"), "4")
		equal(t, "X-RateLimit-Remaining", r.header.Get("X-RateLimit-Remaining"), w.remaining)
		equal(t, "X-RateLimit-Reset", r.header.Get("X-RateLimit-Reset"), strconv.FormatInt(clock.Now().Unix()+w.reset, 10))
	}
}

func TestFailureRatioIsDeterministic(t *testing.T) {
	run := func(seed int64) string {
		s := NewServer(t, WithFailureRatio(0.4, []int{500, 503}, seed))
		got := statuses(t, s, "/f", 40)
		s.Reset() // restarts the sequence too
		equal(t, "after Reset", fmtInts(statuses(t, s, "/f", 40)), fmtInts(got))
		return fmtInts(got)
	}
	a, b := run(7), run(7)
	equal(t, "same seed", a, b)
	if c := run(8); c == a {
		t.Errorf("seeds 7 and 8 gave the same sequence %s", a)
	}
	for _, code := range []string{"200", "500", "503"} {
		if !strings.Contains(a, code) {
			t.Errorf("sequence %s has no %s", a, code)
		}
	}

	none := NewServer(t, WithFailureRatio(0, []int{500}, 1))
	equal(t, "ratio 0", fmtInts(statuses(t, none, "/", 3)), "[200 200 200]")
	all := NewServer(t, WithFailureRatio(1, []int{502}, 1))
	all.Script("/", Statuses(201)...)
	equal(t, "ratio 1", fmtInts(statuses(t, all, "/", 3)), "[502 502 502]")
}

func post(t *testing.T, s *Server, header http.Header, body string) result {
	t.Helper()
	return do(t, freshClient(t), http.MethodPost, s.URL+"/orders", header, body)
}

func TestCommitsByOrderIDAndBodyHash(t *testing.T) {
	s := NewServer(t)
	s.Script("/orders", Step{Status: 503}, Step{Status: 201})
	post(t, s, nil, `{"order_id":"o-1","qty":1}`) // 503: not committed
	post(t, s, nil, `{"order_id":"o-1","qty":1}`)
	post(t, s, nil, `{"order_id":"o-1","qty":1}`)
	post(t, s, nil, `{"order_id":42}`)
	post(t, s, nil, `not json`)
	get(t, s, "/orders")
	equal(t, "Commits(o-1)", s.Commits("o-1"), 2)
	equal(t, "Commits(42)", s.Commits("42"), 1)
	sum := sha256.Sum256([]byte("not json"))
	hash := hex.EncodeToString(sum[:])
	equal(t, "Commits(hash)", s.Commits(hash), 1)
	equal(t, "DuplicateCommits", s.DuplicateCommits(), 1)

	reqs := s.Requests()
	equal(t, "CommitKey", reqs[0].CommitKey, "o-1")
	equal(t, "CommitKey hash", reqs[4].CommitKey, hash)
	equal(t, "CommitKey GET", reqs[5].CommitKey, "")
}

func TestCommitStepCreatesDuplicates(t *testing.T) {
	s := NewServer(t)
	// The write is applied, but the client sees a 503 or a reset and retries.
	s.Script("/orders", Step{Status: 503, Commit: true}, Step{Fault: FaultResetBeforeResponse, Commit: true}, Step{Status: 201})
	body := `{"order_id":"o-9"}`
	equal(t, "first", post(t, s, nil, body).status, 503)
	if _, err := freshClient(t).Post(s.URL+"/orders", "application/json", strings.NewReader(body)); err == nil {
		t.Fatal("second attempt succeeded, want reset")
	}
	equal(t, "third", post(t, s, nil, body).status, 201)
	equal(t, "Commits", s.Commits("o-9"), 3)
	equal(t, "DuplicateCommits", s.DuplicateCommits(), 2)
}

func TestIdempotencyKeyReplaysFirstResponse(t *testing.T) {
	s := NewServer(t)
	s.Script("/orders",
		Step{Status: 503, Commit: true}, // applied, response lost
		Step{Status: 201, Body: `{"id":1}`, Header: http.Header{"Location": {"/o/1"}}}, // first 2xx for the key
		Step{Status: 200, Body: `{"id":2}`},                                            // would be a second order
		Step{Status: 502},                                                              // gateway failure: no commit
	)
	key := http.Header{"Idempotency-Key": {"k-1"}}
	equal(t, "first", post(t, s, key, `{"order_id":"ignored"}`).status, 503)
	r := post(t, s, key, `{}`)
	equal(t, "second status", r.status, 201)
	equal(t, "second body", string(r.body), `{"id":1}`)
	equal(t, "second replay header", r.header.Get("Idempotent-Replayed"), "")
	r = post(t, s, key, `{}`)
	equal(t, "replayed status", r.status, 201)
	equal(t, "replayed body", string(r.body), `{"id":1}`)
	equal(t, "replayed Location", r.header.Get("Location"), "/o/1")
	equal(t, "replayed header", r.header.Get("Idempotent-Replayed"), "true")
	equal(t, "replayed X-Request-Id", r.header.Get("X-Request-Id"), "req-3")
	equal(t, "failure", post(t, s, key, `{}`).status, 502)

	equal(t, "Commits(k-1)", s.Commits("k-1"), 1)
	equal(t, "Commits(ignored)", s.Commits("ignored"), 0)
	equal(t, "DuplicateCommits", s.DuplicateCommits(), 0)
	var dup []bool
	for _, r := range s.Requests() {
		dup = append(dup, r.Duplicate)
	}
	equal(t, "Duplicate", fmtBools(dup), "[false true true false]")
}

func fmtBools(v []bool) string {
	s := make([]string, len(v))
	for i, b := range v {
		s[i] = strconv.FormatBool(b)
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestWithCommitThenFail(t *testing.T) {
	s := NewServer(t, WithCommitThenFail(1, 504, 1))
	s.Script("/orders", Step{Status: 400}, Step{Status: 201})
	equal(t, "failing step unchanged", post(t, s, nil, `{"order_id":"a"}`).status, 400)
	equal(t, "committed then failed", post(t, s, nil, `{"order_id":"a"}`).status, 504)
	equal(t, "GET unaffected", get(t, s, "/orders").status, 201)
	equal(t, "Commits", s.Commits("a"), 1)

	half := NewServer(t, WithCommitThenFail(0.5, 503, 3))
	var got []int
	for i := range 20 {
		got = append(got, post(t, half, nil, `{"order_id":"`+strconv.Itoa(i)+`"}`).status)
	}
	seq := fmtInts(got)
	if !strings.Contains(seq, "503") || !strings.Contains(seq, "200") {
		t.Errorf("statuses %s, want a mix of 200 and 503", seq)
	}
	for i := range 20 {
		equal(t, "Commits", half.Commits(strconv.Itoa(i)), 1)
	}
}

func TestRequestsRecording(t *testing.T) {
	clock := newFakeClock()
	s := NewServer(t, WithClock(clock.Now))
	big := strings.Repeat("z", MaxRecordedBody+10)
	do(t, s.Client(), http.MethodPut, s.URL+"/p?a=1&a=2&b=x", http.Header{"X-Trace": {"t1"}}, "hello")
	clock.Advance(time.Second)
	do(t, s.Client(), http.MethodPatch, s.URL+"/p", nil, big)

	reqs := s.Requests()
	equal(t, "len", len(reqs), 2)
	r := reqs[0]
	equal(t, "Method", r.Method, http.MethodPut)
	equal(t, "Path", r.Path, "/p")
	equal(t, "Query", strings.Join(r.Query["a"], ",")+"|"+r.Query.Get("b"), "1,2|x")
	equal(t, "Header", r.Header.Get("X-Trace"), "t1")
	equal(t, "Body", string(r.Body), "hello")
	equal(t, "BodyLen", r.BodyLen, 5)
	equal(t, "Time", r.Time, clock.Now().Add(-time.Second))
	equal(t, "Attempt", r.Attempt, 1)
	equal(t, "ID", r.ID, "req-1")
	equal(t, "Status", r.Status, 200)

	r = reqs[1]
	equal(t, "big Body", len(r.Body), MaxRecordedBody)
	equal(t, "big BodyLen", r.BodyLen, int64(len(big)))
	equal(t, "Attempt", r.Attempt, 2)
	sum := sha256.Sum256([]byte(big))
	equal(t, "big CommitKey hashes the full body", r.CommitKey, hex.EncodeToString(sum[:]))

	reqs[0].Header.Set("X-Trace", "changed")
	reqs[0].Body[0] = 'J'
	again := s.Requests()[0]
	equal(t, "copy Header", again.Header.Get("X-Trace"), "t1")
	equal(t, "copy Body", string(again.Body), "hello")
}

func TestConnectionCounting(t *testing.T) {
	s := NewServer(t)
	for range 10 {
		get(t, s, "/k") // reads each body fully, so the connection is reused
	}
	equal(t, "keep-alive accepted", s.ConnsAccepted(), 1)
	equal(t, "keep-alive open", s.ConnsOpen(), 1)

	fresh := NewServer(t)
	c := freshClient(t)
	for range 3 {
		do(t, c, http.MethodGet, fresh.URL+"/", nil, "")
	}
	equal(t, "fresh accepted", fresh.ConnsAccepted(), 3)
	waitFor(t, func() bool { return fresh.ConnsOpen() == 0 })

	hijacked := NewServer(t)
	hijacked.Script("/", Step{Fault: FaultResetBeforeResponse})
	freshClient(t).Get(hijacked.URL)
	equal(t, "hijacked accepted", hijacked.ConnsAccepted(), 1)
	equal(t, "hijacked open", hijacked.ConnsOpen(), 0) // counted on hijack, before the handler returns
}

func TestReset(t *testing.T) {
	clock := newFakeClock()
	s := NewServer(t, WithClock(clock.Now), WithRateLimit(1, 1))
	s.Script("/", Statuses(500)...)
	equal(t, "scripted", get(t, s, "/").status, 500)
	equal(t, "limited", get(t, s, "/").status, 429)
	post(t, s, nil, "x")
	s.Reset()
	equal(t, "Total", s.Total(), 0)
	equal(t, "Attempts", s.Attempts("/"), 0)
	equal(t, "Requests", len(s.Requests()), 0)
	equal(t, "DuplicateCommits", s.DuplicateCommits(), 0)
	r := get(t, s, "/")
	equal(t, "script and limiter cleared", r.status, 200)
	equal(t, "request ids restart", r.header.Get("X-Request-Id"), "req-1")
	if s.ConnsAccepted() == 0 {
		t.Error("Reset cleared connection counts")
	}
}

func TestConcurrentUse(t *testing.T) {
	s := NewServer(t)
	s.Script("/", Statuses(503, 200)...)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/c"+strconv.Itoa(i), strings.NewReader("b"))
				resp, err := s.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				s.Attempts("/c0")
				s.Requests()
				s.DuplicateCommits()
			}
		}()
	}
	wg.Wait()
	equal(t, "Total", s.Total(), 80)
	sum := sha256.Sum256([]byte("b"))
	equal(t, "Commits", s.Commits(hex.EncodeToString(sum[:])), 72)
}

func TestInvalidArgumentsPanic(t *testing.T) {
	s := NewServer(t)
	tests := map[string]func(){
		"status":        func() { s.Script("/", Step{Status: 99}) },
		"fault":         func() { s.Script("/", Step{Fault: Fault(42)}) },
		"format":        func() { s.Script("/", Step{Format: ErrorFormat(-1)}) },
		"rate":          func() { WithRateLimit(0, 1) },
		"burst":         func() { WithRateLimit(1, 0) },
		"ratio":         func() { WithFailureRatio(1.5, []int{500}, 1) },
		"no statuses":   func() { WithFailureRatio(0.5, nil, 1) },
		"commit status": func() { WithCommitThenFail(0.5, 600, 1) },
		"error format":  func() { WithErrorFormat(FormatDefault) },
		"body size":     func() { s.Script("/", Step{BodySize: -1}) },
		"size + fault":  func() { s.Script("/", Step{BodySize: 100, Fault: FaultTruncatedBody}) },
		"nil Func":      func() { s.Script("/", Func(nil)) },
		"method token":  func() { s.Script("P(ST /x", Step{}) },
		"host":          func() { s.Script("POST example.com/x", Step{}) },
		"Attempts":      func() { s.Attempts("GET x") },
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			f()
		})
	}
}

func TestFormatEmpty(t *testing.T) {
	s := NewServer(t)
	s.Script("/e", Step{Status: 502, Format: FormatEmpty, Code: "ignored", Message: "ignored"})
	resp, err := s.Client().Get(s.URL + "/e")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "status", resp.StatusCode, 502)
	equal(t, "body", string(b), "")
	equal(t, "ContentLength", resp.ContentLength, 0)
	equal(t, "Content-Type", resp.Header.Get("Content-Type"), "")
	if _, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("Content-Type sent: %q", resp.Header["Content-Type"])
	}

	// As the server's format it applies to its own 429s too.
	limited := NewServer(t, WithErrorFormat(FormatEmpty), WithRateLimit(1, 1), WithClock(newFakeClock().Now))
	get(t, limited, "/")
	r := get(t, limited, "/")
	equal(t, "limited status", r.status, 429)
	equal(t, "limited body", string(r.body), "")
}

func TestNilHeaderRemovesServerHeader(t *testing.T) {
	s := NewServer(t)
	s.Script("/n", Step{Status: 404, Header: http.Header{"X-Request-Id": nil, "X-Openstack-Request-Id": {"os-1"}}})
	r := get(t, s, "/n")
	equal(t, "status", r.status, 404)
	if v, ok := r.header["X-Request-Id"]; ok {
		t.Errorf("X-Request-Id sent: %q", v)
	}
	equal(t, "X-Openstack-Request-Id", r.header.Get("X-Openstack-Request-Id"), "os-1")
	// The server still numbers the request.
	equal(t, "recorded id", s.Requests()[0].ID, "req-1")
}

func TestBodySizePadsWithSpaces(t *testing.T) {
	s := NewServer(t)
	s.Script("/big",
		Step{Status: 500, Code: "BIG.1", Message: "big", BodySize: 1000},
		Step{Status: 200, Body: "abc", BodySize: 2},
	)
	r := get(t, s, "/big")
	equal(t, "status", r.status, 500)
	equal(t, "length", len(r.body), 1000)
	equal(t, "Content-Length", r.header.Get("Content-Length"), "1000")
	prefix := `{"error_code":"BIG.1","error_msg":"big"}`
	equal(t, "prefix", string(r.body[:len(prefix)]), prefix)
	if rest := bytes.Trim(r.body[len(prefix):], " "); len(rest) != 0 {
		t.Errorf("padding holds %q, want only spaces", rest)
	}
	if !json.Valid(r.body) {
		t.Error("padded JSON body is not valid JSON")
	}
	// A BodySize below the body's length changes nothing.
	equal(t, "short BodySize", string(get(t, s, "/big").body), "abc")
}

func TestBodySizeStreamsWithoutHoldingTheBody(t *testing.T) {
	const size = 256 << 20
	s := NewServer(t)
	s.Script("/huge", Step{Body: "{}", BodySize: size})
	c := freshClient(t)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := c.Get(s.URL + "/huge")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size || resp.ContentLength != size {
		t.Fatalf("read %d bytes (Content-Length %d), %v; want %d", n, resp.ContentLength, err, size)
	}
	// Server and client share this process: both must stream.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Errorf("serving a %d MiB body allocated %d KiB", size>>20, alloc>>10)
	}
}

func TestBodySizeStopsWhenClientLeaves(t *testing.T) {
	s := NewServer(t)
	s.Script("/endless", Step{BodySize: 1 << 62}) // only stopping early ends it
	resp, err := freshClient(t).Get(s.URL + "/endless")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil || n != 1<<20 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	resp.Body.Close() // not at EOF: the client drops the connection
	// The handler returns, so the server closes its side too.
	waitFor(t, func() bool { return s.ConnsOpen() == 0 })
}

// A body that is a JSON document goes out as application/json, as a real
// service's would; generated clients decode nothing from text/plain.
func TestJSONBodyIsSentAsJSON(t *testing.T) {
	s := NewServer(t)
	for _, tc := range []struct {
		step Step
		want string
	}{
		{Step{Body: `{"id":"u1"}`}, "application/json"},
		{Step{Body: " \n[1, 2]"}, "application/json"},
		{Step{Status: 404, Body: `{"error_code":"IAM.0003"}`}, "application/json"},
		{Step{Body: `{"id":`}, "text/plain; charset=utf-8"}, // not JSON: sniffed
		{Step{Body: `42`}, "text/plain; charset=utf-8"},     // a JSON number, but not a document
		{Step{Body: "hello"}, "text/plain; charset=utf-8"},
		{Step{Body: `{"id":"u1"}`, Header: http.Header{"content-type": {"application/vnd.api+json"}}}, "application/vnd.api+json"},
		{Step{Body: `{"id":"u1"}`, Header: http.Header{"Content-Type": nil}}, ""}, // removed, as the step says
	} {
		s.Script("/x", tc.step)
		equal(t, "Content-Type of "+tc.step.Body, get(t, s, "/x").header.Get("Content-Type"), tc.want)
	}
}
