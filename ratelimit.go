package resilienthttp

import (
	"net/http"
	"slices"
	"strings"
	"time"
)

// rateLimitInfo is what a response's rate-limit headers say.
type rateLimitInfo struct {
	quota     float64       // requests per second a policy allows (q/w); 0 if undeclared
	burst     int           // requests left in the window now; 0 if unknown
	reset     time.Duration // until the window resets
	exhausted bool          // nothing left until reset
	partition string        // the pk parameter of the first item that has one
}

// parseRateLimitHeaders reads, in order of precedence, the IETF draft's
// structured RateLimit-Policy ("default";q=100;w=60) and RateLimit
// ("default";r=50;t=30) fields (draft-ietf-httpapi-ratelimit-headers), the
// earlier drafts' RateLimit-Remaining/RateLimit-Reset, and the common
// X-RateLimit-Remaining/X-RateLimit-Reset (delta seconds, or a Unix time
// measured against the response's Date). Malformed fields are ignored; ok
// reports that anything usable was found.
//
// Policies are kept apart by name: a policy whose quota unit (qu) is not
// "requests" (content-bytes, concurrent-requests) sets no pace, and the
// RateLimit item of the same name is not read as requests left. Of the
// others, the tightest quota and the fewest requests left govern. A
// partition key (pk) says which partition of the service's quota the
// request fell in; partition names the first, and the limiter applies
// partitioned fields only while its scope has met one partition (see
// hostLimiter.samePartition).
func parseRateLimitHeaders(h http.Header, now time.Time) (info rateLimitInfo, ok bool) {
	// Keys are written canonical and read from the map directly: this runs
	// on every response, and Header.Get would allocate to canonicalise them.
	notRequests := info.readPolicies(headerValue(h, "Ratelimit-Policy"))
	ok = info.quota > 0
	remaining, reset := int64(-1), int64(-1)
	if v := headerValue(h, "Ratelimit"); v != "" {
		for _, item := range sfItems(v) {
			if slices.Contains(notRequests, sfName(item)) {
				continue // what is left of a quota of bytes, say
			}
			if info.partition == "" {
				info.partition = sfString(item, "pk")
			}
			if r := sfParam(item, "r"); r >= 0 && (remaining < 0 || r < remaining) {
				remaining, reset = r, sfParam(item, "t")
			}
		}
	}
	if remaining < 0 {
		remaining, reset = headerInt(h, "Ratelimit-Remaining"), headerInt(h, "Ratelimit-Reset")
	}
	if remaining < 0 {
		remaining, reset = headerInt(h, "X-Ratelimit-Remaining"), headerInt(h, "X-Ratelimit-Reset")
		if reset > 1e9 { // a Unix time, not a delta
			if d, err := http.ParseTime(h.Get("Date")); err == nil {
				now = d
			}
			reset = max(reset-now.Unix(), 0)
		}
	}
	if remaining >= 0 {
		ok = true
		info.burst = int(min(remaining, 1<<20))
		if reset >= 0 && reset <= maxRetryAfterSeconds {
			info.reset = time.Duration(reset) * time.Second
			info.exhausted = remaining == 0 && reset > 0
		}
	}
	return info, ok
}

// hasRateLimitHeaders reports whether h has any field parseRateLimitHeaders
// reads, without parsing.
func hasRateLimitHeaders(h http.Header) bool {
	for _, k := range [...]string{"Ratelimit-Policy", "Ratelimit", "Ratelimit-Remaining", "X-Ratelimit-Remaining"} {
		if _, ok := h[k]; ok {
			return true
		}
	}
	return false
}

// sfItems splits a structured-field list into its members.
func sfItems(v string) []string { return strings.Split(v, ",") }

// sfParam returns the integer parameter name of a structured-field list
// member ("default";q=100;w=60), or -1 if absent or not a plain integer.
func sfParam(item, name string) int64 {
	for _, p := range strings.Split(item, ";")[1:] {
		k, val, found := strings.Cut(strings.TrimSpace(p), "=")
		if found && k == name {
			if n, ok := parseDigits(strings.TrimSpace(val), maxRetryAfterSeconds); ok {
				return n
			}
			return -1
		}
	}
	return -1
}

// readPolicies reads a RateLimit-Policy field into info: the tightest
// quota of requests per second, and the first partition named. It returns
// the names of the policies whose quota counts something else than
// requests (bytes, concurrent requests), which set no pace.
func (info *rateLimitInfo) readPolicies(v string) (notRequests []string) {
	if v == "" {
		return nil
	}
	for _, item := range sfItems(v) {
		if info.partition == "" {
			info.partition = sfString(item, "pk")
		}
		if u := sfString(item, "qu"); u != "" && u != "requests" {
			notRequests = append(notRequests, sfName(item))
			continue
		}
		q, w := sfParam(item, "q"), sfParam(item, "w")
		if q <= 0 {
			continue
		}
		if w <= 0 {
			w = 1 // the draft's default window is one second
		}
		if r := float64(q) / float64(w); info.quota == 0 || r < info.quota {
			info.quota = r
		}
	}
	return notRequests
}

// sfName returns the name of a structured-field list member: its bare
// item, a policy name such as "default" (quotes and all, as both fields
// write it).
func sfName(item string) string {
	name, _, _ := strings.Cut(item, ";")
	return strings.TrimSpace(name)
}

// sfString returns the string parameter name of a structured-field list
// member (qu="content-bytes"), unquoted, or "" if absent.
func sfString(item, name string) string {
	for _, p := range strings.Split(item, ";")[1:] {
		k, val, found := strings.Cut(strings.TrimSpace(p), "=")
		if found && k == name {
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return ""
}

// headerValue is h.Get for a key already in canonical form.
func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func headerInt(h http.Header, canonicalKey string) int64 {
	if n, ok := parseDigits(headerValue(h, canonicalKey), 1<<62); ok {
		return n
	}
	return -1
}
