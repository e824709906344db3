package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
)

// TestPrintsTheSpans: the example prints the two attempts' spans and the
// call's, each attempt under the call, the call with its retry event.
func TestPrintsTheSpans(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	type ids struct{ SpanID string }
	type span struct {
		Name        string
		SpanContext ids
		Parent      ids
		Events      []struct{ Name string }
	}
	var spans []span
	for dec := json.NewDecoder(&out); dec.More(); {
		var s span
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		spans = append(spans, s)
	}
	if len(spans) != 3 || spans[0].Name != "GET" || spans[1].Name != "GET" || spans[2].Name != "resilienthttp GET" {
		t.Fatalf("printed %d spans: %+v, want GET, GET, resilienthttp GET", len(spans), spans)
	}
	call := spans[2]
	for _, a := range spans[:2] {
		if a.Parent.SpanID != call.SpanContext.SpanID {
			t.Errorf("attempt span's parent %s, want the call's %s", a.Parent.SpanID, call.SpanContext.SpanID)
		}
	}
	if len(call.Events) != 1 || call.Events[0].Name != "retry" {
		t.Errorf("call span events %+v, want one retry", call.Events)
	}
}
