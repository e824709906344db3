// Command bench measures resilienthttp against the clients Go users reach for
// instead (plain net/http, go-retryablehttp, go-retryablehttp with a
// hand-wired rate limiter and circuit breaker, failsafe-go) in nine
// scenarios, each against a servicetest fake service on 127.0.0.1 that the
// program starts itself: behind a real nginx (scenario 2n; the Debian
// package, installed by .ci/run), or called by several copies of this
// program at once (scenario 8, which starts them with -fleet-child).
//
//	go run .                          # every scenario; about 3 minutes on 2 cores
//	go run . -scenarios=2,2n,8 -quick # some scenarios, small counts (CI smoke)
//	go run . -charts-from=results.json -png=/tmp/charts   # redraw the charts only
//
// It prints one Markdown table per scenario (per variant), and writes
// results.json and one SVG chart per scenario in charts/. -charts-from draws
// the charts again from a results.json without running anything, and -png
// also renders each chart to a PNG 800 px wide with rsvg-convert (Debian:
// librsvg2-bin), to look at them as a README reader sees them.
//
// It is a nested module so the peers never enter the core module's
// dependencies.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// config is what the flags select.
type config struct {
	scenarios  []string // scenario ids to run, in order
	contenders []string // contender keys, in table order
	quick      bool
	jsonPath   string // "" writes no JSON
	chartsDir  string // "" writes no charts
	pngDir     string // "" renders no PNGs of the charts
	progress   io.Writer
}

func main() {
	runFleetChild() // scenario 8's child processes are this program
	var (
		scen   = flag.String("scenarios", "", "comma-separated scenarios to run (default: all): "+strings.Join(scenarioIDs(), ","))
		contrs = flag.String("contenders", "", "comma-separated contenders to run (default: all): "+strings.Join(contenderKeys, ","))
		quick  = flag.Bool("quick", false, "small counts: checks every scenario works, in seconds (CI smoke)")
		out    = flag.String("json", "results.json", "where to write the results as JSON (empty: nowhere)")
		charts = flag.String("charts", "charts", "directory for the SVG charts (empty: none)")
		from   = flag.String("charts-from", "", "run nothing: draw the charts from this results.json into -charts")
		png    = flag.String("png", "", "also render each chart to a PNG 800 px wide in this directory, with rsvg-convert")
	)
	flag.Parse()
	cfg := config{quick: *quick, jsonPath: *out, chartsDir: *charts, pngDir: *png, progress: os.Stderr}
	if *from != "" {
		if err := chartsFrom(*from, cfg); err != nil {
			fail(err)
		}
		return
	}
	var err error
	if cfg.scenarios, err = parseScenarios(*scen); err != nil {
		fail(err)
	}
	if cfg.contenders, err = parseContenders(*contrs); err != nil {
		fail(err)
	}
	stopOnSignal()
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
		fmt.Fprintf(cfg.progress, "scenario %s: %s ...", s.id, title)
		t0 := time.Now()
		r, err := s.run(p, cfg.contenders)
		if err != nil {
			fmt.Fprintln(cfg.progress)
			return res, fmt.Errorf("scenario %s: %w", s.id, err)
		}
		r.ID, r.Key, r.Title, r.Seconds = scenarioID(s.id), s.key, title, round(time.Since(t0).Seconds(), 2)
		fmt.Fprintf(cfg.progress, " %.1f s\n", r.Seconds)
		res.Scenarios = append(res.Scenarios, r)
	}
	res.WallSeconds = round(time.Since(start).Seconds(), 2)

	if cfg.jsonPath != "" {
		if err := writeJSON(cfg.jsonPath, res); err != nil {
			return res, err
		}
	}
	return res, writeCharts(cfg, res)
}

// writeCharts draws each scenario's chart into cfg.chartsDir, and renders
// them to PNGs in cfg.pngDir when it is set.
func writeCharts(cfg config, res *Results) error {
	if cfg.chartsDir == "" {
		return nil
	}
	if err := os.MkdirAll(cfg.chartsDir, 0o755); err != nil {
		return err
	}
	var svgs []string
	for _, s := range res.Scenarios {
		spec := chartSpec(s, res.Quick)
		if spec == nil {
			continue
		}
		path := filepath.Join(cfg.chartsDir, s.Key+".svg")
		if err := writeChart(path, spec); err != nil {
			return err
		}
		svgs = append(svgs, path)
	}
	if cfg.pngDir == "" {
		return nil
	}
	if err := os.MkdirAll(cfg.pngDir, 0o755); err != nil {
		return err
	}
	for _, svg := range svgs {
		png := filepath.Join(cfg.pngDir, strings.TrimSuffix(filepath.Base(svg), ".svg")+".png")
		out, err := exec.Command("rsvg-convert", "-w", strconv.Itoa(chartWidth), "-b", "white", "-o", png, svg).CombinedOutput()
		if err != nil {
			return fmt.Errorf("rsvg-convert %s (Debian: apt-get install librsvg2-bin): %v %s", svg, err, out)
		}
		fmt.Fprintln(cfg.progress, png)
	}
	return nil
}

// chartsFrom draws the charts of the results in path, running nothing.
func chartsFrom(path string, cfg config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if cfg.chartsDir == "" {
		return fmt.Errorf("-charts-from needs -charts")
	}
	return writeCharts(cfg, &res)
}

// parseScenarios reads "2,2n" (or "" for all) into scenario ids.
func parseScenarios(s string) ([]string, error) {
	var ids []string
	if strings.TrimSpace(s) == "" {
		for _, sc := range scenarios {
			ids = append(ids, sc.id)
		}
		return ids, nil
	}
	for _, f := range strings.Split(s, ",") {
		id := strings.TrimSpace(f)
		if !slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.id == id }) {
			return nil, fmt.Errorf("unknown scenario %q (want some of %s)", f, strings.Join(scenarioIDs(), ","))
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// scenarioIDs lists every scenario's id, in run order.
func scenarioIDs() []string {
	var ids []string
	for _, sc := range scenarios {
		ids = append(ids, sc.id)
	}
	return ids
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
