package resilienthttp

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// pacer is one host's rate limiter as the per-attempt transport uses it.
// The in-process hostLimiter is one; a limiter whose state a fleet of
// processes shares is another, and the transport and the decision do not
// change with it.
type pacer interface {
	// wait blocks until an attempt may go to the host, or fails at once
	// with a *RateLimitError when the wait would pass ctx's deadline.
	// When probe is true the attempt is the host's first-contact probe
	// and the caller must call endProbe, whatever happens to it.
	wait(ctx context.Context, host string, clk Clock) (probe bool, err error)
	// endProbe ends a first-contact probe with how the host answered it.
	endProbe(answeredWell bool)
	// observe learns from an attempt's answer.
	observe(a *answer, clk Clock)
}

// circuit is one host's circuit breaker as the per-attempt transport uses
// it; the in-process hostBreaker is one.
type circuit interface {
	// refuses returns a *CircuitOpenError while the circuit is open,
	// without taking a half-open probe's place.
	refuses() error
	// allow lets an attempt through, returning the function to report its
	// outcome to, or refuses it with a *CircuitOpenError.
	allow() (done func(error), err error)
	// report tells the breaker how an attempt that allow let through
	// ended.
	report(done func(error), ctx context.Context, a *answer)
}

// host holds the guards of one host key; a nil guard is turned off.
type host struct {
	key     string
	limiter pacer
	breaker circuit
	budget  *retryTokens
	// used is the registry's generation when the host was last used.
	used atomic.Int64
}

// hostIdleExpiry is how long a host's guard state is kept after its last
// use: a client that talks to many hosts (per-tenant endpoints) does not
// keep the state of every host it ever met. A host used again later
// starts afresh.
const hostIdleExpiry = 10 * time.Minute

// hostRegistry holds the guards of every host in use, lock-free to read.
// It drops hosts idle for hostIdleExpiry or more, looking for them only
// when a new host arrives (a client whose hosts do not change never
// sweeps) and at most every half of it, so the hot path only compares two
// generation numbers.
type hostRegistry struct {
	hosts sync.Map     // host key → *host
	gen   atomic.Int64 // advanced by each sweep

	sweepMu   sync.Mutex
	lastSweep time.Time // guarded by sweepMu
}

// hostFor returns the guards of req's host, creating them on first use.
func (c *Client) hostFor(req *http.Request) *host {
	key := req.URL.Host
	if c.hostKey != nil {
		key = c.hostKey(req)
	}
	r := &c.hosts
	if v, ok := r.hosts.Load(key); ok {
		h := v.(*host)
		if g := r.gen.Load(); h.used.Load() != g {
			h.used.Store(g)
		}
		return h
	}
	now := c.clock.Now()
	h := c.newHost(key, now)
	h.used.Store(r.gen.Load())
	actual, loaded := r.hosts.LoadOrStore(key, h)
	if !loaded {
		r.sweep(now)
	}
	return actual.(*host)
}

// newHost makes the in-process guards of a host.
func (c *Client) newHost(key string, now time.Time) *host {
	h := &host{key: key}
	if c.limiter != nil {
		h.limiter = newHostLimiter(*c.limiter, c.policy.MaxRetryAfter, now)
	}
	if c.breaker != nil {
		h.breaker = newHostBreaker(key, *c.breaker, c.policy.MaxRetryAfter, c.clock, c.logStateChange)
	}
	if c.budget != nil {
		h.budget = newRetryTokens(*c.budget)
	}
	return h
}

// sweep drops the hosts not used for hostIdleExpiry, if half of it has
// passed since the last sweep. A host used in generation g survives the
// sweeps that make g+1 and g+2, which are at least hostIdleExpiry apart.
func (r *hostRegistry) sweep(now time.Time) {
	if !r.sweepMu.TryLock() {
		return // another caller is sweeping
	}
	defer r.sweepMu.Unlock()
	if now.Sub(r.lastSweep) < hostIdleExpiry/2 {
		return
	}
	r.lastSweep = now
	g := r.gen.Add(1)
	r.hosts.Range(func(k, v any) bool {
		if v.(*host).used.Load() < g-2 {
			r.hosts.Delete(k)
		}
		return true
	})
}

func (c *Client) logStateChange(host string, from, to gobreaker.State) {
	if c.logger == nil {
		return
	}
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	c.logger.LogAttrs(context.Background(), level, "resilienthttp: circuit breaker state change",
		slog.String("host", host), slog.String("from", from.String()), slog.String("to", to.String()))
}
