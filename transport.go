package resilienthttp

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrAttemptTimeout is the cause of an attempt that Policy.AttemptTimeout
// cut short. The call may still retry it, as a transport error after the
// request was sent.
var ErrAttemptTimeout error = attemptTimeoutError{}

type attemptTimeoutError struct{}

func (attemptTimeoutError) Error() string { return "resilienthttp: attempt timed out" }

func (attemptTimeoutError) Timeout() bool { return true }

// attemptTransport carries one attempt: it bounds it by the policy's
// AttemptTimeout and hands it to the base transport. It deliberately has no
// CloseIdleConnections method (see New).
type attemptTransport struct{ c *Client }

func (t attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c, ctx := t.c, req.Context()
	cl, h := t.callAndHost(req)
	lim, probe, cuts, done, err := t.admit(ctx, req, cl, h)
	if err != nil {
		return nil, err
	}
	well := false // the probe's outcome
	if probe {
		// Deferred so that the turn passes on however the attempt ends, a
		// panic in the base transport included; and run after the breaker
		// has counted the attempt, so the next probe sees the circuit it
		// may have opened.
		defer func() { lim.endProbe(well) }()
	}
	var actx context.Context // the attempt's, for the observers
	var start time.Time
	if cl != nil && (c.obs.AttemptStart != nil || c.obs.AttemptEnd != nil) {
		req, actx, start = cl.startAttempt(req, h)
	}
	resp, err := t.send(req, cl)
	var took time.Duration
	if actx != nil {
		took = c.clock.Now().Sub(start)
	}
	// Kept in the call, which the decision reads next (and which saves an
	// allocation per attempt).
	var a *answer
	if cl != nil {
		a = &cl.last
	} else {
		a = new(answer)
	}
	a.read(resp, err, c.clock)
	a.cuts = cuts
	if done != nil {
		h.breaker.report(done, ctx, a)
	}
	if lim != nil {
		lim.observe(a, c.clock)
		well = probe && answeredWell(a)
	}
	if actx != nil && c.obs.AttemptEnd != nil {
		cl.endAttempt(actx, req, h, a, took)
	}
	return resp, err
}

// admit passes an attempt through its host's guards: an open circuit
// refuses it before it queues behind the limiter, the limiter makes it
// wait, and the circuit is asked again, since it may have opened
// meanwhile. It returns the limiter waited for, whether the attempt is the
// host's first-contact probe (which the caller must then end), and the
// breaker's function for the attempt's outcome, and the pacer's count of
// cuts when the attempt joined its queue: a cut made while it waited came
// after its turn was set.
func (t attemptTransport) admit(ctx context.Context, req *http.Request, cl *call, h *host) (lim pacer, probe bool, cuts uint32, done func(error), err error) {
	c := t.c
	if h.breaker != nil {
		if err := h.breaker.refuses(); err != nil {
			return nil, false, 0, nil, err
		}
	}
	if h.limiter != nil {
		lim = h.pacerFor(req, c.limiter.Key)
		cuts = lim.cuts()
		probe, err = lim.wait(ctx, h.key, c.clock)
		if cl != nil && c.obs.LimiterWait != nil {
			cl.reportLimiterWaits(ctx, h.key)
		}
		if err != nil {
			return nil, false, 0, nil, err
		}
	}
	if h.breaker != nil {
		if done, err = h.breaker.allow(); err != nil {
			if probe {
				lim.endProbe(false)
			}
			return nil, false, 0, nil, err
		}
	}
	return lim, probe, cuts, done, nil
}

// startAttempt tells the observers that an attempt is about to be sent. It
// returns the request to send: req with its own header map, which
// AttemptStart may add to, and the attempt's context.
func (cl *call) startAttempt(req *http.Request, h *host) (*http.Request, context.Context, time.Time) {
	c, ctx := cl.c, req.Context()
	out := req.WithContext(ctx)
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	start := c.clock.Now()
	ev := cl.events()
	ev.sends++
	if c.obs.AttemptStart != nil {
		actx := c.obs.AttemptStart(ctx, AttemptStart{Request: out, URL: redactURL(req.URL), Host: h.key,
			Attempt: cl.attempts + 1, Resends: ev.sends - 1})
		if actx != ctx {
			out = out.WithContext(actx)
			ctx = actx
		}
	}
	return out, ctx, start
}

// endAttempt tells the observers how an attempt ended.
func (cl *call) endAttempt(ctx context.Context, req *http.Request, h *host, a *answer, took time.Duration) {
	cl.c.obs.AttemptEnd(ctx, AttemptEnd{Request: req, Host: h.key, Attempt: cl.attempts + 1, Resends: cl.events().sends - 1,
		Status: a.status(), Err: unwrapURLError(a.err), ErrorClass: ErrorClass(a.err), RetryAfter: a.retryAfter,
		Duration: took})
}

// callAndHost returns the call req belongs to (nil outside Do) and the
// guards of req's host, and marks the call's last answer as not yet sent.
func (t attemptTransport) callAndHost(req *http.Request) (*call, *host) {
	cl, _ := req.Context().Value(callKey{}).(*call)
	if cl == nil {
		return nil, t.c.hostFor(req)
	}
	cl.last = answer{} // nothing sent yet
	if req.URL == cl.req.URL {
		return cl, cl.host // not redirected: the call already looked it up
	}
	return cl, t.c.hostFor(req)
}

