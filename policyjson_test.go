package resilienthttp_test

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
)

func TestPolicyJSONRoundTrip(t *testing.T) {
	p := resilienthttp.RFC9110Policy()
	p.BaseDelay = 250 * time.Millisecond
	p.AttemptTimeout = 3 * time.Second
	p.Statuses[409] = resilienthttp.RuleRetryIdempotent
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"base_delay":"250ms"`, `"max_retry_after":"1m0s"`, `"503":"retry-idempotent"`, `"client_errors":"fail"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back resilienthttp.Policy
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, p)
	}
}

func TestPolicyJSONFromAnSDKConfig(t *testing.T) {
	var p resilienthttp.Policy
	err := json.Unmarshal([]byte(`{"max_attempts":2,"max_delay":"2s","statuses":{"409":"retry"}}`), &p)
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxAttempts != 2 || p.MaxDelay != 2*time.Second || p.StatusRule(409) != resilienthttp.RuleRetry || p.StatusRule(503) != resilienthttp.RuleRetryWithRetryAfter {
		t.Errorf("decoded %+v", p)
	}
	for _, bad := range []string{`{"base_delay":"soon"}`, `{"statuses":{"500":"maybe"}}`, `{"base_delay":true}`} {
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestPolicyJSONRejects(t *testing.T) {
	for _, tc := range []struct {
		json   string
		fields []string // the JSON keys the error names
	}{
		// Keys nothing reads.
		{`{"max_atempts":2}`, []string{`"max_atempts"`}},
		{`{"MaxAttempts":2}`, []string{`"MaxAttempts"`}},
		{`{"":1}`, []string{`""`}},
		// Status codes: not HTTP statuses, or never failures, or not numbers.
		{`{"statuses":{"700":"retry"}}`, []string{`statuses."700"`}},
		{`{"statuses":{"600":"retry"}}`, []string{`statuses."600"`}},
		{`{"statuses":{"99":"retry"}}`, []string{`statuses."99"`}},
		{`{"statuses":{"-1":"retry"}}`, []string{`statuses."-1"`}},
		{`{"statuses":{"200":"retry"}}`, []string{`statuses."200"`}},
		{`{"statuses":{"100":"fail"}}`, []string{`statuses."100"`}},
		{`{"statuses":{"304":"retry"}}`, []string{`statuses."304"`}},
		{`{"statuses":{"5xx":"retry"}}`, []string{`statuses."5xx"`}},
		{`{"statuses":{"500":"retry","0500":"fail"}}`, []string{`statuses."500"`}},
		// Rules: unknown names, values that are not names.
		{`{"statuses":{"500":"maybe"}}`, []string{`statuses."500"`}},
		{`{"statuses":{"500":2}}`, []string{`statuses."500"`}},
		{`{"statuses":"retry"}`, []string{"statuses"}},
		{`{"statuses":[500]}`, []string{"statuses"}},
		{`{"client_errors":"retry-if-you-like"}`, []string{"client_errors"}},
		{`{"server_errors":"Retry"}`, []string{"server_errors"}},
		{`{"connect_errors":2}`, []string{"connect_errors"}},
		{`{"send_errors":true}`, []string{"send_errors"}},
		// Counts.
		{`{"max_attempts":-1}`, []string{"max_attempts"}},
		{`{"max_attempts":"2"}`, []string{"max_attempts"}},
		{`{"max_attempts":2.5}`, []string{"max_attempts"}},
		{`{"max_attempts":1e40}`, []string{"max_attempts"}},
		// Durations: negative, unreadable, or a maximum below the base.
		{`{"base_delay":"-1s"}`, []string{"base_delay"}},
		{`{"max_delay":-5}`, []string{"max_delay"}},
		{`{"max_retry_after":"-1m"}`, []string{"max_retry_after"}},
		{`{"attempt_timeout":"-1ms"}`, []string{"attempt_timeout"}},
		{`{"base_delay":"soon"}`, []string{"base_delay"}},
		{`{"base_delay":true}`, []string{"base_delay"}},
		{`{"max_delay":1.5}`, []string{"max_delay"}},
		{`{"attempt_timeout":{"s":1}}`, []string{"attempt_timeout"}},
		{`{"base_delay":"2s","max_delay":"1s"}`, []string{"max_delay"}},
		// The header name.
		{`{"idempotency_key_header":"Idempotency Key"}`, []string{"idempotency_key_header"}},
		{`{"idempotency_key_header":5}`, []string{"idempotency_key_header"}},
		{`{"retry_hint_headers":["X-Should-Retry","Should Retry"]}`, []string{"retry_hint_headers"}},
		{`{"retry_hint_headers":[""]}`, []string{"retry_hint_headers"}},
		{`{"retry_hint_headers":"X-Should-Retry"}`, []string{"retry_hint_headers"}},
		{`{"retry_hint_headers":[true]}`, []string{"retry_hint_headers"}},
		// Not an object at all.
		{`[1]`, []string{""}},
		{`"retry"`, []string{""}},
		// Every problem, not only the first.
		{`{"max_atempts":2,"base_delay":"-1s","statuses":{"700":"retry","500":"maybe"}}`,
			[]string{`"max_atempts"`, "base_delay", `statuses."700"`, `statuses."500"`}},
	} {
		t.Run(tc.json, func(t *testing.T) {
			var p resilienthttp.Policy
			err := json.Unmarshal([]byte(tc.json), &p)
			for _, f := range tc.fields {
				checkInvalidPolicy(t, err, f)
			}
			if n := len(policyErrors(err)); n != len(tc.fields) {
				t.Errorf("%d problems reported, want %d: %v", n, len(tc.fields), err)
			}
			for _, goName := range []string{"MaxAttempts", "BaseDelay", "MaxDelay", "MaxRetryAfter", "AttemptTimeout",
				"IdempotencyKeyHeader", "Statuses", "ClientErrors", "ServerErrors", "ConnectErrors", "SendErrors", "RetryHintHeaders"} {
				if strings.Contains(err.Error(), goName) && !strings.Contains(tc.json, goName) {
					t.Errorf("error %q names the Go field %s, not the JSON key", err, goName)
				}
			}
		})
	}
}

// The error names the JSON key and shows the value as the document wrote
// it, in snake_case, never the Go field.
func TestPolicyJSONErrorSpeaksJSON(t *testing.T) {
	for in, want := range map[string]string{
		`{"max_atempts":2}`:                     `resilienthttp: invalid policy: "max_atempts": unknown key`,
		`{"base_delay":"-1s"}`:                  `resilienthttp: invalid policy: base_delay = "-1s": must not be negative`,
		`{"base_delay":"2s","max_delay":"1s"}`:  `resilienthttp: invalid policy: max_delay = "1s": must not be less than base_delay ("2s")`,
		`{"statuses":{"700":"retry"}}`:          `resilienthttp: invalid policy: statuses."700": not an HTTP status code`,
		`{"statuses":{"500":"maybe"}}`:          `resilienthttp: invalid policy: statuses."500" = "maybe": must be a rule name`,
		`{"idempotency_key_header":"Idem Key"}`: `resilienthttp: invalid policy: idempotency_key_header = "Idem Key": must be a header field name`,
		`{"max_attempts":-1}`:                   `resilienthttp: invalid policy: max_attempts = -1: must not be negative`,
		`{"attempt_timeout":"` + long + `"}`:    `resilienthttp: invalid policy: attempt_timeout = "` + long[:36] + `...: must be a duration`,
	} {
		var p resilienthttp.Policy
		if err := json.Unmarshal([]byte(in), &p); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s…", in, err, want)
		}
	}
}

const long = "0123456789012345678901234567890123456789"

func TestPolicyJSONErrorLeavesPolicyUnchanged(t *testing.T) {
	p := resilienthttp.RFC9110Policy()
	for _, bad := range []string{`{"max_atempts":2}`, `{"max_attempts":-1,"base_delay":"1s"}`, `{"statuses":{"200":"retry"}}`} {
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s: no error", bad)
		}
		if !reflect.DeepEqual(p, resilienthttp.RFC9110Policy()) {
			t.Fatalf("%s changed the policy to %+v", bad, p)
		}
	}
}

