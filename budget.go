package resilienthttp

import "sync/atomic"

// RetryBudget limits retries to a host by how its recent attempts went, like
// gRPC's retry throttling: every attempt that fails in a way the policy
// would retry takes a token, every success gives back TokenRatio tokens, and
// retries stop while the host holds MaxTokens/2 tokens or fewer. A host that
// fails everything gets about MaxTokens/2 retries in all, however many calls
// are made, so retries cannot multiply the load on a service that is down
// even before its breaker opens; a host that fails less than
// TokenRatio/(1+TokenRatio) of attempts is not throttled, and MaxTokens is
// large enough that the runs of failures a brownout has by chance do not
// empty it. Retries the server asked for with Retry-After neither take nor
// need tokens.
//
// The zero value is the default: MaxTokens 100, TokenRatio 1.
type RetryBudget struct {
	MaxTokens  float64
	TokenRatio float64
}

func (b RetryBudget) withDefaults() RetryBudget {
	if b.MaxTokens <= 0 {
		b.MaxTokens = 100
	}
	if b.TokenRatio <= 0 {
		b.TokenRatio = 1
	}
	return b
}

// retryTokens is one host's budget, in thousandths of a token so it fits
// an atomic integer.
type retryTokens struct {
	milli      atomic.Int64
	max, ratio int64
}

func newRetryTokens(b RetryBudget) *retryTokens {
	t := &retryTokens{max: int64(b.MaxTokens * 1000), ratio: int64(b.TokenRatio * 1000)}
	t.milli.Store(t.max)
	return t
}

func (t *retryTokens) add(delta int64) int64 {
	for {
		cur := t.milli.Load()
		next := min(max(cur+delta, 0), t.max)
		if t.milli.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// succeeded gives back TokenRatio tokens.
func (t *retryTokens) succeeded() { t.add(t.ratio) }

// failed takes a token.
func (t *retryTokens) failed() { t.add(-1000) }

// allowsRetry reports whether a retry would still be allowed after the
// failure that asks for it has taken its token.
func (t *retryTokens) allowsRetry() bool { return max(t.milli.Load()-1000, 0) > t.max/2 }
