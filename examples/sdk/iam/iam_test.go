package iam_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/examples/sdk/iam"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// fixture is a fake IAM service and an SDK client on one fake clock: the
// service's rate limiter and dates and the client's waits all read it, so
// a 30 s Retry-After costs no real time.
type fixture struct {
	srv   *servicetest.Server
	clk   *servicetest.Clock
	start time.Time
	c     *iam.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	// The fake time starts at the real one, so that a real context
	// deadline (context.WithTimeout) means the same on both.
	start := time.Now()
	clk := servicetest.NewClock(start)
	srv := servicetest.NewServer(t, servicetest.WithClock(clk.Now))
	c, err := iam.New(srv.URL, iam.WithToken("secret-token"), iam.WithHTTPOptions(
		resilienthttp.WithClock(clk),
		resilienthttp.WithRandom(func() float64 { return 0 }), // no jitter: exact waits
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &fixture{srv: srv, clk: clk, start: start, c: c}
}

// waited is the fake time the client spent waiting.
func (f *fixture) waited() time.Duration { return f.clk.Now().Sub(f.start) }

func userNotFound() servicetest.Step {
	return servicetest.Step{Status: 404, Code: "IAM.0003", Message: "The user does not exist."}
}

func TestEmbeddedPolicyDecodes(t *testing.T) {
	p, err := iam.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxAttempts != 4 || p.MaxRetryAfter != 30*time.Second || p.StatusRule(409) != resilienthttp.RuleFail ||
		fmt.Sprint(p.RetryHintHeaders) != "[X-Should-Retry X-Iam-Should-Retry]" {
		t.Errorf("embedded policy = %+v", p)
	}
}

func TestGetUser(t *testing.T) {
	f := newFixture(t)
	f.srv.Script("GET /v3/users/u1", servicetest.Step{Body: `{"id":"u1","name":"ann","enabled":true}`})
	u, err := f.c.GetUser(context.Background(), "u1")
	if err != nil || *u != (iam.User{ID: "u1", Name: "ann", Enabled: true}) {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	if got := f.srv.Requests()[0].Header.Get("X-Auth-Token"); got != "secret-token" {
		t.Errorf("X-Auth-Token = %q", got)
	}
}

func TestNotFound(t *testing.T) {
	f := newFixture(t)
	f.srv.Script("GET /v3/users/u9", userNotFound())
	_, err := f.c.GetUser(context.Background(), "u9")
	var e *iam.Error
	if !errors.Is(err, iam.ErrUserNotFound) || !errors.As(err, &e) || e.Code != "IAM.0003" || e.RequestID != "req-1" {
		t.Fatalf("err = %v, want iam.ErrUserNotFound with code IAM.0003 and request id req-1", err)
	}
	if f.srv.Attempts("GET /v3/users/u9") != 1 {
		t.Errorf("service saw %d attempts, want 1: a 404 is not repeated", f.srv.Attempts("GET /v3/users/u9"))
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Errorf("error text holds the token: %v", err)
	}
	// The library's error is underneath.
	var apiErr *resilienthttp.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !errors.Is(err, resilienthttp.ErrNotFound) {
		t.Errorf("errors.As(*resilienthttp.APIError) = %v", apiErr)
	}

	// A gateway's 404 page has no code: the status says the same.
	f.srv.Script("DELETE /v3/users/u9", servicetest.Step{Status: 404, Format: servicetest.FormatHTML})
	if err := f.c.DeleteUser(context.Background(), "u9"); !errors.Is(err, iam.ErrUserNotFound) {
		t.Errorf("DeleteUser on a code-less 404: %v, want iam.ErrUserNotFound", err)
	}
	// A code the SDK does not know is not mistaken for one it does.
	f.srv.Script("GET /v3/users/u8", servicetest.Step{Status: 404, Code: "IAM.0042"})
	if _, err := f.c.GetUser(context.Background(), "u8"); errors.Is(err, iam.ErrUserNotFound) || !errors.Is(err, resilienthttp.ErrNotFound) {
		t.Errorf("unknown code: %v, want no iam error, the library's ErrNotFound", err)
	}
}

func TestThrottledThenOK(t *testing.T) {
	f := newFixture(t)
	f.srv.Script("GET /v3/users",
		servicetest.Step{Status: 429, RetryAfter: "2", Code: "IAM.0010"},
		// Then a list in two pages, answered from the request's marker.
		servicetest.Func(func(r *http.Request) servicetest.Step {
			if r.URL.Query().Get("marker") == "" {
				return servicetest.Step{Body: `{"users":[{"id":"u1","name":"ann"}],"next_marker":"u1"}`}
			}
			return servicetest.Step{Body: `{"users":[{"id":"u2","name":"bob"}]}`}
		}),
	)
	users, err := f.c.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].ID != "u1" || users[1].ID != "u2" {
		t.Errorf("users = %+v, want u1, u2", users)
	}
	if n := f.srv.Attempts("GET /v3/users"); n != 3 {
		t.Errorf("service saw %d requests, want 3: the 429, then two pages", n)
	}
	if w := f.waited(); w < 2*time.Second {
		t.Errorf("waited %v of fake time, want the 2s the service asked", w)
	}
}

func TestMaintenance503(t *testing.T) {
	f := newFixture(t)
	maintenance := servicetest.Step{Status: 503, Code: "IAM.0900", Message: "The service is under maintenance."}

	// Without Retry-After, the documents say not to repeat a 503.
	f.srv.Script("GET /v3/users/u1", maintenance)
	_, err := f.c.GetUser(context.Background(), "u1")
	if !errors.Is(err, iam.ErrUnavailable) || f.srv.Attempts("GET /v3/users/u1") != 1 {
		t.Fatalf("err = %v after %d attempts, want iam.ErrUnavailable after 1", err, f.srv.Attempts("GET /v3/users/u1"))
	}

	// With one, the service declares it temporary: repeated after it.
	ended := maintenance
	ended.RetryAfter = "5"
	f.srv.Script("GET /v3/users/u2", ended, servicetest.Step{Body: `{"id":"u2"}`})
	if _, err := f.c.GetUser(context.Background(), "u2"); err != nil {
		t.Fatalf("503 with Retry-After 5, then 200: %v", err)
	}
	if w := f.waited(); w < 5*time.Second {
		t.Errorf("waited %v of fake time, want the 5s the service asked", w)
	}

	// A window longer than the SDK's max_retry_after (30s) is not slept.
	long := maintenance
	long.RetryAfter = "3600"
	f.srv.Script("GET /v3/users/u3", long)
	before := f.clk.Now()
	_, err = f.c.GetUser(context.Background(), "u3")
	var e *iam.Error
	if !errors.As(err, &e) || !errors.Is(err, iam.ErrUnavailable) || e.RetryAfter != time.Hour || f.clk.Now() != before {
		t.Errorf("err = %v, want iam.ErrUnavailable with RetryAfter 1h at once", err)
	}
}

func TestPOST500IsNotRepeated(t *testing.T) {
	f := newFixture(t)
	// The change is applied, then the response is lost.
	f.srv.Script("POST /v3/users/u1/password", servicetest.Step{Status: 500, Commit: true}, servicetest.Step{Status: 204})
	err := f.c.ChangePassword(context.Background(), "u1", "old", "new")
	if !errors.Is(err, resilienthttp.ErrServerError) {
		t.Fatalf("err = %v, want the 500", err)
	}
	if n, d := f.srv.Attempts("POST /v3/users/u1/password"), f.srv.DuplicateCommits(); n != 1 || d != 0 {
		t.Errorf("service saw %d attempts and %d duplicate commits, want 1 and 0", n, d)
	}
}

func TestCreateUserIsIdempotent(t *testing.T) {
	f := newFixture(t)
	created := servicetest.Func(func(r *http.Request) servicetest.Step {
		var in iam.CreateUserInput
		json.NewDecoder(r.Body).Decode(&in)
		return servicetest.Step{Status: 201, Body: fmt.Sprintf(`{"id":"u7","name":%q}`, in.Name)}
	})
	// Applied, response lost; the retry carries the same key and is not
	// applied again.
	f.srv.Script("POST /v3/users", servicetest.Step{Status: 500, Commit: true}, created)
	u, err := f.c.CreateUser(context.Background(), iam.CreateUserInput{Name: "ann"})
	if err != nil || u.Name != "ann" {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	reqs := f.srv.Requests()
	key := reqs[0].Header.Get("Idempotency-Key")
	if len(reqs) != 2 || key == "" || reqs[1].Header.Get("Idempotency-Key") != key {
		t.Fatalf("want 2 attempts with one key, got %d", len(reqs))
	}
	if f.srv.Commits(key) != 1 || f.srv.DuplicateCommits() != 0 {
		t.Errorf("commits under the key %d, duplicates %d; want 1 and 0", f.srv.Commits(key), f.srv.DuplicateCommits())
	}

	// A create that finally fails names its key; repeating under it later
	// creates the user once.
	f.srv.Reset()
	f.srv.Script("POST /v3/users", servicetest.Step{Status: 500, Commit: true}, servicetest.Step{Status: 500})
	_, err = f.c.CreateUser(context.Background(), iam.CreateUserInput{Name: "bob"})
	var e *iam.Error
	if !errors.As(err, &e) || e.IdempotencyKey == "" || f.srv.Attempts("POST /v3/users") != 4 {
		t.Fatalf("err = %v after %d attempts, want a 500 after 4 naming its key", err, f.srv.Attempts("POST /v3/users"))
	}
	f.srv.Script("POST /v3/users", created)
	if _, err := f.c.CreateUser(context.Background(), iam.CreateUserInput{Name: "bob"}, iam.WithIdempotencyKey(e.IdempotencyKey)); err != nil {
		t.Fatal(err)
	}
	if c := f.srv.Commits(e.IdempotencyKey); c != 1 {
		t.Errorf("bob committed %d times under the key, want 1", c)
	}
}

func TestCircuitOpen(t *testing.T) {
	f := newFixture(t)
	f.srv.Script("GET /v3/users/u1", servicetest.Step{Status: 500})
	ctx := context.Background()
	// Four attempts, then the fifth failure in a row opens the breaker.
	f.c.GetUser(ctx, "u1")
	f.c.GetUser(ctx, "u1")
	seen := f.srv.Attempts("GET /v3/users/u1")
	if seen != 5 {
		t.Fatalf("service saw %d attempts, want 5 before the breaker opened", seen)
	}
	_, err := f.c.GetUser(ctx, "u1")
	if !errors.Is(err, iam.ErrUnavailable) || !errors.Is(err, resilienthttp.ErrCircuitOpen) {
		t.Fatalf("err = %v, want iam.ErrUnavailable (circuit open)", err)
	}
	if n := f.srv.Attempts("GET /v3/users/u1"); n != seen {
		t.Errorf("service saw %d more attempts while the circuit was open, want none", n-seen)
	}
	// Once the open period has passed on the fake clock, a probe goes out.
	f.srv.Script("GET /v3/users/u1", servicetest.Step{Body: `{"id":"u1"}`})
	f.clk.Advance(time.Minute)
	if _, err := f.c.GetUser(ctx, "u1"); err != nil {
		t.Errorf("after the open period: %v", err)
	}
}

func TestDeadlineShorterThanRetryAfter(t *testing.T) {
	f := newFixture(t)
	f.srv.Script("GET /v3/users", servicetest.Step{Status: 429, RetryAfter: "30", Code: "IAM.0010"}, servicetest.Step{Body: `{"users":[]}`})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := f.c.ListUsers(ctx)
	var e *iam.Error
	if !errors.As(err, &e) || !errors.Is(err, iam.ErrThrottled) || e.RetryAfter != 30*time.Second {
		t.Fatalf("err = %v, want iam.ErrThrottled with RetryAfter 30s", err)
	}
	if ctx.Err() != nil {
		t.Error("the call returned only at its deadline, want at once")
	}
	if n, w := f.srv.Attempts("GET /v3/users"), f.waited(); n != 1 || w != 0 {
		t.Errorf("service saw %d attempts after %v of waiting, want 1 and none", n, w)
	}
}

func TestPerCallMaxAttempts(t *testing.T) {
	f := newFixture(t)
	f.srv.Script("GET /v3/users/u1", servicetest.Statuses(502, 502, 200)...)
	_, err := f.c.GetUser(context.Background(), "u1", iam.WithMaxAttempts(2))
	if !errors.Is(err, resilienthttp.ErrServerError) || f.srv.Attempts("GET /v3/users/u1") != 2 {
		t.Fatalf("err = %v after %d attempts, want the 502 after 2", err, f.srv.Attempts("GET /v3/users/u1"))
	}
	// The rest of the SDK's policy stays for that call: its own hint header.
	f.srv.Script("GET /v3/users/u2", servicetest.Step{Status: 409, Header: http.Header{"X-Iam-Should-Retry": {"true"}}}, servicetest.Step{Body: `{"id":"u2"}`})
	if _, err := f.c.GetUser(context.Background(), "u2", iam.WithMaxAttempts(2)); err != nil {
		t.Errorf("409 with X-Iam-Should-Retry: true under WithMaxAttempts(2): %v, want the retry to succeed", err)
	}
}
