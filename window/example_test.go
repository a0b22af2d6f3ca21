package window_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

// Count and sum readings per sensor in 10-second event-time windows; a
// reading more than 5 seconds late goes to the late stream.
func ExampleFold() {
	type reading struct {
		Sensor string
		At     int // seconds
		Value  int
	}
	type total struct{ N, Sum int }
	p := pipeline.New("sensors", pipeline.BatchSize(1))
	src := pipeline.FromSlice(p, "readings", []reading{
		{"s1", 1, 10}, {"s2", 2, 5}, {"s1", 8, 20}, {"s1", 12, 1}, {"s1", 25, 3}, {"s2", 3, 7},
	})
	out := window.Fold(src, "totals", func(r reading) string { return r.Sensor }, window.Tumbling(10*time.Second),
		window.Agg[reading, total]{Add: func(t total, r reading) total { return total{t.N + 1, t.Sum + r.Value} }},
		window.EventTime(func(r reading) time.Time { return time.Unix(int64(r.At), 0) }, 0),
		window.Lateness(5*time.Second))
	pipeline.To(out.Results(), stage.Sink("print", func(_ context.Context, r window.Result[string, total]) error {
		fmt.Printf("%s [%d, %d) %d readings, sum %d\n", r.Key, r.Start.Unix(), r.End.Unix(), r.Value.N, r.Value.Sum)
		return nil
	}))
	late := pipeline.Collect(out.Late(), "late")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	for _, r := range late() {
		fmt.Printf("late: %s at %d\n", r.Sensor, r.At)
	}
	// Output:
	// s1 [0, 10) 2 readings, sum 30
	// s2 [0, 10) 1 readings, sum 5
	// s1 [10, 20) 1 readings, sum 1
	// s1 [20, 30) 1 readings, sum 3
	// late: s2 at 3
}
