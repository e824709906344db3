package resilienthttp

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resilienthttp/resilienthttp/internal/errbody"
)

// ErrBodyNotReplayable is what errors.Is finds in the error of a call that
// the policy would have repeated but that stopped because its request body
// could not be sent again (Reason StopBodyNotReplayable): a body larger
// than WithMaxBufferedBody that is neither re-creatable nor seekable.
var ErrBodyNotReplayable = errors.New("resilienthttp: request body not replayable")

// StopReason says why a call stopped retrying.
type StopReason string

// Why a call stopped. StopNotRetryable means the policy does not repeat the
// final answer, however many attempts were left: a 404, say, or a 2xx error
// document (WithErrorsIn2xx). A call that stopped before any attempt (a
// request body that could not be read) has no reason.
const (
	StopNotRetryable      StopReason = "not retryable"
	StopAttemptsExhausted StopReason = "attempts exhausted"
	StopRetryAfterTooLong StopReason = "retry-after exceeds MaxRetryAfter"
	StopDeadline          StopReason = "next attempt would pass the deadline"
	StopContextDone       StopReason = "context done"
	StopBodyNotReplayable StopReason = "request body not replayable"
	StopPrepareFailed     StopReason = "prepare-retry hook failed"
	StopCircuitOpen       StopReason = "circuit open"
	StopRateLimited       StopReason = "rate limited"
	StopBudgetExhausted   StopReason = "retry budget exhausted"
	// StopServerSaidNoRetry: the answer carried a retry hint of "false"
	// (Policy.RetryHintHeaders, such as X-Should-Retry: false).
	StopServerSaidNoRetry StopReason = "server said not to retry"
)

// MaxErrorBody is how much of an error response's body the client reads and
// keeps in APIError.Body; of a gzip body that net/http passed through, how
// many decoded bytes it keeps (reading at most twice as many compressed
// ones). The rest is drained, up to maxDrain, so the connection can be
// reused, and then closed.
const MaxErrorBody = 64 << 10

// maxDrain bounds how much of an unwanted body is read to keep its
// connection: past it, closing the connection is cheaper than reading on.
const maxDrain = 256 << 10

// APIError is the error Client.Do returns when the final answer to a call
// has a status of 400 or more. Use errors.As to get it.
type APIError struct {
	// StatusCode is the final response's status code.
	StatusCode int
	// Code and Message are the service's error code and message from the
	// response body, when it has them.
	Code, Message string
	// RequestID is the service's id for the final attempt (X-Request-Id or a
	// similar header), for support tickets.
	RequestID string
	// RetryAfter is the wait the server asked for, if it asked; when the
	// call stopped because that wait was too long (Reason), this is how long
	// to wait before calling again.
	RetryAfter time.Duration
	// Attempts is how many attempts the call made, the first included.
	Attempts int
	// IdempotencyKey is the idempotency key (Policy.IdempotencyKeyHeader)
	// every attempt of the call carried: the caller's, or the one
	// WithIdempotencyKeys generated. A caller that gives up now can repeat
	// the call later under the same key, and a service that deduplicates
	// by it applies the write at most once. Empty when the request carried
	// none.
	IdempotencyKey string

	// Method and URL identify the request; URL is redacted (no userinfo, no
	// credential-like query values).
	Method, URL string
	// Reason says why the client stopped: StopNotRetryable when the policy
	// does not repeat this answer, otherwise what ended the retries
	// (attempts, a Retry-After too long, the deadline, the budget, …).
	Reason StopReason
	// Title, Detail, Type and Instance are the service's RFC 9457 problem
	// details (Title also from {"error":{"title":…}}), when it sent them.
	Title, Detail, Type, Instance string
	// Body is the start of the response body, at most MaxErrorBody bytes;
	// a gzip body that net/http passed through (the request set
	// Accept-Encoding itself) is decoded, and the limit counts decoded
	// bytes.
	Body []byte
	// Truncated reports that the body was longer than Body: more than
	// MaxErrorBody bytes (decoded, for gzip), or not readable, or not
	// decodable to the end.
	Truncated bool
	// Header is the final response's header without credentials
	// (Set-Cookie, X-Subject-Token and the like are removed).
	Header http.Header

	retryable     bool
	hasRetryAfter bool // a valid Retry-After, which makes a 503 throttling
}

