package resilienthttp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// Faults after Do returned belong to the caller: the body is theirs to read,
// and nothing is retried behind their back.
func TestFaultsWhileReadingTheBody(t *testing.T) {
	for _, f := range []struct {
		name  string
		fault servicetest.Fault
		want  error
	}{
		{"reset mid-body", servicetest.FaultResetMidBody, syscall.ECONNRESET},
		{"truncated body", servicetest.FaultTruncatedBody, io.ErrUnexpectedEOF},
	} {
		t.Run(f.name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/", servicetest.Step{Body: strings.Repeat("x", 4096), Fault: f.fault})
			c, _ := newClient(t)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if !errors.Is(err, f.want) || srv.Total() != 1 {
				t.Fatalf("read error %v after %d attempts, want %v after 1", err, srv.Total(), f.want)
			}
		})
	}
	t.Run("hang after headers ends with the caller's context", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/", servicetest.Step{Fault: servicetest.FaultHangAfterHeaders})
		c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.Policy{AttemptTimeout: time.Minute}))
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.Is(err, context.Canceled) || srv.Total() != 1 {
			t.Fatalf("read error %v after %d attempts, want context.Canceled after 1", err, srv.Total())
		}
	})
}

// A keep-alive connection the server closed while idle is replaced: a GET
// sent on it before the client noticed is repeated (by net/http or by the
// policy), so the call does not fail. (A POST on it is not: it may have
// reached the server, and that is the policy's rule for writes.)
func TestServerClosedIdleConnection(t *testing.T) {
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
	}))
	defer srv.Close()
	c, _ := newClient(t)
	for i := 0; i < 3; i++ {
		if _, err := do(t, c, http.MethodGet, srv.URL+"/", nil); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		srv.CloseClientConnections() // servicetest cannot close idle connections
	}
	if n != 3 {
		t.Errorf("server handled %d requests, want 3", n)
	}
}

func TestNoDuplicateWrites(t *testing.T) {
	t.Run("POST answered 500 after committing is not repeated", func(t *testing.T) {
		srv := servicetest.NewServer(t, servicetest.WithCommitThenFail(0.3, 500, 42))
		c, _ := newClient(t)
		failed := 0
		for i := 0; i < 300; i++ {
			_, err := do(t, c, http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"order_id":"o-`+strconv.Itoa(i)+`"}`))
			if err != nil {
				failed++
			}
		}
		if d := srv.DuplicateCommits(); d != 0 {
			t.Errorf("%d duplicate commits, want 0", d)
		}
		if srv.Total() != 300 || failed < 60 {
			t.Errorf("%d attempts, %d failed calls; want 300 attempts and the ~90 failures reported, not retried", srv.Total(), failed)
		}
	})
	t.Run("with idempotency keys every write lands exactly once", func(t *testing.T) {
		srv := servicetest.NewServer(t, servicetest.WithCommitThenFail(0.3, 500, 42))
		c, _ := newClient(t, resilienthttp.WithIdempotencyKeys(nil))
		failed := 0
		for i := 0; i < 300; i++ {
			if _, err := do(t, c, http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"n":`+strconv.Itoa(i)+`}`)); err != nil {
				failed++ // four failures in a row: 0.3⁴ of calls
			}
		}
		if failed > 6 {
			t.Errorf("%d of 300 keyed writes failed, want about 0.8%%", failed)
		}
		keys := map[string]bool{}
		for _, r := range srv.Requests() {
			keys[r.CommitKey] = true
		}
		if len(keys) != 300 || srv.DuplicateCommits() != 0 {
			t.Errorf("%d keys committed with %d duplicates, want 300 and 0", len(keys), srv.DuplicateCommits())
		}
		for k := range keys {
			if srv.Commits(k) != 1 {
				t.Fatalf("key %s committed %d times", k, srv.Commits(k))
			}
		}
	})
}

func TestRequestBodyEdgeCases(t *testing.T) {
	t.Run("nil body with GetBody sends no body", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		c, _ := newClient(t)
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/", nil)
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("ghost")), nil }
		if _, err := c.Do(req); err != nil {
			t.Fatal(err)
		}
		if r := srv.Requests()[0]; r.BodyLen != 0 {
			t.Errorf("sent %d bytes, want none", r.BodyLen)
		}
	})
	t.Run("GetBody failing on the retry ends the call with its error", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/", servicetest.Statuses(503, 200)...)
		c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.RFC9110Policy()))
		calls := 0
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/", bytes.NewReader([]byte("payload")))
		req.GetBody = func() (io.ReadCloser, error) {
			calls++
			if calls > 2 { // the client's setup and the first attempt
				return nil, errors.New("source gone")
			}
			return io.NopCloser(strings.NewReader("payload")), nil
		}
		_, err := c.Do(req)
		var reqErr *resilienthttp.RequestError
		if !errors.As(err, &reqErr) || !strings.Contains(err.Error(), "source gone") || srv.Total() != 1 {
			t.Fatalf("err = %v after %d attempts, want a *RequestError naming the cause after 1", err, srv.Total())
		}
	})
}

// TestStress runs many goroutines with mixed answers and cancellations
// under the race detector: every call ends with a response or a typed
// error, and nothing is left running (goleak in TestMain).
func TestStress(t *testing.T) {
	srv := servicetest.NewServer(t, servicetest.WithFailureRatio(0.4, []int{500, 503, 429, 404, 408}, 9))
	srv.Script("/slow", servicetest.Step{Delay: 50 * time.Millisecond})
	c, _ := newClient(t)
	const goroutines, calls = 256, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	untyped := []error{}
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < calls; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				path := "/p" + strconv.Itoa(g%7)
				if i%4 == 3 {
					path = "/slow"
					go cancel() // races the call
				}
				method := http.MethodGet
				var body io.Reader
				if g%3 == 0 {
					method, body = http.MethodPost, strings.NewReader(fmt.Sprint(g, i))
				}
				req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, body)
				resp, err := c.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				cancel()
				var apiErr *resilienthttp.APIError
				var reqErr *resilienthttp.RequestError
				if err != nil && !errors.As(err, &apiErr) && !errors.As(err, &reqErr) {
					mu.Lock()
					untyped = append(untyped, err)
					mu.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
	for _, err := range untyped {
		t.Errorf("untyped error: %v", err)
	}
	if n := srv.Total(); n > goroutines*calls*resilienthttp.DefaultMaxAttempts {
		t.Errorf("server saw %d attempts for %d calls", n, goroutines*calls)
	}
}
