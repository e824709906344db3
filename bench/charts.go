package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// The charts are built from a scenario's tables, by the figures' names, so
// that they can be drawn again from a results.json (-charts-from) without
// running anything. Each plots the figure where the contenders differ, and
// says in its title what the figure shows.

// chartSpec returns the chart of scenario s, or nil when its figures cannot
// make one (net/http did not run for the happy path's ratios, say). quick
// marks the title of a -quick run's chart, so its figures are not mistaken
// for real ones.
func chartSpec(s *ScenarioResult, quick bool) *ChartSpec {
	build, ok := chartBuilders[s.Key]
	if !ok || len(s.Tables) == 0 || slices.ContainsFunc(s.Tables, func(t *Table) bool { return len(t.Rows) == 0 }) {
		return nil
	}
	spec := build(s)
	if spec == nil {
		return nil
	}
	spec.Panels = slices.DeleteFunc(spec.Panels, func(p *Panel) bool { return len(p.Bars) == 0 })
	if len(spec.Panels) == 0 {
		return nil
	}
	if quick {
		spec.Title = "[-quick run] " + spec.Title
	}
	return spec
}

var chartBuilders = map[string]func(*ScenarioResult) *ChartSpec{
	"happy-path":           happyPathChart,
	"rate-limited":         rateLimitedChart,
	"hard-down":            hardDownChart,
	"brownout":             brownoutChart,
	"duplicate-writes":     duplicateWritesChart,
	"retry-after-deadline": retryAfterChart,
	"large-upload":         largeUploadChart,
	"nginx-rate-limited":   nginxLimitedChart,
	"fleet":                fleetChart,
}

// groupNames label a scenario's variants (its tables, in order) in its chart.
var groupNames = map[string][]string{
	"rate-limited":         {"(a) peers told the quota", "(b) nobody told", "(c) + RateLimit headers"},
	"hard-down":            {"503 to everything", "500 to everything"},
	"retry-after-deadline": {"503 + Retry-After: 30", "429 + Retry-After: 30"},
	"large-upload":         {"body: *os.File", "body: plain io.Reader"},
	"nginx-rate-limited":   {"(a) 429 + Retry-After: 1", "(b) nginx's default 503"},
}

func groupName(s *ScenarioResult, i int) string {
	if g := groupNames[s.Key]; i < len(g) {
		return g[i]
	}
	return s.Tables[i].Variant
}

// fig is a row's figure by name as a number: an int from a run, a float64
// from results.json; NaN when the row has no such figure.
func fig(r *Row, name string) float64 {
	if r == nil {
		return math.NaN()
	}
	switch v := r.Figures[name].(type) {
	case float64:
		return v
	case int:
		return float64(v)
	case int64:
		return float64(v)
	}
	return math.NaN()
}

// row is contender k's row of t, or nil.
func row(t *Table, k string) *Row {
	for _, r := range t.Rows {
		if r.Contender == k {
			return r
		}
	}
	return nil
}

// bars makes one bar per row of t that has the figure, in the rows' order.
func bars(t *Table, group, name string, text func(float64) string) []Bar {
	var out []Bar
	for _, r := range t.Rows {
		v := fig(r, name)
		if math.IsNaN(v) {
			continue
		}
		out = append(out, Bar{Group: group, Contender: r.Contender, Value: v, Text: text(v)})
	}
	return out
}

// worstPeer is the contender other than resilienthttp and net/http (which
// does not retry, so is no peer in what a retrying client does) with the
// highest figure in t, with that figure; "" when none has it.
func worstPeer(t *Table, name string) (string, float64) {
	best, v := "", math.Inf(-1)
	for _, r := range t.Rows {
		if r.Contender == "resilienthttp" || r.Contender == "nethttp" {
			continue
		}
		if f := fig(r, name); f > v {
			best, v = r.Contender, f
		}
	}
	return best, v
}

// Value formats for the labels above the bars.

func fmtTimes(v float64) string {
	if v >= 10 {
		return fmt.Sprintf("%.0f×", v)
	}
	return fmt.Sprintf("%.2f×", v)
}

