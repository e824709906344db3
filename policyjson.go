package resilienthttp

import (
	"encoding/json"
	"fmt"
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
}

// MarshalJSON encodes durations as strings ("250ms") and rules by name.
func (p Policy) MarshalJSON() ([]byte, error) {
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
	})
}

// UnmarshalJSON decodes what MarshalJSON writes. Durations are Go duration
// strings; a bare number is read as nanoseconds, as time.Duration encodes.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var w policyJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Policy{
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
	}
	return nil
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
