package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// A fleet child whose parent is gone (its stdin closed) exits by itself,
// before the start signal and after it, so an interrupted run leaves no
// process calling anyone.
func TestFleetChildExitsWithoutParent(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Port 1 on 127.0.0.1 refuses at once; the calls fail fast.
	job := fleetJob{Contender: "nethttp", URL: "http://127.0.0.1:1/x", Calls: 1 << 20, Workers: 1, BudgetMs: 30_000, PerCallMs: 1000}
	for _, signal := range []bool{false, true} {
		fp, err := startFleetProc(exe, job)
		if err != nil {
			t.Fatal(err)
		}
		l, err := fp.line(fleetReadyTimeout)
		if err != nil || l.text != "ready" {
			fp.kill()
			t.Fatalf("child said %q, %v; want ready", l.text, err)
		}
		if signal {
			if _, err := fp.stdin.Write([]byte("go\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		fp.stdin.Close()
		select {
		case <-fp.eof:
		case <-time.After(10 * time.Second):
			fp.kill()
			t.Fatalf("signal sent %v: the child still runs 10 s after its stdin closed", signal)
		}
		err = fp.wait(10 * time.Second)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("signal sent %v: child ended with %v, want exit status 3", signal, err)
		}
	}
}

// A bad job is refused with exit status 2.
func TestFleetChildRejectsBadJob(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fp, err := startFleetProc(exe, fleetJob{Contender: "curl"})
	if err != nil {
		t.Fatal(err)
	}
	err = fp.wait(10 * time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("child ended with %v, want exit status 2", err)
	}
}

func TestFleetTargetMet(t *testing.T) {
	row := func(over, pct []float64, fails []int) *Row {
		return &Row{Figures: map[string]any{"run_wall_over_ideal": over, "run_429_pct_of_calls": pct, "run_failures": fails}}
	}
	if ok, how := fleetTargetMet(row([]float64{1.1, 1.5}, []float64{1, 3}, []int{0, 0})); !ok {
		t.Errorf("at the limits: %s", how)
	}
	for _, r := range []*Row{
		row([]float64{1.1, 1.6}, []float64{1, 1}, []int{0, 0}),
		row([]float64{1.1, 1.1}, []float64{1, 3.1}, []int{0, 0}),
		row([]float64{1.1, 1.1}, []float64{1, 1}, []int{0, 1}),
		row(nil, nil, nil),
	} {
		if ok, how := fleetTargetMet(r); ok {
			t.Errorf("%v: met (%s)", r.Figures, how)
		}
	}
	// From results.json the lists are []any of float64.
	var back Row
	b, _ := json.Marshal(row([]float64{1.2}, []float64{2}, []int{0}))
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if ok, how := fleetTargetMet(&back); !ok {
		t.Errorf("decoded from JSON: %s", how)
	}
}
