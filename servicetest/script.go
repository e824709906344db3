package servicetest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A Step describes how the server answers one request. The zero Step
// answers 200 OK with an empty body.
type Step struct {
	// Status is the response status code, 200 if zero. Otherwise it must
	// be in the range 200-599.
	Status int

	// Header holds extra response headers. They replace any header of the
	// same name the server would set, including X-Request-Id; a name mapped
	// to a nil slice removes that header, as in
	// http.Header{"X-Request-Id": nil}.
	Header http.Header

	// RetryAfter, if not empty, is sent verbatim as the Retry-After header;
	// see RetryAfterSeconds and RetryAfterDate.
	RetryAfter string

	// Body is the response body. If it is empty and Status is 400 or more,
	// the server generates an error body in Format from Code and Message.
	// A Body that is a JSON object or array is sent as application/json
	// unless Header sets Content-Type (or removes it with a nil value);
	// any other is typed by net/http's sniffing (text/plain for text).
	Body string

	// BodySize, if larger than the body (Body or the generated one), pads
	// the body with spaces to BodySize bytes and sends a Content-Length of
	// BodySize. Spaces are JSON whitespace, so a JSON body stays valid. The
	// padding is streamed from a small shared buffer, never held in memory,
	// and the server stops writing it as soon as the client goes away, so
	// a test can answer with a body of gigabytes. It cannot be combined
	// with a Fault.
	BodySize int64

	// Format selects the generated error body; FormatDefault means the
	// server's format (see WithErrorFormat).
	Format ErrorFormat

	// Code and Message fill the generated error body. Empty values get
	// per-format defaults, described on each ErrorFormat.
	Code, Message string

	// Delay is a real-time wait before answering. If the client goes away
	// during it the server answers nothing; if the server closes during it
	// the connection is dropped.
	Delay time.Duration

	// Fault breaks the response at the network level instead of sending
	// it whole.
	Fault Fault

	// Commit makes a POST, PUT or PATCH commit (see Server.Commits) even
	// though the step fails: the server applied the write and then lost
	// the response, which is how naive retries duplicate writes.
	Commit bool

	// compute, set by Func, computes the step from the request.
	compute func(*http.Request) Step
}

// Func returns a Step whose answer f computes from the request: echo a
// field of the body, page through a list by a query parameter, answer by a
// header. The server calls f once per request that reaches the step, with
// a copy of the request whose Body reads what the server received (its
// first MaxRecordedBody bytes), and answers with the Step f returns as
// with any other: recorded in Requests, counted in Attempts, committed or
// deduplicated, its Delay and Fault applied.
//
// f runs without the server's lock held, so it may call the server's
// methods (Attempts, Commits, Requests); it must be safe for concurrent
// use when requests are. If f returns an invalid Step (see Script), or one
// made by Func, the server answers 500 with a generated error body whose
// code is SERVICETEST.INVALID_STEP and whose message says why, since a
// test's mistake must not pass for the service's answer. A nil f makes
// Script panic.
func Func(f func(r *http.Request) Step) Step {
	return Step{compute: f, Status: funcStatus}
}

// funcStatus marks a Step made by Func with a nil f, which Script rejects;
// a Step from Func with a non-nil f ignores every field but compute.
const funcStatus = -1

// A Fault is a network-level failure injected into a response.
//
// Faults that close the connection before any response byte is read can be
// retried transparently by net/http.Transport when the connection had been
// reused and the request is replayable (GET, HEAD, OPTIONS, TRACE, or any
// method with an Idempotency-Key header and a rewindable body). Tests that
// count attempts should use a fresh connection for such faults.
type Fault int

const (
	// FaultNone sends the response normally.
	FaultNone Fault = iota

	// FaultResetBeforeResponse reads the request, then resets the TCP
	// connection (SO_LINGER 0) without answering; the client sees an
	// error satisfying errors.Is(err, syscall.ECONNRESET).
	FaultResetBeforeResponse

	// FaultResetMidBody sends the status and headers with a Content-Length
	// for the whole body, then half of the body, then resets the
	// connection. An empty body is replaced by 64 bytes of filler.
	FaultResetMidBody

	// FaultTruncatedBody is FaultResetMidBody with an orderly close instead
	// of a reset; the client reads io.ErrUnexpectedEOF.
	FaultTruncatedBody

	// FaultHangAfterHeaders sends the status and headers, then sends
	// nothing more until the client goes away or the server closes, at
	// which point it drops the connection.
	FaultHangAfterHeaders

	numFaults // must stay last
)

// Statuses returns one Step per status code, for the common script of
// bare statuses: s.Script("/v1/orders", Statuses(503, 503, 200)...).
func Statuses(codes ...int) []Step {
	steps := make([]Step, len(codes))
	for i, c := range codes {
		steps[i].Status = c
	}
	return steps
}

