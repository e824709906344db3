package otelresilienthttp

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/resilienthttp/resilienthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys: the semantic conventions' and the client's own.
const (
	keyMethod         = attribute.Key("http.request.method")
	keyMethodOriginal = attribute.Key("http.request.method_original")
	keyServerAddress  = attribute.Key("server.address")
	keyServerPort     = attribute.Key("server.port")
	keyURL            = attribute.Key("url.full")
	keyStatus         = attribute.Key("http.response.status_code")
	keyErrorType      = attribute.Key("error.type")
	keyResendCount    = attribute.Key("http.request.resend_count")

	keyAttempt     = attribute.Key("resilienthttp.attempt")
	keyAttempts    = attribute.Key("resilienthttp.attempts")
	keyStopReason  = attribute.Key("resilienthttp.stop_reason")
	keyRetryReason = attribute.Key("resilienthttp.retry.reason")
	keyServerAsked = attribute.Key("resilienthttp.retry.server_asked")
	keyWait        = attribute.Key("resilienthttp.wait")
	keyRetryAfter  = attribute.Key("resilienthttp.retry_after")
	keyLimiter     = attribute.Key("resilienthttp.limiter.reason")
	keyHost        = attribute.Key("resilienthttp.host")
	keyBreaker     = attribute.Key("resilienthttp.breaker.state")
)

// Observer returns the resilienthttp.Observer that reports a client's
// calls, attempts and waits as spans and metrics (see the package
// documentation), to give to resilienthttp.WithObserver. Its metric
// instruments are made once, here.
func Observer(opts ...Option) resilienthttp.Observer {
	cfg := newConfig(opts)
	o := &observer{
		cfg:    cfg,
		tracer: cfg.tp.Tracer(ScopeName),
		inst:   newInstruments(cfg.mp.Meter(ScopeName)),
	}
	obs := resilienthttp.Observer{
		CallStart:     o.callStart,
		CallEnd:       o.callEnd,
		Retry:         o.retry,
		LimiterWait:   o.limiterWait,
		BudgetRefused: o.budgetRefused,
		BreakerChange: o.breakerChange,
	}
	if cfg.attempts {
		obs.AttemptStart, obs.AttemptEnd = o.attemptStart, o.attemptEnd
	}
	return obs
}

type observer struct {
	cfg    config
	tracer trace.Tracer
	inst   instruments
}

// The span kinds, as options made once: each costs an allocation.
var (
	internalKind = trace.WithSpanKind(trace.SpanKindInternal)
	clientKind   = trace.WithSpanKind(trace.SpanKindClient)
)

type callKey struct{}

// callState is what a call's later events need of its start.
type callState struct {
	span trace.Span
	// server is http.request.method, server.address and server.port,
	// the attributes every metric of the call has.
	server []attribute.KeyValue
}

func stateOf(ctx context.Context) *callState {
	st, _ := ctx.Value(callKey{}).(*callState)
	return st
}

func (o *observer) callStart(ctx context.Context, e resilienthttp.CallStart) context.Context {
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = appendMethod(attrs, e.Method)
	attrs = appendServer(attrs, e.Request.URL)
	server := attrs[:len(attrs):len(attrs)]
	attrs = append(attrs, keyURL.String(e.URL))
	ctx, span := o.tracer.Start(ctx, callSpanName(e.Method), internalKind, trace.WithAttributes(attrs...))
	return context.WithValue(ctx, callKey{}, &callState{span: span, server: server})
}

func (o *observer) callEnd(ctx context.Context, e resilienthttp.CallEnd) {
	st := stateOf(ctx)
	if st == nil {
		return
	}
	span := st.span
	span.SetAttributes(keyAttempts.Int(e.Attempts))
	if e.Status > 0 {
		span.SetAttributes(keyStatus.Int(e.Status))
	}
	if e.Reason != "" {
		span.SetAttributes(keyStopReason.String(string(e.Reason)))
	}
	if e.Err != nil || e.Status >= 400 {
		span.SetAttributes(keyErrorType.String(callErrorType(e)))
		span.SetStatus(codes.Error, string(e.Reason))
	}
	span.End()

	attrs := st.server
	if e.Reason != "" {
		attrs = append(attrs[:len(attrs):len(attrs)], keyStopReason.String(string(e.Reason)))
	}
	o.inst.callDuration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(attrs...))
	if e.Reason == resilienthttp.StopCircuitOpen {
		o.inst.breakerRefusals.Add(ctx, 1, metric.WithAttributes(st.server...))
	}
}

// callErrorType is error.type of a call that failed: the final status,
// or the stop reason when no response came.
func callErrorType(e resilienthttp.CallEnd) string {
	switch {
	case e.Status >= 400:
		return strconv.Itoa(e.Status)
	case e.Reason != "":
		return string(e.Reason)
	}
	return "_OTHER"
}

func (o *observer) attemptStart(ctx context.Context, e resilienthttp.AttemptStart) context.Context {
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = appendMethod(attrs, e.Request.Method)
	attrs = appendServer(attrs, e.Request.URL)
	attrs = append(attrs, keyURL.String(e.URL))
	if e.Resends > 0 {
		attrs = append(attrs, keyResendCount.Int(e.Resends))
	}
	ctx, _ = o.tracer.Start(ctx, attemptSpanName(e.Request.Method), clientKind, trace.WithAttributes(attrs...))
	o.cfg.propagator().Inject(ctx, propagation.HeaderCarrier(e.Request.Header))
	return ctx
}

