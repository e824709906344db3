package resilienthttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/resilienthttp/resilienthttp/internal/errbody"
)

type callKey struct{}

type overridesKey struct{}

// overrides is what a caller set on a call's context.
type overrides struct {
	policy     *Policy
	policyErr  error // policy.Validate()
	idempotent bool
}

// ContextWithPolicy returns a context that makes a call use p instead of the
// client's policy (zero fields of p keep their defaults, not the client's
// values), for an operation that needs other rules, such as one that must
// never be retried. Start p from Client.Policy to keep the client's rules:
//
//	p := c.Policy()
//	p.MaxAttempts = 1
//	ctx = ContextWithPolicy(ctx, p)
//
// The context keeps its own copy of p. A call made with an invalid p fails
// at once, sending nothing, with an error for which
// errors.Is(err, ErrInvalidPolicy).
func ContextWithPolicy(ctx context.Context, p Policy) context.Context {
	o := overrides{}
	if prev, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		o = *prev
	}
	o.policyErr = p.Validate()
	p = p.clone().withDefaults()
	o.policy = &p
	return context.WithValue(ctx, overridesKey{}, &o)
}

// ContextIdempotent returns a context that marks a call as safe to repeat
// whatever its method, for an operation the SDK knows to be idempotent (a
// POST that only reads, say).
func ContextIdempotent(ctx context.Context) context.Context {
	o := overrides{}
	if prev, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		o = *prev
	}
	o.idempotent = true
	return context.WithValue(ctx, overridesKey{}, &o)
}

// call is the state of one logical request across its attempts. The retry
// loop runs on the caller's goroutine, so it needs no lock.
type call struct {
	c    *Client
	p    *Policy
	ctx  context.Context
	req  *http.Request // the caller's
	host *host         // the guards of the request's host

	// last is the last answer, as the transport read it: for the final
	// response, its Retry-After is the APIError's.
	last answer

	attempts   int
	lastStatus int
	wait       time.Duration
	reason     StopReason
	head       *errorHead // of the final error response, once read
	key        string     // the idempotency key every attempt carries, if any

	safe           bool // repeating cannot duplicate an effect
	single         bool // the body can be sent only once
	retryable      bool // the policy would repeat the last outcome
	refreshPending bool
	refreshed      bool

	// ev is what the observers' events need, made only when there are
	// observers (see events): the call's own size is the hot path's.
	ev *callEvents
}

// callEvents is the part of a call's state that only its events use.
type callEvents struct {
	url      string       // the request's URL, redacted
	start    time.Time    // when the call began
	sends    int          // requests handed to the base transport
	limWaits limiterWaits // the current attempt's limiter waits
}

// events returns the call's event state, making it on first use.
func (cl *call) events() *callEvents {
	if cl.ev == nil {
		cl.ev = &callEvents{url: redactURL(cl.req.URL)}
	}
	return cl.ev
}

// errorHead is the start of the final error response's body and the error
// its read ended with, if any.
type errorHead struct {
	body []byte
	err  error
}

func (c *Client) do(req *http.Request, standard bool) (*http.Response, error) {
	resp, err := c.send(req, standard)
	if reqErr, ok := err.(*RequestError); ok && standard {
		reqErr.wrapped = true
	}
	return resp, err
}

// send runs one call: the retry loop over a replayable copy of req, then
// the final answer as Do or StandardClient returns it.
func (c *Client) send(req *http.Request, standard bool) (*http.Response, error) {
	if req == nil || req.URL == nil {
		return nil, errors.New("resilienthttp: nil request or request URL")
	}
	cl, err := c.newCall(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if c.obs.CallStart != nil || c.obs.CallEnd != nil {
		cl.begin()
	}
	resp, err := cl.run(standard)
	if c.obs.CallEnd != nil {
		cl.end(resp, err)
	}
	return resp, err
}

// run sends the call's request through the retry loop and turns its final
// answer into what Do or StandardClient returns.
func (cl *call) run(standard bool) (*http.Response, error) {
	c, req := cl.c, cl.req
	lreq, err := cl.loopRequest()
	if err != nil {
		closeBody(req)
		return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Err: err}
	}
	resp, err := c.loop.Do(lreq)
	closeBody(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, cl.requestError(err)
	}
	switch {
	case standard && resp.StatusCode >= 400:
		cl.keepErrorHead(resp)
	case standard:
	case resp.StatusCode >= 400:
		return nil, cl.apiError(resp)
	case c.errorsIn2xx && resp.StatusCode < 300:
		return cl.checkErrorIn2xx(resp)
	}
	return resp, nil
}