// fmtTimes1 is fmtTimes with one decimal from 1 up, where bars are narrow.
func fmtTimes1(v float64) string {
	if v < 1 {
		return fmtTimes(v)
	}
	if v >= 10 {
		return fmt.Sprintf("%.0f×", v)
	}
	return fmt.Sprintf("%.1f×", v)
}

func fmtCount(v float64) string { return fmt.Sprintf("%.0f", v) }

func fmtPerCall(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 0.1:
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtMs(v float64) string { return fmtSeconds(v / 1000) }

func fmtSeconds(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 0.01:
		return fmt.Sprintf("%.1f ms", v*1000)
	case v < 1:
		return fmt.Sprintf("%.0f ms", v*1000)
	case v < 10:
		return fmt.Sprintf("%.1f s", v)
	}
	return fmt.Sprintf("%.0f s", v)
}

func fmtMiB(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.1f MiB", v)
	}
	return fmt.Sprintf("%.0f MiB", v)
}

// Axis tick formats.

func tickSeconds(v float64) string {
	switch {
	case v < 1e-3:
		return trimFloat(v*1e6) + " µs"
	case v < 1:
		return trimFloat(v*1e3) + " ms"
	}
	return trimFloat(v) + " s"
}

func tickMs(v float64) string { return tickSeconds(v / 1000) }

func tickTimes(v float64) string { return trimFloatN(v, 3) + "×" }

// ---- the scenarios' charts ----

func happyPathChart(s *ScenarioResult) *ChartSpec {
	t := s.Tables[0]
	if row(t, "nethttp") == nil {
		return nil // the ratios are to net/http
	}
	rh := row(t, "resilienthttp")
	goroutines := fig(t.Rows[0], "par_goroutines")
	par := fmt.Sprintf("%.0f goroutines", goroutines)
	p := &Panel{
		Title:    "Time per call, × net/http's",
		Better:   "lower is better",
		Ref:      1,
		RefLabel: "net/http",
		Tick:     tickTimes,
	}
	p.Bars = append(bars(t, "sequential", "seq_ratio_to_nethttp", fmtTimes), bars(t, par, "par_ratio_to_nethttp", fmtTimes)...)
	var conns []string
	for _, r := range t.Rows {
		conns = append(conns, fmtCount(fig(r, "par_new_conns_per_1000_calls")))
	}
	p.Note = fmt.Sprintf("New connections per 1000 calls from %s, in legend order: %s (the idle pools' sizes)", par, strings.Join(conns, ", "))
	title := "Happy path: time per call against net/http's"
	if rh != nil {
		title = fmt.Sprintf("Happy path: resilienthttp takes %.2f× net/http's time per call in sequence, %.2f× from %.0f goroutines",
			fig(rh, "seq_ratio_to_nethttp"), fig(rh, "par_ratio_to_nethttp"), goroutines)
	}
	return &ChartSpec{Title: title, Panels: []*Panel{p}}
}

// wallPanel plots wall time as a multiple of the ideal, for the
// rate-limited scenarios.
func wallPanel(first *Row) *Panel {
	return &Panel{
		Title:    fmt.Sprintf("Wall time for %.0f GETs, × the ideal %.1f s", fig(first, "calls"), fig(first, "ideal_s")),
		Better:   "lower is better",
		Ref:      1,
		RefLabel: "ideal",
		Tick:     tickTimes,
	}
}

