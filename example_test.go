package resilienthttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// A GET that the service answers with two server errors and then a result:
// the client repeats it and returns the result.
func ExampleNew() {
	srv := servicetest.New() // a fake service on 127.0.0.1
	defer srv.Close()
	srv.Script("/v1/jobs/j1",
		servicetest.Step{Status: 500},
		servicetest.Step{Status: 502},
		servicetest.Step{Status: 200, Body: `{"state":"done"}`})

	// One client per service. The short BaseDelay keeps the example quick;
	// the default is 100ms.
	c := resilienthttp.New(resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: time.Millisecond}))
	defer c.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs/j1", nil)
	resp, err := c.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	fmt.Println("attempts the service saw:", srv.Attempts("/v1/jobs/j1"))
	// Output:
	// 200 {"state":"done"}
	// attempts the service saw: 3
}

// A final error answer is an *APIError with the service's code and message.
func ExampleClient_Do() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v3/users/u1", servicetest.Step{Status: 404, Code: "IAM.0003", Message: "user not found"})

	c := resilienthttp.New()
	defer c.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v3/users/u1", nil)
	_, err := c.Do(req)
	var apiErr *resilienthttp.APIError
	if errors.As(err, &apiErr) {
		fmt.Println("status:", apiErr.StatusCode)
		fmt.Println("code:", apiErr.Code)
		fmt.Println("message:", apiErr.Message)
		fmt.Println("request id:", apiErr.RequestID)
		fmt.Println("attempts:", apiErr.Attempts)
	}
	// Output:
	// status: 404
	// code: IAM.0003
	// message: user not found
	// request id: req-1
	// attempts: 1
}

// SDK code branches on the sentinel errors an *APIError matches.
func ExampleAPIError() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v2/servers/s1", servicetest.Step{Status: 409, Format: servicetest.FormatNestedError, Code: "ECS.0409", Message: "server is busy"})

	c := resilienthttp.New()
	defer c.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v2/servers/s1", nil)
	_, err := c.Do(req)
	err = fmt.Errorf("delete server s1: %w", err) // as an SDK wraps it
	switch {
	case errors.Is(err, resilienthttp.ErrNotFound):
		fmt.Println("already gone")
	case errors.Is(err, resilienthttp.ErrConflict):
		var apiErr *resilienthttp.APIError
		errors.As(err, &apiErr)
		fmt.Printf("conflict: %s (%s)\n", apiErr.Message, apiErr.Code)
	case err != nil:
		fmt.Println("failed")
	}
	// Output:
	// conflict: server is busy (ECS.0409)
}

// Retryable tells a caller that queues work whether trying again later
// can help.
func ExampleRetryable() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/flaky", servicetest.Step{Status: 502})
	srv.Script("/v1/missing", servicetest.Step{Status: 404})

	c := resilienthttp.New(resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: time.Millisecond}))
	defer c.CloseIdleConnections()

	for _, path := range []string{"/v1/flaky", "/v1/missing"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		_, err := c.Do(req)
		var apiErr *resilienthttp.APIError
		errors.As(err, &apiErr)
		fmt.Printf("%s: %d, attempts %d, retryable %v\n", path, apiErr.StatusCode, apiErr.Attempts, resilienthttp.Retryable(err))
	}
	// Output:
	// /v1/flaky: 502, attempts 4, retryable true
	// /v1/missing: 404, attempts 1, retryable false
}

// Code that works with an *http.Client, such as a generated OpenAPI client,
// gets the client's retries from StandardClient and describes error
// answers with ParseAPIError.
func ExampleParseAPIError() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/buckets/b1", servicetest.Step{Status: 403, Format: servicetest.FormatCodeMessage, Code: "OBS.0403", Message: "access denied"})

	c := resilienthttp.New()
	defer c.CloseIdleConnections()
	hc := c.StandardClient()

	resp, err := hc.Get(srv.URL + "/v1/buckets/b1")
	if err != nil {
		fmt.Println(err)
		return
	}
	if apiErr := resilienthttp.ParseAPIError(resp); apiErr != nil { // reads and closes the body
		fmt.Println(apiErr.StatusCode, apiErr.Code, apiErr.Message)
		fmt.Println("forbidden:", errors.Is(apiErr, resilienthttp.ErrForbidden))
		return
	}
	defer resp.Body.Close()
	fmt.Println("ok")
	// Output:
	// 403 OBS.0403 access denied
	// forbidden: true
}

// A Policy is plain data: an SDK can ship one per service as JSON.
func ExamplePolicy() {
	p := resilienthttp.Policy{
		MaxAttempts:   3,
		BaseDelay:     250 * time.Millisecond,
		MaxRetryAfter: 30 * time.Second,
		Statuses:      map[int]resilienthttp.Rule{409: resilienthttp.RuleRetryIdempotent},
		ServerErrors:  resilienthttp.RuleFail,
	}
	b, _ := json.Marshal(p)
	fmt.Println(string(b))

	var back resilienthttp.Policy
	if err := json.Unmarshal(b, &back); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("409:", back.StatusRule(409), "| 503:", back.StatusRule(503), "| 599:", back.StatusRule(599))
	// Output:
	// {"max_attempts":3,"base_delay":"250ms","max_retry_after":"30s","statuses":{"409":"retry-idempotent"},"server_errors":"fail"}
	// 409: retry-idempotent | 503: retry-with-retry-after | 599: fail
}

