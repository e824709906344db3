package main

import "testing"

func TestNginxTargetMet(t *testing.T) {
	a := nginxTarget{maxWallS: 6.0, maxRejectedPct: 3, maxFailures: 0}
	b := nginxTarget{minOKPct: 95, maxWallOverIdeal: 1.3, noBreakerFailures: true}
	r := func(kv ...any) *Row {
		f := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			f[kv[i].(string)] = kv[i+1]
		}
		return &Row{Figures: f}
	}
	for _, tc := range []struct {
		tg   nginxTarget
		r    *Row
		want bool
	}{
		{a, r("wall_s", 5.9, "rejected_pct_of_calls", 2.9, "failures", 0), true},
		{a, r("wall_s", 6.1, "rejected_pct_of_calls", 2.9, "failures", 0), false},
		{a, r("wall_s", 5.9, "rejected_pct_of_calls", 3.1, "failures", 0), false},
		{a, r("wall_s", 5.9, "rejected_pct_of_calls", 2.9, "failures", 1), false},
		{b, r("ok_200_pct", 95.0, "wall_over_ideal", 1.3, "breaker_open_failures", 0), true},
		{b, r("ok_200_pct", 94.9, "wall_over_ideal", 1.3, "breaker_open_failures", 0), false},
		{b, r("ok_200_pct", 99.0, "wall_over_ideal", 1.31, "breaker_open_failures", 0), false},
		{b, r("ok_200_pct", 99.0, "wall_over_ideal", 1.1, "breaker_open_failures", 2), false},
		{b, r("ok_200_pct", 99.0, "wall_over_ideal", 1.1), false}, // no breaker figure: not shown to be 0
	} {
		if got, how := tc.tg.met(tc.r); got != tc.want {
			t.Errorf("%v: met = %v (%s), want %v", tc.r.Figures, got, how, tc.want)
		}
	}
}