// begin tells the observers that the call begins; the context CallStart
// returns becomes the call's.
func (cl *call) begin() {
	c, ev := cl.c, cl.events()
	ev.start = c.clock.Now()
	if c.obs.CallStart != nil {
		cl.ctx = c.obs.CallStart(cl.ctx, CallStart{Request: cl.req, Method: cl.req.Method, URL: ev.url, Host: cl.host.key})
	}
}

// end tells the observers how the call ended.
func (cl *call) end(resp *http.Response, err error) {
	ev := cl.events()
	e := CallEnd{
		Method:   cl.req.Method,
		URL:      ev.url,
		Host:     cl.host.key,
		Attempts: cl.attempts,
		Status:   cl.lastStatus,
		Reason:   cl.reason,
		Err:      err,
		Duration: cl.c.clock.Now().Sub(ev.start),
	}
	if resp != nil {
		e.Status = resp.StatusCode
	}
	if err == nil && e.Status < 400 {
		e.Reason = "" // succeeded
	}
	if cl.last.hasRetryAfter {
		e.RetryAfter = cl.last.retryAfter
	}
	cl.c.obs.CallEnd(cl.ctx, e)
}

// newCall sets up the state of a call to req, or says why it cannot be
// made: a context already done, an invalid policy.
func (c *Client) newCall(req *http.Request) (*call, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Reason: StopContextDone, Err: err}
	}
	cl := &call{c: c, p: &c.policy, ctx: ctx, req: req}
	policyErr := c.policyErr
	if o, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		if o.policy != nil {
			cl.p, policyErr = o.policy, o.policyErr
		}
		cl.safe = o.idempotent
	}
	if policyErr != nil {
		return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Err: policyErr}
	}
	cl.host = c.hostFor(req)
	cl.key = req.Header.Get(cl.p.IdempotencyKeyHeader)
	cl.safe = cl.safe || isIdempotentMethod(req.Method) || cl.key != ""
	return cl, nil
}

// loopRequest returns the request the retry loop sends: the caller's, with
// the call in its context, its own header where the client adds to it, and
// a body every attempt can send whole.
func (cl *call) loopRequest() (*retryablehttp.Request, error) {
	c, req := cl.c, cl.req
	out := req.WithContext(context.WithValue(cl.ctx, callKey{}, cl))
	if (c.newKey != nil && !cl.safe) || c.attemptHeader != "" || c.invocationHdr != "" {
		out.Header = req.Header.Clone()
		if out.Header == nil {
			out.Header = make(http.Header)
		}
		if c.newKey != nil && !cl.safe {
			cl.key = c.newKey()
			out.Header.Set(cl.p.IdempotencyKeyHeader, cl.key)
			cl.safe = true
		}
		if c.attemptHeader != "" {
			out.Header.Set(c.attemptHeader, "1")
		}
		if c.invocationHdr != "" {
			out.Header.Set(c.invocationHdr, rand.Text())
		}
	}
	replay, once, length, err := replayableBody(req, c.maxBuffered)
	if err != nil {
		return nil, err
	}
	out.Body, out.GetBody = nil, nil
	lreq, _ := retryablehttp.FromRequest(out) // cannot fail without a body
	switch {
	case replay != nil:
		if err := lreq.SetBody(retryablehttp.ReaderFunc(replay)); err != nil {
			return nil, err
		}
		lreq.ContentLength = length // SetBody guesses; the caller knew
	case once != nil:
		// Left out of the loop's rewinding: sent as is, once.
		lreq.Body, lreq.ContentLength = io.NopCloser(once), length
		cl.single = true
	}
	return lreq, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// checkRetry is the loop's CheckRetry: it settles the attempt. It never
// returns an error, so the loop hands back the attempt's own response or
// error.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	cl, _ := ctx.Value(callKey{}).(*call)
	if cl == nil {
		return false, nil
	}
	return cl.settle(resp, err), nil
}