// Error returns one line: method, redacted URL, status, the service's code
// and message, the request id and the number of attempts.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.URL)
	b.WriteString(": ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	b.WriteString(" (")
	if e.RequestID != "" {
		b.WriteString("request id ")
		b.WriteString(e.RequestID)
		b.WriteString(", ")
	}
	b.WriteString(plural(e.Attempts, "attempt"))
	if e.Reason != "" && e.Reason != StopNotRetryable {
		b.WriteString(", ")
		b.WriteString(string(e.Reason))
		if e.Reason == StopRetryAfterTooLong || e.Reason == StopDeadline && e.RetryAfter > 0 {
			b.WriteString(": server asked to wait ")
			b.WriteString(e.RetryAfter.String())
		}
	}
	b.WriteByte(')')
	return b.String()
}

// RequestError is the error Client.Do returns when a call ends without a
// final response to report: a transport error, a cancelled context, an open
// circuit. errors.Is and errors.As see through it to the cause, so
// errors.Is(err, context.DeadlineExceeded) works.
type RequestError struct {
	// Method and URL identify the request; URL is redacted.
	Method, URL string
	// Attempts is how many attempts reached the network.
	Attempts int
	// LastStatus is the status of the last response received, if any
	// attempt got one before the call stopped (say a 503 before the context
	// was cancelled during the wait).
	LastStatus int
	// Reason says why the client stopped.
	Reason StopReason
	// IdempotencyKey is the idempotency key every attempt carried, as on
	// APIError: the caller's or a generated one, empty when none. After a
	// reset or a timeout the write may or may not have been applied;
	// repeating it under this key lets the service tell.
	IdempotencyKey string
	// Err is the cause.
	Err error

	retryable bool
	// wrapped says net/http wraps this error in a *url.Error that names
	// the method and URL already (StandardClient).
	wrapped bool
}

// Error returns one line: method, redacted URL, the cause, attempts, the last
// status and the reason the client stopped.
//
// Through StandardClient, net/http wraps it in a *url.Error that names the
// method and URL, so its own text leaves them out.
func (e *RequestError) Error() string {
	var b strings.Builder
	if !e.wrapped {
		b.WriteString(e.Method)
		b.WriteByte(' ')
		b.WriteString(e.URL)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("request failed")
	}
	b.WriteString(" (")
	b.WriteString(plural(e.Attempts, "attempt"))
	if e.LastStatus != 0 {
		b.WriteString(", last status ")
		b.WriteString(strconv.Itoa(e.LastStatus))
	}
	if e.Reason != "" {
		b.WriteString(", ")
		b.WriteString(string(e.Reason))
	}
	b.WriteByte(')')
	return b.String()
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrBodyNotReplayable) true when the call stopped
// because its body could not be sent again.
func (e *RequestError) Is(target error) bool {
	return target == ErrBodyNotReplayable && e.Reason == StopBodyNotReplayable
}

func plural(n int, word string) string {
	s := strconv.Itoa(n) + " " + word
	if n != 1 {
		s += "s"
	}
	return s
}

// DefaultRequestIDHeaders are the response headers read, in order, for
// APIError.RequestID; the first present wins. WithRequestIDHeaders changes
// them for a client. Each Client copies this list when it is set up (by New,
// or on a zero Client's first use), so changing it later affects only clients
// set up afterwards, and ParseAPIError for responses not from a Client.
var DefaultRequestIDHeaders = []string{"X-Request-Id", "X-Openstack-Request-Id", "X-Amzn-Requestid", "X-Ms-Request-Id"}

// ParseAPIError describes a response with a status of 400 or more as an
// *APIError, for SDK code that got the response from StandardClient or any
// other http.Client. It reads at most MaxErrorBody bytes of the body, drains
// a little more so the connection can be reused, and closes it. It returns
// nil, leaving the body alone, for a status below 400.
//
// For a response from StandardClient, Attempts, Reason and Retryable tell
// what the client did; for one from elsewhere, Attempts is 1, Retryable
// answers from DefaultPolicy, and IdempotencyKey is the request's
// Idempotency-Key header.
func ParseAPIError(resp *http.Response) *APIError {
	if resp == nil || resp.StatusCode < 400 {
		return nil
	}
	if resp.Request != nil {
		if cl, ok := resp.Request.Context().Value(callKey{}).(*call); ok {
			return cl.apiError(resp)
		}
	}
	var method, u, key string
	safe := false
	if resp.Request != nil {
		method, u = resp.Request.Method, redactURL(resp.Request.URL)
		key = resp.Request.Header.Get(DefaultIdempotencyKeyHeader)
		safe = isIdempotentMethod(method) || key != ""
	}
	head, err := readErrorHead(resp.Body)
	finishErrorBody(resp.Body, err)
	e := newAPIError(resp, head, err, method, u, DefaultRequestIDHeaders)
	e.Attempts = 1
	e.IdempotencyKey = key
	ra, hasRA := retryAfter(resp.Header, systemClock{}.Now())
	e.RetryAfter, e.hasRetryAfter = ra, hasRA
	p := DefaultPolicy()
	hint := readRetryHint(resp.Header, p.RetryHintHeaders)
	e.retryable = hint.overrule(p.StatusRule(resp.StatusCode).allows(safe, hasRA), safe)
	if hint == hintStop {
		e.Reason = StopServerSaidNoRetry
	}
	return e
}

// maxGzipErrorBody bounds the compressed bytes read of a gzip error body
// that net/http passed through. MaxErrorBody counts decoded bytes, and
// incompressible data takes a few more compressed bytes than decoded ones
// (gzip adds 5 per 64 KiB stored); twice the limit leaves room for a poor
// encoder and still bounds a stream that decodes to little or nothing.
const maxGzipErrorBody = 2 * MaxErrorBody

// readErrorHead reads the start of an error response's body: up to
// MaxErrorBody bytes, and one more to tell that there was more. A body that
// fills them and starts as gzip does (one net/http passed through) is read
// on, up to maxGzipErrorBody bytes and one more, so that it decodes to
// MaxErrorBody bytes; newAPIError decodes it.
func readErrorHead(body io.Reader) ([]byte, error) {
	head, err := io.ReadAll(io.LimitReader(body, MaxErrorBody+1))
	if err != nil || len(head) <= MaxErrorBody || !bytes.HasPrefix(head, gzipMagic) {
		return head, err
	}
	rest, err := io.ReadAll(io.LimitReader(body, maxGzipErrorBody-MaxErrorBody))
	return append(head, rest...), err
}

// gzipMagic starts every gzip stream: its ID1, ID2 and CM (deflate) bytes.
var gzipMagic = []byte{0x1f, 0x8b, 8}

// finishErrorBody drains what is left of an error body after its head was
// read, so the connection can be reused, and closes it; a body whose read
// failed is only closed.
func finishErrorBody(body io.ReadCloser, readErr error) {
	if readErr != nil {
		body.Close()
		return
	}
	discard(body)
}

// newAPIError describes an error response from the head of its body (as
// readErrorHead read it, with the error the read ended with, if any).
func newAPIError(resp *http.Response, body []byte, err error, method, redactedURL string, requestIDHeaders []string) *APIError {
	truncated := len(body) > MaxErrorBody
	if !resp.Uncompressed && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		body, truncated = gunzip(body)
	}
	if len(body) > MaxErrorBody {
		body, truncated = body[:MaxErrorBody], true
	}
	e := &APIError{
		StatusCode: resp.StatusCode,
		Method:     method,
		URL:        redactedURL,
		Body:       body,
		Truncated:  truncated || err != nil,
		Header:     redactHeader(resp.Header),
	}
	for _, h := range requestIDHeaders {
		if v := resp.Header.Get(h); v != "" {
			e.RequestID = errbody.Clean(v, 128)
			break
		}
	}
	f := errbody.Parse(resp.Header.Get("Content-Type"), body)
	e.Code, e.Message, e.Title, e.Detail, e.Type, e.Instance = f.Code, f.Message, f.Title, f.Detail, f.Type, f.Instance
	if err != nil && e.Message == "" {
		e.Message = "error body unreadable: " + err.Error()
	}
	return e
}