// A document that is not JSON at all keeps encoding/json's own error: it is
// not a policy, valid or not.
func TestPolicyJSONSyntaxErrorIsJSONs(t *testing.T) {
	var p resilienthttp.Policy
	err := p.UnmarshalJSON([]byte(`{"max_attempts":`))
	var syntax *json.SyntaxError
	if !errors.As(err, &syntax) || errors.Is(err, resilienthttp.ErrInvalidPolicy) {
		t.Errorf("err = %v (%T), want a *json.SyntaxError that is not ErrInvalidPolicy", err, err)
	}
}

// Every valid example this repository shows still decodes, and to a policy
// that Validate accepts.
func TestPolicyJSONAcceptsValid(t *testing.T) {
	def, _ := json.Marshal(resilienthttp.DefaultPolicy())
	rfc, _ := json.Marshal(resilienthttp.RFC9110Policy())
	for _, in := range []string{
		`{}`,
		`null`,
		string(def),
		string(rfc),
		// README's Configuration section.
		`{"max_attempts": 3, "base_delay": "250ms", "max_retry_after": "30s",
		 "statuses": {"409": "retry-idempotent"}, "server_errors": "fail"}`,
		// ExamplePolicy's output.
		`{"max_attempts":3,"base_delay":"250ms","max_retry_after":"30s","statuses":{"409":"retry-idempotent"},"server_errors":"fail"}`,
		// TestPolicyJSONFromAnSDKConfig's.
		`{"max_attempts":2,"max_delay":"2s","statuses":{"409":"retry"}}`,
		// Bare nanoseconds, as time.Duration encodes; null as absent; every rule name.
		`{"base_delay":250000000,"max_delay":null,"attempt_timeout":"3s","statuses":{"400":"default","599":null}}`,
		`{"client_errors":"retry-with-retry-after","server_errors":"retry","connect_errors":"fail","send_errors":"retry-idempotent","idempotency_key_header":"X-Request-Key"}`,
	} {
		var p resilienthttp.Policy
		if err := json.Unmarshal([]byte(in), &p); err != nil {
			t.Errorf("%s: %v", in, err)
		} else if err := p.Validate(); err != nil {
			t.Errorf("%s decoded to an invalid policy: %v", in, err)
		}
	}
}

