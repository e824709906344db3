// Package servicetest provides a scriptable fake cloud service for testing
// HTTP clients, in the way net/http/httptest provides a bare test server.
//
// A [Server] answers each request according to a script of [Step]s for its
// path, or for its method and path ("POST /v3/users", as net/http's
// ServeMux writes patterns), optionally behind a token-bucket rate limiter
// and seeded failure injection, and records what it received: requests,
// attempts per pattern, committed writes and TCP connections. A step can
// be computed from the request ([Func]). Tests can then assert on client
// behaviour ("retried twice", "honoured Retry-After", "made no duplicate
// writes", "reused its connection") rather than on server internals.
//
// Servers share no state with each other, and the clock used for rate
// limiting and dates can be replaced with [WithClock], so tests need no
// sleeps. A [Clock] from [NewClock] can drive the server and the client
// under test together: a client's 30 s wait for a Retry-After then costs
// no real time. Only [Step.Delay] waits in real time.
package servicetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// MaxRecordedBody is the number of request body bytes kept in
// [Request.Body]. Longer bodies are still read, hashed and counted in full.
const MaxRecordedBody = 1 << 20

// A Server is a fake cloud service listening on a system-chosen port on the
// loopback interface. Create one with New or NewServer; its methods are
// safe for concurrent use.
//
// Until scripted, every path answers 200 OK with an empty body.
// Every response carries an X-Request-Id header "req-N", where N counts the
// requests received since the server started or was last [Server.Reset].
type Server struct {
	// URL is the base URL, of the form http://127.0.0.1:port with no
	// trailing slash.
	URL string

	ts        *httptest.Server
	cfg       config
	ctx       context.Context // canceled by Close, to end delays and hangs
	cancel    context.CancelFunc
	closeOnce sync.Once

	accepted, open atomic.Int64

	mu sync.Mutex
	st state
}

// state is everything Reset discards. It is guarded by Server.mu.
type state struct {
	scripts    map[string]*script
	attempts   map[string]int
	total      int
	requests   []Request
	commits    map[string]*commit
	limiter    *rate.Limiter
	failRand   *rand.Rand
	commitRand *rand.Rand
}

type commit struct {
	count  int
	replay *response // first 2xx answered for the key, replayed to duplicates
}

// A Request is the server's record of one request it received.
type Request struct {
	Method  string
	Path    string
	Query   url.Values
	Header  http.Header
	Body    []byte // at most MaxRecordedBody bytes
	BodyLen int64  // full length of the body as received
	Time    time.Time
	Attempt int    // 1 for the first request on Path, 2 for the next, ...
	ID      string // the X-Request-Id sent back

	// Status is the status code the server chose, or 0 for
	// FaultResetBeforeResponse, which sends no status line.
	Status int

	// CommitKey is the key a POST, PUT or PATCH commits under (see
	// [Server.Commits]), whether or not it committed. It is empty for
	// other methods.
	CommitKey string

	// Duplicate reports that this write carried an Idempotency-Key that
	// had already been committed, so it was not committed again.
	Duplicate bool
}

// New starts a Server. The caller must call Close when finished with it;
// tests should prefer [NewServer], which arranges that.
func New(opts ...Option) *Server {
	s := &Server{cfg: config{now: time.Now, format: FormatErrorCode}}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.st = newState(&s.cfg)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.ts.Config.ConnState = s.connState
	s.ts.Start()
	s.URL = s.ts.URL
	return s
}

// NewServer starts a Server and registers t.Cleanup to close it.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	t.Cleanup(s.Close)
	return s
}

// Close ends pending delays and hangs, then shuts the server down and waits
// for its handlers to return. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		// Cancel first: httptest waits for active handlers, and a hanging
		// handler only returns once it sees the cancellation.
		s.cancel()
		s.ts.Close()
	})
}

// Client returns an HTTP client configured for the server. Its idle
// connections are closed by Close.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Reset forgets scripts, recorded requests, attempts and commits, and
// restarts the rate limiter and the random failure sequences, returning
// the server to its state right after New. Connection counts are kept,
// since connections outlive it.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st = newState(&s.cfg)
}

