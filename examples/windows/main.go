// Command windows averages sensor readings per sensor in 10-second
// event-time windows. Readings arrive out of order: up to 2 seconds late
// they are on time; up to 5 seconds after a window closed they update it
// (a "late" result); later still they go to the late stream. The output
// is the same on every run:
//
//	go run ./examples/windows
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

// Reading is one measurement of a sensor.
type Reading struct {
	Sensor string
	At     time.Time
	Temp   float64
}

// Stat is a window's accumulator: how many readings, and their sum.
type Stat struct {
	N   int
	Sum float64
}

var start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// readings returns the stream: one reading per sensor per second, some
// out of order, one within the allowed lateness and one beyond it.
func readings() []Reading {
	var rs []Reading
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	for s := 0; s < 25; s++ {
		rs = append(rs, Reading{"sensor-1", at(float64(s)), 20 + float64(s%5)})
		if s%2 == 0 {
			rs = append(rs, Reading{"sensor-2", at(float64(s) + 0.5), 30 - float64(s%3)})
		}
		if s == 6 {
			rs = append(rs, Reading{"sensor-2", at(4.7), 31}) // out of order, on time
		}
		if s == 13 {
			rs = append(rs, Reading{"sensor-1", at(9.5), 40}) // after its window closed, within lateness
		}
		if s == 19 {
			rs = append(rs, Reading{"sensor-2", at(3), 99}) // beyond lateness: late stream
		}
	}
	return rs
}

func run(ctx context.Context) error {
	// Rows travel one by one so that the watermark, and so what is late,
	// is the same on every run.
	p := pipeline.New("sensors", pipeline.BatchSize(1))
	src := pipeline.FromSlice(p, "readings", readings())
	out := window.Fold(src, "avg", func(r Reading) string { return r.Sensor }, window.Tumbling(10*time.Second),
		window.Agg[Reading, Stat]{Add: func(s Stat, r Reading) Stat { return Stat{s.N + 1, s.Sum + r.Temp} }},
		window.EventTime(func(r Reading) time.Time { return r.At }, 2*time.Second),
		window.Lateness(5*time.Second))
	pipeline.To(out.Results(), stage.Sink("print", func(_ context.Context, r window.Result[string, Stat]) error {
		fmt.Printf("%s [%s, %s) %-7s %2d readings, avg %.2f\n", r.Key, r.Start.Format("15:04:05"), r.End.Format("15:04:05"),
			r.Firing, r.Value.N, r.Value.Sum/float64(r.Value.N))
		return nil
	}))
	late := pipeline.Collect(out.Late(), "late")

	// Restart from a checkpoint: once checkpoints exist, this is where the
	// example restores the windows' state saved by a previous run and
	// replays the readings after it, so that its output is the same as an
	// uninterrupted run's.

	if err := p.Run(ctx); err != nil {
		return err
	}
	for _, r := range late() {
		fmt.Printf("too late: %s at %s (%.0f)\n", r.Sensor, r.At.Format("15:04:05.0"), r.Temp)
	}
	st := p.Stats()
	fmt.Printf("rows %d, late %d, held %d, abandoned %d\n", st.Nodes[0].In, st.Late, st.Held, st.Abandoned)
	return nil
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
