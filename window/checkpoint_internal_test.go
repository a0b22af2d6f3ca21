package window

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/kisflow/kisflow/internal/engine"
	"github.com/kisflow/kisflow/pipeline"
)

type reading struct {
	Key string
	Ms  int64
	V   int64
}

type total struct{ N, Sum int64 }

func totals(workers int, in pipeline.Stream[reading]) (*Output[string, reading, total], func() []Result[string, total]) {
	out := Fold(in, "win", func(r reading) string { return r.Key }, Tumbling(100*time.Millisecond),
		Agg[reading, total]{Add: func(t total, r reading) total { return total{t.N + 1, t.Sum + r.V} }},
		EventTime(func(r reading) time.Time { return time.UnixMilli(r.Ms) }, 0), Workers(workers))
	return out, pipeline.Collect(out.Results(), "sink")
}

// TestSnapshotBetweenBatches: a running operator's workers snapshot their
// windows between batches; a new run restored from those snapshots and
// fed the rest of the rows emits what an uninterrupted run emits for
// them (the restart-from-checkpoint path).
func TestSnapshotBetweenBatches(t *testing.T) {
	var rows []reading
	for i := range 400 {
		rows = append(rows, reading{Key: fmt.Sprint("k", i%9), Ms: int64(i * 2), V: int64(i)})
	}
	first, rest := rows[:240], rows[240:] // rest begins inside the window [400ms, 500ms)
	for _, workers := range []int{1, 3} {
		ctx := context.Background()
		// The uninterrupted run.
		p := pipeline.New("all")
		_, all := totals(workers, pipeline.FromSlice(p, "src", rows))
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		// A run fed the first rows, snapshotted, then cancelled.
		p1 := pipeline.New("first")
		in, s := pipeline.NewInput[reading](p1, "in")
		out1, _ := totals(workers, s)
		ctx1, cancel := context.WithCancel(ctx)
		if err := p1.Start(ctx1); err != nil {
			t.Fatal(err)
		}
		if _, err := in.SubmitAck(ctx1, first, nil); err != nil {
			t.Fatal(err)
		}
		for n := p1.Stats().Nodes[1]; n.Delivered+n.Held < int64(len(first)); n = p1.Stats().Nodes[1] {
			time.Sleep(time.Millisecond) // waiting for every row to be in a window or out, not timing
		}
		writes, err := out1.node.Snapshot(ctx1, 1)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := p1.Wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		states := make([][]byte, len(writes))
		for i, w := range writes {
			var b bytes.Buffer
			if err := w(&b); err != nil {
				t.Fatal(err)
			}
			states[i] = b.Bytes()
		}
		// The restarted run: restored, fed the rest.
		p2 := pipeline.New("rest")
		out2, got := totals(workers, pipeline.FromSlice(p2, "src", rest))
		if err := out2.node.Restore(states); err != nil {
			t.Fatal(err)
		}
		if err := p2.Run(ctx); err != nil {
			t.Fatal(err)
		}
		// Every window the restarted run emits is the uninterrupted run's.
		want := map[string]Result[string, total]{}
		for _, r := range all() {
			want[fmt.Sprint(r.Key, r.Start.UnixMilli())] = r
		}
		gotRes := got()
		sort.Slice(gotRes, func(i, j int) bool { return gotRes[i].Start.Before(gotRes[j].Start) })
		for _, r := range gotRes {
			if w := want[fmt.Sprint(r.Key, r.Start.UnixMilli())]; !reflect.DeepEqual(w, r) {
				t.Fatalf("workers=%d: restored run emitted %+v, uninterrupted %+v", workers, r, w)
			}
		}
		if len(gotRes) == 0 {
			t.Fatal("restored run emitted nothing")
		}
		// Restoring into a different number of workers is refused.
		p3 := pipeline.New("other")
		out3, _ := totals(workers+1, pipeline.FromSlice(p3, "src", rest))
		if err := out3.node.Restore(states); !errors.Is(err, engine.ErrLayout) {
			t.Fatalf("restore into %d workers: %v", workers+1, err)
		}
	}
}
