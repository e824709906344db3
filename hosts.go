package resilienthttp

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	// cuts counts the cuts of the pace so far: an attempt notes it when it
	// joins the queue (answer.cuts), so that a refusal of a request
	// queued before the latest cut is not read as a sign that the cut
	// fell short.
	cuts() uint32
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
	// ended, and returns how it counted it.
	report(done func(error), ctx context.Context, a *answer) breakerOutcome
}

// host holds the guards of one host key; a nil guard is turned off.
type host struct {
	key     string
	limiter pacer // the host's own scope, or every scope past maxScopes
	breaker circuit
	budget  *retryTokens
	// scopes holds the limiters of LimiterSettings.Key's scopes.
	scopes   sync.Map // scope key → pacer
	nscopes  atomic.Int32
	newScope func(scope string) pacer
	// used is the registry's clock when the host was last looked up.
	used atomic.Int64
}

// maxScopes bounds the limiter scopes kept per host; requests of further
// scopes share the host's own limiter.
const maxScopes = 256

// pacerFor returns the limiter of req's scope within the host: its own
// when LimiterSettings.Key is set, the host's otherwise.
func (h *host) pacerFor(req *http.Request, key func(*http.Request) string) pacer {
	if key == nil || h.limiter == nil {
		return h.limiter
	}
	k := key(req)
	if p, ok := h.scopes.Load(k); ok {
		return p.(pacer)
	}
	if h.nscopes.Add(1) > maxScopes {
		h.nscopes.Add(-1)
		return h.limiter
	}
	p, loaded := h.scopes.LoadOrStore(k, h.newScope(k))
	if loaded {
		h.nscopes.Add(-1)
	}
	return p.(pacer)
}

// hostIdleExpiry is how long a host's guard state is kept after its last
// use: a client that talks to many hosts (per-tenant endpoints) does not
// keep the state of every host it ever met. A host used again later
// starts afresh.
const hostIdleExpiry = 10 * time.Minute

// maxHosts is the most hosts a registry holds. It is far more than the
// endpoints a service SDK talks to, or the tenants a per-tenant client
// meets in hostIdleExpiry, and bounds the guards' state at about 1.5 MiB
// (some 1.5 KiB a host with the default guards), whatever a redirecting
// server or a key function makes up.
const maxHosts = 1024

// evictBatch is how many hosts below maxHosts an eviction leaves the
// registry at, so that its pass over every host comes once per evictBatch
// new hosts rather than for each.
const evictBatch = maxHosts / 8

// hostRegistry holds the guards of every host in use, lock-free to read,
// by host key: WithHostKey's, or by default normalHost's, so that the
// spellings of one address (a redirecting server's Location:
// http://LoCaLhOsT:0080/) share one state instead of each making its own.
//
// It drops hosts idle for hostIdleExpiry or more, looking for them only
// when a new host arrives (a client whose hosts do not change never
// sweeps) and at most every half of it. It holds at most maxHosts hosts
// (more only while over evictBatch new hosts are added at the same
// instant): a new host that would pass it first drops all but the
// maxHosts-evictBatch most recently used. A host in steady use therefore
// outlives any number of hosts met once (a redirect's, a tenant's); one
// dropped while an attempt holds it (a call waiting between retries while
// a thousand others arrive) serves that attempt to its end, and the next
// call starts afresh.
//
// Recency is a stamp from the registry's clock, a counter advanced by each
// new host and each sweep: hosts used between the same two new hosts are
// equally recent, and the hot path only compares two numbers (and stores
// one, the first time after a new host arrived).
type hostRegistry struct {
	hosts sync.Map     // host key → *host
	n     atomic.Int64 // hosts held, and places taken by hosts being added
	clock atomic.Int64

	mu        sync.Mutex
	lastSweep time.Time  // guarded by mu
	swept     [2]int64   // clock at the last two sweeps, older first; guarded by mu
	aged      []agedHost // evict's, kept between evictions; guarded by mu
}

