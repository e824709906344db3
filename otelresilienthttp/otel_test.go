package otelresilienthttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/otelresilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is what an operator's backend would receive.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

// newClient returns a client observed by the module, with in-memory
// exporters, W3C trace context propagation, a fake clock and jitter drawn
// at 0.5.
func newClient(t *testing.T, obsOpts []otelresilienthttp.Option, opts ...resilienthttp.Option) (*resilienthttp.Client, *telemetry, *servicetest.Clock) {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	clk := servicetest.NewClock(time.Now())
	obs := otelresilienthttp.Observer(append([]otelresilienthttp.Option{
		otelresilienthttp.WithTracerProvider(tp),
		otelresilienthttp.WithMeterProvider(mp),
		otelresilienthttp.WithPropagators(propagation.TraceContext{}),
	}, obsOpts...)...)
	c := resilienthttp.New(append([]resilienthttp.Option{
		resilienthttp.WithClock(clk),
		resilienthttp.WithRandom(func() float64 { return 0.5 }),
		resilienthttp.WithObserver(obs),
	}, opts...)...)
	t.Cleanup(c.CloseIdleConnections)
	return c, tel, clk
}

func do(t *testing.T, c *resilienthttp.Client, ctx context.Context, method, url string) error {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return err
}

// calls and attempts split the ended spans into the calls' (INTERNAL) and
// the attempts' (CLIENT), in the order they ended.
func (tel *telemetry) calls() []sdktrace.ReadOnlySpan    { return tel.ofKind(trace.SpanKindInternal) }
func (tel *telemetry) attempts() []sdktrace.ReadOnlySpan { return tel.ofKind(trace.SpanKindClient) }

func (tel *telemetry) ofKind(k trace.SpanKind) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.SpanKind() == k {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]any) {
	t.Helper()
	for k, w := range want {
		v, ok := attr(s, k)
		switch {
		case w == nil && ok:
			t.Errorf("span %q has %s = %v, want none", s.Name(), k, v.String())
		case w != nil && !ok:
			t.Errorf("span %q lacks %s", s.Name(), k)
		case w != nil && v.AsInterface() != w:
			t.Errorf("span %q: %s = %#v, want %#v", s.Name(), k, v.AsInterface(), w)
		}
	}
}

// metrics collects the metrics and returns them by name.
func (tel *telemetry) metrics(t *testing.T) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// count returns, for a counter or a histogram, the count of the data point
// with exactly the attributes given among its own (others ignored), and
// for a histogram the sum.
func count(t *testing.T, data metricdata.Aggregation, match ...attribute.KeyValue) (n int64, sum float64) {
	t.Helper()
	has := func(set attribute.Set) bool {
		for _, kv := range match {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				n += p.Value
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				n += int64(p.Count)
				sum += p.Sum
			}
		}
	case nil:
	default:
		t.Fatalf("unexpected aggregation %T", data)
	}
	return n, sum
}

