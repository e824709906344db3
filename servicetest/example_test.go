package servicetest_test

import (
	"fmt"
	"net/http"
	"strings"

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
