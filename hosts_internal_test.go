package resilienthttp

import (
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func hostCount(c *Client) (n int) {
	c.hosts.hosts.Range(func(any, any) bool { n++; return true })
	return n
}

// tenantClient returns a client on clk whose host key is the request's
// Tenant header, and a function that GETs a 127.0.0.1 server as a tenant.
func tenantClient(t *testing.T, clk Clock) (*Client, func(tenant string)) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	c := New(WithClock(clk), WithHostKey(func(r *http.Request) string { return r.Header.Get("Tenant") }))
	t.Cleanup(c.CloseIdleConnections)
	return c, func(tenant string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Tenant", tenant)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}

// A client that meets a new host (a per-tenant endpoint) every few seconds
// for hours keeps only the hosts it used in the last ten minutes or so; a
// host in steady use is never dropped, and keeps its state.
func TestIdleHostsExpire(t *testing.T) {
	clk := &eventClock{now: time.Unix(1_800_000_000, 0)}
	c, get := tenantClient(t, clk)
	get("steady")
	steady, _ := c.hosts.hosts.Load("steady")
	most := 0
	const step = 5 * time.Second
	for i := 0; i < 3*3600/5; i++ { // three hours, a new tenant every 5 s
		clk.now = clk.now.Add(step)
		get("tenant-" + strconv.Itoa(i))
		get("steady")
		most = max(most, hostCount(c))
	}
	// Idle for ≥ 10 min, swept at most every 5 min: at most 15 min of
	// tenants (180), plus the steady one.
	if limit := int(15*time.Minute/step) + 1; most > limit {
		t.Errorf("registry held up to %d hosts, want at most %d", most, limit)
	}
	if now, _ := c.hosts.hosts.Load("steady"); now != steady {
		t.Error("the host in steady use was dropped")
	}
	if _, ok := c.hosts.hosts.Load("tenant-0"); ok {
		t.Error("a host idle for hours is still held")
	}
	if _, ok := c.hosts.hosts.Load("tenant-" + strconv.Itoa(3*3600/5-1)); !ok {
		t.Error("the host just used was dropped")
	}
}

// spelling returns the i-th spelling of a test server's address: localhost
// in mixed case or 127.0.0.1, its port zero-padded by 0 to 3 zeros. Both
// are the server (on 127.0.0.1), but localhost and 127.0.0.1 are two hosts
// to the client, as to net/http.
func spelling(i int, port string) string {
	pad := strings.Repeat("0", (i/2)%4)
	if i%2 == 1 {
		return "127.0.0.1:" + pad + port
	}
	name := []byte("localhost")
	for b := range name {
		if (i/8)>>b&1 == 1 {
			name[b] -= 'a' - 'A'
		}
	}
	return string(name) + ":" + pad + port
}

// A server that redirects every call through fresh spellings of itself
// (http://LoCaLhOsT:0<port>/, http://127.0.0.1:00<port>/, …) does not make
// the client keep new host state per spelling: they collapse into one key
// per host, however many calls it answers so.
func TestRedirectSpellingsShareHostState(t *testing.T) {
	const calls, hops = 100, 4
	var port string
	var redirects atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hop, _ := strconv.Atoi(r.URL.Query().Get("hop"))
		if hop == hops {
			return // 200
		}
		i := int(redirects.Add(1))
		http.Redirect(w, r, "http://"+spelling(i, port)+"/?hop="+strconv.Itoa(hop+1), http.StatusFound)
	}))
	defer srv.Close()
	port = strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	c := New()
	defer c.CloseIdleConnections()
	for range calls {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := redirects.Load(); n != calls*hops {
		t.Fatalf("server redirected %d times, want %d", n, calls*hops)
	}
	var keys []string
	c.hosts.hosts.Range(func(k, _ any) bool { keys = append(keys, k.(string)); return true })
	slices.Sort(keys)
	if want := []string{"127.0.0.1:" + port, "localhost:" + port}; !slices.Equal(keys, want) {
		t.Errorf("host keys after %d redirects through fresh spellings: %d, %q…; want %q",
			calls*hops, len(keys), keys[:min(len(keys), 4)], want)
	}
}

