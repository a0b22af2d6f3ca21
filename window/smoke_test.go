package window_test

import (
	"context"
	"testing"
	"time"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/window"
)

type ev struct {
	Key string
	At  int64 // seconds
	V   int64
}

func TestSmokeTumbling(t *testing.T) {
	p := pipeline.New("smoke")
	src := pipeline.FromSlice(p, "src", []ev{{"a", 1, 1}, {"b", 2, 10}, {"a", 3, 2}, {"a", 12, 5}, {"a", 4, 100}, {"b", 30, 1}})
	out := window.Fold(src, "sum", func(e ev) string { return e.Key }, window.Tumbling(10*time.Second),
		window.Agg[ev, int64]{Add: func(a int64, e ev) int64 { return a + e.V }},
		window.EventTime(func(e ev) time.Time { return time.Unix(e.At, 0) }, 0))
	got := pipeline.Collect(out.Results(), "sink")
	late := pipeline.Collect(out.Late(), "late")
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range got() {
		t.Logf("%v %v-%v count %d value %d %v", r.Key, r.Start.Unix(), r.End.Unix(), r.Count, r.Value, r.Firing)
	}
	t.Logf("late %v", late())
	st := p.Stats()
	t.Logf("%+v", st)
}
