package resilienthttp_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// keyed returns a POST carrying an idempotency key, so 5xx is retried and the
// test can watch the body be replayed.
func keyed(t *testing.T, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Idempotency-Key", "k")
	return req
}

func bodiesSeen(srv *servicetest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		out = append(out, string(r.Body))
	}
	return out
}

// seekOnly is an io.ReadSeeker that is neither a bytes nor a strings reader,
// so net/http gives it no GetBody: the client must rewind it by seeking.
type seekOnly struct {
	r      *bytes.Reader
	seeks  int
	closed bool
}

func (s *seekOnly) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *seekOnly) Seek(off int64, whence int) (int64, error) {
	s.seeks++
	return s.r.Seek(off, whence)
}
func (s *seekOnly) Close() error { s.closed = true; return nil }

// readOnly hides everything but Read.
type readOnly struct {
	r      io.Reader
	closed bool
}

func (r *readOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
func (r *readOnly) Close() error               { r.closed = true; return nil }

func TestBodySentWholeOnEveryAttempt(t *testing.T) {
	payload := strings.Repeat("0123456789", 1000)
	cases := map[string]func() io.Reader{
		"strings.Reader": func() io.Reader { return strings.NewReader(payload) },
		"bytes.Buffer":   func() io.Reader { return bytes.NewBufferString(payload) },
		"seeker":         func() io.Reader { return &seekOnly{r: bytes.NewReader([]byte(payload))} },
		"plain reader":   func() io.Reader { return &readOnly{r: strings.NewReader(payload)} },
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			srv := servicetest.NewServer(t)
			srv.Script("/up", servicetest.Statuses(500, 503, 200)...)
			c, _ := newClient(t, resilienthttp.WithPolicy(resilienthttp.RFC9110Policy()))
			b := body()
			resp, err := c.Do(keyed(t, srv.URL+"/up", b))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			seen := bodiesSeen(srv)
			if len(seen) != 3 {
				t.Fatalf("server saw %d attempts, want 3", len(seen))
			}
			for i, s := range seen {
				if s != payload {
					t.Errorf("attempt %d sent %d bytes, want the whole %d", i+1, len(s), len(payload))
				}
			}
			switch b := b.(type) {
			case *seekOnly:
				if b.seeks < 3 || !b.closed {
					t.Errorf("seeker: %d seeks, closed %v; want rewound by seeking and closed at the end", b.seeks, b.closed)
				}
			case *readOnly:
				if !b.closed {
					t.Error("request body not closed")
				}
			}
		})
	}
}

func TestFileBodyRewoundFromItsStartOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "upload")
	content := bytes.Repeat([]byte("abcdefgh"), 512<<10) // 4 MiB: over the buffering cap
	if err := os.WriteFile(path, append([]byte("HEADER--"), content...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(8, io.SeekStart); err != nil { // the caller skipped a header
		t.Fatal(err)
	}
	srv := servicetest.NewServer(t)
	srv.Script("/files", servicetest.Statuses(408, 200)...)
	c, _ := newClient(t)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/files", f)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("server saw %d attempts, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.BodyLen != int64(len(content)) || !bytes.HasPrefix(content, r.Body) {
			t.Errorf("attempt %d: %d bytes, want the %d after the caller's offset", i+1, r.BodyLen, len(content))
		}
	}
	if _, err := f.Seek(0, io.SeekCurrent); err == nil {
		t.Error("the file was not closed after the call")
	}
}

func TestUnreplayableBodySentOnceWithRetriesOff(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/big", servicetest.Statuses(500, 200)...)
	c, _ := newClient(t, resilienthttp.WithMaxBufferedBody(1024))
	payload := strings.Repeat("x", 4096)
	_, err := c.Do(keyed(t, srv.URL+"/big", &readOnly{r: strings.NewReader(payload)}))
	var apiErr *resilienthttp.APIError
	if !errors.As(err, &apiErr) || apiErr.Reason != resilienthttp.StopBodyNotReplayable {
		t.Fatalf("err = %v, want *APIError with Reason %q", err, resilienthttp.StopBodyNotReplayable)
	}
	if !errors.Is(err, resilienthttp.ErrBodyNotReplayable) || !resilienthttp.Retryable(err) {
		t.Errorf("errors.Is(err, ErrBodyNotReplayable) = %v, Retryable = %v; want both true",
			errors.Is(err, resilienthttp.ErrBodyNotReplayable), resilienthttp.Retryable(err))
	}
	if !strings.Contains(err.Error(), string(resilienthttp.StopBodyNotReplayable)) {
		t.Errorf("Error() = %q does not say the body stopped the retries", err)
	}
	if seen := bodiesSeen(srv); len(seen) != 1 || seen[0] != payload {
		t.Fatalf("server saw %d attempts, want 1 with the whole body", len(seen))
	}
	// Within the cap the same reader is buffered and replayed.
	srv.Script("/small", servicetest.Statuses(500, 200)...)
	resp, err := c.Do(keyed(t, srv.URL+"/small", &readOnly{r: strings.NewReader(payload[:1000])}))
	if err != nil || srv.Attempts("/small") != 2 {
		t.Fatalf("%v after %d attempts; want success after 2", err, srv.Attempts("/small"))
	}
	resp.Body.Close()
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

func TestBodyReadFailureSendsNothing(t *testing.T) {
	srv := servicetest.NewServer(t)
	c, _ := newClient(t)
	_, err := c.Do(keyed(t, srv.URL+"/x", failingReader{}))
	var reqErr *resilienthttp.RequestError
	if !errors.As(err, &reqErr) || !strings.Contains(err.Error(), "disk gone") || srv.Total() != 0 {
		t.Fatalf("err = %v, server saw %d; want a *RequestError naming the cause and nothing sent", err, srv.Total())
	}
}

// A body sent once that meets a transport error the policy would retry ends
// in a *RequestError that says so; other failures do not claim it.
func TestUnreplayableBodyAfterAReset(t *testing.T) {
	srv := servicetest.NewServer(t)
	srv.Script("/reset", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse}, servicetest.Step{})
	c, _ := newClient(t, resilienthttp.WithMaxBufferedBody(1024))
	payload := strings.Repeat("x", 4096)
	_, err := c.Do(keyed(t, srv.URL+"/reset", &readOnly{r: strings.NewReader(payload)}))
	var reqErr *resilienthttp.RequestError
	if !errors.As(err, &reqErr) || reqErr.Reason != resilienthttp.StopBodyNotReplayable || reqErr.Attempts != 1 {
		t.Fatalf("err = %#v, want a *RequestError after 1 attempt with Reason %q", err, resilienthttp.StopBodyNotReplayable)
	}
	if !errors.Is(err, resilienthttp.ErrBodyNotReplayable) || !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("errors.Is: ErrBodyNotReplayable %v, ECONNRESET %v; want both",
			errors.Is(err, resilienthttp.ErrBodyNotReplayable), errors.Is(err, syscall.ECONNRESET))
	}
	srv.Script("/gone", servicetest.Statuses(404)...)
	_, err = c.Do(keyed(t, srv.URL+"/gone", &readOnly{r: strings.NewReader(payload)}))
	if errors.Is(err, resilienthttp.ErrBodyNotReplayable) {
		t.Errorf("a 404 claims ErrBodyNotReplayable: %v", err)
	}
}
