package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Scenario 8 starts this test binary again as its fleet's processes.
	runFleetChild()
	// Peers' transports keep idle-connection goroutines until their pools
	// are closed; every scenario closes them, so none may be left.
	goleak.VerifyTestMain(m)
}

// TestQuick runs every scenario in -quick mode, as CI's `go test ./...` does
// for this module, and checks that each produced a row for every contender,
// a valid results.json and an SVG chart. It asserts no timings: those depend
// on the machine.
func TestQuick(t *testing.T) {
	dir := t.TempDir()
	cfg := config{
		scenarios:  mustScenarios(t, ""),
		contenders: slices.Clone(contenderKeys),
		quick:      true,
		jsonPath:   filepath.Join(dir, "results.json"),
		chartsDir:  filepath.Join(dir, "charts"),
	}
	res, err := run(cfg)
	if err != nil {
		t.Fatal(err)
	}

	if got, want := len(res.Scenarios), len(scenarios); got != want {
		t.Fatalf("ran %d scenarios, want %d", got, want)
	}
	for _, s := range res.Scenarios {
		if len(s.Tables) == 0 {
			t.Errorf("scenario %s: no tables", s.ID)
		}
		for _, tb := range s.Tables {
			var got []string
			for _, r := range tb.Rows {
				got = append(got, r.Contender)
				if len(r.Cells) != len(tb.Columns) {
					t.Errorf("scenario %s %q, %s: %d cells for %d columns", s.ID, tb.Variant, r.Contender, len(r.Cells), len(tb.Columns))
				}
				if len(r.Figures) == 0 {
					t.Errorf("scenario %s %q, %s: no figures", s.ID, tb.Variant, r.Contender)
				}
			}
			if !slices.Equal(got, contenderKeys) {
				t.Errorf("scenario %s %q: rows %v, want %v", s.ID, tb.Variant, got, contenderKeys)
			}
		}
		svg, err := os.ReadFile(filepath.Join(cfg.chartsDir, s.Key+".svg"))
		if err != nil {
			t.Errorf("scenario %s: %v", s.ID, err)
		} else if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) {
			t.Errorf("scenario %s: chart is not an SVG document", s.ID)
		}
	}

	b, err := os.ReadFile(cfg.jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if back.Machine.NumCPU < 1 || back.Machine.GoVersion == "" || !back.Quick || len(back.Scenarios) != len(scenarios) {
		t.Errorf("results.json lacks machine info or scenarios: %+v", back.Machine)
	}

	var md strings.Builder
	writeMarkdown(&md, res)
	for _, s := range scenarios {
		if !strings.Contains(md.String(), fmt.Sprintf("## %s. %s\n", s.id, s.title(quickParams()))) {
			t.Errorf("Markdown lacks scenario %s's heading", s.id)
		}
	}
}

