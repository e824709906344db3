package resilienthttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// policyJSON is Policy's wire form: durations as Go duration strings.
type policyJSON struct {
	MaxAttempts          int          `json:"max_attempts,omitempty"`
	BaseDelay            jsonDuration `json:"base_delay,omitempty"`
	MaxDelay             jsonDuration `json:"max_delay,omitempty"`
	MaxRetryAfter        jsonDuration `json:"max_retry_after,omitempty"`
	AttemptTimeout       jsonDuration `json:"attempt_timeout,omitempty"`
	IdempotencyKeyHeader string       `json:"idempotency_key_header,omitempty"`
	Statuses             map[int]Rule `json:"statuses,omitempty"`
	ClientErrors         Rule         `json:"client_errors,omitempty"`
	ServerErrors         Rule         `json:"server_errors,omitempty"`
	ConnectErrors        Rule         `json:"connect_errors,omitempty"`
	SendErrors           Rule         `json:"send_errors,omitempty"`
	// RetryHintHeaders is a pointer so that [] (read no hints) survives
	// the round trip apart from an absent key (the default headers).
	RetryHintHeaders *[]string `json:"retry_hint_headers,omitempty"`
}

// MarshalJSON encodes durations as strings ("250ms") and rules by name.
// RetryHintHeaders is written when not nil, [] included.
func (p Policy) MarshalJSON() ([]byte, error) {
	var hints *[]string
	if p.RetryHintHeaders != nil {
		hints = &p.RetryHintHeaders
	}
	return json.Marshal(policyJSON{
		MaxAttempts:          p.MaxAttempts,
		BaseDelay:            jsonDuration(p.BaseDelay),
		MaxDelay:             jsonDuration(p.MaxDelay),
		MaxRetryAfter:        jsonDuration(p.MaxRetryAfter),
		AttemptTimeout:       jsonDuration(p.AttemptTimeout),
		IdempotencyKeyHeader: p.IdempotencyKeyHeader,
		Statuses:             p.Statuses,
		ClientErrors:         p.ClientErrors,
		ServerErrors:         p.ServerErrors,
		ConnectErrors:        p.ConnectErrors,
		SendErrors:           p.SendErrors,
		RetryHintHeaders:     hints,
	})
}

// UnmarshalJSON decodes what MarshalJSON writes: durations as Go duration
// strings ("250ms") or a number of nanoseconds, as time.Duration encodes;
// rules by name; Statuses as an object keyed by status code. null, for the
// whole document or for a key, means the same as leaving it out.
//
// It rejects keys it does not know (keys match exactly, case included),
// values of the wrong kind, rule names it does not know, and whatever
// Validate rejects. It reports every problem at once, as *PolicyError
// values joined with errors.Join that name the JSON key (max_attempts,
// statuses."700") and show the value as written, so errors.Is(err,
// ErrInvalidPolicy) holds. Input that is not JSON at all gets
// encoding/json's *json.SyntaxError instead. On error *p is left unchanged.
func (p *Policy) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return &PolicyError{Value: shown(b), Reason: "must be a JSON object"}
		}
		return err // not JSON: json's own *SyntaxError
	}
	var errs []error
	known := make(map[string]bool, len(policyKeys))
	n := naming{keys: make(map[string]string), raw: make(map[string]string)}
	for _, k := range policyKeys {
		known[k.key] = true
		n.keys[k.field] = k.key
	}
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if !known[k] {
			errs = append(errs, &PolicyError{Field: strconv.Quote(k), Reason: "unknown key"})
		}
	}
	var w policyJSON
	wv := reflect.ValueOf(&w).Elem()
	for _, k := range policyKeys {
		raw, ok := doc[k.key]
		if !ok || isNull(raw) {
			continue
		}
		n.raw[k.field] = shown(raw)
		if k.field == "Statuses" {
			var statusErrs []error
			w.Statuses, statusErrs = decodeStatuses(raw, n)
			errs = append(errs, statusErrs...)
			continue
		}
		f := wv.FieldByName(k.field)
		if err := json.Unmarshal(raw, f.Addr().Interface()); err != nil {
			errs = append(errs, &PolicyError{Field: k.key, Value: shown(raw), Reason: jsonReason(f.Interface())})
			// What json decoded before the error (an array's first
			// elements) is not the document's value: check must not
			// report it a second time.
			f.Set(reflect.Zero(f.Type()))
		}
	}
	q := w.policy()
	if err := errors.Join(append(errs, q.check(n)...)...); err != nil {
		return err
	}
	*p = q
	return nil
}