// Attempts returns the number of requests received that pattern matches,
// a pattern as Script reads it, matched exactly: "/v3/users" counts every
// request on that path, "POST /v3/users" the POSTs, "GET /v3/users" the
// GETs and HEADs. "/" counts the requests on "/" only, not on every path.
// It panics on an invalid pattern.
func (s *Server) Attempts(pattern string) int {
	method, path, err := parsePattern(pattern)
	if err != nil {
		panic(fmt.Sprintf("servicetest: Attempts(%q): %v", pattern, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.st.attempts[scriptKey(method, path)]
	if method == http.MethodGet {
		n += s.st.attempts[scriptKey(http.MethodHead, path)]
	}
	return n
}

// Total returns the number of requests received on all paths.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.total
}

// Requests returns a copy of the records of all requests received, in
// arrival order, except that a request answered by a [Func] step is
// recorded once its function returns, after requests that arrived while
// it ran.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.st.requests))
	for i, r := range s.st.requests {
		r.Query = maps.Clone(r.Query) // values are never mutated; a shallow clone suffices
		r.Header = r.Header.Clone()
		r.Body = bytes.Clone(r.Body)
		out[i] = r
	}
	return out
}

// Commits returns how many times a write was committed under key.
//
// A POST, PUT or PATCH commits when its step answers 2xx without a Fault,
// when the step sets [Step.Commit], or when [WithCommitThenFail] picks it.
// It commits under the value of its Idempotency-Key header if present, else
// under the "order_id" field of a JSON object body (string value, or the
// literal JSON text of a number), else under the hex SHA-256 of its body.
// [Request.CommitKey] shows the key of each write.
//
// Like a real idempotent API, the server commits each Idempotency-Key at
// most once: a later write with the same key that would commit is recorded
// with [Request.Duplicate] set instead, and if its step answers 2xx it gets
// the first 2xx response given for that key, with the header
// Idempotent-Replayed: true. Writes keyed by order_id or body hash have no
// such protection, which is how naive retries create duplicates.
//
// A key whose first commit answered an error ([Step.Commit],
// [WithCommitThenFail]: the write applied, the response lost) has no 2xx
// to replay. A retry under that key then gets its own step's answer: a
// 2xx is recorded Duplicate, not committed again, sent without
// Idempotent-Replayed, and is what later duplicates get replayed; an error
// step (one with Commit set is recorded Duplicate) answers its error. So
// a client retrying a committed-then-failed keyed write sees its script's
// next answer, and Commits(key) stays 1.
func (s *Server) Commits(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.st.commits[key]; c != nil {
		return c.count
	}
	return 0
}

// DuplicateCommits returns the number of commits beyond the first, summed
// over all keys. A client that never duplicates a write keeps it at 0.
func (s *Server) DuplicateCommits() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.st.commits {
		n += max(c.count-1, 0)
	}
	return n
}

// ConnsAccepted returns the number of TCP connections the server has
// accepted.
func (s *Server) ConnsAccepted() int { return int(s.accepted.Load()) }

// ConnsOpen returns the number of accepted connections that are not yet
// closed. Connections cut by a Fault count as closed.
func (s *Server) ConnsOpen() int { return int(s.open.Load()) }

func (s *Server) connState(_ net.Conn, cs http.ConnState) {
	switch cs {
	case http.StateNew:
		s.accepted.Add(1)
		s.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.open.Add(-1)
	}
}

func newState(c *config) state {
	st := state{
		scripts:  map[string]*script{},
		attempts: map[string]int{},
		commits:  map[string]*commit{},
	}
	if c.rps > 0 {
		st.limiter = rate.NewLimiter(rate.Limit(c.rps), c.burst)
	}
	if c.failRatio > 0 {
		st.failRand = rand.New(rand.NewPCG(uint64(c.failSeed), 0))
	}
	if c.commitRatio > 0 {
		st.commitRand = rand.New(rand.NewPCG(uint64(c.commitSeed), 0))
	}
	return st
}

// response is a rendered answer, kept apart from the per-request headers so
// that it can be replayed to idempotent duplicates.
type response struct {
	status int
	header http.Header
	body   []byte
	size   int64 // Step.BodySize: body padded with spaces to this length
}

