package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
)

// Results is everything a run produced; it is what results.json holds.
type Results struct {
	Machine     Machine           `json:"machine"`
	Quick       bool              `json:"quick"`
	Contenders  []ContenderInfo   `json:"contenders"`
	Scenarios   []*ScenarioResult `json:"scenarios"`
	WallSeconds float64           `json:"wall_seconds"`
}

// Machine describes where the run happened.
type Machine struct {
	NumCPU     int               `json:"num_cpu"`
	GOMAXPROCS int               `json:"gomaxprocs"`
	GOOS       string            `json:"goos"`
	GOARCH     string            `json:"goarch"`
	GoVersion  string            `json:"go_version"`
	Date       string            `json:"date"`
	Modules    map[string]string `json:"modules,omitempty"` // module path → version, for the peers
	// LoadAvg is /proc/loadavg when the run started (Linux): a busy machine
	// makes every figure noisier.
	LoadAvg string `json:"loadavg_at_start,omitempty"`
	// Source is the commit of the resilienthttp checkout the run measured
	// (the replace directive's ../), "-dirty" when it had uncommitted changes.
	Source string `json:"resilienthttp_source,omitempty"`
}

// ContenderInfo says how a contender was configured.
type ContenderInfo struct {
	Key    string `json:"key"`
	Name   string `json:"name"`
	Config string `json:"config"`
}

// ScenarioResult is one scenario's tables (one per variant) and chart.
type ScenarioResult struct {
	ID      int        `json:"id"`
	Key     string     `json:"key"`
	Title   string     `json:"title"`
	Seconds float64    `json:"seconds"` // how long the scenario took to run
	Tables  []*Table   `json:"tables"`
	Chart   *ChartSpec `json:"-"`
}

// Table is one variant of a scenario: one row per contender.
type Table struct {
	Variant string   `json:"variant,omitempty"`
	Note    string   `json:"note,omitempty"`
	Columns []string `json:"-"`
	Rows    []*Row   `json:"rows"`
}

// Row is one contender's figures: Cells for the Markdown table, Figures
// (raw numbers, named) for results.json.
type Row struct {
	Contender string         `json:"contender"`
	Cells     []string       `json:"-"`
	Figures   map[string]any `json:"figures"`
}

// ChartSpec is a bar chart: one bar per contender, in groups (a scenario's
// variants) when Group is set.
type ChartSpec struct {
	Title string
	Unit  string
	Bars  []Bar
}

// Bar is one bar of a chart.
type Bar struct {
	Group     string // variant; empty when the scenario has one
	Contender string
	Value     float64
	Text      string // the value as shown under the bar
}

func machine() Machine {
	m := Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GOOS:       runtime.GOOS,
		GOARCH:     runtime.GOARCH,
		GoVersion:  runtime.Version(),
		Date:       time.Now().UTC().Format(time.RFC3339),
		Modules:    map[string]string{},
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.TrimSpace(string(b))
	}
	// Best effort: no git, or not run from bench/, leaves it empty.
	if out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Source = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.Source += "-dirty"
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/hashicorp/go-retryablehttp", "github.com/failsafe-go/failsafe-go",
				"github.com/sony/gobreaker/v2", "golang.org/x/time", "github.com/resilienthttp/resilienthttp":
				v := d.Version
				if d.Replace != nil {
					v += " => " + d.Replace.Path
				}
				m.Modules[d.Path] = v
			}
		}
	}
	return m
}

// writeMarkdown prints every scenario as Markdown: a heading, then a table
// per variant with its note.
func writeMarkdown(w io.Writer, res *Results) {
	for _, s := range res.Scenarios {
		fmt.Fprintf(w, "\n## %d. %s\n", s.ID, s.Title)
		for _, t := range s.Tables {
			if t.Variant != "" {
				fmt.Fprintf(w, "\n**%s**\n", t.Variant)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "| %s |\n", strings.Join(t.Columns, " | "))
			fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(t.Columns)))
			for _, r := range t.Rows {
				cells := append([]string(nil), r.Cells...)
				for len(cells) < len(t.Columns) {
					cells = append(cells, "")
				}
				fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
			}
			if t.Note != "" {
				fmt.Fprintf(w, "\n%s\n", t.Note)
			}
		}
	}
}

// writeJSON writes the results, indented, to path.
func writeJSON(path string, res *Results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// contenderColors keeps each contender's colour the same in every chart.
var contenderColors = map[string]drawing.Color{
	"nethttp":               {R: 140, G: 140, B: 140, A: 255},
	"retryablehttp":         {R: 230, G: 145, B: 56, A: 255},
	"retryablehttp-guarded": {R: 190, G: 80, B: 60, A: 255},
	"failsafe":              {R: 130, G: 90, B: 180, A: 255},
	"resilienthttp":         {R: 30, G: 120, B: 200, A: 255},
}

// writeChart renders spec as an SVG bar chart with go-chart, to path.
// Variants are separated by an empty slot, and each bar is labelled with its
// variant, contender and value, since go-chart bar charts have no legend.
func writeChart(path string, spec *ChartSpec) error {
	var bars []chart.Value
	top := 0.0
	for i, b := range spec.Bars {
		if i > 0 && b.Group != spec.Bars[i-1].Group {
			bars = append(bars, chart.Value{Value: 0, Style: chart.Style{FillColor: chart.ColorTransparent, StrokeColor: chart.ColorTransparent}})
		}
		label := chartNames[b.Contender] + "\n" + b.Text
		if b.Group != "" {
			label = "[" + b.Group + "]\n" + label
		}
		col := contenderColors[b.Contender]
		bars = append(bars, chart.Value{
			Label: label,
			Value: math.Max(b.Value, 0),
			Style: chart.Style{FillColor: col, StrokeColor: col, StrokeWidth: 1},
		})
		top = math.Max(top, b.Value)
	}
	if top <= 0 {
		top = 1 // go-chart refuses an empty range; an all-zero chart is still a result
	}
	const barWidth, spacing = 64, 22
	c := chart.BarChart{
		Title:      spec.Title + " [" + spec.Unit + "]",
		TitleStyle: chart.Style{FontSize: 11},
		Width:      max(640, 110+len(bars)*(barWidth+spacing)),
		Height:     440,
		BarWidth:   barWidth,
		BarSpacing: spacing,
		Background: chart.Style{Padding: chart.Box{Top: 40, Left: 20, Right: 20, Bottom: 80}},
		XAxis:      chart.Style{FontSize: 8},
		// No YAxis.Name: go-chart leaves the renderer rotated after drawing
		// it, and the title then comes out sideways. The unit is in the
		// title and under every bar instead.
		YAxis: chart.YAxis{
			Range:          &chart.ContinuousRange{Min: 0, Max: niceCeil(top * 1.05)},
			ValueFormatter: func(v any) string { return trimFloat(v.(float64)) },
		},
		Bars: bars,
	}
	var buf bytes.Buffer
	if err := c.Render(chart.SVG, &buf); err != nil {
		return fmt.Errorf("chart %s: %w", filepath.Base(path), err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// niceCeil rounds v > 0 up to 1, 2, 2.5 or 5 times a power of ten, so the
// axis ends on a round number.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// trimFloat formats an axis tick without trailing zeros.
func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-0" {
		return "0"
	}
	return s
}

// round rounds v to n decimals, for readable JSON.
func round(v float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(v*p) / p
}

// ms formats a duration as milliseconds for a table cell.
func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }

// msF is a duration in milliseconds, for results.json.
func msF(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }

// mdEscape keeps a message from breaking a Markdown table row.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