func (o *observer) attemptEnd(ctx context.Context, e resilienthttp.AttemptEnd) {
	span := trace.SpanFromContext(ctx)
	var outcome [2]attribute.KeyValue // status code, error type: what the start did not know
	n := 0
	if e.Status > 0 {
		outcome[n] = keyStatus.Int(e.Status)
		n++
	}
	switch {
	case e.Err != nil:
		outcome[n] = keyErrorType.String(e.ErrorClass)
		n++
		span.SetStatus(codes.Error, e.ErrorClass)
	case e.Status >= 400:
		outcome[n] = keyErrorType.String(strconv.Itoa(e.Status))
		n++
		span.SetStatus(codes.Error, "")
	}
	span.SetAttributes(outcome[:n]...)
	span.End()
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = appendMethod(attrs, e.Request.Method)
	attrs = appendServer(attrs, e.Request.URL)
	attrs = append(attrs, outcome[:n]...)
	o.inst.requestDuration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(attrs...))
}

func (o *observer) retry(ctx context.Context, e resilienthttp.RetryEvent) {
	reason := e.ErrorClass
	if e.Err == nil {
		reason = strconv.Itoa(e.Status)
	}
	trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(
		keyAttempt.Int(e.Attempt), keyRetryReason.String(reason),
		keyWait.Float64(e.Wait.Seconds()), keyServerAsked.Bool(e.ServerAsked),
		keyRetryAfter.Float64(e.RetryAfter.Seconds())))
	server := serverOf(ctx)
	o.inst.retries.Add(ctx, 1, metric.WithAttributes(append(server[:len(server):len(server)],
		keyRetryReason.String(reason), keyServerAsked.Bool(e.ServerAsked))...))
	o.inst.retryWait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(append(hostOnly(server), keyServerAsked.Bool(e.ServerAsked))...))
}

func (o *observer) limiterWait(ctx context.Context, e resilienthttp.LimiterWait) {
	reason := e.Reason.String()
	trace.SpanFromContext(ctx).AddEvent("limiter wait", trace.WithAttributes(
		keyLimiter.String(reason), keyWait.Float64(e.Wait.Seconds())))
	o.inst.limiterWait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(append(hostOnly(serverOf(ctx)), keyLimiter.String(reason))...))
}

func (o *observer) budgetRefused(ctx context.Context, e resilienthttp.BudgetRefused) {
	trace.SpanFromContext(ctx).AddEvent("retry budget refused", trace.WithAttributes(keyAttempt.Int(e.Attempt)))
	o.inst.budgetRefusals.Add(ctx, 1, metric.WithAttributes(serverOf(ctx)...))
}

func (o *observer) breakerChange(e resilienthttp.BreakerChange) {
	o.inst.breakerChanges.Add(context.Background(), 1, metric.WithAttributes(keyHost.String(e.Host), keyBreaker.String(e.To.String())))
}

// serverOf returns the method and server attributes of the call ctx
// belongs to.
func serverOf(ctx context.Context) []attribute.KeyValue {
	if st := stateOf(ctx); st != nil {
		return st.server
	}
	return nil
}

// hostOnly returns a copy of the server attributes without the method.
func hostOnly(server []attribute.KeyValue) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, len(server)+1)
	for _, kv := range server {
		if kv.Key != keyMethod && kv.Key != keyMethodOriginal {
			out = append(out, kv)
		}
	}
	return out
}

// appendMethod appends http.request.method as the conventions want it: a
// known method as is, any other as _OTHER with the original beside it.
func appendMethod(attrs []attribute.KeyValue, method string) []attribute.KeyValue {
	if knownMethod(method) {
		return append(attrs, keyMethod.String(method))
	}
	return append(attrs, keyMethod.String("_OTHER"), keyMethodOriginal.String(method))
}

func knownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// attemptSpanName is the conventions' span name: the method, or "HTTP" for
// one they do not know.
func attemptSpanName(method string) string {
	if knownMethod(method) {
		return method
	}
	return "HTTP"
}

func callSpanName(method string) string {
	switch method {
	case http.MethodGet:
		return "resilienthttp GET"
	case http.MethodPost:
		return "resilienthttp POST"
	case http.MethodPut:
		return "resilienthttp PUT"
	case http.MethodDelete:
		return "resilienthttp DELETE"
	}
	return "resilienthttp " + attemptSpanName(method)
}

// appendServer appends server.address and server.port of u, the port
// being the scheme's default when u has none.
func appendServer(attrs []attribute.KeyValue, u *url.URL) []attribute.KeyValue {
	if u == nil {
		return attrs
	}
	attrs = append(attrs, keyServerAddress.String(u.Hostname()))
	port := 0
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	} else {
		switch u.Scheme {
		case "http":
			port = 80
		case "https":
			port = 443
		}
	}
	if port > 0 {
		attrs = append(attrs, keyServerPort.Int(port))
	}
	return attrs
}
