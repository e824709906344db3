package resilienthttp

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func hostCount(c *Client) (n int) {
	c.hosts.hosts.Range(func(any, any) bool { n++; return true })
	return n
}

// A client that meets a new host (a per-tenant endpoint) every few seconds
// for hours keeps only the hosts it used in the last ten minutes or so; a
// host in steady use is never dropped, and keeps its state.
func TestIdleHostsExpire(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	clk := &eventClock{now: time.Unix(1_800_000_000, 0)}
	c := New(WithClock(clk), WithHostKey(func(r *http.Request) string { return r.Header.Get("Tenant") }))
	defer c.CloseIdleConnections()
	get := func(tenant string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		req.Header.Set("Tenant", tenant)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
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