// settle decides what an attempt's outcome means for the call and applies
// the decision. It reports whether to repeat the request.
func (cl *call) settle(resp *http.Response, err error) bool {
	var f facts
	cl.facts(&f, resp, err)
	d := decide(cl.p, &f)
	cl.apply(&d, &f, resp)
	return d.retry
}

// facts gathers what decide needs. A success reads nothing more: the clock,
// the budget and the random source cost on the hot path.
func (cl *call) facts(f *facts, resp *http.Response, err error) {
	f.err, f.attempts, f.safe, f.bodyOnce = err, cl.attempts, cl.safe, cl.single
	f.sent = cl.last.sent
	if err == nil {
		f.status = resp.StatusCode
		if f.status < 400 {
			return
		}
		a := &cl.last
		if a.resp != resp {
			a.read(resp, nil, cl.c.clock)
		}
		f.retryAfter, f.hasRetryAfter = a.retryAfter, a.hasRetryAfter
		f.hint = readRetryHint(resp.Header, cl.p.RetryHintHeaders)
	}
	f.canRefresh = cl.c.refresh != nil && !cl.refreshed
	f.ctxDone = cl.ctx.Err() != nil
	f.now = cl.c.clock.Now()
	f.deadline, _ = cl.ctx.Deadline()
	f.budgetLeft = cl.host.budget == nil || cl.host.budget.allowsRetry()
	f.jitter = cl.c.rnd()
}

// apply is the one place where a decision takes effect: the call's record,
// the retry budget, draining the answer that will be repeated, the retry
// hook and the log.
func (cl *call) apply(d *decision, f *facts, resp *http.Response) {
	if d.sent {
		cl.attempts++
	}
	if f.err == nil {
		cl.lastStatus = f.status
	}
	cl.reason, cl.retryable, cl.wait, cl.refreshPending = d.reason, d.retryable, d.wait, d.refresh
	if b := cl.host.budget; b != nil {
		switch {
		case d.succeeded:
			b.succeeded()
		case d.spendsBudget:
			b.failed()
		}
	}
	if d.reason == StopBudgetExhausted && cl.c.obs.BudgetRefused != nil {
		cl.c.obs.BudgetRefused(cl.ctx, BudgetRefused{Method: cl.req.Method, URL: cl.events().url, Host: cl.host.key,
			Attempt: cl.attempts, Status: f.status, Err: unwrapURLError(f.err)})
	}
	if !d.retry {
		return
	}
	if resp != nil {
		// go-retryablehttp drains only 4 KiB before closing, which costs a
		// connection for any longer error body; drain up to maxDrain first.
		limitErrorBody(resp.Body, drainTimeout)
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	}
	if cl.c.onRetry != nil || cl.c.obs.Retry != nil {
		cl.report(f, d)
	}
}

// report tells the retry hook and the observers (the logger among them)
// about a retry.
func (cl *call) report(f *facts, d *decision) {
	ev := RetryEvent{
		Method:      cl.req.Method,
		URL:         redactURL(cl.req.URL),
		Host:        cl.host.key,
		Attempt:     cl.attempts,
		Status:      f.status,
		Err:         unwrapURLError(f.err),
		ErrorClass:  ErrorClass(f.err),
		RetryAfter:  f.retryAfter,
		ServerAsked: f.retryAfter > 0 && !d.refresh,
		Wait:        d.wait,
	}
	if cl.c.onRetry != nil {
		cl.c.onRetry(ev)
	}
	if cl.c.obs.Retry != nil {
		cl.c.obs.Retry(cl.ctx, ev)
	}
}

// prepare is the loop's PrepareRetry: it waits as decided, then gives the
// request its own header copy for the next attempt's changes.
func (c *Client) prepare(req *http.Request) error {
	cl, _ := req.Context().Value(callKey{}).(*call)
	if cl == nil {
		return nil
	}
	if err := c.clock.Sleep(cl.ctx, cl.wait); err != nil {
		cl.reason = StopContextDone
		return err
	}
	if c.attemptHeader == "" && c.prepareRetry == nil && !cl.refreshPending {
		return nil
	}
	// The loop's copy of the request shares the caller's header map; hooks
	// must not write into it.
	req.Header = req.Header.Clone()
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	if c.attemptHeader != "" {
		req.Header.Set(c.attemptHeader, strconv.Itoa(cl.attempts+1))
	}
	if cl.refreshPending {
		cl.refreshPending, cl.refreshed = false, true
		if err := c.refresh(req); err != nil {
			cl.reason = StopPrepareFailed
			return fmt.Errorf("resilienthttp: credential refresh: %w", err)
		}
	}
	if c.prepareRetry != nil {
		if err := c.prepareRetry(req); err != nil {
			cl.reason = StopPrepareFailed
			return fmt.Errorf("resilienthttp: prepare retry: %w", err)
		}
	}
	return nil
}