func rateLimitedChart(s *ScenarioResult) *ChartSpec {
	first := s.Tables[0].Rows[0]
	wall := wallPanel(first)
	n429 := &Panel{Title: "429 responses received", Better: "lower is better", Tick: trimFloat}
	rhLo, rhHi := math.Inf(1), math.Inf(-1)
	peerLo, peerHi := math.Inf(1), math.Inf(-1) // peers not told the quota
	failLo, failHi := math.Inf(1), math.Inf(-1)
	for i, t := range s.Tables {
		g := groupName(s, i)
		wall.Bars = append(wall.Bars, bars(t, g, "wall_over_ideal", fmtTimes1)...)
		n429.Bars = append(n429.Bars, bars(t, g, "status_429_received", fmtCount)...)
		if rh := row(t, "resilienthttp"); rh != nil {
			rhLo, rhHi = math.Min(rhLo, fig(rh, "wall_over_ideal")), math.Max(rhHi, fig(rh, "wall_over_ideal"))
		}
		for _, r := range t.Rows {
			if r.Contender != "resilienthttp" && r.Contender != "nethttp" && r.Figures["told_quota"] != true {
				v := fig(r, "wall_over_ideal")
				peerLo, peerHi = math.Min(peerLo, v), math.Max(peerHi, v)
			}
		}
		if nh := row(t, "nethttp"); nh != nil {
			f := 100 * fig(nh, "failures") / fig(nh, "calls")
			failLo, failHi = math.Min(failLo, f), math.Max(failHi, f)
		}
	}
	if !math.IsInf(failLo, 0) {
		wall.Note = fmt.Sprintf("net/http does not retry: it is quick because %s of its calls fail", pctRange(failLo, failHi))
	}
	title := "Rate-limited server: wall time against the ideal, and 429s"
	if !math.IsInf(rhLo, 0) && !math.IsInf(peerLo, 0) {
		title = fmt.Sprintf("Rate limit: not told the quota, resilienthttp takes %s the ideal time, the peers %s",
			timesRange(rhLo, rhHi), timesRange(peerLo, peerHi))
	}
	return &ChartSpec{Title: title, Panels: []*Panel{wall, n429}}
}

func hardDownChart(s *ScenarioResult) *ChartSpec {
	first := s.Tables[0].Rows[0]
	calls := fig(first, "calls")
	att := &Panel{Title: fmt.Sprintf("Requests reaching the server per call, %.0f GETs", calls), Better: "lower is better", Tick: trimFloat}
	p99 := &Panel{Title: "p99 time until the call fails", Better: "lower is better", Tick: tickMs}
	for i, t := range s.Tables {
		g := groupName(s, i)
		att.Bars = append(att.Bars, bars(t, g, "attempts_per_call", fmtPerCall)...)
		p99.Bars = append(p99.Bars, bars(t, g, "p99_time_to_fail_ms", fmtMs)...)
	}
	title := "Hard-down service: requests per call and time to fail"
	t := s.Tables[0]
	if rh := row(t, "resilienthttp"); rh != nil {
		if k, v := worstPeer(t, "attempts_at_server"); k != "" {
			title = fmt.Sprintf("Hard down: resilienthttp sends %.0f requests for %.0f calls, %s %.0f",
				fig(rh, "attempts_at_server"), calls, chartNames[k], v)
			if nh := row(t, "nethttp"); nh != nil {
				title += fmt.Sprintf(" (net/http, no retries: %.0f)", fig(nh, "attempts_at_server"))
			}
		}
	}
	return &ChartSpec{Title: title, Panels: []*Panel{att, p99}}
}

func brownoutChart(s *ScenarioResult) *ChartSpec {
	t := s.Tables[0]
	p := &Panel{
		Title:  fmt.Sprintf("TCP connections the server accepted, %.0f GETs", fig(t.Rows[0], "calls")),
		Better: "lower is better",
		Tick:   trimFloat,
	}
	for _, r := range t.Rows {
		v := fig(r, "conns_accepted")
		if math.IsNaN(v) {
			continue
		}
		note := fmt.Sprintf("%.1f%% ok", fig(r, "success_rate_pct"))
		if open := fig(r, "conns_open_after_close_idle"); open > 0 {
			note += fmt.Sprintf("\n%.0f left open", open)
		}
		p.Bars = append(p.Bars, Bar{Contender: r.Contender, Value: v, Text: fmtCount(v), Note: note})
	}
	p.Note = "under each name: the calls that succeeded, and connections still open after CloseIdleConnections"
	title := "Brownout (30% 5xx): TCP connections opened"
	if rh := row(t, "resilienthttp"); rh != nil {
		if k, v := worstPeer(t, "conns_accepted"); k != "" {
			title = fmt.Sprintf("Brownout: resilienthttp opens %.0f connections, %s %.0f", fig(rh, "conns_accepted"), chartNames[k], v)
			if open := fig(row(t, k), "conns_open_after_close_idle"); open > 0 {
				title += fmt.Sprintf(" and leaves %.0f of them open", open)
			}
		}
	}
	return &ChartSpec{Title: title, Panels: []*Panel{p}}
}