// plan is what serve must do for one request, decided under Server.mu.
type plan struct {
	base  http.Header // X-Request-Id and rate-limit headers
	resp  response
	delay time.Duration
	fault Fault
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, n, sum := readBody(r.Body)
	now := s.cfg.now()
	p := s.decide(r, body, n, sum, now)

	if p.delay > 0 && !s.wait(r.Context(), p.delay) {
		if s.ctx.Err() != nil {
			abort(w, false) // a server shutting down drops its requests
		}
		return
	}
	h := w.Header()
	maps.Copy(h, p.base)
	maps.Copy(h, p.resp.header)
	status, out := p.resp.status, p.resp.body
	rc := http.NewResponseController(w)
	switch p.fault {
	case FaultResetBeforeResponse:
		abort(w, true)
	case FaultResetMidBody, FaultTruncatedBody:
		if len(out) == 0 {
			out = bytes.Repeat([]byte{'x'}, 64) // something to cut in the middle
		}
		// Promise the whole body but send only half, so the client notices.
		h.Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(status)
		w.Write(out[:len(out)/2])
		rc.Flush() // Hijack would drop unflushed body bytes
		abort(w, p.fault == FaultResetMidBody)
	case FaultHangAfterHeaders:
		w.WriteHeader(status)
		rc.Flush()
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		// Returning normally would end the chunked body cleanly and make
		// the hang look like an empty success.
		abort(w, false)
	default:
		pad := p.resp.size - int64(len(out))
		if pad > 0 {
			h.Set("Content-Length", strconv.FormatInt(p.resp.size, 10))
		}
		w.WriteHeader(status)
		if _, err := w.Write(out); err == nil && pad > 0 && r.Method != http.MethodHead {
			writePadding(r.Context(), w, pad)
		}
	}
}

// padding is the shared, read-only source of Step.BodySize's spaces.
var padding = bytes.Repeat([]byte{' '}, 32<<10)

// writePadding writes n spaces to w, stopping early when the client goes
// away (a write fails or the request's context ends).
func writePadding(ctx context.Context, w io.Writer, n int64) {
	for n > 0 && ctx.Err() == nil {
		k := min(n, int64(len(padding)))
		if _, err := w.Write(padding[:k]); err != nil {
			return
		}
		n -= k
	}
}

// decide records the request and chooses its response, under s.mu but
// for a Func step's function.
func (s *Server) decide(r *http.Request, body []byte, n int64, sum [sha256.Size]byte, now time.Time) plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.st // still the server's state after a Reset while unlocked
	path := r.URL.Path
	st.total++
	st.attempts[path]++
	st.attempts[scriptKey(r.Method, path)]++
	rec := Request{
		Method:  r.Method,
		Path:    path,
		Query:   r.URL.Query(),
		Header:  r.Header.Clone(),
		Body:    body,
		BodyLen: n,
		Time:    now,
		Attempt: st.attempts[path],
		ID:      "req-" + strconv.Itoa(st.total),
	}
	p := plan{base: http.Header{"X-Request-Id": {rec.ID}}}

	// The limiter and failure injection stand in front of the script:
	// requests they reject do not consume a step.
	var step Step
	if ok, retryAfter := s.admit(now, p.base); !ok {
		step = Step{Status: cmp.Or(s.cfg.limitCode, http.StatusTooManyRequests), RetryAfter: retryAfter}
	} else if st.failRand != nil && st.failRand.Float64() < s.cfg.failRatio {
		step = Step{Status: s.cfg.failStatuses[st.failRand.IntN(len(s.cfg.failStatuses))]}
	} else {
		step = st.next(r.Method, path)
	}
	if step.compute != nil {
		// The test's function may call the server's methods: it runs
		// unlocked, and a panic in it (the test's bug) leaves s.mu locked
		// for the deferred Unlock.
		s.mu.Unlock()
		func() {
			defer s.mu.Lock()
			step = computeStep(step.compute, r, body)
		}()
	}
	p.resp = s.render(step, path)

	if m := r.Method; m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch {
		rec.CommitKey = commitKey(r.Header, body, sum)
		ok := step.Fault == FaultNone && p.resp.status < 300
		if ok && st.commitRand != nil && st.commitRand.Float64() < s.cfg.commitRatio {
			step = Step{Status: s.cfg.commitStatus, Commit: true, Delay: step.Delay}
			p.resp, ok = s.render(step, path), false
		}
		if ok || step.Commit {
			c := st.commits[rec.CommitKey]
			if c == nil {
				c = &commit{}
				st.commits[rec.CommitKey] = c
			}
			rec.Duplicate = c.count > 0 && r.Header.Get("Idempotency-Key") != ""
			switch {
			case !rec.Duplicate:
				c.count++
			case ok && c.replay != nil:
				p.resp = c.replay.clone()
				p.resp.header.Set("Idempotent-Replayed", "true")
			}
			if ok && c.replay == nil {
				first := p.resp.clone()
				c.replay = &first
			}
		}
	}

	p.delay, p.fault = step.Delay, step.Fault
	if p.fault != FaultResetBeforeResponse {
		rec.Status = p.resp.status
	}
	st.requests = append(st.requests, rec)
	return p
}

