// Command bench measures resilienthttp against the clients Go users reach for
// instead (plain net/http, go-retryablehttp, go-retryablehttp with a
// hand-wired rate limiter and circuit breaker, failsafe-go) in seven
// scenarios, each against a servicetest fake service on 127.0.0.1 that the
// program starts itself.
//
//	go run .                          # every scenario; about 2–3 minutes on 2 cores
//	go run . -scenarios=2,3 -quick    # some scenarios, small counts (CI smoke)
//
// It prints one Markdown table per scenario (per variant), and writes
// results.json and one SVG chart per scenario in charts/.
//
// It is a nested module so the peers never enter the core module's
// dependencies.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is what the flags select.
type config struct {
	scenarios  []int    // scenario ids to run, in order
	contenders []string // contender keys, in table order
	quick      bool
	jsonPath   string // "" writes no JSON
	chartsDir  string // "" writes no charts
	progress   io.Writer
}

func main() {
	var (
		scen   = flag.String("scenarios", "", "comma-separated scenario numbers to run (default: all, 1-7)")
		contrs = flag.String("contenders", "", "comma-separated contenders to run (default: all): "+strings.Join(contenderKeys, ","))
		quick  = flag.Bool("quick", false, "small counts: checks every scenario works, in seconds (CI smoke)")
		out    = flag.String("json", "results.json", "where to write the results as JSON (empty: nowhere)")
		charts = flag.String("charts", "charts", "directory for the SVG charts (empty: none)")
	)
	flag.Parse()
	cfg := config{quick: *quick, jsonPath: *out, chartsDir: *charts, progress: os.Stderr}
	var err error
	if cfg.scenarios, err = parseScenarios(*scen); err != nil {
		fail(err)
	}
	if cfg.contenders, err = parseContenders(*contrs); err != nil {
		fail(err)
	}
	res, err := run(cfg)
	if res != nil {
		writeMarkdown(os.Stdout, res)
		fmt.Printf("\nTotal: %.1f s\n", res.WallSeconds)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// run runs the selected scenarios and writes the JSON and charts.
func run(cfg config) (*Results, error) {
	p := fullParams()
	if cfg.quick {
		p = quickParams()
	}
	if cfg.progress == nil {
		cfg.progress = io.Discard
	}
	res := &Results{Machine: machine(), Quick: cfg.quick}
	for _, k := range cfg.contenders {
		res.Contenders = append(res.Contenders, ContenderInfo{Key: k, Name: contenderNames[k], Config: contenderConfigs[k]})
	}
	start := time.Now()
	for _, s := range scenarios {
		if !slices.Contains(cfg.scenarios, s.id) {
			continue
		}
		title := s.title(p)
		fmt.Fprintf(cfg.progress, "scenario %d: %s ...", s.id, title)
		t0 := time.Now()
		r, err := s.run(p, cfg.contenders)
		if err != nil {
			fmt.Fprintln(cfg.progress)
			return res, fmt.Errorf("scenario %d: %w", s.id, err)
		}
		r.ID, r.Key, r.Title, r.Seconds = s.id, s.key, title, round(time.Since(t0).Seconds(), 2)
		fmt.Fprintf(cfg.progress, " %.1f s\n", r.Seconds)
		res.Scenarios = append(res.Scenarios, r)
	}
	res.WallSeconds = round(time.Since(start).Seconds(), 2)

	if cfg.jsonPath != "" {
		if err := writeJSON(cfg.jsonPath, res); err != nil {
			return res, err
		}
	}
	if cfg.chartsDir != "" {
		if err := os.MkdirAll(cfg.chartsDir, 0o755); err != nil {
			return res, err
		}
		for _, s := range res.Scenarios {
			if s.Chart == nil || len(s.Chart.Bars) == 0 {
				continue
			}
			if err := writeChart(filepath.Join(cfg.chartsDir, s.Key+".svg"), s.Chart); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// parseScenarios reads "2,3" (or "" for all) into scenario ids.
func parseScenarios(s string) ([]int, error) {
	var ids []int
	if strings.TrimSpace(s) == "" {
		for _, sc := range scenarios {
			ids = append(ids, sc.id)
		}
		return ids, nil
	}
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || !slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.id == id }) {
			return nil, fmt.Errorf("unknown scenario %q (want 1-%d)", f, len(scenarios))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// parseContenders reads "nethttp,resilienthttp" (or "" for all) into keys,
// kept in table order.
func parseContenders(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(contenderKeys), nil
	}
	known := append(slices.Clone(contenderKeys), extraContenderKeys...)
	var keys []string
	for _, f := range strings.Split(s, ",") {
		k := strings.TrimSpace(f)
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("unknown contender %q (want some of %s)", k, strings.Join(known, ","))
		}
		keys = append(keys, k)
	}
	slices.SortStableFunc(keys, func(a, b string) int {
		return slices.Index(known, a) - slices.Index(known, b)
	})
	return slices.Compact(keys), nil
}
