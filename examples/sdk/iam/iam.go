// Package iam is a small SDK for an IAM-style user service, written as a
// template for service SDKs on resilienthttp. It shows what each such SDK
// needs and where it goes:
//
//   - the retry policy shipped as JSON beside the code (policy.json,
//     embedded), decoded strictly once;
//   - the service's error codes mapped to the SDK's own errors, so callers
//     write errors.Is(err, iam.ErrUserNotFound) and never parse bodies;
//   - per-call options that start from the client's policy (Client.Policy),
//     so a call changes one thing and keeps the rest;
//   - an idempotent create: every CreateUser carries an Idempotency-Key,
//     the same on each attempt, so a 500 after the service applied it is
//     repeated without creating the user twice, and the key is on the
//     error for a later repeat;
//   - writes the service does not deduplicate (ChangePassword) are never
//     repeated after a 5xx: the policy's table says so, the SDK does
//     nothing special;
//   - tests on servicetest with one fake clock (iam_test.go).
package iam

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/resilienthttp/resilienthttp"
)

// policyJSON is the SDK's retry policy; see the README's Policy reference
// for its keys.
//
//go:embed policy.json
var policyJSON []byte

// Policy returns the SDK's retry policy, decoded from the embedded
// policy.json. It fails only if that file is broken, which the package's
// tests rule out.
func Policy() (resilienthttp.Policy, error) {
	var p resilienthttp.Policy
	if err := json.Unmarshal(policyJSON, &p); err != nil {
		return p, fmt.Errorf("iam: embedded policy.json: %w", err)
	}
	return p, nil
}

// maxBody bounds the bytes read of a successful response's body.
const maxBody = 1 << 20

// maxPages bounds ListUsers: a service that never stops paging cannot
// keep a caller forever.
const maxPages = 1000

// User is a user of the service.
type User struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email,omitempty"`
	Enabled bool   `json:"enabled"`
}

// Client calls the IAM service. It is safe for concurrent use; make one
// per endpoint and reuse it.
type Client struct {
	endpoint string
	token    string
	http     *resilienthttp.Client
}

// New returns a Client for the service at endpoint (such as
// "https://iam.example.com"), with the SDK's policy and the given options.
func New(endpoint string, opts ...Option) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("iam: endpoint %q: want http(s)://host", endpoint)
	}
	p, err := Policy()
	if err != nil {
		return nil, err
	}
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	httpOpts := append([]resilienthttp.Option{resilienthttp.WithPolicy(p)}, cfg.http...)
	return &Client{
		endpoint: strings.TrimRight(endpoint, "/"),
		token:    cfg.token,
		http:     resilienthttp.New(httpOpts...),
	}, nil
}

// Close closes the idle connections of the client's transport.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// GetUser returns the user with the given id. A user that does not exist
// is ErrUserNotFound.
func (c *Client) GetUser(ctx context.Context, id string, opts ...CallOption) (*User, error) {
	var u User
	if err := c.call(ctx, "GetUser", http.MethodGet, "/v3/users/"+url.PathEscape(id), "", nil, &u, opts); err != nil {
		return nil, err
	}
	return &u, nil
}

// ListUsers returns every user, following the service's pages (at most
// 1000 of them).
func (c *Client) ListUsers(ctx context.Context, opts ...CallOption) ([]User, error) {
	var all []User
	marker := ""
	for range maxPages {
		var page struct {
			Users      []User `json:"users"`
			NextMarker string `json:"next_marker"`
		}
		path := "/v3/users"
		if marker != "" {
			path += "?marker=" + url.QueryEscape(marker)
		}
		if err := c.call(ctx, "ListUsers", http.MethodGet, path, "", nil, &page, opts); err != nil {
			return nil, err
		}
		all = append(all, page.Users...)
		if page.NextMarker == "" || page.NextMarker == marker {
			return all, nil
		}
		marker = page.NextMarker
	}
	return nil, fmt.Errorf("iam: ListUsers: more than %d pages", maxPages)
}

// CreateUserInput is what CreateUser sends.
type CreateUserInput struct {
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	Password string `json:"password,omitempty"`
}

// CreateUser creates a user. It carries an Idempotency-Key, a new random
// one or WithIdempotencyKey's, the same on every attempt: the service
// creates the user at most once per key, so a 5xx or a reset is repeated
// safely. A name in use is ErrUserExists.
func (c *Client) CreateUser(ctx context.Context, in CreateUserInput, opts ...CallOption) (*User, error) {
	var cc callConfig
	for _, o := range opts {
		if o != nil {
			o(&cc)
		}
	}
	if cc.key == "" {
		cc.key = rand.Text() // 128 bits from crypto/rand
	}
	var u User
	if err := c.call(ctx, "CreateUser", http.MethodPost, "/v3/users", cc.key, in, &u, opts); err != nil {
		return nil, err
	}
	return &u, nil
}

// DeleteUser deletes a user; deleting one already gone is ErrUserNotFound.
func (c *Client) DeleteUser(ctx context.Context, id string, opts ...CallOption) error {
	return c.call(ctx, "DeleteUser", http.MethodDelete, "/v3/users/"+url.PathEscape(id), "", nil, nil, opts)
}

// ChangePassword changes a user's password. The service does not
// deduplicate it, so after a 5xx it is not repeated (the change may have
// been applied): the caller learns the outcome first, with GetUser or by
// signing in.
func (c *Client) ChangePassword(ctx context.Context, id, oldPassword, newPassword string, opts ...CallOption) error {
	in := struct {
		Old string `json:"original_password"`
		New string `json:"password"`
	}{oldPassword, newPassword}
	return c.call(ctx, "ChangePassword", http.MethodPost, "/v3/users/"+url.PathEscape(id)+"/password", "", in, nil, opts)
}

// call sends one operation: with key as its Idempotency-Key (empty: none),
// in as its JSON body (nil: none), the answer decoded into out (nil: read
// and dropped).
func (c *Client) call(ctx context.Context, op, method, path, key string, in, out any, opts []CallOption) error {
	var cc callConfig
	for _, o := range opts {
		if o != nil {
			o(&cc)
		}
	}
	if cc.maxAttempts > 0 {
		// From the client's policy, so the SDK's rules stay for this call.
		p := c.http.Policy()
		p.MaxAttempts = cc.maxAttempts
		ctx = resilienthttp.ContextWithPolicy(ctx, p)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("iam: %s: %w", op, err)
		}
		body = bytes.NewReader(b) // replayed on each attempt without copying
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, body)
	if err != nil {
		return fmt.Errorf("iam: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return wrap(op, err)
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("iam: %s: decoding the answer: %w", op, err)
	}
	return nil
}