// TestRetried429: the spans and metrics of a call answered 429 with
// Retry-After, then 200. Each attempt is a CLIENT span under the call's
// INTERNAL span, the second with its resend count; the wait the server
// asked for is an event of the call; the service receives each attempt's
// own trace context; and the URL's token is redacted everywhere.
func TestRetried429(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/items", servicetest.Step{Status: 429, RetryAfter: "2"}, servicetest.Step{Status: 200})
	c, tel, _ := newClient(t, nil)
	if err := do(t, c, context.Background(), http.MethodGet, srv.URL+"/v1/items?token=s3cr3t"); err != nil {
		t.Fatal(err)
	}
	calls, attempts := tel.calls(), tel.attempts()
	if len(calls) != 1 || len(attempts) != 2 {
		t.Fatalf("%d call spans and %d attempt spans, want 1 and 2", len(calls), len(attempts))
	}
	call := calls[0]
	redacted := srv.URL + "/v1/items?token=REDACTED"
	port := portOf(t, srv)
	if call.Name() != "resilienthttp GET" {
		t.Errorf("call span named %q", call.Name())
	}
	wantAttrs(t, call, map[string]any{"http.request.method": "GET", "url.full": redacted, "server.address": "127.0.0.1",
		"server.port": port, "resilienthttp.attempts": int64(2), "http.response.status_code": int64(200),
		"resilienthttp.stop_reason": nil, "error.type": nil})
	if call.Status().Code == codes.Error {
		t.Errorf("call span status %v, want not an error", call.Status())
	}
	for i, a := range attempts {
		if a.Name() != "GET" || a.Parent().SpanID() != call.SpanContext().SpanID() {
			t.Errorf("attempt span %d: %q, parent %v, want GET under the call", i+1, a.Name(), a.Parent().SpanID())
		}
	}
	wantAttrs(t, attempts[0], map[string]any{"http.request.method": "GET", "url.full": redacted, "server.address": "127.0.0.1",
		"server.port": port, "http.response.status_code": int64(429), "error.type": "429", "http.request.resend_count": nil})
	wantAttrs(t, attempts[1], map[string]any{"http.response.status_code": int64(200), "error.type": nil, "http.request.resend_count": int64(1)})
	if attempts[0].Status().Code != codes.Error {
		t.Errorf("429 attempt's span status %v, want Error", attempts[0].Status())
	}

	// The wait, on the call's span.
	evs := call.Events()
	if len(evs) != 1 || evs[0].Name != "retry" {
		t.Fatalf("call span events %v, want one retry", evs)
	}
	for _, kv := range evs[0].Attributes {
		switch kv.Key {
		case "resilienthttp.wait":
			if kv.Value.AsFloat64() != 2.2 {
				t.Errorf("retry wait %v, want 2.2 (Retry-After 2 and its jitter)", kv.Value.AsFloat64())
			}
		case "resilienthttp.retry.server_asked":
			if !kv.Value.AsBool() {
				t.Error("retry event says the server did not ask")
			}
		}
	}

	// What the service received: each attempt's own trace context.
	for i, r := range srv.Requests() {
		sc := attempts[i].SpanContext()
		want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
		if got := r.Header.Get("Traceparent"); got != want {
			t.Errorf("attempt %d carried traceparent %q, want %q", i+1, got, want)
		}
	}

	m := tel.metrics(t)
	if n, _ := count(t, m[otelresilienthttp.MetricRequestDuration], attribute.Int("http.response.status_code", 429),
		attribute.String("error.type", "429"), attribute.String("server.address", "127.0.0.1"), attribute.Int64("server.port", port)); n != 1 {
		t.Errorf("%s: %d data for the 429, want 1", otelresilienthttp.MetricRequestDuration, n)
	}
	if n, _ := count(t, m[otelresilienthttp.MetricRequestDuration], attribute.Int("http.response.status_code", 200)); n != 1 {
		t.Errorf("%s: %d data for the 200, want 1", otelresilienthttp.MetricRequestDuration, n)
	}
	if n, _ := count(t, m[otelresilienthttp.MetricRetries], attribute.String("resilienthttp.retry.reason", "429"),
		attribute.Bool("resilienthttp.retry.server_asked", true)); n != 1 {
		t.Errorf("%s = %d for 429s the server timed, want 1", otelresilienthttp.MetricRetries, n)
	}
	if n, sum := count(t, m[otelresilienthttp.MetricRetryWait], attribute.Bool("resilienthttp.retry.server_asked", true)); n != 1 || sum != 2.2 {
		t.Errorf("%s: %d waits, %vs in all; want 1, 2.2s", otelresilienthttp.MetricRetryWait, n, sum)
	}
}

