// Command tour walks through resilienthttp's decisions: it starts a fake
// service on 127.0.0.1 (servicetest), scripts what it answers, and prints for
// each call what the server said, what the client did and how long it
// waited. No network beyond loopback is used.
//
//	go run ./examples/tour
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

type stop struct {
	method, path string
	header       http.Header
	script       []servicetest.Step
	note         string
	calls        int  // how many times the call is made; 0 means once
	down         bool // sent to a second service, so its breaker is its own
}

func main() {
	srv := servicetest.New()
	defer srv.Close()
	down := servicetest.New() // another host: the guards keep state per host
	defer down.Close()

	var waited time.Duration
	c := resilienthttp.New(
		// Shorter backoff than the default so the tour takes seconds.
		resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond}),
		resilienthttp.WithRetryHook(func(ev resilienthttp.RetryEvent) { waited += ev.Wait }),
	)
	defer c.CloseIdleConnections()

	key := http.Header{"Idempotency-Key": {"order-42"}}
	stops := []stop{
		{"GET", "/v3/users", nil, servicetest.Statuses(200), "an answer: returned", 0, false},
		{"GET", "/v3/users/u9", nil, []servicetest.Step{{Status: 404, Code: "IAM.0003", Message: "user not found"}},
			"\"should not repeat without modifications\": fails at once", 0, false},
		{"GET", "/v1/jobs", nil, servicetest.Statuses(500, 502, 200), "server errors on a GET: repeated with backoff", 0, false},
		{"POST", "/v1/orders", nil, servicetest.Statuses(500, 201), "500 on a POST: NOT repeated, it may have been written", 0, false},
		{"POST", "/v1/payments", key, servicetest.Statuses(500, 201), "the same with an Idempotency-Key: repeated", 0, false},
		{"GET", "/v1/quota", nil, servicetest.Statuses(408, 200), "408 \"may repeat without modifications\"", 0, false},
		{"POST", "/v1/messages", nil, []servicetest.Step{{Status: 429, RetryAfter: "1"}, {Status: 201}},
			"429: repeated (any method) after Retry-After", 0, false},
		{"GET", "/v1/maintenance", nil, servicetest.Statuses(503, 200), "503 without Retry-After: fails at once", 0, false},
		{"GET", "/v1/scaling", nil, []servicetest.Step{{Status: 503, RetryAfter: "1"}, {Status: 200}},
			"503 with Retry-After: the server says temporary", 0, false},
		{"GET", "/v1/outage", nil, servicetest.Statuses(503),
			"6 calls to a host that is down: the breaker opens after 5, the 6th sends nothing", 6, true},
		{"GET", "/v1/report", nil, []servicetest.Step{{Status: 429, RetryAfter: "120"}},
			"Retry-After beyond MaxRetryAfter: returns now, says when", 0, false},
	}

	fmt.Println("resilienthttp tour: a fake service on 127.0.0.1 answers as scripted; the default policy decides.")
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "CALL\tSERVER ANSWERS\tRESULT\tATTEMPTS SEEN\tWAITED\tWHY")
	for _, s := range stops {
		host := srv
		if s.down {
			host = down
		}
		host.Script(s.path, s.script...)
		waited = 0
		result := call(c, host.URL, s)
		for i := 1; i < s.calls; i++ {
			result = call(c, host.URL, s)
		}
		fmt.Fprintf(w, "%s %s\t%s\t%s\t%d\t%s\t%s\n", s.method, s.path, describe(s.script), result, host.Attempts(s.path),
			waited.Round(10*time.Millisecond), s.note)
	}
	w.Flush()
	fmt.Println()
	fmt.Println("The table behind these decisions is in policy.go; see README.md for configuration.")
}

func call(c *resilienthttp.Client, base string, s stop) string {
	var body io.Reader
	if s.method == http.MethodPost {
		body = strings.NewReader(`{"name":"tour"}`)
	}
	req, err := http.NewRequestWithContext(context.Background(), s.method, base+s.path, body)
	if err != nil {
		return err.Error()
	}
	for k, v := range s.header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	var apiErr *resilienthttp.APIError
	switch {
	case err == nil:
		resp.Body.Close()
		return resp.Status
	case errors.As(err, &apiErr):
		r := fmt.Sprintf("*APIError %d", apiErr.StatusCode)
		if apiErr.Code != "" {
			r += " " + apiErr.Code
		}
		if apiErr.RetryAfter > 0 && apiErr.Reason == resilienthttp.StopRetryAfterTooLong {
			r += fmt.Sprintf(" (RetryAfter %s)", apiErr.RetryAfter)
		}
		return r
	case errors.Is(err, resilienthttp.ErrCircuitOpen):
		return "ErrCircuitOpen, nothing sent"
	default:
		return err.Error()
	}
}

func describe(steps []servicetest.Step) string {
	var parts []string
	for _, st := range steps {
		p := fmt.Sprint(st.Status)
		if st.RetryAfter != "" {
			p += " (Retry-After: " + st.RetryAfter + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
