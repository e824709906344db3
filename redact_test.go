package resilienthttp_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/resilienthttp/resilienthttp"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// TestCredentialsNeverAppear sends credentials everywhere they travel and
// has the server answer with credential headers, then collects every piece
// of text the client produces about the calls: no credential may be in it.
func TestCredentialsNeverAppear(t *testing.T) {
	const secret = "s3cr3t" // every credential below contains it
	basic := base64.StdEncoding.EncodeToString([]byte("user-s3cr3t:pass-s3cr3t"))
	forbidden := []string{secret, basic}

	leakyHeaders := http.Header{
		"Set-Cookie":      {"session=s3cr3t-cookie; HttpOnly; Secure"},
		"X-Subject-Token": {"s3cr3t-subject-token"},
		"X-Auth-Token":    {"s3cr3t-auth-token"},
	}
	srv := servicetest.NewServer(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	query := "?token=s3cr3t-q1&access_token=s3cr3t-q2&signature=s3cr3t-q3&X-Amz-Signature=s3cr3t-q4&sig=s3cr3t-q5&api_key=s3cr3t-q6&limit=10"
	newRequest := func(t *testing.T, path string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, "http://user-s3cr3t:pass-s3cr3t@"+host+path+query, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", "s3cr3t-h1")
		req.Header.Set("X-Subject-Token", "s3cr3t-h2")
		req.Header.Set("Cookie", "session=s3cr3t-h3")
		req.Header.Set("Proxy-Authorization", "Basic s3cr3t-h4")
		return req
	}

	handlers := map[string]func(io.Writer) slog.Handler{
		"text": func(w io.Writer) slog.Handler {
			return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
		"json": func(w io.Writer) slog.Handler {
			return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
		},
	}
	for name, handler := range handlers {
		t.Run(name, func(t *testing.T) {
			srv.Reset()
			srv.Script("/v3/users",
				servicetest.Step{Status: 502, Header: leakyHeaders},
				servicetest.Step{Status: 503, RetryAfter: "1", Header: leakyHeaders},
				servicetest.Step{Status: 404, Code: "IAM.0003", Message: "user not found", Header: leakyHeaders})
			srv.Script("/v3/reset", servicetest.Step{Fault: servicetest.FaultResetBeforeResponse})
			srv.Script("/v3/redirect", servicetest.Step{Status: 307,
				Header: http.Header{"Location": {"/v3/reset?X-Amz-Signature=s3cr3t-presigned&X-Amz-Credential=s3cr3t-cred"}}})

			var logs, text bytes.Buffer
			events := 0
			c, _ := newClient(t,
				resilienthttp.WithLogger(slog.New(handler(&logs))),
				resilienthttp.WithRetryHook(func(ev resilienthttp.RetryEvent) {
					events++
					fmt.Fprintf(&text, "%+v\n%v\n", ev, ev)
				}))

			// An *APIError after two retries.
			req := newRequest(t, "/v3/users")
			req.Header.Set("Authorization", "Bearer s3cr3t-bearer")
			_, err := c.Do(req)
			apiErr := asAPIError(t, err)
			if apiErr.StatusCode != 404 || apiErr.Attempts != 3 {
				t.Fatalf("got %v, want a 404 after 3 attempts", err)
			}
			fmt.Fprintf(&text, "%s\n%v\n%+v\n%#v\n%s\n%q\n", err.Error(), err, err, err, err, err)
			fmt.Fprintf(&text, "%v\n%+v\n%#v\n%v\n", *apiErr, *apiErr, *apiErr, apiErr.Header)
			for _, h := range []string{"Set-Cookie", "X-Subject-Token", "X-Auth-Token"} {
				if _, ok := apiErr.Header[h]; ok {
					t.Errorf("APIError.Header carries %s", h)
				}
			}
			if apiErr.Header.Get("X-Request-Id") == "" {
				t.Error("APIError.Header lost the harmless headers too")
			}

			// *RequestErrors from transport errors, directly and after a
			// pre-signed redirect.
			for _, path := range []string{"/v3/reset", "/v3/redirect"} {
				_, err := c.Do(newRequest(t, path))
				reqErr := asRequestError(t, err)
				if !errors.Is(err, syscall.ECONNRESET) || reqErr.Attempts != resilienthttp.DefaultMaxAttempts {
					t.Fatalf("%s: got %v, want a reset after %d attempts", path, err, resilienthttp.DefaultMaxAttempts)
				}
				fmt.Fprintf(&text, "%s\n%v\n%+v\n%#v\n%s\n%q\n", err.Error(), err, err, err, err, err)
				fmt.Fprintf(&text, "%v\n%+v\n%#v\n", *reqErr, *reqErr, *reqErr)
			}

			// The credentials did travel, so the test proves redaction.
			var sawAuth, sawQuery bool
			for _, r := range srv.Requests() {
				sawAuth = sawAuth || r.Header.Get("Authorization") == "Basic "+basic || r.Header.Get("Authorization") == "Bearer s3cr3t-bearer"
				sawQuery = sawQuery || r.Query.Get("token") == "s3cr3t-q1" || r.Query.Get("X-Amz-Signature") == "s3cr3t-presigned"
			}
			if !sawAuth || !sawQuery {
				t.Fatalf("server saw Authorization %v, query credentials %v; the test sends them", sawAuth, sawQuery)
			}
			// And the text is real: what it says about the calls is there.
			wantEvents := 2 + 2*(resilienthttp.DefaultMaxAttempts-1)
			if events != wantEvents || strings.Count(logs.String(), "resilienthttp: retrying") != wantEvents {
				t.Errorf("%d retry events and %d log records, want %d each", events, strings.Count(logs.String(), "resilienthttp: retrying"), wantEvents)
			}
			all := text.String() + logs.String()
			for _, want := range []string{"token=REDACTED", "IAM.0003", "connection reset by peer", host} {
				if !strings.Contains(all, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			for _, f := range forbidden {
				if i := strings.Index(all, f); i >= 0 {
					t.Errorf("credential %q leaked: …%s…", f, all[max(0, i-80):min(len(all), i+80)])
				}
			}
		})
	}
}

// credentialHeaders are header names that carry a credential by their
// shape: the client forwards none of them to another host on a redirect and
// keeps none in APIError.Header. Most are real services' names.
var credentialHeaders = []string{
	"Authorization", "Proxy-Authorization", "Authentication", "Cookie", "Cookie2",
	"X-Goog-Api-Key", "Ocp-Apim-Subscription-Key", "Api-Key", "X-Api-Key", "X-Apikey", "X-Functions-Key",
	"Private-Token", "X-Vault-Token", "X-Access-Token", "X-Auth-Token", "X-Subject-Token", "X-Amz-Security-Token",
	"X-Csrf-Token", "X-Csrftoken", "X-Xsrf-Token", "X-Client-Secret", "X-Session-Id", "Signature", "X-Hub-Signature-256",
	"X-Password", "X-Pwd", "X-Sig", "X-Jwt-Assertion", "X-Amz-Server-Side-Encryption-Customer-Key", "X-Hmac",
	"X-Oauth-Client", "X-Api-Key2",
}

// ordinaryHeaders are header names that carry no credential, some of them
// close to the shapes above: the client forwards and keeps them all.
var ordinaryHeaders = []string{
	"Idempotency-Key", "X-Idempotency-Key", "X-Request-Id", "X-Correlation-Id", "Traceparent", "Tracestate",
	"Baggage", "User-Agent", "Accept", "Accept-Language", "Content-Type", "If-None-Match", "Prefer",
	"X-Author", "X-Bypass-Cache", "Keep-Alive-Hint", "X-Signed-Headers", "X-Monkey",
}

// TestAPIErrorHeaderKeepsNoCredentialShapedHeader: a service answers an
// error with headers whose names look like credentials and with ordinary
// ones; APIError.Header keeps exactly the ordinary ones (and the challenge
// of a 401, which carries no credential).
func TestAPIErrorHeaderKeepsNoCredentialShapedHeader(t *testing.T) {
	h := http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}
	for _, k := range append(append([]string(nil), credentialHeaders...), ordinaryHeaders...) {
		h.Set(k, "v-"+k)
	}
	h.Del("Content-Type") // the server's own
	srv := servicetest.NewServer(t)
	srv.Script("/e", servicetest.Step{Status: 401, Header: h})
	c, _ := newClient(t)
	_, err := do(t, c, http.MethodGet, srv.URL+"/e", nil)
	e := asAPIError(t, err)
	for _, k := range credentialHeaders {
		if v, ok := e.Header[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("APIError.Header keeps %s: %q", k, v)
		}
	}
	for _, k := range append([]string{"Www-Authenticate", "X-Request-Id"}, ordinaryHeaders...) {
		if k != "Content-Type" && e.Header.Get(k) == "" {
			t.Errorf("APIError.Header lost %s", k)
		}
	}
}

// TestURLCredentialsNeverAppearInErrors: a call to a URL whose query and
// fragment carry credentials under the names services and OAuth use fails,
// as an *APIError and as an *RequestError; none of the values is in any text
// of the error, of the RetryEvents or of the *RequestError inside
// StandardClient's *url.Error, while the ordinary parameters, some with
// names close to credential ones, are all there as they were.
func TestURLCredentialsNeverAppearInErrors(t *testing.T) {
	secret := url.Values{}
	for _, k := range []string{"pwd", "code", "jwt", "passwd", "pass", "password", "apikey", "api_key", "apiKey",
		"access_token", "refresh_token", "id_token", "accessToken", "assertion", "client_assertion", "client_secret",
		"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "sig", "signature", "auth", "oauth_verifier", "session_id", "key"} {
		secret.Set(k, "s3cr3t-"+k)
	}
	ordinary := url.Values{}
	for k, v := range map[string]string{"country_code": "NL", "zipcode": "1011AB", "postal_code": "1011", "promoCode": "SPRING",
		"limit": "10", "author": "alice", "design": "flat", "keyword": "shoes", "idempotency_key": "k-1",
		"X-Amz-SignedHeaders": "host", "X-Amz-Date": "20250101T000000Z", "monkey": "bonobo"} {
		ordinary.Set(k, v)
	}
	query := secret.Encode() + "&" + ordinary.Encode()
	const fragment = "#access_token=s3cr3t-frag&token_type=bearer&expires_in=3600"

	check := func(t *testing.T, what string, texts ...string) {
		t.Helper()
		all := strings.Join(texts, "\n")
		for k := range secret {
			if strings.Contains(all, secret.Get(k)) {
				t.Errorf("%s carries the value of %s", what, k)
			}
		}
		if strings.Contains(all, "s3cr3t-frag") || strings.Contains(all, "token_type") {
			t.Errorf("%s carries the fragment: %s", what, texts[0])
		}
		for k := range ordinary {
			if want := url.QueryEscape(k) + "=" + url.QueryEscape(ordinary.Get(k)); !strings.Contains(all, want) {
				t.Errorf("%s lacks %s: %s", what, want, texts[0])
			}
		}
	}
	formats := func(err error) []string {
		return []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%s", err)}
	}

	t.Run("APIError", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		srv.Script("/v1/items", servicetest.Step{Status: 404})
		c, _ := newClient(t)
		_, err := do(t, c, http.MethodGet, srv.URL+"/v1/items?"+query+fragment, nil)
		e := asAPIError(t, err)
		check(t, "*APIError", append(formats(err), fmt.Sprintf("%+v", *e), fmt.Sprintf("%#v", *e))...)
		if got := srv.Requests()[0].Query.Get("code"); got != "s3cr3t-code" {
			t.Fatalf("server got code=%q; the test sends the credentials", got)
		}
	})

	t.Run("RequestError", func(t *testing.T) {
		srv := servicetest.NewServer(t)
		u := srv.URL + "/v1/items?" + query + fragment
		srv.Close() // nothing listens: connection refused
		var events []string
		c, _ := newClient(t, resilienthttp.WithoutBreaker(), resilienthttp.WithoutRateLimit(),
			resilienthttp.WithRetryHook(func(ev resilienthttp.RetryEvent) { events = append(events, fmt.Sprintf("%+v", ev)) }))
		_, err := do(t, c, http.MethodGet, u, nil)
		e := asRequestError(t, err)
		if !errors.Is(err, syscall.ECONNREFUSED) || len(events) == 0 {
			t.Fatalf("got %v after %d retries, want connection refused and retries", err, len(events))
		}
		check(t, "*RequestError", append(formats(err), fmt.Sprintf("%+v", *e), fmt.Sprintf("%#v", *e))...)
		check(t, "RetryEvent", events...)

		// Through StandardClient, net/http's *url.Error names the URL as
		// given; the *RequestError inside names it redacted.
		_, err = c.StandardClient().Get(u)
		e = asRequestError(t, err)
		check(t, "*RequestError in *url.Error", e.Method+" "+e.URL+": "+e.Error(), fmt.Sprintf("%+v", *e), fmt.Sprintf("%#v", *e))
	})
}
