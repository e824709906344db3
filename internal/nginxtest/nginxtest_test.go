package nginxtest_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/resilienthttp/resilienthttp/internal/nginxtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type answer struct {
	status int
	header http.Header
	body   string
}

// client returns an HTTP client of the test's own, its idle connections
// closed at the end of the test.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func get(t *testing.T, c *http.Client, url string) answer {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// upstream is a Go server that answers 200 "upstream <path>?<query>" and
// counts the requests it gets.
func upstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("X-Upstream", "yes")
		io.WriteString(w, "upstream "+r.URL.RequestURI())
	}))
	t.Cleanup(up.Close)
	return up, &n
}

func TestRequireFindsNginx(t *testing.T) {
	bin := nginxtest.Require(t)
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		t.Fatalf("Require returned %q: %v", bin, err)
	}
}

func TestServesItselfWithoutUpstream(t *testing.T) {
	s := nginxtest.Start(t, nginxtest.Config{})
	u, err := url.Parse(s.URL)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Path != "" {
		t.Fatalf("URL %q (%v), want http://127.0.0.1:port", s.URL, err)
	}
	c := client(t)
	for _, path := range []string{"/", "/v1/anything?x=1"} {
		a := get(t, c, s.URL+path)
		if a.status != 200 || a.body != "ok\n" || a.header.Get("Server") == "" || a.header.Values("Retry-After") != nil {
			t.Errorf("GET %s: %d %q %v, want 200 \"ok\\n\" from nginx without Retry-After", path, a.status, a.body, a.header)
		}
	}
}

func TestProxiesToUpstream(t *testing.T) {
	up, n := upstream(t)
	s := nginxtest.Start(t, nginxtest.Config{Upstream: up.URL})
	a := get(t, client(t), s.URL+"/v1/orders?id=7")
	if a.status != 200 || a.body != "upstream /v1/orders?id=7" || a.header.Get("X-Upstream") != "yes" {
		t.Fatalf("got %d %q %v, want the upstream's 200 for /v1/orders?id=7", a.status, a.body, a.header)
	}
	if !strings.HasPrefix(a.header.Get("Server"), "nginx") {
		t.Errorf("Server %q, want nginx's", a.header.Get("Server"))
	}
	if n.Load() != 1 {
		t.Errorf("upstream saw %d requests, want 1", n.Load())
	}
}

// statuses sends n GETs one after the other and sorts the answers by
// status.
func statuses(t *testing.T, url string, n int) map[int][]answer {
	c := client(t)
	got := map[int][]answer{}
	for range n {
		a := get(t, c, url)
		got[a.status] = append(got[a.status], a)
	}
	return got
}

// keys lists a map's statuses, for failure messages.
func keys(m map[int][]answer) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestLimitReq429WithRetryAfter(t *testing.T) {
	up, n := upstream(t)
	s := nginxtest.Start(t, nginxtest.Config{Upstream: up.URL, Rate: 5, Status: 429, RetryAfter: "1"})
	got := statuses(t, s.URL+"/v1/x", 20)
	// The first request finds the quota unused; nginx turns away any that
	// comes within 200ms of the last it let through.
	if len(got[200]) == 0 || len(got[429]) == 0 || len(got[200])+len(got[429]) != 20 {
		t.Fatalf("statuses %v, want some 200s and some 429s and nothing else", keys(got))
	}
	for _, a := range got[429] {
		if ra := a.header.Values("Retry-After"); !slices.Equal(ra, []string{"1"}) {
			t.Errorf("429 with Retry-After %q, want [1]", ra)
		}
		if !strings.Contains(a.body, "429 Too Many Requests") || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
			t.Errorf("429 body %q (%s), want nginx's HTML page", a.body, a.header.Get("Content-Type"))
		}
	}
	for _, a := range got[200] {
		if ra := a.header.Values("Retry-After"); ra != nil {
			t.Errorf("200 with Retry-After %q, want none", ra)
		}
	}
	if int(n.Load()) != len(got[200]) {
		t.Errorf("upstream saw %d requests, want the %d nginx let through", n.Load(), len(got[200]))
	}
}

func TestLimitReqDefault503WithoutRetryAfter(t *testing.T) {
	s := nginxtest.Start(t, nginxtest.Config{Rate: 5})
	got := statuses(t, s.URL+"/", 20)
	if len(got[200]) == 0 || len(got[503]) == 0 || len(got[200])+len(got[503]) != 20 {
		t.Fatalf("statuses %v, want some 200s and some 503s and nothing else", keys(got))
	}
	for _, a := range got[503] {
		if ra := a.header.Values("Retry-After"); ra != nil {
			t.Errorf("503 with Retry-After %q, want none", ra)
		}
		if !strings.Contains(a.body, "503 Service Temporarily Unavailable") {
			t.Errorf("503 body %q, want nginx's page", a.body)
		}
	}
}

func TestRetryAfterWithDefault503(t *testing.T) {
	s := nginxtest.Start(t, nginxtest.Config{Rate: 1.0 / 60, RetryAfter: "120"})
	c := client(t)
	first, second := get(t, c, s.URL+"/"), get(t, c, s.URL+"/")
	if first.status != 200 || first.header.Values("Retry-After") != nil {
		t.Errorf("first: %d with Retry-After %q, want 200 without", first.status, first.header.Values("Retry-After"))
	}
	if second.status != 503 || !slices.Equal(second.header.Values("Retry-After"), []string{"120"}) {
		t.Errorf("second: %d with Retry-After %q, want 503 with [120]", second.status, second.header.Values("Retry-After"))
	}
}

