package resilienthttp_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/resilienthttp/resilienthttp"
)

// unreachable stands in for a network on which nothing answers, so that the
// example fails the same way every time.
type unreachable struct{}

func (unreachable) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("dial tcp 203.0.113.7:443: connect: connection refused")
}

// Through StandardClient, a call that fails without an answer returns
// net/http's *url.Error, whose text names the URL as it was given, query and
// fragment included; the client cannot change that text. Log the
// *RequestError inside it instead: its URL has no userinfo, no fragment and
// no credential-like query values.
func ExampleRequestError_redacted() {
	c := resilienthttp.New(
		resilienthttp.WithTransport(unreachable{}),
		resilienthttp.WithPolicy(resilienthttp.Policy{MaxAttempts: 1}))
	hc := c.StandardClient()

	_, err := hc.Get("https://api.example.com/v1/items?api_key=s3cr3t&limit=10#access_token=s3cr3t")

	fmt.Println("net/http's text shows the key:", strings.Contains(err.Error(), "s3cr3t"))
	var reqErr *resilienthttp.RequestError
	if errors.As(err, &reqErr) {
		// With log/slog: logger.Error("call failed", "method", reqErr.Method,
		// "url", reqErr.URL, "err", reqErr)
		fmt.Println(reqErr.Method, reqErr.URL)
		fmt.Println(reqErr)
	}
	// Output:
	// net/http's text shows the key: true
	// GET https://api.example.com/v1/items?api_key=REDACTED&limit=10
	// dial tcp 203.0.113.7:443: connect: connection refused (1 attempt, attempts exhausted)
}
