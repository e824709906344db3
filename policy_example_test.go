package resilienthttp_test

import (
	"fmt"
	"net/http"
	"os"
	"text/tabwriter"

	"github.com/resilienthttp/resilienthttp"
)

// The default table: whether the client repeats a request answered with each
// status, or ended by a transport error. "Idempotent" means an idempotent
// method (GET HEAD OPTIONS TRACE PUT DELETE), an Idempotency-Key header, or a
// call marked with ContextIdempotent. Statuses below 400 are answers and are
// returned; a 401 is repeated once if WithCredentialRefresh is set.
// docs/status-codes.md quotes the service documents each row comes from.
func ExampleDefaultPolicy() {
	repeated := map[resilienthttp.Rule]string{
		resilienthttp.RuleFail:                "never",
		resilienthttp.RuleRetry:               "any method",
		resilienthttp.RuleRetryIdempotent:     "idempotent requests only",
		resilienthttp.RuleRetryWithRetryAfter: "any method, only with Retry-After",
	}
	p := resilienthttp.DefaultPolicy()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "status or error\trule\trepeated")
	for _, code := range []int{400, 401, 403, 404, 405, 408, 409, 413, 422, 429, 500, 501, 502, 503, 504, 505} {
		r := p.StatusRule(code)
		fmt.Fprintf(w, "%d %s\t%s\t%s\n", code, http.StatusText(code), r, repeated[r])
	}
	fmt.Fprintf(w, "connect error (nothing sent)\t%s\t%s\n", p.ConnectErrors, repeated[p.ConnectErrors])
	fmt.Fprintf(w, "send error (may have arrived)\t%s\t%s\n", p.SendErrors, repeated[p.SendErrors])
	w.Flush()
	// Output:
	// status or error                 rule                    repeated
	// 400 Bad Request                 fail                    never
	// 401 Unauthorized                fail                    never
	// 403 Forbidden                   fail                    never
	// 404 Not Found                   fail                    never
	// 405 Method Not Allowed          fail                    never
	// 408 Request Timeout             retry                   any method
	// 409 Conflict                    fail                    never
	// 413 Request Entity Too Large    retry-with-retry-after  any method, only with Retry-After
	// 422 Unprocessable Entity        fail                    never
	// 429 Too Many Requests           retry                   any method
	// 500 Internal Server Error       retry-idempotent        idempotent requests only
	// 501 Not Implemented             fail                    never
	// 502 Bad Gateway                 retry-idempotent        idempotent requests only
	// 503 Service Unavailable         retry-with-retry-after  any method, only with Retry-After
	// 504 Gateway Timeout             retry-idempotent        idempotent requests only
	// 505 HTTP Version Not Supported  fail                    never
	// connect error (nothing sent)    retry                   any method
	// send error (may have arrived)   retry-idempotent        idempotent requests only
}