func (cl *call) requestError(err error) *RequestError {
	err = unwrapURLError(err)
	if cl.reason == "" && cl.ctx.Err() != nil {
		cl.reason = StopContextDone
	}
	return &RequestError{
		Method:         cl.req.Method,
		URL:            redactURL(cl.req.URL),
		Attempts:       cl.attempts,
		LastStatus:     cl.lastStatus,
		Reason:         cl.reason,
		IdempotencyKey: cl.key,
		Err:            err,
		retryable:      cl.retryable && cl.reason != StopContextDone && cl.reason != StopPrepareFailed,
	}
}

// readErrorHead reads the head of the final response's body once, for the
// call's *APIError: kept, it lets ParseAPIError describe a response from
// StandardClient whose body the caller already read and closed.
func (cl *call) readErrorHead(resp *http.Response) {
	if cl.head == nil {
		body, err := readErrorHead(resp.Body)
		cl.head = &errorHead{body: body, err: err}
	}
}

// keepErrorHead reads the head of resp's body and puts it back in front of
// the rest, so the caller still reads the whole body.
func (cl *call) keepErrorHead(resp *http.Response) {
	cl.readErrorHead(resp)
	limitErrorBody(resp.Body, 0) // the rest is the caller's to read
	rest := io.Reader(resp.Body)
	if cl.head.err != nil {
		rest = failedRead{cl.head.err}
	}
	resp.Body = &headFirst{r: io.MultiReader(bytes.NewReader(cl.head.body), rest), body: resp.Body}
}

// headFirst is a response body whose head the client has read already.
type headFirst struct {
	r      io.Reader
	body   io.ReadCloser
	closed atomic.Bool
}

// errReadAfterClose is net/http's answer to a read after Close, which
// reading from the kept head would otherwise hide.
var errReadAfterClose = errors.New("http: read on closed response body")

func (b *headFirst) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errReadAfterClose
	}
	return b.r.Read(p)
}

func (b *headFirst) Close() error {
	b.closed.Store(true)
	return b.body.Close()
}

// failedRead replays the error a read ended with.
type failedRead struct{ err error }

func (r failedRead) Read([]byte) (int, error) { return 0, r.err }

func (cl *call) apiError(resp *http.Response) *APIError {
	cl.readErrorHead(resp)
	finishErrorBody(resp.Body, cl.head.err)
	e := newAPIError(resp, cl.head.body, cl.head.err, cl.req.Method, redactURL(cl.req.URL), cl.c.requestIDs)
	e.Attempts = cl.attempts
	e.Reason = cl.reason
	e.IdempotencyKey = cl.key
	if cl.last.resp == resp {
		e.RetryAfter, e.hasRetryAfter = cl.last.retryAfter, cl.last.hasRetryAfter
	}
	e.retryable = cl.retryable
	return e
}

// checkErrorIn2xx reads the start of a 2xx body and returns an *APIError if
// it is an error document with a code; otherwise the response, whole.
func (cl *call) checkErrorIn2xx(resp *http.Response) (*http.Response, error) {
	cl.keepErrorHead(resp)
	if cl.head.err != nil {
		resp.Body.Close()
		return nil, cl.requestError(cl.head.err)
	}
	// Only shapes that exist to report errors count: a success document may
	// well carry {"code":0,"message":"ok"}.
	switch f := errbody.Parse(resp.Header.Get("Content-Type"), cl.head.body); f.Format {
	case errbody.FormatErrorCode, errbody.FormatErrorCodeCamel, errbody.FormatNestedError, errbody.FormatOAuth:
		if f.Code != "" {
			return nil, cl.apiError(resp)
		}
	}
	return resp, nil
}
