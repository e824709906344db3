package resilienthttp

import (
	"errors"
	"iter"
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

// credentialName reports whether a header named name may carry a
// credential, judged by the shape of the name rather than by a list, so that
// each service's own X-Goog-Api-Key, Private-Token or X-Vault-Token is
// covered too. Such headers never reach an error or a log (redactHeader), nor
// another host on a redirect (checkRedirect).
//
// The name is cut into words at every character that is not a letter or a
// digit, at each change from a lower-case letter to an upper-case one and
// between letters and digits ("X-Goog-Api-Key", "apiKey" and "Api-Key2" all
// have the word "key"). It carries a credential when
//
//   - it contains token, secret, passw, signature, credential, session,
//     csrf, xsrf, cookie or apikey anywhere (X-Csrftoken, Cookie2, passwd);
//   - a word contains auth (Authorization, Authentication, X-Auth-Token,
//     X-Oauth-Client), except words about authors and authorities: author…
//     that is not authoriz… (X-Author, Authority);
//   - a word is key or keys, except right after the word idempotency
//     (Idempotency-Key names a request, not a caller);
//   - a word is pass, pwd, sig, jwt, hmac or assertion.
//
// Www-Authenticate and Proxy-Authenticate, challenges that carry no
// credential and say why a call was refused, do not. A name that is not a
// credential but looks like one (X-Session-Id, Public-Key-Pins) is treated as
// one: dropping it costs a line of diagnostics, forwarding a secret costs the
// secret.
func credentialName(name string) bool {
	lower := strings.ToLower(name)
	switch lower {
	case "www-authenticate", "proxy-authenticate":
		return false
	}
	for _, s := range [...]string{"token", "secret", "passw", "signature", "credential", "session", "csrf", "xsrf", "cookie", "apikey"} {
		if strings.Contains(lower, s) {
			return true
		}
	}
	prev := ""
	for w := range nameWords(name) {
		switch w {
		case "key", "keys":
			if prev != "idempotency" {
				return true
			}
		case "pass", "pwd", "sig", "jwt", "hmac", "assertion":
			return true
		default:
			if strings.Contains(w, "auth") && (!strings.Contains(w, "author") || strings.Contains(w, "authoriz")) {
				return true
			}
		}
		prev = w
	}
	return false
}

// nameWords yields the words of a header or parameter name, lower-cased:
// see credentialName.
func nameWords(name string) iter.Seq[string] {
	return func(yield func(string) bool) {
		start := -1 // start of the current word, -1 between words
		for i := 0; i <= len(name); i++ {
			c := byte(0) // past the end: ends the last word
			if i < len(name) {
				c = name[i]
			}
			alnum := isLetter(c) || isDigit(c)
			if start >= 0 {
				last := name[i-1]
				caseUp := 'a' <= last && last <= 'z' && 'A' <= c && c <= 'Z'
				if !alnum || caseUp || isDigit(last) != isDigit(c) {
					if !yield(strings.ToLower(name[start:i])) {
						return
					}
					start = -1
				}
			}
			if start < 0 && alnum {
				start = i
			}
		}
	}
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// sameHostName reports whether a and b name the same host, whatever their
// ports: host names are case-insensitive.
func sameHostName(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname())
}

// redactHeader returns a copy of h without the headers that may carry a
// credential (credentialName).
func redactHeader(h http.Header) http.Header {
	out := h.Clone()
	for k := range out {
		if credentialName(k) {
			delete(out, k)
		}
	}
	return out
}

// credentialQuery reports whether a query parameter named name may carry a
// credential: by the rule for header names (credentialName), so api_key,
// apiKey, access_token, client_secret, X-Amz-Signature, X-Amz-Credential,
// passwd, pwd, sig, jwt and assertion do, or by being exactly "code", the
// OAuth authorization code (country_code, zipcode and promoCode, whose last
// word is code, are not credentials).
func credentialQuery(name string) bool {
	return strings.EqualFold(name, "code") || credentialName(name)
}

// redactURL returns u as text without what could let a reader of a log or an
// error act as the caller: userinfo is dropped, the values of credential-like
// query parameters (credentialQuery) are replaced, and the fragment is
// dropped whole. The fragment is never sent, so the text still names the
// request that went out; and what it holds has no fixed shape to redact by
// (the OAuth implicit flow puts #access_token=… there, others a bare token).
func redactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := *u
	r.User = nil
	r.Fragment, r.RawFragment = "", ""
	if r.RawQuery != "" {
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			r.RawQuery = "REDACTED"
		} else {
			changed := false
			for k, vs := range q {
				if credentialQuery(k) {
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
