package resilienthttp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/resilienthttp/resilienthttp/internal/errbody"
)

type callKey struct{}

type overridesKey struct{}

// overrides is what a caller set on a call's context.
type overrides struct {
	policy     *Policy
	idempotent bool
}

// ContextWithPolicy returns a context that makes a call use p instead of the
// client's policy (zero fields of p keep their defaults), for an operation
// that needs other rules, such as one that must never be retried
// (Policy{MaxAttempts: 1}).
func ContextWithPolicy(ctx context.Context, p Policy) context.Context {
	o := overrides{}
	if prev, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		o = *prev
	}
	p = p.withDefaults()
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
	c      *Client
	p      *Policy
	ctx    context.Context
	req    *http.Request // the caller's
	safe   bool          // repeating cannot duplicate an effect
	single bool          // the body can be sent only once
	host   *host         // the guards of the request's host

	attempts       int
	allowed        bool // the policy would repeat the last outcome
	lastStatus     int
	retryAfter     time.Duration
	wait           time.Duration
	reason         StopReason
	refreshPending bool
	refreshed      bool
}

func (c *Client) do(req *http.Request, standard bool) (*http.Response, error) {
	if req == nil || req.URL == nil {
		return nil, errors.New("resilienthttp: nil request or request URL")
	}
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Reason: StopContextDone, Err: err}
	}
	cl := &call{c: c, p: &c.policy, ctx: ctx, req: req, host: c.hostFor(req)}
	if o, ok := ctx.Value(overridesKey{}).(*overrides); ok {
		if o.policy != nil {
			cl.p = o.policy
		}
		cl.safe = o.idempotent
	}
	cl.safe = cl.safe || isIdempotentMethod(req.Method) || req.Header.Get(cl.p.IdempotencyKeyHeader) != ""

	out := req.WithContext(context.WithValue(ctx, callKey{}, cl))
	if (c.newKey != nil && !cl.safe) || c.attemptHeader != "" || c.invocationHdr != "" {
		out.Header = req.Header.Clone()
		if out.Header == nil {
			out.Header = make(http.Header)
		}
		if c.newKey != nil && !cl.safe {
			out.Header.Set(cl.p.IdempotencyKeyHeader, c.newKey())
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
		closeBody(req)
		return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Err: err}
	}
	out.Body, out.GetBody = nil, nil
	lreq, _ := retryablehttp.FromRequest(out) // cannot fail without a body
	switch {
	case replay != nil:
		if err := lreq.SetBody(retryablehttp.ReaderFunc(replay)); err != nil {
			closeBody(req)
			return nil, &RequestError{Method: req.Method, URL: redactURL(req.URL), Err: err}
		}
		lreq.ContentLength = length // SetBody guesses; the caller knew
	case once != nil:
		// Left out of the loop's rewinding: sent as is, once.
		lreq.Body, lreq.ContentLength = io.NopCloser(once), length
		cl.single = true
	}

	resp, err := c.loop.Do(lreq)
	closeBody(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		reqErr := cl.requestError(err)
		cl.logGiveUp(reqErr.Err)
		return nil, reqErr
	}
	if resp.StatusCode >= 400 {
		cl.logGiveUp(nil)
	}
	if standard {
		return resp, nil
	}
	if resp.StatusCode >= 400 {
		return nil, cl.apiError(resp)
	}
	if c.errorsIn2xx && resp.StatusCode < 300 {
		return cl.checkErrorIn2xx(resp)
	}
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// checkRetry is the loop's CheckRetry: it records the attempt and asks the
// call to decide. It never returns an error, so the loop hands back the
// attempt's own response or error.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	cl, _ := ctx.Value(callKey{}).(*call)
	if cl == nil {
		return false, nil
	}
	return cl.decide(resp, err), nil
}

// decide applies the policy to an attempt's outcome. When it returns true it
// has set cl.wait; when false, cl.reason says why (empty when the response
// is simply final).
func (cl *call) decide(resp *http.Response, err error) bool {
	retry := cl.decideRetry(resp, err)
	if retry && resp != nil {
		// go-retryablehttp drains only 4 KiB before closing, which costs a
		// connection for any longer error body; drain up to maxDrain first.
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	}
	return retry
}

