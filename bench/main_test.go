package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
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
			t.Errorf("scenario %d: no tables", s.ID)
		}
		for _, tb := range s.Tables {
			var got []string
			for _, r := range tb.Rows {
				got = append(got, r.Contender)
				if len(r.Cells) != len(tb.Columns) {
					t.Errorf("scenario %d %q, %s: %d cells for %d columns", s.ID, tb.Variant, r.Contender, len(r.Cells), len(tb.Columns))
				}
				if len(r.Figures) == 0 {
					t.Errorf("scenario %d %q, %s: no figures", s.ID, tb.Variant, r.Contender)
				}
			}
			if !slices.Equal(got, contenderKeys) {
				t.Errorf("scenario %d %q: rows %v, want %v", s.ID, tb.Variant, got, contenderKeys)
			}
		}
		svg, err := os.ReadFile(filepath.Join(cfg.chartsDir, s.Key+".svg"))
		if err != nil {
			t.Errorf("scenario %d: %v", s.ID, err)
		} else if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) {
			t.Errorf("scenario %d: chart is not an SVG document", s.ID)
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
		if !strings.Contains(md.String(), fmt.Sprintf("## %d. %s\n", s.id, s.title(quickParams()))) {
			t.Errorf("Markdown lacks scenario %d's heading", s.id)
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
	if got := mustScenarios(t, "3, 2"); !slices.Equal(got, []int{3, 2}) {
		t.Errorf("parseScenarios = %v", got)
	}
	if _, err := parseScenarios("8"); err == nil {
		t.Error("parseScenarios accepted scenario 8")
	}
	got, err := parseContenders("resilienthttp,nethttp,nethttp")
	if err != nil || !slices.Equal(got, []string{"nethttp", "resilienthttp"}) {
		t.Errorf("parseContenders = %v, %v", got, err)
	}
	if _, err := parseContenders("curl"); err == nil {
		t.Error("parseContenders accepted curl")
	}
}

func mustScenarios(t *testing.T, s string) []int {
	t.Helper()
	ids, err := parseScenarios(s)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
