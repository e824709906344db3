package resilienthttp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rule says what the client does when an attempt ends with a given status
// code or kind of transport error.
//
// The zero value, RuleDefault, means "whatever DefaultPolicy says for this
// row", so a Policy that sets only some rows keeps the documented table for
// the others.
type Rule int

const (
	// RuleDefault defers to the default table.
	RuleDefault Rule = iota
	// RuleFail ends the call at once: repeating the same request cannot help.
	RuleFail
	// RuleRetry repeats the request for any method: the server did not act on it.
	RuleRetry
	// RuleRetryIdempotent repeats the request only if repeating it cannot
	// duplicate an effect: the method is idempotent (GET HEAD OPTIONS TRACE
	// PUT DELETE, RFC 9110 §9.2.2), the request carries the policy's
	// idempotency-key header, or the caller marked it with ContextIdempotent.
	RuleRetryIdempotent
	// RuleRetryWithRetryAfter repeats the request, for any method, only when the
	// response carries a valid Retry-After: the server declares the condition
	// temporary and says when to come back. Without it the call fails.
	RuleRetryWithRetryAfter
)

var ruleNames = [...]string{
	RuleDefault:             "default",
	RuleFail:                "fail",
	RuleRetry:               "retry",
	RuleRetryIdempotent:     "retry-idempotent",
	RuleRetryWithRetryAfter: "retry-with-retry-after",
}

// String returns the rule's name as used in JSON.
func (r Rule) String() string {
	if r >= 0 && int(r) < len(ruleNames) {
		return ruleNames[r]
	}
	return "Rule(" + strconv.Itoa(int(r)) + ")"
}

// MarshalText encodes the rule by name ("fail", "retry", …).
func (r Rule) MarshalText() ([]byte, error) {
	if r < 0 || int(r) >= len(ruleNames) {
		return nil, fmt.Errorf("resilienthttp: unknown rule %d", int(r))
	}
	return []byte(ruleNames[r]), nil
}

// UnmarshalText decodes a rule name as written by MarshalText.
func (r *Rule) UnmarshalText(b []byte) error {
	for i, name := range ruleNames {
		if string(b) == name {
			*r = Rule(i)
			return nil
		}
	}
	return fmt.Errorf("resilienthttp: unknown rule %q", b)
}

// defaultStatusRules is the service documents' status table (the "Status
// Codes" pages quoted in docs/status-codes.md) turned into code. Each row
// quotes the documents' reason; statuses not listed fall to the class rules in
// DefaultPolicy (other 4xx fail, other 5xx retry if idempotent) and 1xx–3xx
// are never retried: they are not failures.
var defaultStatusRules = map[int]Rule{
	// "The client should not repeat the request without modifications."
	http.StatusBadRequest:       RuleFail, // 400
	http.StatusForbidden:        RuleFail, // 403
	http.StatusNotFound:         RuleFail, // 404
	http.StatusMethodNotAllowed: RuleFail, // 405
	// "The authorization information provided by the client is incorrect or
	// invalid." Repeating it as is cannot help; a credential-refresh hook
	// (WithCredentialRefresh) is the modification that allows one repeat.
	http.StatusUnauthorized: RuleFail, // 401
	// Client errors for which nothing says the request may be repeated.
	http.StatusPaymentRequired:              RuleFail, // 402
	http.StatusNotAcceptable:                RuleFail, // 406
	http.StatusProxyAuthRequired:            RuleFail, // 407
	http.StatusConflict:                     RuleFail, // 409
	http.StatusGone:                         RuleFail, // 410
	http.StatusLengthRequired:               RuleFail, // 411
	http.StatusPreconditionFailed:           RuleFail, // 412
	http.StatusRequestURITooLong:            RuleFail, // 414
	http.StatusUnsupportedMediaType:         RuleFail, // 415
	http.StatusRequestedRangeNotSatisfiable: RuleFail, // 416
	http.StatusExpectationFailed:            RuleFail, // 417
	http.StatusUnprocessableEntity:          RuleFail, // 422
	// "The client may repeat the request without modifications at any later
	// time." The server never got the whole request, so any method is safe.
	http.StatusRequestTimeout: RuleRetry, // 408
	// "If the condition is temporary, the server should include a Retry-After
	// header field to indicate that it is temporary."
	http.StatusRequestEntityTooLarge: RuleRetryWithRetryAfter, // 413
	// "The client should repeat requests after the time specified in the
	// Retry-After header of the response expires." The server refused the
	// request without acting on it, so any method is safe.
	http.StatusTooManyRequests: RuleRetry, // 429
	// Server-side failures: the request may have had an effect, so only
	// requests that are safe to repeat are repeated.
	http.StatusInternalServerError: RuleRetryIdempotent, // 500
	http.StatusBadGateway:          RuleRetryIdempotent, // 502
	http.StatusGatewayTimeout:      RuleRetryIdempotent, // 504
	// "The server does not support the functionality required" / "the HTTP
	// protocol version used in the request": permanent.
	http.StatusNotImplemented:          RuleFail, // 501
	http.StatusHTTPVersionNotSupported: RuleFail, // 505
	// "The requested service is unavailable. The client should not repeat the
	// request without modifications." A Retry-After is the server saying
	// otherwise: then, and only then, come back when it says.
	http.StatusServiceUnavailable: RuleRetryWithRetryAfter, // 503
}