// FuzzPolicyJSON: whatever the input, UnmarshalJSON either returns a policy
// that Validate accepts and that survives a MarshalJSON round trip, or an
// error that is ErrInvalidPolicy (or json's own syntax error) and names no Go
// type.
func FuzzPolicyJSON(f *testing.F) {
	for _, s := range []string{`{"max_atempts":2}`, `{"statuses":{"700":"retry"}}`, `{"statuses":"x"}`, `{"max_attempts":-1}`,
		`{"base_delay":"-1s","max_delay":"1s"}`, `{"statuses":{"0503":"retry","200":null}}`, `{"base_delay":1}`, `null`, `[]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p resilienthttp.Policy
		err := p.UnmarshalJSON(b)
		if err != nil {
			var syntax *json.SyntaxError
			if !errors.Is(err, resilienthttp.ErrInvalidPolicy) && !errors.As(err, &syntax) {
				t.Fatalf("%q: err %v (%T) is neither ErrInvalidPolicy nor a syntax error", b, err, err)
			}
			if msg := err.Error(); strings.Contains(msg, "policyJSON") || strings.Contains(msg, "resilienthttp.") {
				t.Fatalf("%q: error %q names a Go type", b, msg)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("%q decoded to an invalid policy: %v", b, err)
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("%q: marshal: %v", b, err)
		}
		var back resilienthttp.Policy
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: %s does not decode: %v", b, out, err)
		}
		if again, _ := json.Marshal(back); string(again) != string(out) {
			t.Fatalf("%q: round trip %s -> %s", b, out, again)
		}
	})
}

// The hint headers round-trip three ways: absent (the defaults), [] (none
// read) and a list of the SDK's own.
func TestPolicyJSONRetryHintHeaders(t *testing.T) {
	for _, tc := range []struct {
		json string
		want []string // the decoded field
		used []string // the headers a client reads
	}{
		{`{}`, nil, []string{"X-Should-Retry", "Stripe-Should-Retry"}},
		{`{"retry_hint_headers":null}`, nil, []string{"X-Should-Retry", "Stripe-Should-Retry"}},
		{`{"retry_hint_headers":[]}`, []string{}, []string{}},
		{`{"retry_hint_headers":["X-Acme-Retry"]}`, []string{"X-Acme-Retry"}, []string{"X-Acme-Retry"}},
	} {
		var p resilienthttp.Policy
		if err := json.Unmarshal([]byte(tc.json), &p); err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if !reflect.DeepEqual(p.RetryHintHeaders, tc.want) {
			t.Errorf("%s: RetryHintHeaders = %#v, want %#v", tc.json, p.RetryHintHeaders, tc.want)
		}
		if used := resilienthttp.New(resilienthttp.WithPolicy(p)).Policy().RetryHintHeaders; !reflect.DeepEqual(used, tc.used) {
			t.Errorf("%s: a client reads %#v, want %#v", tc.json, used, tc.used)
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back resilienthttp.Policy
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, p) {
			t.Errorf("%s: round trip through %s gave %#v, %v", tc.json, b, back.RetryHintHeaders, err)
		}
	}
}

// The README's Policy reference names every JSON key and every rule name,
// so a key added to the wire form without a row there fails here.
func TestPolicyReferenceNamesEveryKey(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, ref, ok := strings.Cut(string(readme), "### Policy reference")
	if !ok {
		t.Fatal("README.md has no Policy reference section")
	}
	ref, _, _ = strings.Cut(ref, "\n## ")
	b, err := json.Marshal(resilienthttp.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	keys["attempt_timeout"], keys["statuses"] = nil, nil // zero in DefaultPolicy, so not written
	for k := range keys {
		if !strings.Contains(ref, "| `"+k+"` |") {
			t.Errorf("the Policy reference has no row for the JSON key %q", k)
		}
	}
	for r := resilienthttp.RuleDefault; r <= resilienthttp.RuleRetryWithRetryAfter; r++ {
		if !strings.Contains(ref, "| `\""+r.String()+"\"` |") {
			t.Errorf("the Policy reference has no row for the rule name %q", r)
		}
	}
	// Every key in the reference decodes: none is made up.
	for _, line := range strings.Split(ref, "\n") {
		if k, ok := strings.CutPrefix(line, "| `"); ok && strings.Contains(line, "| `") {
			k, _, _ = strings.Cut(k, "`")
			if strings.HasPrefix(k, `"`) {
				continue // a rule name
			}
			if _, known := keys[k]; !known {
				t.Errorf("the Policy reference names %q, which is not a key", k)
			}
		}
	}
}
