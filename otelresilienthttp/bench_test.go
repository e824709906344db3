package otelresilienthttp_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/otelresilienthttp"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

var okBody = []byte(`{"id":"u1","name":"alice"}`)

// memTransport answers every request with a 200 from memory, so only the
// client's and the telemetry's own code is measured.
type memTransport struct{}

func (memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{},
		Body:    io.NopCloser(bytes.NewReader(okBody)),
		Request: req, ContentLength: int64(len(okBody)),
	}, nil
}

// BenchmarkCall prices the telemetry per call (one attempt answered 200):
// "none" is the client without an observer; "sdk" records every span, with
// a no-op exporter, and every metric, into a reader never collected (what
// an instrumented service pays on each call); "global-noop" is the module
// with OpenTelemetry's default global providers, which drop everything:
//
//	go test -run '^$' -bench Call -benchmem -count 10 .
func BenchmarkCall(b *testing.B) {
	b.Run("none", func(b *testing.B) {
		benchCalls(b, resilienthttp.New(resilienthttp.WithTransport(memTransport{})))
	})
	b.Run("sdk", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		defer tp.Shutdown(b.Context())
		defer mp.Shutdown(b.Context())
		obs := otelresilienthttp.Observer(otelresilienthttp.WithTracerProvider(tp), otelresilienthttp.WithMeterProvider(mp),
			otelresilienthttp.WithPropagators(propagation.TraceContext{}))
		benchCalls(b, resilienthttp.New(resilienthttp.WithTransport(memTransport{}), resilienthttp.WithObserver(obs)))
	})
	b.Run("global-noop", func(b *testing.B) {
		obs := otelresilienthttp.Observer()
		benchCalls(b, resilienthttp.New(resilienthttp.WithTransport(memTransport{}), resilienthttp.WithObserver(obs)))
	})
}

func benchCalls(b *testing.B, c *resilienthttp.Client) {
	req, _ := http.NewRequest(http.MethodGet, "http://svc.test/v1/items", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