// policy returns the Policy w encodes.
func (w policyJSON) policy() Policy {
	var hints []string
	if w.RetryHintHeaders != nil {
		hints = *w.RetryHintHeaders
	}
	return Policy{
		MaxAttempts:          w.MaxAttempts,
		BaseDelay:            time.Duration(w.BaseDelay),
		MaxDelay:             time.Duration(w.MaxDelay),
		MaxRetryAfter:        time.Duration(w.MaxRetryAfter),
		AttemptTimeout:       time.Duration(w.AttemptTimeout),
		IdempotencyKeyHeader: w.IdempotencyKeyHeader,
		Statuses:             w.Statuses,
		ClientErrors:         w.ClientErrors,
		ServerErrors:         w.ServerErrors,
		ConnectErrors:        w.ConnectErrors,
		SendErrors:           w.SendErrors,
		RetryHintHeaders:     hints,
	}
}

// policyKeys lists policyJSON's keys, in declaration order, each with its
// field name, which is also the name of the Policy field it stands for.
var policyKeys = func() []struct{ key, field string } {
	t := reflect.TypeFor[policyJSON]()
	keys := make([]struct{ key, field string }, t.NumField())
	for i := range keys {
		f := t.Field(i)
		keys[i].key, _, _ = strings.Cut(f.Tag.Get("json"), ",")
		keys[i].field = f.Name
	}
	return keys
}()

// decodeStatuses decodes the statuses object, recording in n the key and
// the text of each entry under its Go name ("Statuses[700]") for check.
func decodeStatuses(raw json.RawMessage, n naming) (map[int]Rule, []error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, []error{&PolicyError{Field: "statuses", Value: shown(raw), Reason: "must be an object mapping status codes to rule names"}}
	}
	var errs []error
	rules := make(map[int]Rule, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := "statuses." + strconv.Quote(k)
		code, err := strconv.Atoi(k)
		if err != nil {
			errs = append(errs, &PolicyError{Field: key, Reason: "must be a status code, such as \"503\""})
			continue
		}
		id := "Statuses[" + strconv.Itoa(code) + "]"
		if prev, dup := n.keys[id]; dup {
			errs = append(errs, &PolicyError{Field: key, Reason: "names the same status code as " + prev})
			continue
		}
		n.keys[id] = key
		v := m[k]
		n.raw[id] = shown(v)
		var r Rule
		if !isNull(v) && json.Unmarshal(v, &r) != nil {
			errs = append(errs, &PolicyError{Field: key, Value: shown(v), Reason: jsonRuleReason})
			continue
		}
		rules[code] = r
	}
	return rules, errs
}

// jsonRuleReason is the reason for a value that is not a rule name.
const jsonRuleReason = `must be a rule name: "default", "fail", "retry", "retry-idempotent" or "retry-with-retry-after"`

// jsonReason says what a value decoded into a field of type like must be.
func jsonReason(like any) string {
	switch like.(type) {
	case int:
		return "must be an integer"
	case jsonDuration:
		return `must be a duration such as "250ms", or a whole number of nanoseconds`
	case Rule:
		return jsonRuleReason
	case *[]string:
		return `must be an array of header names, such as ["X-Should-Retry"]`
	}
	return "must be a string"
}

// isNull reports whether b is the JSON literal null.
func isNull(b []byte) bool { return string(bytes.TrimSpace(b)) == "null" }

// shown returns JSON text for an error message: compacted, and cut short
// if long.
func shown(raw []byte) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	const maxShown = 40
	if r := []rune(b.String()); len(r) > maxShown {
		return string(r[:maxShown-3]) + "..."
	}
	return b.String()
}

type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if json.Unmarshal(b, &n) != nil {
			return fmt.Errorf("resilienthttp: duration must be a string such as \"250ms\": %s", b)
		}
		*d = jsonDuration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("resilienthttp: %w", err)
	}
	*d = jsonDuration(v)
	return nil
}