// Policy decides, after each attempt, whether to repeat the request and how
// long to wait first. It is plain data: it round-trips through JSON
// (durations as strings such as "250ms", rules by name) so an SDK can ship one
// per service.
//
// Every zero field means its documented default, so Policy{} behaves exactly
// like DefaultPolicy() and Policy{MaxAttempts: 1} is the default table with
// retries turned off.
//
// Not every non-zero value is valid: Validate reports the fields a Policy
// gets wrong (a negative count or duration, a rule for a status code that
// is never a failure, an unknown Rule, a malformed header name).
// UnmarshalJSON checks what it decodes the same way, and also rejects keys
// it does not know, so a policy shipped as JSON that decodes is valid.
//
// Its JSON keys, one per field, in snake_case: max_attempts, base_delay,
// max_delay, max_retry_after, attempt_timeout, idempotency_key_header,
// statuses, client_errors, server_errors, connect_errors, send_errors,
// retry_hint_headers. Rules are written by name: "default", "fail",
// "retry", "retry-idempotent", "retry-with-retry-after". The README's
// "Policy reference" gives each key's type, default and meaning in one
// table.
type Policy struct {
	// MaxAttempts is the number of attempts per call, the first included.
	// Zero means 4; 1 turns retries off.
	MaxAttempts int

	// BaseDelay is the upper bound of the first backoff wait; each retry
	// doubles it up to MaxDelay, and the wait is drawn uniformly from
	// [0, bound] ("full jitter"). Zero means 100ms.
	BaseDelay time.Duration

	// MaxDelay caps the backoff bound before jitter is applied. Zero means 5s.
	MaxDelay time.Duration

	// MaxRetryAfter is the longest server-requested wait (Retry-After) the
	// client sleeps. A longer one ends the call at once with an *APIError
	// whose RetryAfter says how long the server asked for. Zero means 60s.
	//
	// The client's MaxRetryAfter also bounds what a server can do to the
	// host's other calls: a Retry-After, an exhausted rate-limit window
	// (RateLimit r=0, X-RateLimit-Remaining 0) or a declared quota
	// (RateLimit-Policy) pauses or paces every call to the host only when
	// it holds them for MaxRetryAfter or less. A longer one is returned to
	// the call that got it, and later calls go out and hear the server's
	// answer themselves.
	MaxRetryAfter time.Duration

	// AttemptTimeout bounds each attempt, from sending the request to the
	// end of the response headers, separately from the caller's deadline,
	// which bounds the whole call. A timed-out attempt is a transport error
	// after the request was sent. Zero means no per-attempt bound.
	//
	// The client's own read of an error response's body (the head it keeps
	// in APIError, the drain that saves the connection) is part of the
	// attempt and gets the same bound again, or one second when
	// AttemptTimeout is zero; the drain before a retry gets at most 100 ms.
	// A body cut short keeps what was read, with APIError.Truncated set.
	// A successful response's body is the caller's, under the caller's
	// context.
	AttemptTimeout time.Duration

	// IdempotencyKeyHeader names the request header whose presence makes a
	// request safe to repeat whatever its method: the server deduplicates by
	// it. Zero means "Idempotency-Key".
	IdempotencyKeyHeader string

	// Statuses overrides the rule for individual status codes. Codes not in
	// the map use the default table in policy.go.
	Statuses map[int]Rule

	// ClientErrors is the rule for 4xx codes that neither Statuses nor the
	// default table names. Zero means RuleFail.
	ClientErrors Rule

	// ServerErrors is the rule for 5xx codes that neither Statuses nor the
	// default table names. Zero means RuleRetryIdempotent.
	ServerErrors Rule

	// ConnectErrors is the rule for transport errors that happen before the
	// request could reach the server: DNS failure, connection refused, dial
	// timeout. Zero means RuleRetry (any method: nothing was sent).
	ConnectErrors Rule

	// SendErrors is the rule for transport errors after the request may have
	// reached the server: a reset or EOF while waiting for the response, an
	// attempt timeout. Zero means RuleRetryIdempotent.
	SendErrors Rule

	// RetryHintHeaders names the response headers in which a service tells
	// its clients outright whether to repeat a request, as generated SDKs of
	// several large APIs read them: "true" or "false" (case and surrounding
	// space ignored; any other value is no hint). The first header listed
	// that holds one of the two is the hint; it is read on answers of 400
	// or more. nil means X-Should-Retry and Stripe-Should-Retry; an empty,
	// non-nil slice reads no hint.
	//
	// The rule: "false" always stops the call, whatever the table says (a
	// 429 and a Retry-After included), with Reason StopServerSaidNoRetry and
	// Retryable false. "true" lets the client repeat a failure the table
	// would not, but only if repeating is safe: an idempotent method, an
	// idempotency key, or ContextIdempotent. A server cannot know whether
	// the client's non-idempotent write is safe to send twice; the client
	// can. A hint changes only whether to repeat: the wait (Retry-After or
	// backoff), MaxAttempts, the retry budget and the deadline apply as to
	// any retry.
	RetryHintHeaders []string
}