// The default host key is one per address however a URL spells it, and
// hostile hosts neither panic nor make long keys.
func TestNormalHost(t *testing.T) {
	long := strings.Repeat("A", 1000) + ":80"
	for _, tc := range []struct{ scheme, host, want string }{
		{"http", "api.example.com", "api.example.com"},
		{"https", "api.example.com:8443", "api.example.com:8443"},
		{"http", "API.Example.COM", "api.example.com"},
		{"http", "h:80", "h"},
		{"http", "H:0080", "h"},
		{"http", "h:", "h"},
		{"https", "h:443", "h"},
		{"https", "h:00443", "h"},
		{"https", "h:80", "h:80"}, // only the scheme's own default is dropped
		{"http", "h:443", "h:443"},
		{"", "h:80", "h:80"},
		{"http", "h:08080", "h:8080"},
		{"http", "h:0", "h:0"},
		{"http", "h:000", "h:0"},
		{"http", "h:00000000000000000000000000000080", "h"},
		{"http", "Svc.:80", "svc."}, // the trailing dot is kept
		{"http", "[::1]:80", "[::1]"},
		{"http", "[::1]:", "[::1]"},
		{"http", "[::1]", "[::1]"},
		{"http", "[::1]:0081", "[::1]:81"},
		{"https", "[::FFFF:7F00:1]:443", "[::ffff:7f00:1]"},
		{"http", "[FE80::1%En0]:0080", "[fe80::1%En0]"}, // a zone keeps its case
		{"http", "ÄPI.Example", "Äpi.example"},          // ASCII only
		// Hostile or broken: kept, never a panic.
		{"http", "h:99999", "h:99999"},
		{"http", "h:0099999", "h:99999"},
		{"http", "H:abc", "h:abc"},
		{"http", "h:-80", "h:-80"},
		{"http", "H:1:0080", "h:1:0080"}, // two colons: no port
		{"http", "0::", "0::"},
		{"http", "::1", "::1"},
		{"http", "[::1", "[::1"},
		{"http", "[0::", "[0::"},
		{"http", "[::1]X:80", "[::1]x:80"},
		{"http", "[a]:b]:0080", "[a]:b]"},
		{"http", "[", "["},
		{"http", "]:", "]"},
		{"http", ":80", ""},
		{"http", ":", ""},
		{"http", "", ""},
		{"http", "\xff\xfe:0080", "\xff\xfe"},
		{"http", long, strings.Repeat("a", maxHostKey) + "..."},
		{"http", strings.Repeat("A", maxHostKey-3) + ":80", strings.Repeat("a", maxHostKey-3)},
	} {
		if got := normalHost(tc.scheme, tc.host); got != tc.want {
			t.Errorf("normalHost(%q, %.40q) = %.40q, want %.40q", tc.scheme, tc.host, got, tc.want)
		}
	}
}

// A key already normal costs no allocation: it is the common case, on
// every call.
func TestNormalHostAllocates(t *testing.T) {
	for _, host := range []string{"api.example.com", "api.example.com:8443", "127.0.0.1:8080", "[::1]:8080"} {
		if n := testing.AllocsPerRun(100, func() { normalHost("https", host) }); n != 0 {
			t.Errorf("normalHost(%q): %v allocations, want none", host, n)
		}
	}
}

// FuzzNormalHost checks that any host gives a key without a panic, no
// longer than maxHostKey and its "...", and that the key is its own key.
func FuzzNormalHost(f *testing.F) {
	for _, s := range []string{"h", "H:0080", "[::1]:80", "[FE80::1%En0]:0443", "h:99999", "h:abc", "]:", "0::", "[0::", strings.Repeat("x", 400)} {
		f.Add("http", s)
		f.Add("https", s)
	}
	f.Fuzz(func(t *testing.T, scheme, host string) {
		key := normalHost(scheme, host)
		if len(key) > maxHostKey+len("...") {
			t.Fatalf("key of %d bytes", len(key))
		}
		if again := normalHost(scheme, key); again != key {
			t.Fatalf("normalHost(%q) = %q, whose key is %q", host, key, again)
		}
	})
}

// A key function's keys are the caller's: used as they come.
func TestHostKeyFunctionKeptAsIs(t *testing.T) {
	c := New(WithHostKey(func(r *http.Request) string { return r.URL.Host }))
	req, _ := http.NewRequest(http.MethodGet, "http://API.example:0080/", nil)
	if h := c.hostFor(req); h.key != "API.example:0080" {
		t.Errorf("key %q, want the function's API.example:0080", h.key)
	}
}

