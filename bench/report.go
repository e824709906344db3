package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
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

// ScenarioResult is one scenario's tables (one per variant); its chart is
// made from them (chartSpec).
type ScenarioResult struct {
	ID      scenarioID `json:"id"`
	Key     string     `json:"key"`
	Title   string     `json:"title"`
	Seconds float64    `json:"seconds"` // how long the scenario took to run
	Tables  []*Table   `json:"tables"`
}

// scenarioID is a scenario's id, "2" or "2n". In JSON an id that is a
// number is written as one, as results.json had them before "2n", and
// either form is read back.
type scenarioID string

func (id scenarioID) MarshalJSON() ([]byte, error) {
	if _, err := strconv.Atoi(string(id)); err == nil {
		return []byte(id), nil
	}
	return json.Marshal(string(id))
}

func (id *scenarioID) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err == nil {
		*id = scenarioID(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("scenario id %s: want a number or a string", b)
	}
	*id = scenarioID(s)
	return nil
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
		fmt.Fprintf(w, "\n## %s. %s\n", s.ID, s.Title)
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

// ChartSpec is one scenario's chart: a one-line takeaway as its title, then
// one or more panels stacked under it, each a bar chart of one figure.
type ChartSpec struct {
	Title  string
	Panels []*Panel
}

// Panel is a bar chart of one figure: one bar per contender, in groups (a
// scenario's variants) when the bars have a Group. Its axis is chosen from
// the data (chartAxis): logarithmic when the largest bar is logRatio times
// the smallest non-zero one or more, linear from 0 otherwise; a
// percentage's is always linear from 0 to 100.
type Panel struct {
	Title  string // the figure, with its unit
	Better string // "lower is better"; said after the scale
	Note   string // a second, smaller line under the title
	Unit   string // "%" ends a linear axis at 100
	Bars   []Bar

	Ref      float64 // > 0: a dashed line across the panel at this value,
	RefLabel string  // labelled so at its right end

	Tick func(float64) string // an axis tick's label; nil: trimFloat
}

// Bar is one bar of a panel.
type Bar struct {
	Group     string // variant; empty when the scenario has one
	Contender string
	Value     float64
	Text      string // the value, as printed above the bar
	Note      string // more lines under the contender's name (ungrouped panels)
}

// logRatio is how many times the smallest non-zero bar the largest must be
// for a panel to get a logarithmic axis: beyond it, the small bars of a
// linear axis are slivers whose differences nobody can see.
const logRatio = 30

// The charts' geometry, in SVG pixels (the SVGs are 1:1 at this width, the
// README's), and their type sizes (DPI 72, so points are pixels).
const (
	chartWidth  = 800
	chartMargin = 16
	sizeTitle   = 17
	sizePanel   = 14
	sizeNote    = 12
	sizeLabel   = 13
	sizeTick    = 12
	plotHeight  = 210 // the bars' area of a panel
)

var (
	colorText  = drawing.Color{R: 36, G: 41, B: 47, A: 255}
	colorMuted = drawing.Color{R: 101, G: 109, B: 118, A: 255}
	colorAxis  = drawing.Color{R: 160, G: 166, B: 172, A: 255}
	colorWhite = drawing.Color{R: 255, G: 255, B: 255, A: 255}
)

// contenderColors keeps each contender's colour the same in every chart.
var contenderColors = map[string]drawing.Color{
	"nethttp":                 {R: 140, G: 140, B: 140, A: 255},
	"retryablehttp":           {R: 230, G: 145, B: 56, A: 255},
	"retryablehttp-guarded":   {R: 190, G: 80, B: 60, A: 255},
	"failsafe":                {R: 130, G: 90, B: 180, A: 255},
	"resilienthttp":           {R: 30, G: 120, B: 200, A: 255},
	"resilienthttp-nobreaker": {R: 110, G: 170, B: 220, A: 255},
}

// writeChart renders spec as an SVG to path: go-chart BarCharts, one per
// panel, drawn one under the other on one go-chart SVG renderer, under the
// title and, when the bars are grouped, a legend of the contenders' colours.
// go-chart draws the bars, axes and contender names; the values above the
// bars, the group names and the reference line are go-chart Elements, drawn
// with its renderer.
func writeChart(path string, spec *ChartSpec) error {
	font, err := chart.GetDefaultFont()
	if err != nil {
		return err
	}
	fs := chart.Style{Font: font}
	measure, err := chart.SVG(chartWidth, 100)
	if err != nil {
		return err
	}
	measure.SetDPI(72)

	grouped := false
	var contenders []string
	for _, p := range spec.Panels {
		for _, b := range p.Bars {
			grouped = grouped || b.Group != ""
			if !slices.Contains(contenders, b.Contender) {
				contenders = append(contenders, b.Contender)
			}
		}
	}
	header := 38
	if grouped {
		header += 26
	}
	layouts := make([]*panelLayout, len(spec.Panels))
	height := header + 6
	for i, p := range spec.Panels {
		layouts[i] = layoutPanel(measure, fs, p, grouped)
		height += layouts[i].height
	}

	base, err := chart.SVG(chartWidth, height)
	if err != nil {
		return err
	}
	base.SetDPI(72)
	r := &shifted{Renderer: base}
	chart.Draw.Box(r, chart.Box{Right: chartWidth, Bottom: height}, chart.Style{FillColor: colorWhite})

	// The title, shrunk if it would not fit on one line.
	size := float64(sizeTitle)
	for size > 13 && textWidth(r, fs, spec.Title, size) > chartWidth-2*chartMargin {
		size -= 0.5
	}
	chart.Draw.Text(r, spec.Title, chartMargin, 26, chart.Style{Font: fs.Font, FontSize: size, FontColor: colorText})
	if grouped {
		drawLegend(r, fs, contenders, 54)
	}

	y := header
	for i, p := range spec.Panels {
		if err := drawPanel(&shifted{Renderer: base, dy: y}, fs, p, layouts[i]); err != nil {
			return fmt.Errorf("chart %s: %w", filepath.Base(path), err)
		}
		y += layouts[i].height
	}
	var buf bytes.Buffer
	if err := base.Save(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// panelLayout is a panel worked out before drawing: its axis, its bars and
// the empty slots between groups, and its margins.
type panelLayout struct {
	axis    chartAxis
	values  []chart.Value // go-chart's bars, group gaps included
	bars    []*Bar        // the Bar of each value; nil for a gap
	grouped bool
	titleH  int // the title (and note) above the bars
	top     int // from the panel's top to the bars' area
	bottom  int // under the bars' area: names or group labels
	right   int
	barW    int
	spacing int
	height  int

	valueSize float64
}

func layoutPanel(r chart.Renderer, fs chart.Style, p *Panel, grouped bool) *panelLayout {
	l := &panelLayout{axis: newChartAxis(p), grouped: grouped, right: chartMargin}
	if p.Ref > 0 {
		l.right = chartMargin + textWidth(r, fs, p.RefLabel, sizeNote) + 8
	}
	for i := range p.Bars {
		b := &p.Bars[i]
		if i > 0 && b.Group != p.Bars[i-1].Group {
			l.values = append(l.values, chart.Value{Value: l.axis.min, Style: chart.Style{FillColor: chart.ColorTransparent, StrokeColor: chart.ColorTransparent}})
			l.bars = append(l.bars, nil)
		}
		label := ""
		if !grouped {
			label = chartNames[b.Contender]
			if textWidth(r, fs, label, sizeLabel) > chartWidth/(len(p.Bars)+1) {
				label = strings.Replace(label, "+", "\n+", 1) // retryablehttp / +rate+gobreaker
			}
			if b.Note != "" {
				label += "\n" + b.Note
			}
		}
		col := contenderColors[b.Contender]
		l.values = append(l.values, chart.Value{
			Label: label,
			Value: l.axis.plot(b.Value),
			Style: chart.Style{FillColor: col, StrokeColor: col, StrokeWidth: 1},
		})
		l.bars = append(l.bars, b)
	}

	// Bars fill the width left of the axis labels: 60% bar, 40% space.
	tickW := 0
	for _, t := range l.axis.ticks {
		tickW = max(tickW, textWidth(r, fs, t.Label, sizeTick))
	}
	canvasW := chartWidth - chartMargin - l.right - tickW - chart.DefaultYAxisMargin - 4
	slot := canvasW / len(l.values)
	l.barW = slot * 6 / 10
	l.spacing = slot - l.barW
	// The values above the bars in a type that keeps them apart.
	l.valueSize = sizeLabel
	for _, b := range p.Bars {
		for l.valueSize > 10 && textWidth(r, fs, b.Text, l.valueSize) > slot-6 {
			l.valueSize -= 0.5
		}
	}

	l.titleH = 22
	if p.Note != "" {
		l.titleH += 17
	}
	l.top = l.titleH + 24 // room for the tallest bar's value
	if grouped {
		l.bottom = 34
	} else {
		lines := 1
		style := chart.Style{Font: fs.Font, FontSize: sizeLabel, TextWrap: chart.TextWrapWord}
		for _, v := range l.values {
			lines = max(lines, len(chart.Text.WrapFit(r, v.Label, slot, style)))
		}
		l.bottom = 14 + lines*(sizeLabel+5)
	}
	l.height = l.top + plotHeight + l.bottom + 10
	return l
}

// drawPanel renders one panel at the top of r.
func drawPanel(r chart.Renderer, fs chart.Style, p *Panel, l *panelLayout) error {
	rng := &chart.ContinuousRange{Min: l.axis.min, Max: l.axis.max}
	axisStyle := chart.Style{FontSize: sizeTick, FontColor: colorMuted, StrokeColor: colorAxis, StrokeWidth: 1}
	bc := chart.BarChart{
		Width:      chartWidth,
		Height:     l.height - 10,
		DPI:        72,
		Font:       fs.Font,
		BarWidth:   l.barW,
		BarSpacing: l.spacing,
		// go-chart reserves the bottom padding twice (once for the
		// x-axis labels, once around the canvas), hence the half.
		Background: chart.Style{FillColor: colorWhite, Padding: chart.Box{Top: l.top, Left: chartMargin, Right: l.right, Bottom: (l.bottom + 5) / 2}},
		Canvas:     chart.Style{FillColor: colorWhite},
		XAxis:      chart.Style{FontSize: sizeLabel, FontColor: colorText, StrokeColor: colorAxis, StrokeWidth: 1, TextLineSpacing: 4},
		YAxis: chart.YAxis{
			AxisType:       chart.YAxisSecondary, // on the left
			Range:          rng,
			Ticks:          l.axis.ticks,
			Style:          axisStyle,
			GridMajorStyle: chart.Hidden(),
			GridMinorStyle: chart.Hidden(),
		},
		Bars: l.values,
		Elements: []chart.Renderable{func(r chart.Renderer, canvas chart.Box, _ chart.Style) {
			annotatePanel(r, fs, p, l, rng, canvas)
		}},
	}
	return bc.Render(func(int, int) (chart.Renderer, error) { return r, nil }, io.Discard)
}

// annotatePanel draws what go-chart's BarChart does not: the panel's title,
// each bar's value above it, the groups' names under them and the reference
// line. Bars are placed as go-chart places them (barGeometry).
func annotatePanel(r chart.Renderer, fs chart.Style, p *Panel, l *panelLayout, rng *chart.ContinuousRange, canvas chart.Box) {
	text := func(s string, x, y int, size float64, col drawing.Color, align chart.TextHorizontalAlign) {
		w := textWidth(r, fs, s, size)
		switch align {
		case chart.TextHorizontalAlignCenter:
			x -= w / 2
		case chart.TextHorizontalAlignRight:
			x -= w
		}
		chart.Draw.Text(r, s, x, y, chart.Style{Font: fs.Font, FontSize: size, FontColor: col})
	}

	var how []string
	if l.axis.log {
		how = append(how, "log scale")
	}
	if p.Better != "" {
		how = append(how, p.Better)
	}
	title := p.Title
	if len(how) > 0 {
		title += " (" + strings.Join(how, "; ") + ")"
	}
	text(title, chartMargin, 17, sizePanel, colorText, chart.TextHorizontalAlignLeft)
	if p.Note != "" {
		text(p.Note, chartMargin, 34, sizeNote, colorMuted, chart.TextHorizontalAlignLeft)
	}

	width, spacing := barGeometry(canvas, len(l.values), l.barW, l.spacing)
	type span struct {
		name        string
		left, right int
	}
	var groups []span
	x := canvas.Left
	for _, b := range l.bars {
		left := x + spacing/2
		x += width + spacing
		if b == nil {
			continue
		}
		top := canvas.Bottom - rng.Translate(l.axis.plot(b.Value))
		text(b.Text, left+width/2, top-6, l.valueSize, colorText, chart.TextHorizontalAlignCenter)
		if n := len(groups); n == 0 || groups[n-1].name != b.Group {
			groups = append(groups, span{name: b.Group, left: left})
		}
		groups[len(groups)-1].right = left + width
	}
	if l.grouped {
		for _, g := range groups {
			text(g.name, (g.left+g.right)/2, canvas.Bottom+22, sizeLabel, colorText, chart.TextHorizontalAlignCenter)
		}
	}

	if p.Ref > 0 && l.axis.plot(p.Ref) <= l.axis.max && l.axis.plot(p.Ref) >= l.axis.min {
		y := canvas.Bottom - rng.Translate(l.axis.plot(p.Ref))
		chart.Style{StrokeColor: colorMuted, StrokeWidth: 1, StrokeDashArray: []float64{5, 4}}.WriteDrawingOptionsToRenderer(r)
		r.MoveTo(canvas.Left, y)
		r.LineTo(canvas.Right, y)
		r.Stroke()
		r.ResetStyle()
		text(p.RefLabel, canvas.Right+6, y+4, sizeNote, colorMuted, chart.TextHorizontalAlignLeft)
	}
}

// barGeometry is the bar width and spacing go-chart's BarChart uses in
// canvas: the asked ones, squeezed when they do not fit.
func barGeometry(canvas chart.Box, n, width, spacing int) (int, int) {
	if n*(width+spacing) > canvas.Width() {
		spacing = 0
		if less := canvas.Width() - n*width; less > 0 {
			spacing = int(math.Ceil(float64(less) / float64(n)))
		}
	}
	if n*(width+spacing) > canvas.Width() {
		width = 0
		if less := canvas.Width() - n*spacing; less > 0 {
			width = int(math.Ceil(float64(less) / float64(n)))
		}
	}
	return width, spacing
}

// drawLegend draws a row of colour swatches and contender names, centred,
// with its baseline at y.
func drawLegend(r chart.Renderer, fs chart.Style, contenders []string, y int) {
	const swatch, gap, pad = 12, 6, 20
	total := 0
	for i, k := range contenders {
		if i > 0 {
			total += pad
		}
		total += swatch + gap + textWidth(r, fs, chartNames[k], sizeLabel)
	}
	x := (chartWidth - total) / 2
	for _, k := range contenders {
		col := contenderColors[k]
		chart.Draw.Box(r, chart.Box{Left: x, Top: y - swatch + 1, Right: x + swatch, Bottom: y + 1}, chart.Style{FillColor: col, StrokeColor: col, StrokeWidth: 1})
		x += swatch + gap
		chart.Draw.Text(r, chartNames[k], x, y, chart.Style{Font: fs.Font, FontSize: sizeLabel, FontColor: colorText})
		x += textWidth(r, fs, chartNames[k], sizeLabel) + pad
	}
}

// textWidth is how wide s is at size, with room for a wider font: the
// SVGs name go-chart's Roboto, which few readers have, and a browser's
// sans-serif in its place (DejaVu Sans, Arial) runs up to ~15% wider.
func textWidth(r chart.Renderer, fs chart.Style, s string, size float64) int {
	w := chart.Draw.MeasureText(r, s, chart.Style{Font: fs.Font, FontSize: size}).Width()
	return w * 115 / 100
}

// chartAxis is a panel's value axis. A logarithmic one plots log10 of the
// values on a linear go-chart range, with ticks labelled in the values
// (go-chart's LogarithmicRange cannot show values below 1); a zero sits on
// its floor.
type chartAxis struct {
	log      bool
	min, max float64 // in plotted units: log10 of the values when log
	ticks    []chart.Tick
}

func (a chartAxis) plot(v float64) float64 {
	if !a.log {
		return v
	}
	if v <= 0 {
		return a.min
	}
	return math.Log10(v)
}

func newChartAxis(p *Panel) chartAxis {
	label := p.Tick
	if label == nil {
		label = trimFloat
	}
	top, low := 0.0, math.Inf(1)
	for _, b := range p.Bars {
		top = math.Max(top, b.Value)
		if b.Value > 0 {
			low = math.Min(low, b.Value)
		}
	}
	var a chartAxis
	if top > 0 && top >= logRatio*low && p.Unit != "%" {
		// From a power of ten well below the smallest bar, so that it
		// shows, to a round number (1, 2, 2.5 or 5 times a power of ten)
		// at or above the largest; ticks at the ends and the powers of
		// ten between.
		a.log = true
		lo, hi := math.Floor(math.Log10(low/1.6)), niceCeil(top)
		a.min, a.max = lo, math.Log10(hi)
		last := a.min
		for e := a.min; e <= a.max+1e-9; e++ {
			a.ticks = append(a.ticks, chart.Tick{Value: e, Label: label(math.Pow(10, e))})
			last = e
		}
		if a.max-last > 0.45 { // a top tick too close to a power of ten would overlap it
			a.ticks = append(a.ticks, chart.Tick{Value: a.max, Label: label(hi)})
		}
		return a
	}
	// Linear from 0, in four or five round steps; percent ends at 100.
	step := 20.0
	a.max = 100
	if p.Unit != "%" {
		if top <= 0 {
			top = 1 // go-chart refuses an empty range; an all-zero chart is still a result
		}
		step = niceCeil(top / 5)
		a.max = step * math.Ceil(top/step-1e-9)
	}
	for v := 0.0; v <= a.max+step/2; v += step {
		a.ticks = append(a.ticks, chart.Tick{Value: v, Label: label(v)})
	}
	return a
}

// niceCeil rounds v > 0 up to 1, 2, 2.5 or 5 times a power of ten, so the
// axis ends on a round number.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// shifted draws on a shared renderer dy pixels lower, so that several
// go-chart charts can share one SVG; it escapes text for XML (go-chart's
// SVG renderer writes it as is), and its Save does nothing (the caller
// saves the shared renderer once).
type shifted struct {
	chart.Renderer
	dy int
}

func (s *shifted) MoveTo(x, y int) { s.Renderer.MoveTo(x, y+s.dy) }
func (s *shifted) LineTo(x, y int) { s.Renderer.LineTo(x, y+s.dy) }
func (s *shifted) QuadCurveTo(cx, cy, x, y int) {
	s.Renderer.QuadCurveTo(cx, cy+s.dy, x, y+s.dy)
}
func (s *shifted) ArcTo(cx, cy int, rx, ry, start, delta float64) {
	s.Renderer.ArcTo(cx, cy+s.dy, rx, ry, start, delta)
}
func (s *shifted) Circle(radius float64, x, y int) { s.Renderer.Circle(radius, x, y+s.dy) }
func (s *shifted) Text(body string, x, y int) {
	s.Renderer.Text(html.EscapeString(body), x, y+s.dy)
}
func (s *shifted) Save(io.Writer) error { return nil }

// trimFloat formats an axis tick without trailing zeros: 0.001, 0.25, 1000.
func trimFloat(v float64) string {
	if v == 0 {
		return "0"
	}
	n := max(2, 1-int(math.Floor(math.Log10(math.Abs(v))))) // two decimals, or one significant digit
	return trimFloatN(v, n)
}

// trimFloatN formats v with at most n decimals, without trailing zeros.
func trimFloatN(v float64, n int) string {
	s := strconv.FormatFloat(v, 'f', n, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
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