// Defaults used for zero Policy fields.
const (
	DefaultMaxAttempts          = 4
	DefaultBaseDelay            = 100 * time.Millisecond
	DefaultMaxDelay             = 5 * time.Second
	DefaultMaxRetryAfter        = 60 * time.Second
	DefaultIdempotencyKeyHeader = "Idempotency-Key"
)

// defaultRetryHintHeaders returns the hint headers a nil
// Policy.RetryHintHeaders means, a new slice each time: no caller can
// change another's defaults.
func defaultRetryHintHeaders() []string {
	return []string{"X-Should-Retry", "Stripe-Should-Retry"}
}

// DefaultPolicy returns the service documents' table as a Policy, with the
// documented defaults (4 attempts, backoff from 100ms to 5s):
//
//	status or error                   rule                     repeated
//	408, 429                          RuleRetry                any method
//	413, 503                          RuleRetryWithRetryAfter  any method, only with Retry-After
//	500, 502, 504, other 5xx          RuleRetryIdempotent      idempotent requests only
//	501, 505, 4xx not named above     RuleFail                 never (401: see WithCredentialRefresh)
//	DNS, dial, connection refused     RuleRetry                any method: nothing was sent
//	reset, EOF, AttemptTimeout        RuleRetryIdempotent      idempotent requests only
//	TLS verification, redirect loop   RuleFail                 never
//
// Statuses below 400 are answers, not failures: never repeated. Idempotent
// means an idempotent method (RFC 9110 §9.2.2), the IdempotencyKeyHeader, or
// ContextIdempotent. A valid Retry-After sets the wait before a repeat; one
// longer than MaxRetryAfter ends the call instead. docs/status-codes.md
// quotes, code by code, what the documents say; ExampleDefaultPolicy prints
// the table from the code.
func DefaultPolicy() Policy {
	return Policy{
		MaxAttempts:          DefaultMaxAttempts,
		BaseDelay:            DefaultBaseDelay,
		MaxDelay:             DefaultMaxDelay,
		MaxRetryAfter:        DefaultMaxRetryAfter,
		IdempotencyKeyHeader: DefaultIdempotencyKeyHeader,
		ClientErrors:         RuleFail,
		ServerErrors:         RuleRetryIdempotent,
		ConnectErrors:        RuleRetry,
		SendErrors:           RuleRetryIdempotent,
		RetryHintHeaders:     defaultRetryHintHeaders(),
	}
}

// clone returns a copy of p that shares no map or slice with it.
func (p Policy) clone() Policy {
	p.Statuses = maps.Clone(p.Statuses)
	p.RetryHintHeaders = slices.Clone(p.RetryHintHeaders)
	return p
}

