package resilienthttp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/resilienthttp/resilienthttp"
)

// The hot path: what a call costs when the first answer is a 200. Compare
// BenchmarkHappyPath/net-http (the floor) with BenchmarkHappyPath/resilienthttp
// in the same run:
//
//	go test -run '^$' -bench HappyPath -benchmem -count 6 . | benchstat -

var okBody = []byte(`{"id":"u1","name":"alice"}`)

func okHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(okBody)
}

func BenchmarkHappyPath(b *testing.B) {
	// A bare handler rather than servicetest: recording every request would
	// add the server's own allocations to what is measured.
	srv := httptest.NewServer(http.HandlerFunc(okHandler))
	defer srv.Close()
	b.Run("net-http", func(b *testing.B) {
		hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		defer hc.CloseIdleConnections()
		benchGet(b, srv.URL, hc.Do)
	})
	b.Run("resilienthttp", func(b *testing.B) {
		c := resilienthttp.New()
		defer c.CloseIdleConnections()
		benchGet(b, srv.URL, c.Do)
	})
}

func benchGet(b *testing.B, url string, do func(*http.Request) (*http.Response, error)) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// memTransport answers every request with a 200 from memory, so only the
// client's own code is measured.
type memTransport struct{}

func (memTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{},
		Body:    io.NopCloser(bytes.NewReader(okBody)),
		Request: req, ContentLength: int64(len(okBody)),
	}, nil
}

// BenchmarkOverhead measures the client's own cost per call over an
// in-memory transport: sequential, then from many goroutines to show that
// throughput scales with GOMAXPROCS (no global lock):
//
//	go test -run '^$' -bench Overhead -benchmem -cpu 1,2 .
func BenchmarkOverhead(b *testing.B) {
	b.Run("GET", func(b *testing.B) {
		c := resilienthttp.New(resilienthttp.WithTransport(memTransport{}))
		benchGet(b, "http://svc.test/v1/items", c.Do)
	})
	b.Run("POST", func(b *testing.B) {
		c := resilienthttp.New(resilienthttp.WithTransport(memTransport{}))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequest(http.MethodPost, "http://svc.test/v1/items", strings.NewReader(`{"name":"x"}`))
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := resilienthttp.New(resilienthttp.WithTransport(memTransport{}))
		b.ReportAllocs()
		b.SetParallelism(32) // 32 × GOMAXPROCS goroutines
		b.RunParallel(func(pb *testing.PB) {
			req, _ := http.NewRequest(http.MethodGet, "http://svc.test/v1/items", nil)
			for pb.Next() {
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
			}
		})
	})
}

// BenchmarkObserver is BenchmarkOverhead/GET with an Observer whose every
// function is set and does nothing: the cost of the events themselves
// (the attempt's own request and header copy, redacted URLs, the clock).
// Compare it with BenchmarkOverhead/GET, where no observer is set:
//
//	go test -run '^$' -bench 'Overhead/GET|Observer' -benchmem .
func BenchmarkObserver(b *testing.B) {
	keep := func(ctx context.Context, _ any) context.Context { return ctx }
	c := resilienthttp.New(resilienthttp.WithTransport(memTransport{}), resilienthttp.WithObserver(resilienthttp.Observer{
		CallStart:     func(ctx context.Context, e resilienthttp.CallStart) context.Context { return keep(ctx, e) },
		CallEnd:       func(context.Context, resilienthttp.CallEnd) {},
		AttemptStart:  func(ctx context.Context, e resilienthttp.AttemptStart) context.Context { return keep(ctx, e) },
		AttemptEnd:    func(context.Context, resilienthttp.AttemptEnd) {},
		Retry:         func(context.Context, resilienthttp.RetryEvent) {},
		LimiterWait:   func(context.Context, resilienthttp.LimiterWait) {},
		BudgetRefused: func(context.Context, resilienthttp.BudgetRefused) {},
		BreakerChange: func(resilienthttp.BreakerChange) {},
	}))
	benchGet(b, "http://svc.test/v1/items", c.Do)
}