// render turns a step into a response, generating the error body.
func (s *Server) render(step Step, path string) response {
	resp := response{status: step.Status, header: http.Header{}, body: []byte(step.Body), size: step.BodySize}
	if resp.status == 0 {
		resp.status = http.StatusOK
	}
	for k, v := range step.Header {
		resp.header[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	if step.RetryAfter != "" {
		resp.header.Set("Retry-After", step.RetryAfter)
	}
	if _, set := resp.header["Content-Type"]; !set && isJSONDocument(step.Body) {
		// Go would sniff text/plain, and generated clients then decode
		// nothing.
		resp.header.Set("Content-Type", "application/json")
	}
	if step.Body == "" && resp.status >= 400 {
		f := step.Format
		if f == FormatDefault {
			f = s.cfg.format
		}
		ct, b := errorBody(f, resp.status, step.Code, step.Message, path)
		if ct != "" && resp.header.Get("Content-Type") == "" {
			resp.header.Set("Content-Type", ct)
		}
		resp.body = b
	}
	return resp
}

// isJSONDocument reports whether body is a JSON object or array.
func isJSONDocument(body string) bool {
	b := strings.TrimLeft(body, " \t\r\n")
	return b != "" && (b[0] == '{' || b[0] == '[') && json.Valid([]byte(b))
}

// computeStep runs a Func step's function on a copy of r whose body reads
// what the server received, and returns the step it computed, or a 500
// that says what is wrong with it.
func computeStep(f func(*http.Request) Step, r *http.Request, body []byte) Step {
	rr := r.Clone(r.Context())
	rr.Body = io.NopCloser(bytes.NewReader(body))
	st := f(rr)
	err := st.validate()
	if err == nil && (st.compute != nil || st.Status == funcStatus) {
		err = errors.New("a Func step's function returned a Step made by Func")
	}
	if err != nil {
		return Step{Status: http.StatusInternalServerError, Code: "SERVICETEST.INVALID_STEP", Message: "servicetest: Func returned an invalid Step: " + err.Error()}
	}
	st.Header = st.Header.Clone() // the function may reuse its header
	return st
}

func (r response) clone() response {
	return response{status: r.status, header: r.header.Clone(), body: r.body, size: r.size}
}

// wait reports whether d elapsed before the client went away or the server
// closed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
	return false
}

// abort drops the connection under the handler without finishing the
// response. With reset, SO_LINGER 0 makes the close send a TCP RST, which
// the client reads as "connection reset by peer".
func abort(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http then closes the connection
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		tc.SetLinger(0)
	}
	conn.Close()
}

// readBody reads r to the end, keeping a bounded prefix and hashing it all.
func readBody(r io.Reader) (kept []byte, n int64, sum [sha256.Size]byte) {
	h := sha256.New()
	p := &prefix{max: MaxRecordedBody}
	n, _ = io.Copy(io.MultiWriter(h, p), r) // a body cut short is recorded as far as it got
	h.Sum(sum[:0])
	return p.b, n, sum
}

type prefix struct {
	b   []byte
	max int
}

func (p *prefix) Write(b []byte) (int, error) {
	if room := p.max - len(p.b); room > 0 {
		p.b = append(p.b, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

func commitKey(h http.Header, body []byte, sum [sha256.Size]byte) string {
	if k := h.Get("Idempotency-Key"); k != "" {
		return k
	}
	var v struct {
		OrderID json.RawMessage `json:"order_id"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.OrderID) > 0 && string(v.OrderID) != "null" {
		var id string
		if json.Unmarshal(v.OrderID, &id) == nil {
			return id
		}
		return string(v.OrderID)
	}
	return hex.EncodeToString(sum[:])
}