// RFC9110Policy returns DefaultPolicy with 503 read as RFC 9110 §15.6.4 reads
// it, "a temporary overload or scheduled maintenance": repeated, for
// requests that are safe to repeat, with backoff when the server sends no
// Retry-After. Use it for services whose 503 means "try again later".
func RFC9110Policy() Policy {
	p := DefaultPolicy()
	p.Statuses = map[int]Rule{http.StatusServiceUnavailable: RuleRetryIdempotent}
	return p
}

// ErrInvalidPolicy is the sentinel for a Policy that breaks one of
// Validate's rules: errors.Is(err, ErrInvalidPolicy) holds for every error
// Validate returns, for every error UnmarshalJSON returns except a document
// that is not JSON at all (a *json.SyntaxError), and for the error of a call
// made with an invalid Policy.
var ErrInvalidPolicy = errors.New("resilienthttp: invalid policy")

// PolicyError reports one rule a Policy breaks. Validate and UnmarshalJSON
// return one per broken rule, joined with errors.Join: use errors.As to get
// the first, or errors.Is(err, ErrInvalidPolicy) to test for any. Its
// message never names an unexported type.
type PolicyError struct {
	// Field names what is wrong: the Go field name ("MaxAttempts",
	// "Statuses[700]") in errors from Validate, the JSON key
	// ("max_attempts", `statuses."700"`) in errors from UnmarshalJSON; an
	// unknown key is quoted (`"max_atempts"`). It is empty when the problem
	// is the whole document (not a JSON object).
	Field string
	// Value is the offending value: from Validate, as its String method
	// writes it (durations, rules), a number, or a quoted string; from
	// UnmarshalJSON, the JSON text as written, cut short if long. It is
	// empty when the problem is Field itself (an unknown key, a status code
	// out of range).
	Value string
	// Reason says what the value must be instead.
	Reason string
}

// Error returns "resilienthttp: invalid policy: Field = Value: Reason",
// leaving out the parts that are empty.
func (e *PolicyError) Error() string {
	s := ErrInvalidPolicy.Error() + ": "
	switch {
	case e.Field != "" && e.Value != "":
		s += e.Field + " = " + e.Value + ": "
	case e.Field != "" || e.Value != "":
		s += e.Field + e.Value + ": "
	}
	return s + e.Reason
}

// Is reports whether target is ErrInvalidPolicy.
func (e *PolicyError) Is(target error) bool { return target == ErrInvalidPolicy }

// Validate reports every field of p that breaks a rule, as *PolicyError
// values joined with errors.Join (so errors.Is(err, ErrInvalidPolicy)
// holds), or nil if p is valid. The rules: MaxAttempts, BaseDelay,
// MaxDelay, MaxRetryAfter and AttemptTimeout are not negative (zero means
// the default); MaxDelay, when it and BaseDelay are both set, is not less
// than BaseDelay; every key of Statuses is in 400..599 (1xx–3xx are never
// failures, so a rule for them would mean nothing, and other numbers are
// not HTTP status codes); every Rule, in Statuses and in ClientErrors,
// ServerErrors, ConnectErrors and SendErrors, is one of the declared
// constants RuleDefault..RuleRetryWithRetryAfter; IdempotencyKeyHeader, if
// set, and every entry of RetryHintHeaders are valid header field names
// (RFC 9110 tokens). The zero Policy,
// DefaultPolicy() and RFC9110Policy() are valid.
//
// New and ContextWithPolicy accept any Policy; a call made with an invalid
// one fails at once, sending nothing, with an error for which
// errors.Is(err, ErrInvalidPolicy).
func (p Policy) Validate() error {
	return errors.Join(p.check(naming{})...)
}

// naming says how a PolicyError names a field and shows its value. The zero
// naming uses Go field names and Go values (Validate); UnmarshalJSON fills
// it with the JSON keys and the JSON text it decoded.
type naming struct {
	keys map[string]string // Go field ("MaxDelay", "Statuses[700]") → JSON key
	raw  map[string]string // Go field → its value as written in JSON
}

func (n naming) field(id string) string {
	if k, ok := n.keys[id]; ok {
		return k
	}
	return id
}