// A client that meets 5000 hosts (tenants, by WithHostKey) within the idle
// expiry keeps at most maxHosts of them, dropping the least recently used
// first: the host it uses between each of them keeps its state throughout.
func TestHostRegistryIsBounded(t *testing.T) {
	clk := &eventClock{now: time.Unix(1_800_000_000, 0)} // stands still: no host idles
	c, get := tenantClient(t, clk)
	get("steady")
	steady, _ := c.hosts.hosts.Load("steady")
	const tenants = 5000
	most := 0
	for i := range tenants {
		get("tenant-" + strconv.Itoa(i))
		get("steady")
		most = max(most, hostCount(c))
	}
	if most > maxHosts {
		t.Errorf("registry held up to %d hosts, want at most %d", most, maxHosts)
	}
	if now, _ := c.hosts.hosts.Load("steady"); now != steady {
		t.Error("the host used on every call was dropped")
	}
	for _, i := range []int{0, tenants - maxHosts/2} {
		_, held := c.hosts.hosts.Load("tenant-" + strconv.Itoa(i))
		if want := i > 0; held != want {
			t.Errorf("tenant-%d held: %v, want %v (least recently used go first)", i, held, want)
		}
	}
}

// Hosts added, looked up and evicted from many goroutines at once leave
// the registry bounded and its count of hosts right.
func TestHostRegistryUnderConcurrency(t *testing.T) {
	c := New(WithHostKey(func(r *http.Request) string { return r.Header.Get("Tenant") }))
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, "http://svc.test/", nil)
			for i := range each {
				req.Header.Set("Tenant", "tenant-"+strconv.Itoa(w*each+i))
				c.hostFor(req)
				req.Header.Set("Tenant", "steady")
				c.hostFor(req)
			}
		}()
	}
	wg.Wait()
	if n, held := c.hosts.n.Load(), hostCount(c); n != int64(held) || held > maxHosts {
		t.Errorf("registry holds %d hosts and counts %d, want the same and at most %d", held, n, maxHosts)
	}
	if _, ok := c.hosts.hosts.Load("steady"); !ok {
		t.Error("the host every goroutine used was dropped")
	}
}

// Eviction keeps the maxHosts-evictBatch most recently used hosts, even
// when a burst of hosts being added (counted, not yet in the registry)
// would have it drop more to stay within maxHosts.
func TestEvictKeepsTheMostRecentlyUsed(t *testing.T) {
	c := New(WithHostKey(func(r *http.Request) string { return r.Header.Get("Tenant") }))
	req, _ := http.NewRequest(http.MethodGet, "http://svc.test/", nil)
	use := func(i int) *host {
		req.Header.Set("Tenant", "tenant-"+strconv.Itoa(i))
		return c.hostFor(req)
	}
	for i := range maxHosts {
		use(i)
	}
	for i := range 10 {
		use(i) // now among the most recently used
	}
	c.hosts.n.Add(2 * maxHosts) // a burst of hosts being added
	c.hosts.evict()
	c.hosts.n.Add(-2 * maxHosts)
	if held := hostCount(c); held != maxHosts-evictBatch || c.hosts.n.Load() != int64(held) {
		t.Errorf("registry holds %d hosts and counts %d, want %d", held, c.hosts.n.Load(), maxHosts-evictBatch)
	}
	for i, want := range map[int]bool{0: true, 9: true, 10: false, 10 + evictBatch - 1: false, 10 + evictBatch: true, maxHosts - 1: true} {
		if _, held := c.hosts.hosts.Load("tenant-" + strconv.Itoa(i)); held != want {
			t.Errorf("tenant-%d held: %v, want %v", i, held, want)
		}
	}
}

// BenchmarkHostFor measures the registry's look-up: of a host already
// there (every call's), with its key already normal or not, and of a new
// host each time past maxHosts, evictions included.
//
//	go test -run '^$' -bench HostFor -benchmem .
func BenchmarkHostFor(b *testing.B) {
	for _, tc := range []struct{ name, url string }{
		{"normal", "http://svc.test:8080/v1/items"},
		{"spelt", "http://SVC.test:08080/v1/items"},
	} {
		b.Run("known/"+tc.name, func(b *testing.B) {
			c := New()
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			b.ReportAllocs()
			for b.Loop() {
				c.hostFor(req)
			}
		})
	}
	b.Run("new", func(b *testing.B) {
		c := New(WithHostKey(func(r *http.Request) string { return r.Header.Get("Tenant") }))
		req, _ := http.NewRequest(http.MethodGet, "http://svc.test/", nil)
		keys := make([]string, 4*maxHosts)
		for i := range keys {
			keys[i] = "tenant-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			req.Header["Tenant"] = keys[i%len(keys) : i%len(keys)+1]
			c.hostFor(req)
			i++
		}
	})
}