// A call that must never be repeated, whatever the client's policy.
func ExampleContextWithPolicy() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/reports", servicetest.Step{Status: 500})

	c := resilienthttp.New(resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: time.Millisecond}))
	defer c.CloseIdleConnections()

	// Start from the client's policy, so its other rules stay.
	p := c.Policy()
	p.MaxAttempts = 1
	ctx := resilienthttp.ContextWithPolicy(context.Background(), p)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/reports", nil)
	_, err := c.Do(req)
	var apiErr *resilienthttp.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, "after", apiErr.Attempts, "attempt; the service saw", srv.Attempts("/v1/reports"))
	}
	// Output:
	// 500 after 1 attempt; the service saw 1
}

// A service that is down: after five failures in a row the host's circuit
// breaker opens, and calls fail at once without reaching it.
func ExampleWithBreaker() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/items", servicetest.Step{Status: 503})

	var opened []string
	c := resilienthttp.New(resilienthttp.WithBreaker(resilienthttp.BreakerSettings{
		OnStateChange: func(host string, from, to resilienthttp.BreakerState) {
			opened = append(opened, from.String()+" -> "+to.String())
		},
	}))
	defer c.CloseIdleConnections()

	for i := 0; i < 8; i++ {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/items", nil)
		_, err := c.Do(req)
		if errors.Is(err, resilienthttp.ErrCircuitOpen) {
			fmt.Printf("call %d: circuit open, nothing sent\n", i+1)
		}
	}
	fmt.Println("attempts the service saw:", srv.Attempts("/v1/items"))
	fmt.Println(opened)
	// Output:
	// call 6: circuit open, nothing sent
	// call 7: circuit open, nothing sent
	// call 8: circuit open, nothing sent
	// attempts the service saw: 5
	// [closed -> open]
}

// Code that expects an *http.Client gets the same retries with net/http's
// contract: a final 404 is a response, and ParseAPIError reads it.
func ExampleClient_StandardClient() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/items/9", servicetest.Step{Status: 502}, servicetest.Step{Status: 404, Code: "SVC.0404", Message: "no such item"})

	c := resilienthttp.New(resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: time.Millisecond}))
	defer c.CloseIdleConnections()
	hc := c.StandardClient()

	resp, err := hc.Get(srv.URL + "/v1/items/9")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("status:", resp.StatusCode)
	apiErr := resilienthttp.ParseAPIError(resp)
	fmt.Println(apiErr.Code, apiErr.Message, "after", apiErr.Attempts, "attempts")
	// Output:
	// status: 404
	// SVC.0404 no such item after 2 attempts
}

// An SDK's per-call policy starts from its client's: the SDK's own rules
// stay, and the copy shares nothing with the client.
func ExampleClient_Policy() {
	c := resilienthttp.New(resilienthttp.WithPolicy(resilienthttp.Policy{
		Statuses: map[int]resilienthttp.Rule{409: resilienthttp.RuleRetryIdempotent},
	}))
	defer c.CloseIdleConnections()

	p := c.Policy()
	p.MaxAttempts = 1
	p.Statuses[423] = resilienthttp.RuleRetry // this copy's, not the client's
	fmt.Println("call:", p.MaxAttempts, "attempt; 409:", p.StatusRule(409))
	fmt.Println("client:", c.Policy().MaxAttempts, "attempts; 423:", c.Policy().StatusRule(423))
	// Output:
	// call: 1 attempt; 409: retry-idempotent
	// client: 4 attempts; 423: fail
}

// An observer sees what a call did: each attempt, the retry between them
// and why the call ended. Here it prints them; otelresilienthttp turns
// them into spans and metrics.
func ExampleWithObserver() {
	srv := servicetest.New()
	defer srv.Close()
	srv.Script("/v1/jobs/j1", servicetest.Step{Status: 502}, servicetest.Step{Status: 200})

	c := resilienthttp.New(
		resilienthttp.WithPolicy(resilienthttp.Policy{BaseDelay: time.Millisecond}),
		resilienthttp.WithObserver(resilienthttp.Observer{
			AttemptEnd: func(_ context.Context, e resilienthttp.AttemptEnd) {
				fmt.Printf("attempt %d: %d\n", e.Attempt, e.Status)
			},
			Retry: func(_ context.Context, e resilienthttp.RetryEvent) {
				fmt.Printf("retrying; the server asked for the wait: %v\n", e.ServerAsked)
			},
			CallEnd: func(_ context.Context, e resilienthttp.CallEnd) {
				fmt.Printf("call ended after %d attempts with %d\n", e.Attempts, e.Status)
			},
		}))
	defer c.CloseIdleConnections()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/jobs/j1", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	// Output:
	// attempt 1: 502
	// retrying; the server asked for the wait: false
	// attempt 2: 200
	// call ended after 2 attempts with 200
}
