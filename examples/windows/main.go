// Command windows averages sensor readings per sensor in 10-second
// event-time windows. Readings arrive out of order: up to 2 seconds late
// they are on time; up to 5 seconds after a window closed they update it
// (a "late" result); later still they go to the late stream. The output
// is the same on every run:
//
//	go run ./examples/windows
//
// Then it does it again with checkpoints: a first run takes a checkpoint
// after part of the readings and is cancelled, as by a crash, with
// windows still open; a second run restores them from the checkpoint
// and reads the rest. Together they print the same windows.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/kisflow/kisflow/checkpoint"
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

// average adds the windows to the readings and prints every result.
func average(src pipeline.Stream[Reading]) *window.Output[string, Reading, Stat] {
	out := window.Fold(src, "avg", func(r Reading) string { return r.Sensor }, window.Tumbling(10*time.Second),
		window.Agg[Reading, Stat]{Add: func(s Stat, r Reading) Stat { return Stat{s.N + 1, s.Sum + r.Temp} }},
		window.EventTime(func(r Reading) time.Time { return r.At }, 2*time.Second),
		window.Lateness(5*time.Second))
	pipeline.To(out.Results(), stage.Sink("print", func(_ context.Context, r window.Result[string, Stat]) error {
		fmt.Printf("%s [%s, %s) %-7s %2d readings, avg %.2f\n", r.Key, r.Start.Format("15:04:05"), r.End.Format("15:04:05"),
			r.Firing, r.Value.N, r.Value.Sum/float64(r.Value.N))
		return nil
	}))
	return out
}

func run(ctx context.Context) error {
	// Rows travel one by one so that the watermark, and so what is late,
	// is the same on every run.
	p := pipeline.New("sensors", pipeline.BatchSize(1))
	src := pipeline.FromSlice(p, "readings", readings())
	out := average(src)
	late := pipeline.Collect(out.Late(), "late")

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

// restart runs the readings in two runs: the first takes a checkpoint
// into store after the first cut readings and is cancelled; the second
// restores the open windows from it and reads the rest.
func restart(ctx context.Context, cut int) error {
	store := &checkpoint.Memory{}
	rs := readings()
	var mu sync.Mutex
	var tooLate []Reading
	acked := 0
	phase := func(ctx context.Context, rows []Reading, checkpointAndCancel func(*pipeline.Pipeline) error) (pipeline.Stats, error) {
		p := pipeline.New("sensors", pipeline.BatchSize(1), pipeline.Checkpoints(0, store))
		in, src := pipeline.NewInput[Reading](p, "readings")
		out := average(src)
		pipeline.To(out.Late(), stage.Sink("late", func(_ context.Context, r Reading) error {
			mu.Lock()
			tooLate = append(tooLate, r)
			mu.Unlock()
			return nil
		}))
		if err := p.Start(ctx); err != nil {
			return pipeline.Stats{}, err
		}
		for _, r := range rows {
			if _, err := in.SubmitAck(ctx, []Reading{r}, func() { mu.Lock(); acked++; mu.Unlock() }); err != nil {
				return pipeline.Stats{}, err
			}
		}
		var err error
		if checkpointAndCancel != nil {
			err = checkpointAndCancel(p)
		} else {
			in.Close()
		}
		if werr := p.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
			err = werr
		}
		return p.Stats(), err
	}

	rctx, crash := context.WithCancel(ctx)
	defer crash()
	var held int64
	if _, err := phase(rctx, rs[:cut], func(p *pipeline.Pipeline) error {
		id, err := p.Checkpoint(ctx)
		if err != nil {
			return err
		}
		held = p.Stats().Held
		mu.Lock()
		fmt.Printf("checkpoint %d after %d readings: %d held in open windows, %d acknowledged; cancelled\n", id, cut, held, acked)
		mu.Unlock()
		crash()
		return nil
	}); err != nil {
		return err
	}
	st, err := phase(ctx, rs[cut:], nil)
	if err != nil {
		return err
	}
	for _, r := range tooLate {
		fmt.Printf("too late: %s at %s (%.0f)\n", r.Sensor, r.At.Format("15:04:05.0"), r.Temp)
	}
	fmt.Printf("restarted with %d rows, late %d, held %d, abandoned %d; %d of %d readings acknowledged\n",
		st.Nodes[0].In, st.Late, st.Held, st.Abandoned, acked, len(rs))
	return nil
}

func main() {
	ctx := context.Background()
	fmt.Println("one run:")
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
	fmt.Println("two runs, restarted from a checkpoint:")
	if err := restart(ctx, 25); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