// answer is what one attempt got back, read once for the guards and for
// the decision: Retry-After is parsed here and nowhere else.
type answer struct {
	resp *http.Response // nil after a transport error
	err  error
	sent bool // the attempt was handed to the base transport
	// retryAfter and hasRetryAfter are the response's Retry-After, read
	// for a status of 400 or more (the clock costs on the hot path).
	retryAfter    time.Duration
	hasRetryAfter bool
	// cuts is the pacer's count of cuts when the attempt passed it.
	cuts uint32
}

// read records what the guards and the decision need from an attempt's
// outcome.
func (a *answer) read(resp *http.Response, err error, clk Clock) {
	*a = answer{resp: resp, err: err, sent: true}
	if err == nil && resp.StatusCode >= 400 {
		a.retryAfter, a.hasRetryAfter = retryAfter(resp.Header, clk.Now())
	}
}

// status is the answer's status code, or 0 after a transport error.
func (a *answer) status() int {
	if a.resp == nil {
		return 0
	}
	return a.resp.StatusCode
}

// send hands the attempt to the base transport, bounded by the policy's
// AttemptTimeout, and bounds the client's read of an error response's body.
func (t attemptTransport) send(req *http.Request, cl *call) (*http.Response, error) {
	var resp *http.Response
	var err error
	bound := errorBodyTimeout
	if cl != nil && cl.p.AttemptTimeout > 0 {
		bound = cl.p.AttemptTimeout
		resp, err = t.sendWithin(req, bound)
	} else {
		resp, err = t.c.base.RoundTrip(req)
	}
	if err == nil && resp.StatusCode >= 400 {
		resp.Body = newErrorBody(resp.Body, t.c.clock, bound)
	}
	return resp, err
}

// sendWithin sends req, giving up with ErrAttemptTimeout after d.
func (t attemptTransport) sendWithin(req *http.Request, d time.Duration) (*http.Response, error) {
	// Like http.Transport's ResponseHeaderTimeout, the bound ends with the
	// response headers: reading a good answer's body is the caller's
	// business, under the caller's context.
	ctx, cancel := context.WithCancelCause(req.Context())
	stop := afterFunc(t.c.clock, d, func() { cancel(ErrAttemptTimeout) })
	resp, err := t.c.base.RoundTrip(req.WithContext(ctx))
	if !stop() {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, ErrAttemptTimeout
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// errorBodyTimeout bounds the client's own read of an error response's body
// when the policy sets no AttemptTimeout. Error documents are small and sent
// with the headers; one that takes longer is broken or hostile.
const errorBodyTimeout = time.Second

// drainTimeout bounds the drain of an error body before a retry: it only
// saves a connection, so it must not spend the caller's time.
const drainTimeout = 100 * time.Millisecond

// errErrorBodyCut is the read error of an error body that took longer than
// its bound.
var errErrorBodyCut = errors.New("resilienthttp: error body not read within its time bound")

// errorBody is an error response's body while the client reads it (its
// head for the *APIError, a drain before a retry): a timer on the client's
// Clock closes it when the read takes too long, so a server that trickles
// an error body cannot hold the call. What was read is kept; the error
// says the body was cut.
type errorBody struct {
	io.ReadCloser
	clk  Clock
	cut  atomic.Bool // the timer closed it
	mu   sync.Mutex
	stop func() bool // the running timer, if any
}

func newErrorBody(body io.ReadCloser, clk Clock, d time.Duration) *errorBody {
	b := &errorBody{ReadCloser: body, clk: clk}
	b.limit(d)
	return b
}

// limit bounds the reads from now on to d; d <= 0 lifts the bound.
func (b *errorBody) limit(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stop != nil {
		b.stop()
		b.stop = nil
	}
	if d > 0 {
		b.stop = afterFunc(b.clk, d, func() {
			b.cut.Store(true)
			b.ReadCloser.Close()
		})
	}
}

func (b *errorBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.cut.Load() {
		err = errErrorBodyCut
	}
	return n, err
}

func (b *errorBody) Close() error {
	b.limit(0)
	return b.ReadCloser.Close()
}

// limitErrorBody bounds the reads of resp's body from now on to d, if it is
// an error body.
func limitErrorBody(body io.Reader, d time.Duration) {
	if b, ok := body.(*errorBody); ok {
		b.limit(d)
	}
}

// cancelOnClose releases an attempt's context once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// errTooManyRedirects replaces net/http's untyped "stopped after 10
// redirects" so the policy can tell it apart without matching text.
var errTooManyRedirects = errors.New("resilienthttp: stopped after 10 redirects")

// checkRedirect keeps net/http's limit of 10 redirects, and extends its
// rule of not forwarding Authorization and Cookie to another host to every
// header whose name looks like a credential (credentialName: X-Auth-Token,
// X-Goog-Api-Key, Private-Token, X-Csrf-Token, …); ordinary headers
// (Idempotency-Key, traceparent, User-Agent, …) go on. Another host is
// another host name, whatever the port. Once a chain of redirects has left
// the first request's host, the credentials stay dropped even when it comes
// back to it, as with net/http's own: the other host chose where it leads.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errTooManyRedirects
	}
	left := !sameHostName(req.URL, via[0].URL)
	for _, r := range via[1:] {
		left = left || !sameHostName(r.URL, via[0].URL)
	}
	if left {
		for k := range req.Header {
			if credentialName(k) {
				delete(req.Header, k)
			}
		}
	}
	return nil
}