func (n naming) value(id, goValue string) string {
	if r, ok := n.raw[id]; ok {
		return r
	}
	return goValue
}

// check returns one *PolicyError per rule p breaks, in field order and, in
// Statuses, by status code.
func (p Policy) check(n naming) []error {
	var errs []error
	bad := func(id, goValue, reason string) {
		v := ""
		if goValue != "" {
			v = n.value(id, goValue)
		}
		errs = append(errs, &PolicyError{Field: n.field(id), Value: v, Reason: reason})
	}
	if p.MaxAttempts < 0 {
		bad("MaxAttempts", strconv.Itoa(p.MaxAttempts), "must not be negative (0 means the default, 4; 1 turns retries off)")
	}
	for _, d := range []struct {
		id  string
		v   time.Duration
		def string
	}{
		{"BaseDelay", p.BaseDelay, "the default, 100ms"},
		{"MaxDelay", p.MaxDelay, "the default, 5s"},
		{"MaxRetryAfter", p.MaxRetryAfter, "the default, 60s"},
		{"AttemptTimeout", p.AttemptTimeout, "no per-attempt bound"},
	} {
		if d.v < 0 {
			bad(d.id, d.v.String(), "must not be negative (0 means "+d.def+")")
		}
	}
	if p.BaseDelay > 0 && p.MaxDelay > 0 && p.MaxDelay < p.BaseDelay {
		bad("MaxDelay", p.MaxDelay.String(), "must not be less than "+n.field("BaseDelay")+" ("+n.value("BaseDelay", p.BaseDelay.String())+")")
	}
	if h := p.IdempotencyKeyHeader; h != "" && !isToken(h) {
		bad("IdempotencyKeyHeader", strconv.Quote(h), "must be a header field name: letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.1)")
	}
	for _, h := range p.RetryHintHeaders {
		if !isToken(h) {
			bad("RetryHintHeaders", strconv.Quote(h), "must hold header field names only: letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.1)")
			break
		}
	}
	p.checkStatuses(bad)
	for _, r := range []struct {
		id string
		r  Rule
	}{{"ClientErrors", p.ClientErrors}, {"ServerErrors", p.ServerErrors}, {"ConnectErrors", p.ConnectErrors}, {"SendErrors", p.SendErrors}} {
		if !r.r.known() {
			bad(r.id, r.r.String(), unknownRule)
		}
	}
	return errs
}

// checkStatuses reports, through bad, every Statuses entry that is not a
// failure status or holds an unknown Rule, in order of status.
func (p Policy) checkStatuses(bad func(id, goValue, reason string)) {
	codes := slices.Sorted(maps.Keys(p.Statuses))
	for _, code := range codes {
		id := "Statuses[" + strconv.Itoa(code) + "]"
		switch {
		case code < 100 || code > 599:
			bad(id, "", "not an HTTP status code (100..599); rules apply to 400..599")
		case code < 400:
			bad(id, "", strconv.Itoa(code/100)+"xx is never a failure, so a rule for it means nothing; rules apply to 400..599")
		}
		if r := p.Statuses[code]; !r.known() {
			bad(id, r.String(), unknownRule)
		}
	}
}

// unknownRule is the reason for a Rule that is none of the constants. JSON
// cannot produce one: a rule name UnmarshalJSON does not know is reported
// with jsonRuleReason.
const unknownRule = "must be one of the Rule constants, RuleDefault..RuleRetryWithRetryAfter"

// known reports whether r is one of the declared Rule constants.
func (r Rule) known() bool { return r >= RuleDefault && r <= RuleRetryWithRetryAfter }

// isToken reports whether s is an RFC 9110 §5.6.2 token, the syntax of a
// header field name: one or more tchar.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// withDefaults returns p with every zero field replaced by its default, so
// the decision code reads settled values only.
func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if p.IdempotencyKeyHeader == "" {
		p.IdempotencyKeyHeader = DefaultIdempotencyKeyHeader
	}
	if p.ClientErrors == RuleDefault {
		p.ClientErrors = RuleFail
	}
	if p.ServerErrors == RuleDefault {
		p.ServerErrors = RuleRetryIdempotent
	}
	if p.ConnectErrors == RuleDefault {
		p.ConnectErrors = RuleRetry
	}
	if p.SendErrors == RuleDefault {
		p.SendErrors = RuleRetryIdempotent
	}
	if p.RetryHintHeaders == nil {
		p.RetryHintHeaders = defaultRetryHintHeaders()
	}
	return p
}