func (cl *call) decideRetry(resp *http.Response, err error) bool {
	p, c := cl.p, cl.c
	var rule Rule
	var ra time.Duration
	var hasRA bool
	var now time.Time // read only on failures: the clock costs on the hot path
	switch {
	// A guard stopped the call for now; the policy would have gone on, so
	// the failure is Retryable later, as one stopped by a deadline is.
	case err != nil && errors.Is(err, ErrCircuitOpen):
		cl.reason, cl.allowed = StopCircuitOpen, true
		return false
	case err != nil && errors.Is(err, ErrRateLimited):
		cl.reason, cl.allowed = StopRateLimited, true
		return false
	case err != nil && cl.ctx.Err() != nil:
		cl.attempts++
		cl.reason = StopContextDone
		return false
	case err != nil:
		cl.attempts++
		now = c.clock.Now()
		rule = classify(err, p)
	default:
		cl.attempts++
		cl.lastStatus = resp.StatusCode
		if resp.StatusCode < 400 {
			if cl.host.budget != nil {
				cl.host.budget.succeeded()
			}
			return false
		}
		now = c.clock.Now()
		ra, hasRA = retryAfter(resp.Header, now)
		cl.retryAfter = ra
		rule = p.StatusRule(resp.StatusCode)
		if resp.StatusCode == http.StatusUnauthorized && c.refresh != nil && !cl.refreshed {
			rule, cl.refreshPending = RuleRetry, true
		}
	}
	cl.allowed = rule.allows(cl.safe, hasRA)
	budgetLeft := true
	if cl.allowed && ra <= 0 && !cl.refreshPending && cl.host.budget != nil {
		budgetLeft = cl.host.budget.failed()
	}
	switch {
	case !cl.allowed:
		cl.reason = StopNotRetryable
		return false
	case cl.attempts >= p.MaxAttempts:
		cl.reason = StopAttemptsExhausted
		return false
	case !budgetLeft:
		cl.reason = StopBudgetExhausted
		return false
	case cl.single:
		cl.reason = StopBodyNotReplayable
		return false
	case cl.ctx.Err() != nil:
		cl.reason = StopContextDone
		return false
	}

	var wait time.Duration
	switch {
	case cl.refreshPending:
		// The refreshed credential is the modification; no reason to wait.
	case ra > 0:
		if ra > p.MaxRetryAfter {
			cl.reason = StopRetryAfterTooLong
			return false
		}
		wait = afterRetryAfter(p, ra, c.rnd)
	default:
		wait = backoff(p, cl.attempts, c.rnd)
	}
	if deadline, ok := cl.ctx.Deadline(); ok {
		left := deadline.Sub(now)
		if ra > left || wait > left {
			cl.reason = StopDeadline
			return false
		}
	}
	cl.wait = wait
	if c.onRetry != nil || c.logger != nil {
		cl.report(resp, err, ra, wait)
	}
	return true
}

func (cl *call) report(resp *http.Response, err error, ra, wait time.Duration) {
	ev := RetryEvent{
		Method:     cl.req.Method,
		URL:        redactURL(cl.req.URL),
		Attempt:    cl.attempts,
		Err:        unwrapURLError(err),
		RetryAfter: ra,
		Wait:       wait,
	}
	if resp != nil {
		ev.Status = resp.StatusCode
	}
	if cl.c.onRetry != nil {
		cl.c.onRetry(ev)
	}
	if cl.c.logger != nil {
		cl.c.logger.LogAttrs(cl.ctx, slog.LevelDebug, "resilienthttp: retrying",
			slog.String("method", ev.Method), slog.String("url", ev.URL),
			slog.Int("attempt", ev.Attempt), slog.Int("status", ev.Status),
			slog.Any("error", ev.Err), slog.Duration("retry_after", ra), slog.Duration("wait", wait))
	}
}

// logGiveUp records, at debug level, why a call that failed stopped.
func (cl *call) logGiveUp(err error) {
	if cl.c.logger == nil || cl.reason == "" {
		return
	}
	cl.c.logger.LogAttrs(cl.ctx, slog.LevelDebug, "resilienthttp: giving up",
		slog.String("method", cl.req.Method), slog.String("url", redactURL(cl.req.URL)),
		slog.Int("attempts", cl.attempts), slog.Int("status", cl.lastStatus),
		slog.String("reason", string(cl.reason)), slog.Any("error", err))
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
		Method:     cl.req.Method,
		URL:        redactURL(cl.req.URL),
		Attempts:   cl.attempts,
		LastStatus: cl.lastStatus,
		Reason:     cl.reason,
		Err:        err,
		retryable:  cl.allowed && cl.reason != StopContextDone && cl.reason != StopPrepareFailed,
	}
}

func (cl *call) apiError(resp *http.Response) *APIError {
	e := newAPIError(resp, cl.req.Method, redactURL(cl.req.URL), cl.c.requestIDs)
	e.Attempts = cl.attempts
	e.Reason = cl.reason
	e.RetryAfter = cl.retryAfter
	e.retryable = cl.allowed
	return e
}

// checkErrorIn2xx reads the start of a 2xx body and returns an *APIError if
// it is an error document with a code; otherwise the response, whole.
func (cl *call) checkErrorIn2xx(resp *http.Response) (*http.Response, error) {
	head, err := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	if err != nil {
		resp.Body.Close()
		return nil, cl.requestError(err)
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	// Only shapes that exist to report errors count: a success document may
	// well carry {"code":0,"message":"ok"}.
	switch f := errbody.Parse(resp.Header.Get("Content-Type"), head); f.Format {
	case errbody.FormatErrorCode, errbody.FormatErrorCodeCamel, errbody.FormatNestedError, errbody.FormatOAuth:
		if f.Code != "" {
			return nil, cl.apiError(resp)
		}
	}
	return resp, nil
}