func portOf(t *testing.T, srv *servicetest.Server) int64 {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseInt(u.Port(), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOpenBreaker: the breaker's opening is counted, the calls it stops
// are counted and say why, and a call it refuses outright has no attempt.
func TestOpenBreaker(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/items", servicetest.Step{Status: 500})
	c, tel, _ := newClient(t, nil, resilienthttp.WithBreaker(resilienthttp.BreakerSettings{ConsecutiveFailures: 2}))
	for range 2 {
		if err := do(t, c, context.Background(), http.MethodGet, srv.URL+"/v1/items"); !errors.Is(err, resilienthttp.ErrCircuitOpen) {
			t.Fatalf("err = %v, want ErrCircuitOpen", err)
		}
	}
	calls, attempts := tel.calls(), tel.attempts()
	if len(calls) != 2 || len(attempts) != 2 {
		t.Fatalf("%d call spans and %d attempt spans, want 2 and 2", len(calls), len(attempts))
	}
	wantAttrs(t, calls[0], map[string]any{"resilienthttp.attempts": int64(2), "resilienthttp.stop_reason": "circuit open",
		"http.response.status_code": int64(500), "error.type": "500"})
	wantAttrs(t, calls[1], map[string]any{"resilienthttp.attempts": int64(0), "resilienthttp.stop_reason": "circuit open",
		"http.response.status_code": nil, "error.type": "circuit open"})
	for _, s := range calls {
		if s.Status().Code != codes.Error {
			t.Errorf("call span status %v, want Error", s.Status())
		}
	}
	m := tel.metrics(t)
	if n, _ := count(t, m[otelresilienthttp.MetricBreakerRefusals], attribute.String("server.address", "127.0.0.1")); n != 2 {
		t.Errorf("%s = %d, want 2", otelresilienthttp.MetricBreakerRefusals, n)
	}
	if n, _ := count(t, m[otelresilienthttp.MetricBreakerChanges], attribute.String("resilienthttp.breaker.state", "open")); n != 1 {
		t.Errorf("%s to open = %d, want 1", otelresilienthttp.MetricBreakerChanges, n)
	}
	if n, _ := count(t, m[otelresilienthttp.MetricRetries], attribute.String("resilienthttp.retry.reason", "500"),
		attribute.Bool("resilienthttp.retry.server_asked", false)); n != 2 {
		t.Errorf("%s for 500s = %d, want 2", otelresilienthttp.MetricRetries, n)
	}
}

// TestPOSTNotRepeated: a POST answered 502 is one attempt and a call that
// stopped as not retryable, with no retry counted.
func TestPOSTNotRepeated(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/orders", servicetest.Step{Status: 502})
	c, tel, _ := newClient(t, nil)
	if err := do(t, c, context.Background(), http.MethodPost, srv.URL+"/v1/orders"); err == nil {
		t.Fatal("want an error")
	}
	calls, attempts := tel.calls(), tel.attempts()
	if len(calls) != 1 || len(attempts) != 1 {
		t.Fatalf("%d call spans and %d attempt spans, want 1 and 1", len(calls), len(attempts))
	}
	wantAttrs(t, calls[0], map[string]any{"http.request.method": "POST", "resilienthttp.attempts": int64(1),
		"resilienthttp.stop_reason": "not retryable", "error.type": "502"})
	wantAttrs(t, attempts[0], map[string]any{"http.request.method": "POST", "http.response.status_code": int64(502), "error.type": "502"})
	if len(calls[0].Events()) != 0 {
		t.Errorf("call span events %v, want none", calls[0].Events())
	}
	m := tel.metrics(t)
	if n, _ := count(t, m[otelresilienthttp.MetricRetries]); n != 0 {
		t.Errorf("%s = %d, want 0", otelresilienthttp.MetricRetries, n)
	}
	if n, _ := count(t, m[otelresilienthttp.MetricCallDuration], attribute.String("resilienthttp.stop_reason", "not retryable")); n != 1 {
		t.Errorf("%s for the call = %d, want 1", otelresilienthttp.MetricCallDuration, n)
	}
}

// TestRetryAfterPastDeadline: a Retry-After the deadline cannot wait for
// is not slept: the call's span says why it stopped, without a retry.
func TestRetryAfterPastDeadline(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/v1/items", servicetest.Step{Status: 429, RetryAfter: "30"})
	c, tel, clk := newClient(t, nil)
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(5*time.Second))
	defer cancel()
	if err := do(t, c, ctx, http.MethodGet, srv.URL+"/v1/items"); err == nil {
		t.Fatal("want an error")
	}
	calls, attempts := tel.calls(), tel.attempts()
	if len(calls) != 1 || len(attempts) != 1 {
		t.Fatalf("%d call spans and %d attempt spans, want 1 and 1", len(calls), len(attempts))
	}
	wantAttrs(t, calls[0], map[string]any{"resilienthttp.attempts": int64(1),
		"resilienthttp.stop_reason": string(resilienthttp.StopDeadline), "error.type": "429"})
	if len(calls[0].Events()) != 0 {
		t.Errorf("call span events %v, want none", calls[0].Events())
	}
	if n, _ := count(t, tel.metrics(t)[otelresilienthttp.MetricRetryWait]); n != 0 {
		t.Errorf("%s has %d waits, want none", otelresilienthttp.MetricRetryWait, n)
	}
}

// TestLimiterWaitIsAnEvent: a call held by the host's pause (a Retry-After
// another call received) has the wait as an event, and it is measured.
func TestLimiterWaitIsAnEvent(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/a", servicetest.Step{Status: 429, RetryAfter: "1"})
	c, tel, _ := newClient(t, nil, resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}))
	do(t, c, context.Background(), http.MethodGet, srv.URL+"/a") // pauses the host for 1s
	do(t, c, context.Background(), http.MethodGet, srv.URL+"/b")
	calls := tel.calls()
	if len(calls) != 2 || len(calls[1].Events()) != 1 || calls[1].Events()[0].Name != "limiter wait" {
		t.Fatalf("second call's events: %v, want one limiter wait", calls[1].Events())
	}
	got := map[attribute.Key]any{}
	for _, kv := range calls[1].Events()[0].Attributes {
		got[kv.Key] = kv.Value.AsInterface()
	}
	if got["resilienthttp.limiter.reason"] != "pause" || got["resilienthttp.wait"] != 1.0 {
		t.Errorf("limiter wait event %v, want a pause of 1s", got)
	}
	if n, sum := count(t, tel.metrics(t)[otelresilienthttp.MetricLimiterWait], attribute.String("resilienthttp.limiter.reason", "pause")); n != 1 || sum != 1 {
		t.Errorf("%s: %d pauses, %vs in all; want 1, 1s", otelresilienthttp.MetricLimiterWait, n, sum)
	}
}