func duplicateWritesChart(s *ScenarioResult) *ChartSpec {
	t := s.Tables[0]
	calls := fig(t.Rows[0], "calls")
	p := &Panel{
		Title:  fmt.Sprintf("Orders committed twice or more, %.0f POSTs", calls),
		Better: "lower is better",
		Tick:   trimFloat,
		Note:   "failed: calls the caller was told failed, though the server did commit them",
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var dupers []string
	for _, r := range t.Rows {
		v := fig(r, "duplicate_commits")
		if math.IsNaN(v) {
			continue
		}
		p.Bars = append(p.Bars, Bar{Contender: r.Contender, Value: v, Text: fmtCount(v),
			Note: fmt.Sprintf("failed: %.0f", fig(r, "reported_failed_but_committed"))})
		if v > 0 && r.Contender != "resilienthttp" {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			dupers = append(dupers, r.Contender)
		}
	}
	title := "Duplicate writes: orders committed twice"
	if rh := row(t, "resilienthttp"); rh != nil && len(dupers) > 0 {
		who := chartNames[dupers[0]]
		if len(dupers) > 1 {
			who = fmt.Sprintf("the %d peers that retry a POST", len(dupers))
		}
		title = fmt.Sprintf("Duplicate writes: resilienthttp commits %.0f orders twice; %s, %s of %.0f",
			fig(rh, "duplicate_commits"), who, countRange(lo, hi), calls)
	}
	return &ChartSpec{Title: title, Panels: []*Panel{p}}
}

func retryAfterChart(s *ScenarioResult) *ChartSpec {
	deadline := fig(s.Tables[0].Rows[0], "deadline_s")
	p := &Panel{
		Title:    fmt.Sprintf("Time until the call returns, under a %s deadline", tickSeconds(deadline)),
		Better:   "lower is better",
		Ref:      deadline,
		RefLabel: "deadline",
		Tick:     tickSeconds,
	}
	rhMax := math.Inf(-1)
	waiters := map[string]bool{}
	for i, t := range s.Tables {
		p.Bars = append(p.Bars, bars(t, groupName(s, i), "time_to_return_s", fmtSeconds)...)
		for _, r := range t.Rows {
			v := fig(r, "time_to_return_s")
			if r.Contender == "resilienthttp" {
				rhMax = math.Max(rhMax, v)
			} else if v >= 0.9*deadline {
				waiters[r.Contender] = true
			}
		}
	}
	title := "Retry-After: 30 under a deadline: time until the call returns"
	if !math.IsInf(rhMax, 0) && len(waiters) > 0 {
		title = fmt.Sprintf("Retry-After: 30 under a %s deadline: resilienthttp returns in %s, %d peers sleep until the deadline",
			tickSeconds(deadline), fmtSeconds(rhMax), len(waiters))
	}
	return &ChartSpec{Title: title, Panels: []*Panel{p}}
}

func largeUploadChart(s *ScenarioResult) *ChartSpec {
	mib := fig(s.Tables[0].Rows[0], "upload_mib")
	p := &Panel{
		Title:    fmt.Sprintf("Peak heap growth during a %.0f MiB upload answered 408 once", mib),
		Better:   "lower is better",
		Ref:      mib,
		RefLabel: "file size",
		Tick:     trimFloat,
	}
	var retried []string
	for i, t := range s.Tables {
		p.Bars = append(p.Bars, bars(t, groupName(s, i), "peak_heap_growth_mib", fmtMiB)...)
		for _, r := range t.Rows {
			if fig(r, "attempts_at_server") > 1 && i == 0 {
				retried = append(retried, chartNames[r.Contender])
			}
		}
	}
	p.Title += ", MiB"
	if len(retried) > 0 {
		p.Note = fmt.Sprintf("only %s retries the 408 (from the *os.File); the others return it", strings.Join(retried, " and "))
	}
	title := fmt.Sprintf("%.0f MiB upload: peak heap growth", mib)
	last := s.Tables[len(s.Tables)-1]
	if rh := row(last, "resilienthttp"); rh != nil && len(s.Tables) > 1 {
		if k, v := worstPeer(last, "peak_heap_growth_mib"); k != "" && v > mib/2 {
			n := 0
			for _, r := range last.Rows {
				if r.Contender != "resilienthttp" && fig(r, "peak_heap_growth_mib") > mib/2 {
					n++
				}
			}
			who := chartNames[k]
			if n > 1 {
				who = fmt.Sprintf("%d peers", n)
			}
			title = fmt.Sprintf("%.0f MiB upload from a plain io.Reader: %s buffer it (%s of heap), resilienthttp %s",
				mib, who, fmtMiB(v), fmtMiB(fig(rh, "peak_heap_growth_mib")))
		}
	}
	return &ChartSpec{Title: title, Panels: []*Panel{p}}
}

// pctRange is "92%" or "92–93%".
func pctRange(lo, hi float64) string {
	if math.Round(lo) == math.Round(hi) {
		return fmt.Sprintf("%.0f%%", lo)
	}
	return fmt.Sprintf("%.0f–%.0f%%", lo, hi)
}

// timesRange is "1.5×" or "1.0–1.5×".
func timesRange(lo, hi float64) string {
	if fmt.Sprintf("%.1f", lo) == fmt.Sprintf("%.1f", hi) {
		return fmt.Sprintf("%.1f×", lo)
	}
	return fmt.Sprintf("%.1f–%.1f×", lo, hi)
}

// countRange is "214" or "213–216".
func countRange(lo, hi float64) string {
	if lo == hi {
		return fmt.Sprintf("%.0f", lo)
	}
	return fmt.Sprintf("%.0f–%.0f", lo, hi)
}

func nginxLimitedChart(s *ScenarioResult) *ChartSpec {
	first := s.Tables[0].Rows[0]
	wall := wallPanel(first)
	ok := &Panel{Title: "Calls answered 200, % of the calls", Better: "higher is better", Unit: "%", Tick: func(v float64) string { return trimFloat(v) + "%" }}
	rej := &Panel{Title: "Rejections received from nginx (429s in (a), 503s in (b))", Better: "lower is better", Tick: trimFloat}
	rhRej, peerRej := span{}, span{}
	failing := map[string][]string{} // contender: "(a) 92%"
	var failers []string
	for i, t := range s.Tables {
		g := groupName(s, i)
		wall.Bars = append(wall.Bars, bars(t, g, "wall_over_ideal", fmtTimes1)...)
		ok.Bars = append(ok.Bars, bars(t, g, "ok_200_pct", fmtPct)...)
		rej.Bars = append(rej.Bars, bars(t, g, "rejected_received", fmtCount)...)
		for _, r := range t.Rows {
			switch {
			case r.Contender == "resilienthttp":
				rhRej.add(fig(r, "rejected_received"))
			case r.Contender != "nethttp" && fig(r, "ok_200_pct") >= 50:
				// A peer whose breaker opened draws few rejections by
				// failing its calls instead; it is not counted here.
				peerRej.add(fig(r, "rejected_received"))
			}
			if f := fig(r, "failures") / fig(r, "calls"); f > 0.5 {
				if failing[r.Contender] == nil {
					failers = append(failers, r.Contender)
				}
				failing[r.Contender] = append(failing[r.Contender], fmt.Sprintf("%s %.0f%%", strings.Fields(g)[0], 100*f))
			}
		}
	}
	if len(failers) > 0 {
		var parts []string
		for _, k := range failers {
			parts = append(parts, chartNames[k]+" "+strings.Join(failing[k], ", "))
		}
		wall.Note = "quick because their calls fail: " + strings.Join(parts, "; ")
	}
	title := "Behind a real nginx limit_req: wall time, calls answered, rejections"
	if rhRej.ok() && peerRej.ok() {
		title = fmt.Sprintf("Behind nginx: resilienthttp draws %s rejections per %.0f calls, the other retrying clients %s",
			countRange(rhRej.lo, rhRej.hi), fig(first, "calls"), countRange(peerRej.lo, peerRej.hi))
	}
	return &ChartSpec{Title: title, Panels: []*Panel{wall, ok, rej}}
}

func fleetChart(s *ScenarioResult) *ChartSpec {
	t := s.Tables[0]
	first := t.Rows[0]
	wall := &Panel{
		Title:    fmt.Sprintf("Wall time of each run, last of %.0f processes, × the ideal %.1f s", fig(first, "processes"), fig(first, "ideal_s")),
		Better:   "lower is better",
		Ref:      fleetMaxWallOverIdeal,
		RefLabel: fmt.Sprintf("target %g×", fleetMaxWallOverIdeal),
		Tick:     tickTimes,
	}
	n429 := &Panel{Title: "429 responses received in each run", Better: "lower is better", Tick: trimFloat}
	if calls := fig(first, "calls_per_run"); calls > 0 {
		n429.Ref, n429.RefLabel = calls*fleetMax429Pct/100, fmt.Sprintf("target %g%%", fleetMax429Pct)
		n429.Title = fmt.Sprintf("429 responses received in each run of %.0f calls", calls)
	}
	runs := 0
	for _, r := range t.Rows {
		runs = max(runs, len(figList(r, "run_wall_over_ideal")))
	}
	var failing []string
	for i := range runs {
		g := fmt.Sprintf("run %d", i+1)
		for _, r := range t.Rows {
			over, n := figList(r, "run_wall_over_ideal"), figList(r, "run_429s")
			if i < len(over) {
				wall.Bars = append(wall.Bars, Bar{Group: g, Contender: r.Contender, Value: over[i], Text: fmtTimes1(over[i])})
			}
			if i < len(n) {
				n429.Bars = append(n429.Bars, Bar{Group: g, Contender: r.Contender, Value: n[i], Text: fmtCount(n[i])})
			}
		}
	}
	for _, r := range t.Rows {
		if f := fig(r, "failures") / (fig(r, "runs") * fig(r, "calls_per_run")); f > 0.5 {
			failing = append(failing, fmt.Sprintf("%s %.0f%%", chartNames[r.Contender], 100*f))
		}
	}
	if len(failing) > 0 {
		wall.Note = "quick because its calls fail: " + strings.Join(failing, ", ")
	}
	if rh := row(t, "resilienthttp"); rh != nil {
		if peers := len(t.Rows) - 1; peers > 0 {
			wall.Note = strings.TrimPrefix(wall.Note+fmt.Sprintf("; resilienthttp ran %.0f times, each peer %d", fig(rh, "runs"), len(figList(t.Rows[0], "run_wall_over_ideal"))), "; ")
		}
	}
	title := "A fleet of processes sharing one quota: wall time and 429s"
	if rh := row(t, "resilienthttp"); rh != nil {
		over, pct := span{}, span{}
		for _, v := range figList(rh, "run_wall_over_ideal") {
			over.add(v)
		}
		for _, v := range figList(rh, "run_429_pct_of_calls") {
			pct.add(v)
		}
		if over.ok() {
			title = fmt.Sprintf("%.0f processes, one quota: resilienthttp takes %s the ideal in %.0f runs with %s 429s",
				fig(rh, "processes"), timesRange(over.lo, over.hi), fig(rh, "runs"), pctRange1(pct.lo, pct.hi))
			peers := span{}
			for _, r := range t.Rows {
				if r.Contender != "nethttp" && !strings.HasPrefix(r.Contender, "resilienthttp") {
					peers.add(fig(r, "wall_over_ideal_max"))
				}
			}
			if peers.ok() {
				title += fmt.Sprintf("; retrying peers %s", timesRange(peers.lo, peers.hi))
			}
		}
	}
	return &ChartSpec{Title: title, Panels: []*Panel{wall, n429}}
}

// span is the range of some figures.
type span struct {
	lo, hi float64
	n      int
}

func (s *span) add(v float64) {
	if math.IsNaN(v) {
		return
	}
	if s.n == 0 {
		s.lo, s.hi = v, v
	}
	s.lo, s.hi, s.n = math.Min(s.lo, v), math.Max(s.hi, v), s.n+1
}

// ok says whether the span has any figure.
func (s span) ok() bool { return s.n > 0 }

// fmtPct is a percentage with one decimal, but 100% as it is.
func fmtPct(v float64) string {
	if v >= 100 {
		return "100%"
	}
	return fmt.Sprintf("%.1f%%", math.Floor(v*10)/10)
}

// pctRange1 is "1.8%" or "1.8–2.6%".
func pctRange1(lo, hi float64) string {
	if fmt.Sprintf("%.1f", lo) == fmt.Sprintf("%.1f", hi) {
		return fmt.Sprintf("%.1f%%", lo)
	}
	return fmt.Sprintf("%.1f–%.1f%%", lo, hi)
}
