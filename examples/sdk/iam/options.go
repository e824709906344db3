package iam

import (
	"github.com/resilienthttp/resilienthttp"
)

// An Option configures a Client in New.
type Option func(*config)

type config struct {
	token string
	http  []resilienthttp.Option
}

// WithToken sets the token sent as X-Auth-Token on every request. The
// library keeps it out of errors and logs.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithHTTPOptions passes options to the resilienthttp.Client underneath,
// after the SDK's own (its policy): a transport, a logger, a retry hook,
// and in tests a fake clock (resilienthttp.WithClock(servicetest.NewClock(…))).
func WithHTTPOptions(opts ...resilienthttp.Option) Option {
	return func(c *config) { c.http = append(c.http, opts...) }
}

// A CallOption changes one call.
type CallOption func(*callConfig)

type callConfig struct {
	key         string
	maxAttempts int
}

// WithIdempotencyKey makes CreateUser send key as its Idempotency-Key
// instead of a new random one: pass the IdempotencyKey of the *Error of a
// create that failed to repeat it without creating the user twice. Other
// operations ignore it.
func WithIdempotencyKey(key string) CallOption { return func(c *callConfig) { c.key = key } }

// WithMaxAttempts bounds the attempts of one call, the first included: 1
// sends it once. The rest of the SDK's policy stays. n < 1 means the
// policy's.
func WithMaxAttempts(n int) CallOption { return func(c *callConfig) { c.maxAttempts = n } }