// hostFor returns the guards of req's host, creating them on first use.
func (c *Client) hostFor(req *http.Request) *host {
	var key string
	if c.hostKey != nil {
		key = c.hostKey(req)
	} else {
		key = normalHost(req.URL.Scheme, req.URL.Host)
	}
	r := &c.hosts
	if v, ok := r.hosts.Load(key); ok {
		h := v.(*host)
		if t := r.clock.Load(); h.used.Load() != t {
			h.used.Store(t)
		}
		return h
	}
	return c.addHost(key)
}

// addHost makes the guards of a host not in the registry and adds them,
// unless another caller has just done so; it returns the registry's.
func (c *Client) addHost(key string) *host {
	r := &c.hosts
	if r.n.Add(1) > maxHosts {
		r.evict()
	}
	now := c.clock.Now()
	h := c.newHost(key, now)
	h.used.Store(r.clock.Add(1))
	actual, loaded := r.hosts.LoadOrStore(key, h)
	if loaded {
		r.n.Add(-1)
	} else {
		r.sweep(now)
	}
	return actual.(*host)
}

// newHost makes the in-process guards of a host.
func (c *Client) newHost(key string, now time.Time) *host {
	h := &host{key: key}
	if c.limiter != nil {
		s, maxPause, clk, store := *c.limiter, c.policy.MaxRetryAfter, c.clock, c.store
		newPacer := func(scope string, now time.Time) pacer {
			l := newHostLimiter(s, maxPause, now)
			if store == nil {
				return l
			}
			k := GuardKey{Host: key, Scope: scope}
			l.share = func(e FleetEvent) { store.Share(k, e) }
			return &fleetPacer{l: l, store: store, key: k}
		}
		h.limiter = newPacer("", now)
		h.newScope = func(scope string) pacer { return newPacer(scope, clk.Now()) }
	}
	if c.breaker != nil {
		b := newHostBreaker(key, *c.breaker, c.policy.MaxRetryAfter, c.clock, c.breakerChanged)
		h.breaker = b
		if store := c.store; store != nil {
			k := GuardKey{Host: key}
			b.onOpen = func(until time.Time) {
				store.Share(k, FleetEvent{Kind: FleetBreakerOpen, At: c.clock.Now(), Until: until})
			}
			h.breaker = &fleetCircuit{b: b, store: store, key: k, s: c.breaker}
		}
	}
	if c.budget != nil {
		h.budget = newRetryTokens(*c.budget)
	}
	return h
}

// sweep drops the hosts not used for hostIdleExpiry, if half of it has
// passed since the last sweep. A host last used before the sweep before
// last, at least hostIdleExpiry ago, is dropped: its stamp is older than
// the clock that sweep left.
func (r *hostRegistry) sweep(now time.Time) {
	if !r.mu.TryLock() {
		return // another caller is sweeping or evicting
	}
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) < hostIdleExpiry/2 {
		return
	}
	r.lastSweep = now
	idle := r.swept[0]
	r.swept[0], r.swept[1] = r.swept[1], r.clock.Add(1)
	r.hosts.Range(func(k, v any) bool {
		if h := v.(*host); h.used.Load() < idle {
			r.drop(k, h)
		}
		return true
	})
}

// agedHost is a host as evict sees it.
type agedHost struct {
	used int64
	key  any
	h    *host
}

// evict drops the least recently used hosts, if the registry holds more
// than maxHosts, keeping the maxHosts-evictBatch most recently used. Hosts
// being added count towards maxHosts but are not in the registry yet, so
// the caller's is never dropped, and a burst of them can pass maxHosts
// for a moment rather than drop hosts in use.
func (r *hostRegistry) evict() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n.Load() <= maxHosts {
		return // another caller has evicted meanwhile
	}
	aged := r.aged[:0]
	r.hosts.Range(func(k, v any) bool {
		h := v.(*host)
		aged = append(aged, agedHost{h.used.Load(), k, h})
		return len(aged) < 2*maxHosts // bounded, whatever is added meanwhile
	})
	slices.SortFunc(aged, func(a, b agedHost) int { return cmp.Compare(a.used, b.used) })
	for _, a := range aged[:max(len(aged)-(maxHosts-evictBatch), 0)] {
		r.drop(a.key, a.h)
	}
	clear(aged) // keeps no dropped host alive
	r.aged = aged[:0]
}