// StatusRule returns the rule p applies to a final response with the given
// status code. 1xx, 2xx and 3xx are not failures and always get RuleFail (there
// is nothing to repeat).
func (p Policy) StatusRule(status int) Rule {
	if status < 400 {
		return RuleFail
	}
	if r := p.Statuses[status]; r != RuleDefault {
		return r
	}
	if r := defaultStatusRules[status]; r != RuleDefault {
		return r
	}
	if status < 500 {
		if p.ClientErrors != RuleDefault {
			return p.ClientErrors
		}
		return RuleFail
	}
	if p.ServerErrors != RuleDefault {
		return p.ServerErrors
	}
	return RuleRetryIdempotent
}

// idempotentMethods are the methods RFC 9110 §9.2.2 defines as idempotent.
func isIdempotentMethod(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true // net/http reads "" as GET
	}
	return false
}

// allows reports whether rule r lets a request be repeated. safe says the
// request is safe to repeat (idempotent method or key); hasRetryAfter says the
// response carried a valid Retry-After.
func (r Rule) allows(safe, hasRetryAfter bool) bool {
	switch r {
	case RuleRetry:
		return true
	case RuleRetryIdempotent:
		return safe
	case RuleRetryWithRetryAfter:
		return hasRetryAfter
	}
	return false
}

// retryHint is what a server said of repeating its answer, in one of the
// policy's RetryHintHeaders.
type retryHint int8

const (
	hintNone  retryHint = iota // no hint header, or none with true or false
	hintRetry                  // "true": repeat, if that is safe
	hintStop                   // "false": do not repeat
)

// readRetryHint returns the hint in the first of names that h holds with
// the value true or false; hintNone when there is none.
func readRetryHint(h http.Header, names []string) retryHint {
	for _, name := range names {
		for _, v := range h.Values(name) {
			switch v = strings.TrimSpace(v); {
			case strings.EqualFold(v, "true"):
				return hintRetry
			case strings.EqualFold(v, "false"):
				return hintStop
			}
		}
	}
	return hintNone
}

// overrule applies the hint to what the policy's rule allowed: "false"
// forbids a repeat, "true" allows one that is safe.
func (h retryHint) overrule(allowed, safe bool) bool {
	switch h {
	case hintStop:
		return false
	case hintRetry:
		return allowed || safe
	}
	return allowed
}

// classify returns the rule p applies to a transport error. Errors that no
// repeat can cure (a certificate that fails verification, a malformed
// request, a redirect loop) fail at once; errors before the request could
// reach the server follow ConnectErrors; all others, after which the server
// may have acted on the request, follow SendErrors.
func classify(err error, p *Policy) Rule {
	if errors.Is(err, errTooManyRedirects) || isCertError(err) || isMalformedRequest(err) {
		return RuleFail
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &dnsErr) || errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect") {
		return p.ConnectErrors
	}
	return p.SendErrors
}

func isCertError(err error) bool {
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var ierr x509.CertificateInvalidError
	return errors.As(err, &verr) || errors.As(err, &uerr) || errors.As(err, &herr) || errors.As(err, &ierr)
}