// gunzip decodes the head of a gzip error body that net/http passed through
// (the caller asked for gzip itself), as readErrorHead read it, up to
// MaxErrorBody+1 decoded bytes so a small bomb cannot cost much. more
// reports that the body held more than MaxErrorBody decoded bytes, or more
// than could be decoded: the compressed head was cut (readErrorHead stopped
// at maxGzipErrorBody), the stream broken off, or followed by what is not
// gzip. A body that is not gzip is kept as it came, and more reports that
// it is longer than MaxErrorBody.
func gunzip(raw []byte) (body []byte, more bool) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return raw, len(raw) > MaxErrorBody
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxErrorBody+1))
	if err != nil && len(out) == 0 {
		return raw, len(raw) > MaxErrorBody
	}
	return out, len(out) > MaxErrorBody || err != nil || len(raw) > maxGzipErrorBody
}

// discard drains what is left of body, within maxDrain, and closes it, so the
// connection goes back to the pool when the rest was short.
func discard(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	_ = body.Close()
}

// Sentinel errors that an *APIError matches with errors.Is, for the statuses
// SDK code branches on. errors.Is(err, ErrNotFound) is true for any error
// chain holding an *APIError with StatusCode 404.
var (
	ErrBadRequest         = errors.New("resilienthttp: bad request")             // 400
	ErrUnauthorized       = errors.New("resilienthttp: unauthorized")            // 401
	ErrForbidden          = errors.New("resilienthttp: forbidden")               // 403
	ErrNotFound           = errors.New("resilienthttp: not found")               // 404
	ErrConflict           = errors.New("resilienthttp: conflict")                // 409
	ErrPreconditionFailed = errors.New("resilienthttp: precondition failed")     // 412
	ErrTooManyRequests    = errors.New("resilienthttp: too many requests")       // 429
	ErrServiceUnavailable = errors.New("resilienthttp: service unavailable")     // 503
	ErrServerError        = errors.New("resilienthttp: server error")            // any 5xx
	ErrThrottled          = errors.New("resilienthttp: throttled by the server") // 429, or 503 with Retry-After
)