// drop removes host h under key k, unless k has been dropped and added
// afresh meanwhile.
func (r *hostRegistry) drop(k any, h *host) {
	if r.hosts.CompareAndDelete(k, h) {
		r.n.Add(-1)
	}
}

// breakerChanged tells the observers (the logger among them) that a host's
// breaker changed state.
func (c *Client) breakerChanged(host string, from, to BreakerState) {
	if c.obs.BreakerChange != nil {
		c.obs.BreakerChange(BreakerChange{Host: host, From: from, To: to})
	}
}

// maxHostKey is the longest URL.Host kept whole in a default host key. A
// DNS name has at most 253 bytes, and a bracketed IPv6 literal with a zone
// and a port fewer than 80, so a longer host cannot be dialled (net/http
// fails it with "no such host"); cutting it keeps a hostile Location from
// making each key as long as a response header may be.
const maxHostKey = 300

// normalHost returns the default host key of a request to hostport (a
// URL.Host) with the given scheme, so that every spelling of one address
// shares its state:
//
//   - the name in ASCII lower case, an IPv6 zone (after %) excepted, as
//     interface names are case-sensitive; a trailing dot is kept, as "svc."
//     and "svc" can resolve apart (the first skips the resolver's search
//     domains);
//   - a port of digits without its leading zeros, as net.Dial reads it
//     ("0080" is 80), and none when it is empty or the scheme's default (80
//     for http, 443 for https); any other port is kept as written: net/http
//     dials no port above 65535 ("invalid port"), and a Location cannot
//     carry one that is not digits (url.Parse refuses it);
//   - a host longer than maxHostKey cut to it, with "..." after.
//
// IPv6 literals keep their brackets and are not rewritten otherwise
// ([::1] and [0::1] stay two keys). For a host already in this form, the
// common case, it returns hostport itself without allocating.
func normalHost(scheme, hostport string) string {
	if len(hostport) > maxHostKey {
		return joinKey(hostport[:maxHostKey], maxHostKey, "...", "")
	}
	name, port, colon := splitPort(hostport)
	keep := normalPort(scheme, port)
	lower := lowerEnd(name)
	if keep == port && (keep != "" || !colon) && !hasUpper(name[:lower]) {
		return hostport
	}
	sep := ""
	if keep != "" {
		sep = ":"
	}
	return joinKey(name, lower, sep, keep)
}

// splitPort splits hostport at the colon before its port, if it has one:
// the colon right after an IPv6 literal's closing bracket, or the only
// colon of a host without brackets. Any other host has no port (net/http
// cannot dial it: missing bracket, too many colons) and is kept whole.
func splitPort(hostport string) (name, port string, colon bool) {
	i := strings.LastIndexByte(hostport, ':')
	if strings.HasPrefix(hostport, "[") {
		i = strings.LastIndexByte(hostport, ']') + 1
		if i == 0 || i == len(hostport) || hostport[i] != ':' {
			return hostport, "", false
		}
	} else if i < 0 || strings.IndexByte(hostport[:i], ':') >= 0 {
		return hostport, "", false
	}
	return hostport[:i], hostport[i+1:], true
}

// normalPort returns port as a host key keeps it (see normalHost).
func normalPort(scheme, port string) string {
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return port
		}
	}
	i := 0
	for i < len(port)-1 && port[i] == '0' {
		i++
	}
	port = port[i:]
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		return ""
	}
	return port
}

// lowerEnd returns how much of a host name is lower-cased: all of it but an
// IPv6 literal's zone.
func lowerEnd(name string) int {
	if strings.HasPrefix(name, "[") {
		if i := strings.IndexByte(name, '%'); i >= 0 {
			return i
		}
	}
	return len(name)
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// joinKey returns name, with its first lower bytes in ASCII lower case,
// followed by sep and port, in one allocation.
func joinKey(name string, lower int, sep, port string) string {
	var b strings.Builder
	b.Grow(len(name) + len(sep) + len(port))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if i < lower && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	b.WriteString(sep)
	b.WriteString(port)
	return b.String()
}