// isMalformedRequest recognises net/http's refusals to send a request at
// all. net/http gives them no type, so their text is all there is.
func isMalformedRequest(err error) bool {
	s := err.Error()
	for _, m := range [...]string{"unsupported protocol scheme", "invalid header field", "invalid method", "no Host in request URL"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// facts is what decide knows of an attempt's outcome and of the call when it
// ended: plain values, gathered by the call (call.facts) so that deciding
// reads no clock, no header, no shared state.
type facts struct {
	// status is the response's status; 0 when err is set.
	status int
	// err is the attempt's error: a transport error, or a guard's refusal
	// (ErrCircuitOpen, ErrRateLimited) when nothing was sent.
	err error
	// retryAfter and hasRetryAfter are the response's Retry-After, parsed
	// once (retryAfter), for a status of 400 or more.
	retryAfter    time.Duration
	hasRetryAfter bool
	// hint is the server's own word on repeating, read once from the
	// policy's RetryHintHeaders, for a status of 400 or more.
	hint retryHint

	sent       bool // the attempt reached the base transport
	attempts   int  // attempts sent before this one
	safe       bool // repeating cannot duplicate an effect
	bodyOnce   bool // the request body cannot be sent again
	canRefresh bool // a credential refresh may modify the request once
	ctxDone    bool // the call's context is done

	// now, deadline (zero when none), budgetLeft and jitter are read only
	// for failures: a success needs none of them.
	now        time.Time
	deadline   time.Time
	budgetLeft bool    // the host's retry budget allows one more retry
	jitter     float64 // a random draw in [0, 1) for the wait
}

// decision is what decide answers. The call applies it (call.apply).
type decision struct {
	// retry says to repeat the request after wait.
	retry bool
	wait  time.Duration
	// reason says why the call stops, when it does not repeat.
	reason StopReason
	// retryable says the policy repeats such an outcome: false when
	// repeating it cannot help, true when the call stopped only for want
	// of attempts, budget, time or the body (Retryable reports it).
	retryable bool
	// sent says the attempt reached the network: a guard's refusal, or a
	// context that ended while the attempt waited for the limiter, did not.
	sent bool
	// succeeded says the host answered below 400: the retry budget gains.
	succeeded bool
	// spendsBudget says the failure takes a token of the host's retry
	// budget: a retryable failure whose pace the server did not set.
	spendsBudget bool
	// refresh says to refresh credentials before repeating (a 401).
	refresh bool
}

// decide applies policy p to what an attempt came to. It is pure: the same
// facts give the same decision, and it changes nothing.
func decide(p *Policy, f *facts) decision {
	switch {
	// A guard stopped the call for now; the policy would have gone on, so
	// the failure is retryable later, as one stopped by a deadline is.
	case errors.Is(f.err, ErrCircuitOpen):
		return decision{reason: StopCircuitOpen, retryable: true}
	case errors.Is(f.err, ErrRateLimited):
		return decision{reason: StopRateLimited, retryable: true}
	case f.err != nil && f.ctxDone:
		return decision{reason: StopContextDone, sent: f.sent}
	case f.err == nil && f.status < 400:
		return decision{reason: StopNotRetryable, sent: true, succeeded: true}
	}
	d := decision{sent: f.sent || f.err == nil}
	d.retryable, d.refresh = judge(p, f)
	if f.hint == hintStop {
		d.reason, d.refresh = StopServerSaidNoRetry, false
		return d
	}
	d.spendsBudget = d.retryable && f.retryAfter <= 0 && !d.refresh
	n := f.attempts + 1
	if d.reason = stopBefore(p, f, &d, n); d.reason != "" {
		d.refresh = false
		return d
	}
	switch {
	case d.refresh:
		// The refreshed credential is the modification; no reason to wait.
	case f.retryAfter > 0:
		d.wait = afterRetryAfter(p, f.retryAfter, f.jitter)
	default:
		d.wait = backoff(p, n, f.jitter)
	}
	if !f.deadline.IsZero() {
		left := f.deadline.Sub(f.now)
		if f.retryAfter > left || d.wait > left {
			d.reason, d.refresh, d.wait = StopDeadline, false, 0
			return d
		}
	}
	d.retry = true
	return d
}

// judge returns whether the policy, with the server's hint, allows
// repeating the attempt, and whether the repeat is with a refreshed
// credential (a 401 the refresh hook may cure).
func judge(p *Policy, f *facts) (retryable, refresh bool) {
	rule := p.StatusRule(f.status)
	if f.err != nil {
		rule = classify(f.err, p)
	} else if f.status == http.StatusUnauthorized && f.canRefresh {
		rule, refresh = RuleRetry, true
	}
	return f.hint.overrule(rule.allows(f.safe, f.hasRetryAfter), f.safe), refresh
}

// stopBefore returns why a call whose attempt n ended as f says stops
// before any wait, in order of precedence; "" when it may go on.
func stopBefore(p *Policy, f *facts, d *decision, n int) StopReason {
	switch {
	case !d.retryable:
		return StopNotRetryable
	case n >= p.MaxAttempts:
		return StopAttemptsExhausted
	case d.spendsBudget && !f.budgetLeft:
		return StopBudgetExhausted
	case f.bodyOnce:
		return StopBodyNotReplayable
	case f.ctxDone:
		return StopContextDone
	case f.retryAfter > p.MaxRetryAfter && !d.refresh:
		return StopRetryAfterTooLong
	}
	return ""
}