var statusSentinels = map[int]error{
	http.StatusBadRequest:         ErrBadRequest,
	http.StatusUnauthorized:       ErrUnauthorized,
	http.StatusForbidden:          ErrForbidden,
	http.StatusNotFound:           ErrNotFound,
	http.StatusConflict:           ErrConflict,
	http.StatusPreconditionFailed: ErrPreconditionFailed,
	http.StatusTooManyRequests:    ErrTooManyRequests,
	http.StatusServiceUnavailable: ErrServiceUnavailable,
}

// Is reports whether target is the sentinel for e's status: its own
// (ErrNotFound for 404, …), ErrServerError for any 5xx, ErrThrottled for 429
// and for 503 with Retry-After, ErrBodyNotReplayable when the call stopped
// because its body could not be sent again.
func (e *APIError) Is(target error) bool {
	switch target {
	case nil:
		return false
	case ErrServerError:
		return e.StatusCode >= 500 && e.StatusCode < 600
	case ErrBodyNotReplayable:
		return e.Reason == StopBodyNotReplayable
	case ErrThrottled:
		return e.StatusCode == http.StatusTooManyRequests ||
			e.StatusCode == http.StatusServiceUnavailable && e.hasRetryAfter
	}
	return statusSentinels[e.StatusCode] == target
}

// Retryable reports whether the failure err describes is one the client's
// policy would repeat: the call gave up for want of attempts or time, not
// because repeating cannot help. It answers from the same decision the
// client made (Policy), so a caller that queues work for later and the
// client agree. Errors this package did not make are not retryable.
func Retryable(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.retryable
	}
	var reqErr *RequestError
	if errors.As(err, &reqErr) {
		return reqErr.retryable
	}
	return false
}
