package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/resilienthttp/resilienthttp/internal/nginxtest"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// ---- 2n. Rate-limited by a real nginx ----

// launchNginx starts nginx with cfg and returns it with the function that
// stops it, which an interrupted run (live.go) calls too.
func launchNginx(cfg nginxtest.Config) (*nginxtest.Server, func() error, error) {
	ngx, err := nginxtest.Launch(cfg)
	if err != nil {
		return nil, nil, err
	}
	untrack := track(func() { ngx.Close() })
	return ngx, func() error {
		untrack()
		return ngx.Close()
	}, nil
}

// nginxCounts is what nginx's error log says it did with the requests:
// limit_req logs each request it turns away ("limiting requests", at
// limit_req_log_level, error) and each it holds back within the burst
// ("delaying request", a level lower, warn); nginxtest's error_log keeps
// both.
func nginxCounts(log string) (rejected, delayed int) {
	return strings.Count(log, "limiting requests"), strings.Count(log, "delaying request")
}

// nginxTargets are issue 11's targets for resilienthttp behind nginx, by
// variant.
type nginxTarget struct {
	maxWallS          float64 // (a): wall time at most this
	maxRejectedPct    float64 // (a): rejections at most this % of the calls
	maxFailures       int     // (a): calls that failed
	minOKPct          float64 // (b): calls answered 200, at least this %
	maxWallOverIdeal  float64 // (b)
	noBreakerFailures bool    // (b)
}

// met says whether row r (resilienthttp's) meets the target, and how it
// compares on each count.
func (tg nginxTarget) met(r *Row) (bool, string) {
	ok := true
	var parts []string
	check := func(pass bool, s string) {
		mark := "met"
		if !pass {
			mark, ok = "NOT met", false
		}
		parts = append(parts, s+": "+mark)
	}
	if tg.maxWallS > 0 {
		check(fig(r, "wall_s") <= tg.maxWallS, fmt.Sprintf("wall %.2f s ≤ %.1f s", fig(r, "wall_s"), tg.maxWallS))
	}
	if tg.maxRejectedPct > 0 {
		check(fig(r, "rejected_pct_of_calls") <= tg.maxRejectedPct, fmt.Sprintf("%.1f%% rejections ≤ %g%%", fig(r, "rejected_pct_of_calls"), tg.maxRejectedPct))
	}
	if tg.maxWallS > 0 {
		check(int(fig(r, "failures")) <= tg.maxFailures, fmt.Sprintf("%.0f failed ≤ %d", fig(r, "failures"), tg.maxFailures))
	}
	if tg.minOKPct > 0 {
		check(fig(r, "ok_200_pct") >= tg.minOKPct, fmt.Sprintf("%.1f%% answered 200 ≥ %g%%", fig(r, "ok_200_pct"), tg.minOKPct))
	}
	if tg.maxWallOverIdeal > 0 {
		check(fig(r, "wall_over_ideal") <= tg.maxWallOverIdeal, fmt.Sprintf("%.2f× ideal ≤ %.1f×", fig(r, "wall_over_ideal"), tg.maxWallOverIdeal))
	}
	if tg.noBreakerFailures {
		check(fig(r, "breaker_open_failures") == 0, fmt.Sprintf("%.0f breaker-open failures = 0", fig(r, "breaker_open_failures")))
	}
	return ok, strings.Join(parts, "; ")
}

