package resilienthttp

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// unwrapURLError drops net/http's *url.Error wrapper, whose text carries the
// request URL with its query (tokens included); the client reports a
// redacted URL of its own.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// sensitiveHeaders carry credentials: they never reach an error or a log.
var sensitiveHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
	"X-Auth-Token", "X-Subject-Token", "X-Amz-Security-Token", "X-Api-Key", "Api-Key"}

// redactHeader returns a copy of h without credential headers.
func redactHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, k := range sensitiveHeaders {
		delete(out, k)
	}
	return out
}

// sensitiveQuery reports whether a query parameter may carry a credential.
func sensitiveQuery(key string) bool {
	k := strings.ToLower(key)
	for _, s := range [...]string{"token", "signature", "sig", "key", "secret", "password", "auth", "credential", "session"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// redactURL returns u as text without what could let a reader of a log or an
// error act as the caller: userinfo is dropped and the values of
// credential-like query parameters are replaced.
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := *u
	r.User = nil
	if r.RawQuery != "" {
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			r.RawQuery = "REDACTED"
		} else {
			changed := false
			for k, vs := range q {
				if sensitiveQuery(k) {
					for i := range vs {
						vs[i] = "REDACTED"
					}
					changed = true
				}
			}
			if changed {
				r.RawQuery = q.Encode()
			}
		}
	}
	return r.String()
}
