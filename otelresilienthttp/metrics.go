package otelresilienthttp

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// The metrics' names. The first is the semantic conventions'; the others
// are the client's own, under resilienthttp.client.
const (
	// MetricRequestDuration is http.client.request.duration: a histogram
	// of each attempt's time to its response headers (or its transport
	// error), in seconds, by http.request.method, server.address,
	// server.port, http.response.status_code and error.type.
	MetricRequestDuration = "http.client.request.duration"
	// MetricCallDuration is a histogram of each call's time, attempts and
	// waits included, in seconds, by http.request.method, server.address,
	// server.port and resilienthttp.stop_reason (absent on success).
	MetricCallDuration = "resilienthttp.client.call.duration"
	// MetricRetries counts retries, by http.request.method,
	// server.address, server.port, resilienthttp.retry.reason (the status
	// code, such as "429", or the transport error's class, such as
	// "connect"; see resilienthttp.ErrorClass) and
	// resilienthttp.retry.server_asked.
	MetricRetries = "resilienthttp.client.retries"
	// MetricRetryWait is a histogram of the waits before retries, in
	// seconds, by server.address, server.port and
	// resilienthttp.retry.server_asked: true for a wait the server asked
	// for with Retry-After (or an equivalent header), false for the
	// policy's backoff.
	MetricRetryWait = "resilienthttp.client.retry.wait"
	// MetricLimiterWait is a histogram of the waits for the client-side
	// rate limiter, in seconds, by server.address, server.port and
	// resilienthttp.limiter.reason ("pace", "pause", "first-contact").
	MetricLimiterWait = "resilienthttp.client.limiter.wait"
	// MetricBreakerChanges counts circuit-breaker state changes, by
	// resilienthttp.host (the client's host key) and
	// resilienthttp.breaker.state (the new state: "open", "half-open",
	// "closed").
	MetricBreakerChanges = "resilienthttp.client.breaker.changes"
	// MetricBreakerRefusals counts calls that an open circuit breaker
	// stopped (resilienthttp.StopCircuitOpen), by http.request.method,
	// server.address and server.port.
	MetricBreakerRefusals = "resilienthttp.client.breaker.refusals"
	// MetricBudgetRefusals counts retries that the retry budget refused,
	// by http.request.method, server.address and server.port.
	MetricBudgetRefusals = "resilienthttp.client.budget.refusals"
)

// durationBuckets are the semantic conventions' bucket boundaries for
// http.client.request.duration, used for every duration here.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// instruments are the metrics' instruments. An instrument the meter could
// not make is a no-op one: metrics never fail a call.
type instruments struct {
	requestDuration metric.Float64Histogram
	callDuration    metric.Float64Histogram
	retries         metric.Int64Counter
	retryWait       metric.Float64Histogram
	limiterWait     metric.Float64Histogram
	breakerChanges  metric.Int64Counter
	breakerRefusals metric.Int64Counter
	budgetRefusals  metric.Int64Counter
}

func newInstruments(m metric.Meter) instruments {
	seconds := func(name, desc string) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		if err != nil || h == nil {
			return noop.Float64Histogram{}
		}
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil || c == nil {
			return noop.Int64Counter{}
		}
		return c
	}
	return instruments{
		requestDuration: seconds(MetricRequestDuration, "Duration of HTTP client requests."),
		callDuration:    seconds(MetricCallDuration, "Duration of resilienthttp calls, retries and waits included."),
		retries:         counter(MetricRetries, "{retry}", "Retries, by what the attempt got."),
		retryWait:       seconds(MetricRetryWait, "Waits before retries."),
		limiterWait:     seconds(MetricLimiterWait, "Waits for the client-side rate limiter."),
		breakerChanges:  counter(MetricBreakerChanges, "{change}", "Circuit breaker state changes."),
		breakerRefusals: counter(MetricBreakerRefusals, "{call}", "Calls stopped by an open circuit breaker."),
		budgetRefusals:  counter(MetricBudgetRefusals, "{retry}", "Retries refused by the retry budget."),
	}
}