func nginxLimited(p params, keys []string) (*ScenarioResult, error) {
	q := p.rlQuota
	ideal := float64(p.ngxN-q.burst) / q.rps
	variants := []struct {
		name       string
		status     int    // limit_req_status; 0: nginx's default, 503
		retryAfter string // "": none
		target     nginxTarget
	}{
		{"(a) limit_req_status 429, Retry-After: 1", http.StatusTooManyRequests, "1",
			nginxTarget{maxWallS: 6.0, maxRejectedPct: 3, maxFailures: 0}},
		{"(b) nginx's default: 503, no Retry-After", 0, "",
			nginxTarget{minOKPct: 95, maxWallOverIdeal: 1.3, noBreakerFailures: true}},
	}
	tables := make([]*Table, len(variants))
	errs := make([]error, len(variants)*len(keys))
	run := func(vi int) {
		v := variants[vi]
		rejStatus := v.status
		if rejStatus == 0 {
			rejStatus = http.StatusServiceUnavailable
		}
		rows := eachContender(keys, true, func(k string) *Row {
			up := servicetest.New()
			defer up.Close()
			ngx, stop, err := launchNginx(nginxtest.Config{
				Upstream: up.URL, Rate: q.rps, Burst: q.burst, Status: v.status, RetryAfter: v.retryAfter,
			})
			if err != nil {
				errs[vi*len(keys)+slices.Index(keys, k)] = err
				return &Row{Contender: k}
			}
			defer stop()
			c := newContender(k, setup{})
			url := ngx.URL + "/v1/items"
			l := runLoad(p.ngxN, p.ngxWorkers, p.budget, p.perCall, func(ctx context.Context, i int) outcome {
				return c.do(ctx, request{method: http.MethodGet, url: url + "/" + strconv.Itoa(i)})
			})
			c.closeIdle()
			rejected, delayed := nginxCounts(ngx.ErrorLog())
			if err := stop(); err != nil {
				errs[vi*len(keys)+slices.Index(keys, k)] = err
			}
			ok200, breakerFails := 0, 0
			for _, o := range l.outcomes {
				if o.err == nil && o.status == http.StatusOK {
					ok200++
				}
				if breakerOpen(o.err) {
					breakerFails++
				}
			}
			lat := l.latencies()
			okPct := 100 * float64(ok200) / float64(p.ngxN)
			rejPct := 100 * float64(rejected) / float64(p.ngxN)
			breakerCell := "n/a"
			figures := map[string]any{
				"wall_s": round(l.wall.Seconds(), 3), "ideal_s": round(ideal, 3),
				"wall_over_ideal": round(l.wall.Seconds()/ideal, 3),
				"rejected_status": rejStatus, "rejected_received": rejected,
				"rejected_pct_of_calls": round(rejPct, 2),
				"delayed_by_nginx":      delayed, "passed_to_upstream": up.Total(),
				"attempts_at_nginx": up.Total() + rejected,
				"ok_200":            ok200, "ok_200_pct": round(okPct, 2),
				"failures": l.failures(), "not_run": l.notRun,
				"p99_latency_ms": msF(percentile(lat, 99)), "calls": p.ngxN, "goroutines": p.ngxWorkers,
			}
			if hasBreaker[k] {
				breakerCell = strconv.Itoa(breakerFails)
				figures["breaker_open_failures"] = breakerFails
			}
			return &Row{
				Contender: k,
				Cells: []string{contenderNames[k], fmt.Sprintf("%.2f", l.wall.Seconds()), fmt.Sprintf("%.2f×", l.wall.Seconds()/ideal),
					fmt.Sprintf("%d (%.1f%%)", rejected, rejPct), strconv.Itoa(delayed), fmt.Sprintf("%d (%.1f%%)", ok200, okPct),
					strconv.Itoa(l.failures()), breakerCell, strconv.Itoa(l.notRun), ms(percentile(lat, 99))},
				Figures: figures,
			}
		})
		t := &Table{
			Variant: v.name,
			Columns: []string{"contender", "wall s", "× ideal", fmt.Sprintf("%ds received (%% of calls)", rejStatus), "delayed by nginx",
				"answered 200", "failures", "breaker-open failures", "not run", "p99 latency ms"},
			Rows: rows,
		}
		if rh := row(t, "resilienthttp"); rh != nil && rh.Figures != nil {
			met, how := v.target.met(rh)
			rh.Figures["issue_target_met"] = met
			t.Note = "Issue 11's target for resilienthttp: " + how + "."
		}
		tables[vi] = t
	}
	// Both variants at once, every contender against its own nginx and
	// upstream: the figures are set by nginx's rate and the clients' waits.
	var wg sync.WaitGroup
	for vi := range variants {
		spawn(&wg, func() { run(vi) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	last := tables[len(tables)-1]
	last.Note = strings.TrimSpace(last.Note + " " + fmt.Sprintf("A real nginx (limit_req_zone rate=%gr/s, limit_req burst=%d, without nodelay) in front of a servicetest upstream that answers 200; "+
		"%d GETs from %d goroutines, nobody told the quota; ideal wall time (%d−%d)/%g = %.1f s. "+
		"Without nodelay nginx holds up to %d requests over the rate and lets them through at the rate (\"delayed by nginx\"), and answers any beyond that at once with the rejection. "+
		"Rejections are counted from nginx's error log, one \"limiting requests\" line each; failures are calls that ended in an error or a status ≥ 400; "+
		"breaker-open failures are calls refused by the contender's own circuit breaker (n/a: it has none).",
		q.rps, q.burst, p.ngxN, p.ngxWorkers, p.ngxN, q.burst, q.rps, ideal, q.burst))
	return &ScenarioResult{Tables: tables}, nil
}
