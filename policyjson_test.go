package resilienthttp_test

import (
	"encoding/json"
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
