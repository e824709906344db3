// Package otelresilienthttp reports what a resilienthttp.Client does as
// OpenTelemetry traces and metrics, following the stable HTTP client
// semantic conventions:
//
//	c := resilienthttp.New(resilienthttp.WithObserver(otelresilienthttp.Observer()))
//
// Each call is an INTERNAL span, named "resilienthttp " and the method
// ("resilienthttp GET"), whose children are its attempts, one CLIENT span
// each, named by the method ("GET") with http.request.method,
// server.address, server.port, url.full (redacted: no userinfo, no
// credential-like query values), http.response.status_code, error.type and,
// on every attempt after the first, http.request.resend_count. The call's
// span carries the number of attempts (resilienthttp.attempts) and why the
// client stopped (resilienthttp.stop_reason), and has its waits as span
// events: "retry" (the wait, and whether the server asked for it with
// Retry-After), "limiter wait" (the wait and its reason), "retry budget
// refused". Each attempt's request carries the attempt span's trace
// context (the propagators' headers, W3C traceparent by default), so the
// service's spans are its children.
//
// The metrics are http.client.request.duration (per attempt, as the
// conventions define it) and the client's own, under
// resilienthttp.client; the Metric constants name and describe each.
//
// # With otelhttp
//
// otelhttp.NewTransport makes a CLIENT span per request it carries too.
// Use one of the two for the attempts, not both:
//
//   - this package's attempt spans, and a base transport without otelhttp;
//   - or otelhttp around the base transport
//     (resilienthttp.WithTransport(otelhttp.NewTransport(base))) and
//     Observer(WithoutAttempts()): otelhttp's spans, its
//     http.client.request.duration and its propagation then serve the
//     attempts, each a child of this package's call span, which keeps the
//     retries, waits and stop reason.
//
// Wrapping the whole client (its StandardClient) in otelhttp instead gives
// one span per call, not per attempt, and hides the retries.
package otelresilienthttp

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/resilienthttp/resilienthttp/otelresilienthttp"

// Option configures Observer.
type Option func(*config)

type config struct {
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	prop     propagation.TextMapPropagator
	attempts bool
}

// WithTracerProvider sets where the spans go. Nil, the default, means the
// global provider (otel.GetTracerProvider) as it is when spans are made.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithMeterProvider sets where the metrics go. Nil, the default, means the
// global provider (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.mp = mp }
}

// WithPropagators sets how each attempt's trace context is written into
// its request's headers. Nil, the default, means the global propagators
// (otel.GetTextMapPropagator), as they are when each attempt is sent.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithoutAttempts leaves the attempts to an otelhttp transport around the
// client's base transport (see the package documentation): no attempt
// spans, no http.client.request.duration and no header propagation from
// this package; the call spans, their events and the client's own metrics
// stay.
func WithoutAttempts() Option {
	return func(c *config) { c.attempts = false }
}

func newConfig(opts []Option) config {
	c := config{attempts: true}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	return c
}

// propagator returns the configured propagators, or the global ones now.
func (c *config) propagator() propagation.TextMapPropagator {
	if c.prop != nil {
		return c.prop
	}
	return otel.GetTextMapPropagator()
}