// TestOutcomes pins down what the scenarios count as a success: the caller
// got a response below 400 and no error.
func TestOutcomes(t *testing.T) {
	for _, tc := range []struct {
		o    outcome
		want bool
	}{
		{outcome{status: 200}, true},
		{outcome{status: 304}, true},
		{outcome{status: 503}, false},
		{outcome{status: 0, err: os.ErrDeadlineExceeded}, false},
		{outcome{status: 200, err: os.ErrClosed}, false}, // body read failed
	} {
		if got := tc.o.ok(); got != tc.want {
			t.Errorf("%+v.ok() = %v, want %v", tc.o, got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	if got := mustScenarios(t, "3, 2n"); !slices.Equal(got, []string{"3", "2n"}) {
		t.Errorf("parseScenarios = %v", got)
	}
	for _, bad := range []string{"9", "2x", ""} {
		if _, err := parseScenarios("1," + bad); err == nil {
			t.Errorf("parseScenarios accepted scenario %q", bad)
		}
	}
	got, err := parseContenders("resilienthttp,nethttp,nethttp")
	if err != nil || !slices.Equal(got, []string{"nethttp", "resilienthttp"}) {
		t.Errorf("parseContenders = %v, %v", got, err)
	}
	if _, err := parseContenders("curl"); err == nil {
		t.Error("parseContenders accepted curl")
	}
}

func mustScenarios(t *testing.T, s string) []string {
	t.Helper()
	ids, err := parseScenarios(s)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestChartsFromResults draws the charts of the committed results.json, as
// -charts-from does: one per scenario, each a well-formed SVG, each titled
// with its takeaway (naming resilienthttp) rather than the fallback.
func TestChartsFromResults(t *testing.T) {
	dir := t.TempDir()
	cfg := config{chartsDir: dir, progress: io.Discard}
	if err := chartsFrom("results.json", cfg); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("results.json")
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Scenarios {
		spec := chartSpec(s, res.Quick)
		if spec == nil {
			t.Errorf("scenario %s: no chart", s.ID)
			continue
		}
		if !strings.Contains(spec.Title, "resilienthttp") {
			t.Errorf("scenario %s: title %q has no takeaway", s.ID, spec.Title)
		}
		svg, err := os.ReadFile(filepath.Join(dir, s.Key+".svg"))
		if err != nil {
			t.Error(err)
			continue
		}
		d := xml.NewDecoder(bytes.NewReader(svg))
		for {
			if _, err := d.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Errorf("scenario %s: %s is not well-formed: %v", s.ID, s.Key+".svg", err)
				break
			}
		}
	}
}

// TestChartAxis pins down how a panel's axis is chosen: log when the
// largest bar is logRatio times the smallest non-zero one, linear from 0 to
// a round number otherwise, and 0–100 for percentages, however far apart.
func TestChartAxis(t *testing.T) {
	panel := func(unit string, vs ...float64) *Panel {
		p := &Panel{Unit: unit}
		for _, v := range vs {
			p.Bars = append(p.Bars, Bar{Value: v})
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		p        *Panel
		log      bool
		min, max float64
	}{
		{"30× apart", panel("", 14, 786, 311), true, 0, math.Log10(1000)},
		{"below 1", panel("", 0.013, 4, 1), true, -3, math.Log10(5)},
		{"zeros do not count", panel("", 0, 214, 216), false, 0, 250},
		{"close", panel("", 0.72, 1.12), false, 0, 1.25},
		{"percent", panel("%", 70.5, 99.4), false, 0, 100},
		{"percent stays linear", panel("%", 2.9, 98.4), false, 0, 100},
		{"all zero", panel("", 0, 0), false, 0, 1},
	} {
		a := newChartAxis(tc.p)
		if a.log != tc.log || math.Abs(a.min-tc.min) > 1e-9 || math.Abs(a.max-tc.max) > 1e-9 {
			t.Errorf("%s: axis log=%v [%g, %g], want log=%v [%g, %g]", tc.name, a.log, a.min, a.max, tc.log, tc.min, tc.max)
		}
		if len(a.ticks) < 2 {
			t.Errorf("%s: %d ticks", tc.name, len(a.ticks))
		}
		for _, b := range tc.p.Bars {
			if v := a.plot(b.Value); v < a.min || v > a.max+1e-9 {
				t.Errorf("%s: %g plots at %g, outside the axis", tc.name, b.Value, v)
			}
		}
	}
}

func TestScenarioIDJSON(t *testing.T) {
	b, err := json.Marshal([]scenarioID{"2", "2n"})
	if err != nil || string(b) != `[2,"2n"]` {
		t.Fatalf("Marshal = %s, %v; want [2,\"2n\"]", b, err)
	}
	var back []scenarioID
	if err := json.Unmarshal([]byte(`[7,"2n","8"]`), &back); err != nil || len(back) != 3 || back[0] != "7" || back[1] != "2n" || back[2] != "8" {
		t.Fatalf("Unmarshal = %q, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`[true]`), &back); err == nil {
		t.Error("Unmarshal accepted true as a scenario id")
	}
}
