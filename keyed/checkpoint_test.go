package keyed_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/keyed"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// counting is a pipeline whose keyed.Process keeps a running count per
// key and emits "key=count" for every row.
type counting struct {
	p     *pipeline.Pipeline
	in    *pipeline.Input[string]
	mu    sync.Mutex
	last  map[string]int
	acked int
}

func newCounting(store checkpoint.Store, workers int) *counting {
	c := &counting{p: pipeline.New("count", pipeline.Checkpoints(0, store), pipeline.BatchSize(3)), last: map[string]int{}}
	var s pipeline.Stream[string]
	c.in, s = pipeline.NewInput[string](c.p, "in")
	n := keyed.NewValue[string, int]("n")
	out := keyed.Process(s, "count", func(v string) string { return v }, keyed.Func[string, string, string]{
		Row: func(_ context.Context, kc *keyed.Context[string, string], v string) error {
			x, _ := n.Get(kc)
			n.Set(kc, x+1)
			kc.Emit(fmt.Sprintf("%s=%d", v, x+1))
			return nil
		},
	}, keyed.States(n), keyed.Workers(workers))
	pipeline.To(out, stage.Sink("out", func(_ context.Context, v string) error {
		k, x, _ := strings.Cut(v, "=")
		var i int
		fmt.Sscan(x, &i)
		c.mu.Lock()
		c.last[k] = max(c.last[k], i)
		c.mu.Unlock()
		return nil
	}))
	return c
}

func (c *counting) submit(t *testing.T, ctx context.Context, lo, hi int) {
	t.Helper()
	for i := lo; i < hi; i++ {
		if _, err := c.in.SubmitAck(ctx, []string{fmt.Sprintf("k%d", i%5)}, func() {
			c.mu.Lock()
			c.acked++
			c.mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckpointRestore: keyed.Process state taken by a checkpoint
// survives a cancelled run: the restarted run counts on from it.
func TestCheckpointRestore(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			ctx := context.Background()
			store := &checkpoint.Memory{}
			a := newCounting(store, workers)
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if err := a.p.Start(rctx); err != nil {
				t.Fatal(err)
			}
			a.submit(t, ctx, 0, 23)
			if _, err := a.p.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			a.mu.Lock()
			acked := a.acked
			a.mu.Unlock()
			if acked != 23 {
				t.Fatalf("%d rows acknowledged at the checkpoint, want 23", acked)
			}
			cancel()
			if err := a.p.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}

			b := newCounting(store, workers)
			if err := b.p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			b.submit(t, ctx, 23, 40)
			b.in.Close()
			if err := b.p.Wait(); err != nil {
				t.Fatal(err)
			}
			want := map[string]int{"k0": 8, "k1": 8, "k2": 8, "k3": 8, "k4": 8}
			if fmt.Sprint(b.last) != fmt.Sprint(want) {
				t.Fatalf("counts after the restart %v, want %v", b.last, want)
			}
			if st := b.p.Stats(); st.In != 17 || st.Delivered != 17 {
				t.Errorf("second run: in %d delivered %d", st.In, st.Delivered)
			}

			// Another number of workers: refused, naming the stage.
			c := newCounting(store, workers+1)
			if err := c.p.Start(ctx); !errors.Is(err, checkpoint.ErrLayout) || !strings.Contains(err.Error(), "count") {
				t.Fatalf("Start with %d workers = %v, want checkpoint.ErrLayout", workers+1, err)
			}
		})
	}
}

// reading is a row of TestCheckpointSources: a key, the source it came
// from and an event time in milliseconds.
type reading struct {
	Key string
	Src int
	Ms  int64
}

// watermarks is a pipeline whose keyed.Process, on the watermark of two
// sources, emits the watermark each row finds.
func watermarks(store checkpoint.Store, workers int) (*pipeline.Pipeline, *pipeline.Input[reading], func() []string) {
	var opts []pipeline.Option
	if store != nil {
		opts = append(opts, pipeline.Checkpoints(0, store))
	}
	p := pipeline.New("wm", append(opts, pipeline.BatchSize(1))...)
	in, s := pipeline.NewInput[reading](p, "in")
	out := keyed.Process(s, "marks", func(r reading) string { return r.Key }, keyed.Func[string, reading, string]{
		Row: func(_ context.Context, kc *keyed.Context[string, string], r reading) error {
			kc.Emit(fmt.Sprintf("%s@%d sees %d", r.Key, r.Ms, kc.Watermark().UnixMilli()))
			return nil
		},
	}, keyed.WithEventTime(func(r reading) time.Time { return time.UnixMilli(r.Ms) }, 0),
		keyed.Sources(func(r reading) int { return r.Src }), keyed.Workers(workers))
	return p, in, pipeline.Collect(out, "out")
}

// TestCheckpointSources: the watermark of several sources survives a
// restart: after it, the rows find the watermark they find in an
// uninterrupted run, not one carried on by the source that runs ahead.
func TestCheckpointSources(t *testing.T) {
	rows := []reading{{"a", 0, 100}, {"b", 1, 150}, {"a", 0, 2500}, {"b", 1, 300},
		{"a", 0, 3000}, {"b", 1, 400}, {"c", 1, 900}, {"a", 0, 3100}, {"b", 1, 3500}, {"c", 0, 3600}}
	const cut = 4
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			ctx := context.Background()
			submit := func(in *pipeline.Input[reading], rows []reading) {
				for _, r := range rows {
					if err := in.Submit(ctx, r); err != nil {
						t.Fatal(err)
					}
				}
			}
			p, in, all := watermarks(nil, workers)
			if err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			submit(in, rows)
			in.Close()
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			// The rows after the cut, in any order (workers emit
			// concurrently).
			after := map[string]bool{}
			for _, r := range rows[cut:] {
				after[fmt.Sprintf("%s@%d", r.Key, r.Ms)] = true
			}
			var want []string
			for _, v := range all() {
				if row, _, _ := strings.Cut(v, " "); after[row] {
					want = append(want, v)
				}
			}

			store := &checkpoint.Memory{}
			p1, in1, _ := watermarks(store, workers)
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if err := p1.Start(rctx); err != nil {
				t.Fatal(err)
			}
			submit(in1, rows[:cut])
			if _, err := p1.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := p1.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			p2, in2, rest := watermarks(store, workers)
			if err := p2.Start(ctx); err != nil {
				t.Fatal(err)
			}
			submit(in2, rows[cut:])
			in2.Close()
			if err := p2.Wait(); err != nil {
				t.Fatal(err)
			}
			got := rest()
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("after a restart:\n%s\nuninterrupted:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
