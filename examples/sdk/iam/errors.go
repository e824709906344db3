package iam

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/resilienthttp/resilienthttp"
)

// The service's failures an SDK user branches on, with errors.Is. Each
// stands for service error codes (the IAM API's documented "IAM.xxxx"
// values), and, when a response carries no code (a gateway's HTML page),
// for the status that means the same.
var (
	// ErrInvalidInput: IAM.0001, or a 400 without a code. Not retried.
	ErrInvalidInput = errors.New("iam: invalid input")
	// ErrUserNotFound: IAM.0003, or a 404 without a code. Not retried.
	ErrUserNotFound = errors.New("iam: user not found")
	// ErrUserExists: IAM.0007, or a 409 without a code. Not retried.
	ErrUserExists = errors.New("iam: user already exists")
	// ErrThrottled: IAM.0010, or a 429 without a code, after the retries
	// the policy allows (or at once when the service asked for a wait
	// past the caller's deadline: Error.RetryAfter says how long); also
	// the client's own rate limiter refusing a wait past the deadline.
	ErrThrottled = errors.New("iam: throttled")
	// ErrUnavailable: IAM.0900 (maintenance), or a 503 without a code;
	// also the client's circuit breaker open for the service, when no
	// request was sent. Retry later, not in a loop.
	ErrUnavailable = errors.New("iam: service unavailable")
)

// codeErrors maps the service's error codes to this package's errors.
var codeErrors = map[string]error{
	"IAM.0001": ErrInvalidInput,
	"IAM.0003": ErrUserNotFound,
	"IAM.0007": ErrUserExists,
	"IAM.0010": ErrThrottled,
	"IAM.0900": ErrUnavailable,
}

// statusErrors is the fallback for an error response without a code.
var statusErrors = map[int]error{
	http.StatusBadRequest:         ErrInvalidInput,
	http.StatusNotFound:           ErrUserNotFound,
	http.StatusConflict:           ErrUserExists,
	http.StatusTooManyRequests:    ErrThrottled,
	http.StatusServiceUnavailable: ErrUnavailable,
}

// Error is the error every operation returns when it fails: the
// operation, what the service said, and the library's own error
// underneath (errors.As reaches *resilienthttp.APIError or
// *resilienthttp.RequestError, errors.Is reaches context.DeadlineExceeded
// and the library's sentinels).
type Error struct {
	// Op is the operation: "GetUser", "CreateUser", ….
	Op string
	// StatusCode is the final response's status; 0 when none came back
	// (a transport error, an open circuit, a cancelled context).
	StatusCode int
	// Code and Message are the service's error code ("IAM.0003") and
	// message, when it sent them.
	Code, Message string
	// RequestID is the service's id of the final attempt, for support.
	RequestID string
	// RetryAfter is the wait the service asked for, if it did: when the
	// call stopped because that wait was past the deadline, how long to
	// wait before calling again.
	RetryAfter time.Duration
	// IdempotencyKey is the key a create's attempts carried: repeat the
	// create with WithIdempotencyKey(key) and the service applies it at
	// most once. Empty for other operations.
	IdempotencyKey string

	kind error // one of the Err… values, or nil
	err  error // the library's error
}

// Error returns one line: "iam: Op: " and the library's description,
// which holds the method, the redacted URL, the status, the service's
// code and message, the request id and the attempts.
func (e *Error) Error() string { return "iam: " + e.Op + ": " + e.err.Error() }

// Is reports whether target is the package error e stands for.
func (e *Error) Is(target error) bool { return target != nil && target == e.kind }

// Unwrap returns the library's error.
func (e *Error) Unwrap() error { return e.err }

// wrap turns the library's error from op into an *Error.
func wrap(op string, err error) error {
	e := &Error{Op: op, err: err}
	var apiErr *resilienthttp.APIError
	var reqErr *resilienthttp.RequestError
	switch {
	case errors.As(err, &apiErr):
		e.StatusCode, e.Code, e.Message = apiErr.StatusCode, apiErr.Code, apiErr.Message
		e.RequestID, e.RetryAfter, e.IdempotencyKey = apiErr.RequestID, apiErr.RetryAfter, apiErr.IdempotencyKey
		e.kind = codeErrors[strings.TrimSpace(e.Code)]
		if e.kind == nil && e.Code == "" {
			e.kind = statusErrors[e.StatusCode]
		}
	case errors.As(err, &reqErr):
		e.IdempotencyKey = reqErr.IdempotencyKey
		switch {
		case errors.Is(err, resilienthttp.ErrCircuitOpen):
			e.kind = ErrUnavailable
		case errors.Is(err, resilienthttp.ErrRateLimited):
			e.kind = ErrThrottled
		}
	}
	return e
}
