package redisguard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/redisguard"
	"github.com/resilienthttp/resilienthttp/redisguard/internal/redistest"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// Each replica of a service makes one Store on the Redis it already runs
// and gives it to its clients: a RateLimit header one replica reads paces
// the whole fleet, a Retry-After one gets pauses all, and one breaker
// protects them all. If Redis goes away, each goes on with its own guards.
func Example() {
	// A redis-server and a rate-limited service on 127.0.0.1 for this
	// example; a replica uses its own Redis and its service.
	srv, err := redistest.Launch()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	svc := servicetest.New(servicetest.WithRateLimit(50, 10), servicetest.WithRateLimitHeaders(servicetest.IETFHeaders))
	defer svc.Close()

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	store := redisguard.New(rdb, redisguard.WithPrefix("orders-sdk:"))
	defer store.Close()
	client := resilienthttp.New(resilienthttp.WithGuardStore(store))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, svc.URL+"/v1/orders", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	// What every replica now paces itself by (Sync only makes the
	// example wait for Redis; clients never need it).
	if err := store.Sync(ctx); err != nil {
		fmt.Println(err)
		return
	}
	u, _ := url.Parse(svc.URL)
	fmt.Printf("fleet pace: %.1f requests/s\n", store.View(resilienthttp.GuardKey{Host: u.Host}).Rate)
	// Output:
	// 200 OK
	// fleet pace: 49.5 requests/s
}
