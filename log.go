package resilienthttp

import (
	"context"
	"errors"
	"log/slog"
)

// logObserver is the logger of WithLogger as one consumer of the client's
// events: retries, give-ups, limiter waits and budget refusals at debug
// level, circuit-breaker state changes at info (warn when one opens). The
// events carry redacted URLs only, so the logs do too.
func logObserver(l *slog.Logger) Observer {
	return Observer{
		Retry: func(ctx context.Context, ev RetryEvent) {
			l.LogAttrs(ctx, slog.LevelDebug, "resilienthttp: retrying",
				slog.String("method", ev.Method), slog.String("url", ev.URL),
				slog.Int("attempt", ev.Attempt), slog.Int("status", ev.Status),
				slog.Any("error", ev.Err), slog.Duration("retry_after", ev.RetryAfter), slog.Duration("wait", ev.Wait))
		},
		CallEnd: func(ctx context.Context, e CallEnd) {
			// A call that failed: one that ended with an error status, or
			// without a response. A 2xx error document (WithErrorsIn2xx)
			// is not a give-up.
			if e.Reason == "" || e.Status > 0 && e.Status < 400 {
				return
			}
			var cause error
			if reqErr := (*RequestError)(nil); errors.As(e.Err, &reqErr) {
				cause = reqErr.Err
			}
			l.LogAttrs(ctx, slog.LevelDebug, "resilienthttp: giving up",
				slog.String("method", e.Method), slog.String("url", e.URL),
				slog.Int("attempts", e.Attempts), slog.Int("status", e.Status),
				slog.String("reason", string(e.Reason)), slog.Any("error", cause))
		},
		LimiterWait: func(ctx context.Context, e LimiterWait) {
			l.LogAttrs(ctx, slog.LevelDebug, "resilienthttp: waited for the rate limiter",
				slog.String("host", e.Host), slog.String("reason", e.Reason.String()), slog.Duration("wait", e.Wait))
		},
		BudgetRefused: func(ctx context.Context, e BudgetRefused) {
			l.LogAttrs(ctx, slog.LevelDebug, "resilienthttp: retry budget refused a retry",
				slog.String("method", e.Method), slog.String("url", e.URL), slog.String("host", e.Host),
				slog.Int("attempt", e.Attempt), slog.Int("status", e.Status), slog.Any("error", e.Err))
		},
		BreakerChange: func(e BreakerChange) {
			level := slog.LevelInfo
			if e.To == BreakerOpen {
				level = slog.LevelWarn
			}
			l.LogAttrs(context.Background(), level, "resilienthttp: circuit breaker state change",
				slog.String("host", e.Host), slog.String("from", e.From.String()), slog.String("to", e.To.String()))
		},
	}
}
