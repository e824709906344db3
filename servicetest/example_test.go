package servicetest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/resilienthttp/resilienthttp/servicetest"
)

func ExampleServer_Script() {
	s := servicetest.New() // in a test, servicetest.NewServer(t) closes it for you
	defer s.Close()
	s.Script("/v1/orders", servicetest.Statuses(503, 503, 200)...)

	for range 3 {
		resp, err := s.Client().Get(s.URL + "/v1/orders")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	fmt.Println("attempts:", s.Attempts("/v1/orders"))
	// Output:
	// 503 req-1
	// 503 req-2
	// 200 req-3
	// attempts: 3
}

func ExampleServer_DuplicateCommits() {
	s := servicetest.New()
	defer s.Close()
	// The first write is applied but its response is lost.
	s.Script("/v1/orders", servicetest.Step{Status: 503, Commit: true}, servicetest.Step{Status: 201})

	// A naive client retries the same order without an idempotency key...
	for range 2 {
		resp, err := s.Client().Post(s.URL+"/v1/orders", "application/json", strings.NewReader(`{"order_id":"A-1"}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
	}
	fmt.Println("A-1 committed:", s.Commits("A-1"), "duplicates:", s.DuplicateCommits())

	// ...while a client sending Idempotency-Key gets the first result replayed.
	s.Reset()
	s.Script("/v1/orders", servicetest.Step{Status: 503, Commit: true}, servicetest.Step{Status: 201})
	for range 2 {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/v1/orders", strings.NewReader(`{"order_id":"A-1"}`))
		req.Header.Set("Idempotency-Key", "key-1")
		resp, err := s.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
	}
	fmt.Println("key-1 committed:", s.Commits("key-1"), "duplicates:", s.DuplicateCommits())
	// Output:
	// A-1 committed: 2 duplicates: 1
	// key-1 committed: 1 duplicates: 0
}

// Scripts per method, a step computed from the request, and attempts
// counted by the same patterns.
func ExampleFunc() {
	s := servicetest.New()
	defer s.Close()
	s.Script("GET /v3/users/u1", servicetest.Step{Body: `{"id":"u1","name":"ann"}`})
	s.Script("POST /v3/users", servicetest.Func(func(r *http.Request) servicetest.Step {
		var in struct{ Name string }
		json.NewDecoder(r.Body).Decode(&in)
		return servicetest.Step{Status: 201, Body: `{"id":"u2","name":"` + in.Name + `"}`}
	}))

	resp, _ := s.Client().Post(s.URL+"/v3/users", "application/json", strings.NewReader(`{"name":"bob"}`))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), string(body))
	fmt.Println("POSTs:", s.Attempts("POST /v3/users"), "GETs:", s.Attempts("GET /v3/users"))
	// Output:
	// 201 application/json {"id":"u2","name":"bob"}
	// POSTs: 1 GETs: 0
}

// One fake clock for the service and the client under test: time moves
// only when the client sleeps or the test advances it.
func ExampleNewClock() {
	clk := servicetest.NewClock(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	s := servicetest.New(servicetest.WithClock(clk.Now), servicetest.WithRateLimit(1, 1))
	defer s.Close()

	status := func() int {
		resp, err := s.Client().Get(s.URL + "/v3/users")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	fmt.Println(status(), status())
	// resilienthttp.WithClock(clk) makes a client sleep here, on clk.
	clk.Sleep(context.Background(), time.Second)
	fmt.Println(status(), "at", clk.Now().Format(time.TimeOnly))
	// Output:
	// 200 429
	// 200 at 12:00:01
}