// TestWithoutAttempts: with the attempts left to otelhttp, the module
// makes no attempt span and writes no header, and the base transport gets
// the call's span in the request's context, for otelhttp's spans to be
// its children.
func TestWithoutAttempts(t *testing.T) {
	srv := servicetest.NewServer(t)
	var parents []trace.SpanContext
	base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		parents = append(parents, trace.SpanContextFromContext(req.Context()))
		return http.DefaultTransport.RoundTrip(req)
	})
	c, tel, _ := newClient(t, []otelresilienthttp.Option{otelresilienthttp.WithoutAttempts()}, resilienthttp.WithTransport(base))
	if err := do(t, c, context.Background(), http.MethodGet, srv.URL+"/a"); err != nil {
		t.Fatal(err)
	}
	calls := tel.calls()
	if len(calls) != 1 || len(tel.attempts()) != 0 {
		t.Fatalf("%d call spans, %d attempt spans; want 1, 0", len(calls), len(tel.attempts()))
	}
	if len(parents) != 1 || parents[0].SpanID() != calls[0].SpanContext().SpanID() {
		t.Errorf("base transport saw span %v, want the call's", parents)
	}
	if h := srv.Requests()[0].Header.Get("Traceparent"); h != "" {
		t.Errorf("request carried traceparent %q, want none", h)
	}
	if _, ok := tel.metrics(t)[otelresilienthttp.MetricRequestDuration]; ok {
		t.Errorf("%s recorded, want it left to otelhttp", otelresilienthttp.MetricRequestDuration)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