// nginx adds Retry-After to its own rejections only: the upstream's error
// answers reach the client as the upstream sent them. (The burst keeps the
// quota out of the way: with Burst 0, even at Rate 1000 a second request
// within the same millisecond is turned away.)
func TestUpstreamErrorsPassThrough(t *testing.T) {
	var resets atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/reset":
			resets.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case "/429":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
			io.WriteString(w, `{"error_code":"SVC.429"}`)
		default:
			w.WriteHeader(503)
			io.WriteString(w, `{"error_code":"SVC.503"}`)
		}
	}))
	t.Cleanup(up.Close)
	s := nginxtest.Start(t, nginxtest.Config{Upstream: up.URL, Rate: 1000, Burst: 10, NoDelay: true, Status: 429, RetryAfter: "1"})
	c := client(t)
	if a := get(t, c, s.URL+"/429"); a.status != 429 || a.body != `{"error_code":"SVC.429"}` || !slices.Equal(a.header.Values("Retry-After"), []string{"7"}) {
		t.Errorf("upstream 429: got %d %q Retry-After %q, want it unchanged, Retry-After [7]", a.status, a.body, a.header.Values("Retry-After"))
	}
	if a := get(t, c, s.URL+"/503"); a.status != 503 || a.body != `{"error_code":"SVC.503"}` || a.header.Values("Retry-After") != nil {
		t.Errorf("upstream 503: got %d %q Retry-After %q, want it unchanged, no Retry-After", a.status, a.body, a.header.Values("Retry-After"))
	}
	// A failed upstream is nginx's 502, not retried, and no Retry-After.
	if a := get(t, c, s.URL+"/reset"); a.status != 502 || a.header.Values("Retry-After") != nil || resets.Load() != 1 {
		t.Errorf("upstream reset: got %d Retry-After %q after %d upstream attempts, want 502 without Retry-After after 1", a.status, a.header.Values("Retry-After"), resets.Load())
	}
}

// At one request a minute, the second request to a location within the
// test is always turned away, so the counts are exact.
func TestLocationsLimitSeparately(t *testing.T) {
	up, n := upstream(t)
	s := nginxtest.Start(t, nginxtest.Config{
		Upstream: up.URL,
		Status:   429,
		Locations: []nginxtest.Location{
			{Path: "/v1/a", Rate: 1.0 / 60},
			{Path: "/v1/b", Rate: 1.0 / 60},
		},
	})
	c := client(t)
	want := []struct {
		path   string
		status int
	}{
		{"/v1/a", 200}, {"/v1/a/1", 429}, // /v1/a's quota is spent
		{"/v1/b", 200}, {"/v1/b", 429}, // /v1/b's is its own
		{"/v1/c", 200}, {"/v1/c", 200}, {"/", 200}, // the rest are not limited
	}
	for _, w := range want {
		if a := get(t, c, s.URL+w.path); a.status != w.status {
			t.Errorf("GET %s: %d, want %d", w.path, a.status, w.status)
		}
	}
	if n.Load() != 5 {
		t.Errorf("upstream saw %d requests, want the 5 nginx let through", n.Load())
	}
}

func TestBurstNoDelay(t *testing.T) {
	s := nginxtest.Start(t, nginxtest.Config{Rate: 1.0 / 60, Burst: 2, NoDelay: true, Status: 429})
	c := client(t)
	var got []int
	for range 4 {
		got = append(got, get(t, c, s.URL+"/").status)
	}
	if !slices.Equal(got, []int{200, 200, 200, 429}) {
		t.Fatalf("statuses %v, want [200 200 200 429]: one for the rate, two for the burst", got)
	}
}

func TestCleanupStopsNginx(t *testing.T) {
	var url string
	t.Run("start", func(t *testing.T) {
		url = nginxtest.Start(t, nginxtest.Config{}).URL
		get(t, client(t), url+"/")
	})
	addr := strings.TrimPrefix(url, "http://")
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after the test that started nginx ended", addr)
	}
}

// Launch is Start without a testing.TB: Close stops nginx and removes its
// temporary directory, and a second Close changes nothing.
func TestLaunchAndClose(t *testing.T) {
	s, err := nginxtest.Launch(nginxtest.Config{Rate: 1.0 / 60, Status: 429})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t)
	if a, b := get(t, c, s.URL+"/"), get(t, c, s.URL+"/"); a.status != 200 || b.status != 429 {
		t.Errorf("statuses %d, %d, want 200, 429", a.status, b.status)
	}
	if !strings.Contains(s.ErrorLog(), "limiting requests") {
		t.Errorf("error log %q does not record the request turned away", s.ErrorLog())
	}
	c.CloseIdleConnections()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	addr := strings.TrimPrefix(s.URL, "http://")
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
	if s.ErrorLog() != "" {
		t.Error("the temporary directory is still there after Close")
	}
}

func TestLaunchRejectsBadConfig(t *testing.T) {
	s, err := nginxtest.Launch(nginxtest.Config{Status: 200})
	if err == nil {
		s.Close()
		t.Fatal("Launch accepted Status 200")
	}
}

// Close after Start is allowed (a test that stops nginx early), and the
// cleanup then reports nothing.
func TestCloseBeforeCleanup(t *testing.T) {
	s := nginxtest.Start(t, nginxtest.Config{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
