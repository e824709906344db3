package otelresilienthttp_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/otelresilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A call answered 502, then 200: one span for the call, one per attempt.
func ExampleObserver() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/jobs/j1", servicetest.Step{Status: 502}, servicetest.Step{Status: 200})

	spans := tracetest.NewSpanRecorder() // in a service: an exporter's processor
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	c := resilienthttp.New(
		resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: time.Millisecond}),
		resilienthttp.WithObserver(otelresilienthttp.Observer(otelresilienthttp.WithTracerProvider(tp))))
	defer c.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs/j1", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	for _, s := range spans.Ended() {
		fmt.Print(s.Name(), " ", s.SpanKind())
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "http.response.status_code", "http.request.resend_count", "resilienthttp.attempts":
				fmt.Print(" ", kv.Key, "=", kv.Value.String())
			}
		}
		fmt.Println()
	}
	// Output:
	// GET client http.response.status_code=502
	// GET client http.request.resend_count=1 http.response.status_code=200
	// resilienthttp GET internal resilienthttp.attempts=2 http.response.status_code=200
}