// RetryAfterSeconds formats d as a Retry-After delay in whole seconds,
// rounding up and clamping negative durations to zero.
func RetryAfterSeconds(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// RetryAfterDate formats t as a Retry-After HTTP-date.
func RetryAfterDate(t time.Time) string {
	return t.UTC().Format(http.TimeFormat)
}

// Script sets how the server answers requests that match pattern. Call N
// after Script gets steps[N-1]; once the steps run out the last one
// repeats. Requests rejected by the rate limiter or by WithFailureRatio do
// not consume steps.
//
// A pattern is a path, or a method, one or more spaces or tabs, and a
// path, as net/http's ServeMux writes a method in its patterns:
// "/v3/users" answers every method, "POST /v3/users" only POST, and, as
// in ServeMux, "GET /v3/users" answers GET and HEAD. The path is matched
// exactly against the request's URL path (no wildcards, no subtrees),
// except that "" or "/" stands for every path without a script of its
// own, each such path running through the steps independently: "/"
// answers every method, "POST /" every POST. A request takes the first
// script that exists of, in order: its method and path, its path, its
// method and "/", and "/".
//
// Script replaces any earlier script for pattern and restarts its
// sequence; with no steps it removes the script. It panics on an invalid
// Step or pattern (a method that is not an RFC 9110 token, a path that
// does not start with "/" after a method, a host), since that is a mistake
// in the test itself.
func (s *Server) Script(pattern string, steps ...Step) {
	method, path, err := parsePattern(pattern)
	if err != nil {
		panic(fmt.Sprintf("servicetest: Script(%q): %v", pattern, err))
	}
	sc := &script{steps: make([]Step, len(steps)), calls: map[string]int{}}
	for i, st := range steps {
		if err := st.validate(); err != nil {
			panic(fmt.Sprintf("servicetest: Script(%q) step %d: %v", pattern, i+1, err))
		}
		st.Header = st.Header.Clone() // the caller may reuse its header
		sc.steps[i] = st
	}
	key := scriptKey(method, path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(steps) == 0 {
		delete(s.st.scripts, key)
		return
	}
	s.st.scripts[key] = sc
}

// parsePattern splits a Script or Attempts pattern into its method (empty
// for any) and its path ("/" for "").
func parsePattern(pattern string) (method, path string, err error) {
	path = pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		method, path = pattern[:i], strings.TrimLeft(pattern[i:], " \t")
		if !isToken(method) {
			return "", "", fmt.Errorf("method %q is not a token", method)
		}
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("path %q after the method must start with \"/\" (hosts are not matched)", path)
		}
	}
	if path == "" {
		path = "/"
	}
	return method, path, nil
}

// scriptKey is the key of a script or a count: the path, or the method, a
// space and the path.
func scriptKey(method, path string) string {
	if method == "" {
		return path
	}
	return method + " " + path
}

// isToken reports whether s is an RFC 9110 token, the syntax of a method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (st Step) validate() error {
	if st.compute != nil {
		return nil
	}
	switch {
	case st.Status == funcStatus:
		return fmt.Errorf("Func with a nil function")
	case st.Status != 0 && (st.Status < 200 || st.Status > 599):
		return fmt.Errorf("status %d out of range 200-599", st.Status)
	case st.Fault < 0 || st.Fault >= numFaults:
		return fmt.Errorf("unknown Fault %d", st.Fault)
	case st.Format < 0 || st.Format >= numFormats:
		return fmt.Errorf("unknown ErrorFormat %d", st.Format)
	case st.BodySize < 0:
		return fmt.Errorf("negative BodySize %d", st.BodySize)
	case st.BodySize > 0 && st.Fault != FaultNone:
		return fmt.Errorf("BodySize cannot be combined with a Fault")
	}
	return nil
}

type script struct {
	steps []Step
	calls map[string]int // per request path, so the default script restarts for each path
}

// next returns the step for the next request with method on path. s.mu
// must be held.
func (st *state) next(method, path string) Step {
	sc := st.lookup(method, path)
	if sc == nil {
		return Step{}
	}
	i := min(sc.calls[path], len(sc.steps)-1)
	sc.calls[path] = i + 1 // saturates instead of growing without bound
	return sc.steps[i]
}

// lookup returns the script for a request, in Script's order: method and
// path, path, method and "/", "/". A GET script also answers HEAD.
func (st *state) lookup(method, path string) *script {
	methods := []string{method}
	if method == http.MethodHead {
		methods = append(methods, http.MethodGet)
	}
	for _, p := range []string{path, "/"} {
		for _, m := range methods {
			if sc := st.scripts[scriptKey(m, p)]; sc != nil {
				return sc
			}
		}
		if sc := st.scripts[p]; sc != nil {
			return sc
		}
	}
	return nil
}
