// Command otel prints, to stdout, the OpenTelemetry spans of one call that
// a fake service on 127.0.0.1 (servicetest) answers 429 with Retry-After
// before it succeeds: the call's span, its two attempts' spans, and the
// wait as an event of the call. It is its own module, so that the core
// module and otelresilienthttp need no exporter:
//
//	cd examples/otel && go run .
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/otelresilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/items", servicetest.Step{Status: 429, RetryAfter: "1"}, servicetest.Step{Status: 200, Body: `{"items":[]}`})

	exp, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint(), stdouttrace.WithoutTimestamps())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(ctx)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	c := resilienthttp.New(resilienthttp.WithObserver(otelresilienthttp.Observer()))
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/items?api_key=s3cr3t", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	for i, r := range srv.Requests() {
		fmt.Fprintf(os.Stderr, "attempt %d reached the service with traceparent %s\n", i+1, r.Header.Get("Traceparent"))
	}
	return nil
}
