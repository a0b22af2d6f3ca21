package window_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

// cpRun is a windowed pipeline fed through an Input, recording its
// results, late rows and acknowledgements. It always folds (the
// scenario's agg is not used).
type cpRun struct {
	p     *pipeline.Pipeline
	in    *pipeline.Input[row]
	mu    sync.Mutex
	got   []string // results and late rows, as text
	acked int
}

// runAll runs r over rows to the end.
func (r *cpRun) runAll(t *testing.T, rows []row) {
	t.Helper()
	ctx := context.Background()
	if err := r.p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.submit(t, ctx, rows)
	r.in.Close()
	if err := r.p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// checkpointThenCancel starts r, submits rows, takes a checkpoint and
// cancels the run: the first half of a restart.
func (r *cpRun) checkpointThenCancel(t *testing.T, rows []row) {
	t.Helper()
	ctx := context.Background()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := r.p.Start(rctx); err != nil {
		t.Fatal(err)
	}
	r.submit(t, ctx, rows)
	if _, err := r.p.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := r.p.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func newCPRun(sc scenario, store checkpoint.Store) *cpRun {
	return newCPRunEvery(sc, store, 0)
}

// newCPRunEvery is newCPRun with a checkpoint every interval (0: only
// when asked).
func newCPRunEvery(sc scenario, store checkpoint.Store, interval time.Duration) *cpRun {
	return newCPRunWith(sc, store, interval)
}

// newCPRunWith is newCPRunEvery with more window options; a scenario
// with sources names each row's source (window.Sources).
func newCPRunWith(sc scenario, store checkpoint.Store, interval time.Duration, more ...window.Option) *cpRun {
	var opts []pipeline.Option
	if store != nil {
		opts = append(opts, pipeline.Checkpoints(interval, store))
	}
	r := &cpRun{p: pipeline.New("cp", append(opts, pipeline.BatchSize(1))...)}
	var s pipeline.Stream[row]
	r.in, s = pipeline.NewInput[row](r.p, "in")
	wopts := []window.Option{window.EventTime(row.time, time.Duration(sc.bound)*time.Millisecond),
		window.Lateness(time.Duration(sc.lateness) * time.Millisecond), window.Workers(sc.workers)}
	if sc.early > 0 {
		wopts = append(wopts, window.EarlyCount(sc.early))
	}
	if sc.sources {
		wopts = append(wopts, window.Sources(func(r row) int { return r.Src }))
	}
	wopts = append(wopts, more...)
	out := window.Fold(s, "win", rowKey, sc.win, sumAgg, wopts...)
	note := func(v string) {
		r.mu.Lock()
		r.got = append(r.got, v)
		r.mu.Unlock()
	}
	pipeline.To(out.Results(), stage.Sink("results", func(_ context.Context, w window.Result[string, sumCount]) error {
		note(fmt.Sprintf("result %s %d %d %d %v %+v", w.Key, w.Start.UnixMilli(), w.End.UnixMilli(), w.Count, w.Firing, w.Value))
		return nil
	}))
	pipeline.To(out.Late(), stage.Sink("late", func(_ context.Context, l row) error {
		note(fmt.Sprintf("late %+v", l))
		return nil
	}))
	return r
}

func (r *cpRun) submit(t *testing.T, ctx context.Context, rows []row) {
	t.Helper()
	for _, v := range rows {
		if _, err := r.in.SubmitAck(ctx, []row{v}, func() {
			r.mu.Lock()
			r.acked++
			r.mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *cpRun) results() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got), r.acked
}

// TestCheckpointRestart: a windowed pipeline checkpointed mid-stream,
// cancelled, and restarted from the checkpoint with the rest of its
// input gives the results and late rows of an uninterrupted run; every
// row covered by the checkpoint is acknowledged at the checkpoint, though
// its window has not fired; the accounting rule holds in both runs.
func TestCheckpointRestart(t *testing.T) {
	for _, workers := range []int{1, 3} {
		for seed := range uint64(6) {
			sc := newScenario(seed + 100)
			sc.workers, sc.batchSize = workers, 1
			t.Run(fmt.Sprintf("workers=%d/%s", workers, sc), func(t *testing.T) {
				ctx := context.Background()
				whole := newCPRun(sc, nil)
				whole.runAll(t, sc.rows)
				want, _ := whole.results()

				store := &checkpoint.Memory{}
				cut := len(sc.rows) / 2
				first := newCPRun(sc, store)
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				if err := first.p.Start(rctx); err != nil {
					t.Fatal(err)
				}
				first.submit(t, ctx, sc.rows[:cut])
				if id, err := first.p.Checkpoint(ctx); err != nil || id != 1 {
					t.Fatalf("checkpoint = %d, %v", id, err)
				}
				if _, acked := first.results(); acked != cut {
					t.Fatalf("%d rows acknowledged at checkpoint 1, want %d", acked, cut)
				}
				held := first.p.Stats().Held
				cancel()
				if err := first.p.Wait(); !errors.Is(err, context.Canceled) && err != nil {
					t.Fatal(err)
				}
				st := first.p.Stats()
				conserved(t, st)
				if st.Abandoned != held {
					t.Errorf("abandoned %d, want the %d rows held in windows", st.Abandoned, held)
				}
				got, _ := first.results()

				second := newCPRun(sc, store)
				second.runAll(t, sc.rows[cut:])
				conserved(t, second.p.Stats())
				rest, acked := second.results()
				if acked != len(sc.rows)-cut {
					t.Errorf("%d rows acknowledged in the second run, want %d", acked, len(sc.rows)-cut)
				}
				got = append(got, rest...)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("after a restart:\n%s\nuninterrupted:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		}
	}
}

// TestCheckpointRestartSources: with several sources, the watermark is
// the minimum over them. A checkpoint taken while source 0 runs ahead of
// source 1 holds source 1's place: after a restart, source 0 alone does
// not carry the watermark past source 1's next rows, which stay on time
// as in the uninterrupted run. Results, late rows and the late count
// equal the uninterrupted run's.
func TestCheckpointRestartSources(t *testing.T) {
	rows := []row{
		{Key: "a", Ms: 100, Src: 0, V: 1}, {Key: "b", Ms: 150, Src: 1, V: 2},
		{Key: "a", Ms: 2500, Src: 0, V: 3}, {Key: "b", Ms: 300, Src: 1, V: 4},
		// The checkpoint: the watermark is 300, held by source 1.
		{Key: "a", Ms: 3000, Src: 0, V: 5}, // source 0 runs on
		{Key: "b", Ms: 400, Src: 1, V: 6}, {Key: "b", Ms: 900, Src: 1, V: 7}, {Key: "b", Ms: 1200, Src: 1, V: 8},
		{Key: "a", Ms: 3100, Src: 0, V: 9}, {Key: "b", Ms: 3500, Src: 1, V: 10},
		{Key: "a", Ms: 200, Src: 0, V: 11}, // late: the watermark is 3100
	}
	const cut = 4
	for _, workers := range []int{1, 3} {
		for _, idle := range []time.Duration{0, time.Hour} {
			t.Run(fmt.Sprintf("workers=%d/idle=%v", workers, idle), func(t *testing.T) {
				sc := scenario{rows: rows, win: window.Tumbling(time.Second), sources: true, workers: workers}
				var more []window.Option
				if idle > 0 {
					more = append(more, window.Idle(idle))
				}
				whole := newCPRunWith(sc, nil, 0, more...)
				whole.runAll(t, rows)
				want, _ := whole.results()
				wantLate := whole.p.Stats().Late
				if wantLate != 1 {
					t.Fatalf("uninterrupted run: %d late rows, want 1", wantLate)
				}

				store := &checkpoint.Memory{}
				first := newCPRunWith(sc, store, 0, more...)
				first.checkpointThenCancel(t, rows[:cut])
				got, _ := first.results()
				late := first.p.Stats().Late

				second := newCPRunWith(sc, store, 0, more...)
				second.runAll(t, rows[cut:])
				conserved(t, second.p.Stats())
				rest, _ := second.results()
				late += second.p.Stats().Late
				got = append(got, rest...)
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("after a restart:\n%s\nuninterrupted:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if late != wantLate {
					t.Errorf("%d late rows over both runs, uninterrupted %d", late, wantLate)
				}
			})
		}
	}
}

// clocklessStore is a checkpoint store whose window part reads as it was
// written before the node's input clock was part of it: the number of
// workers and their snapshots, nothing after.
type clocklessStore struct{ checkpoint.Store }

func (s clocklessStore) Get(ctx context.Context, id uint64, part string) ([]byte, error) {
	data, err := s.Store.Get(ctx, id, part)
	if err != nil || part != "win" {
		return data, err
	}
	n, l := binary.Uvarint(data)
	end := l
	for range n {
		m, l := binary.Uvarint(data[end:])
		end += l + int(m)
	}
	return data[:end], nil
}

// TestCheckpointRestartNoClock: a checkpoint whose window part holds no
// input clock (one written before the clock was part of it) still
// restores: the sources' clocks start afresh, so source 0, which runs
// ahead, carries the watermark past source 1's next rows, and they are
// late.
func TestCheckpointRestartNoClock(t *testing.T) {
	rows := []row{
		{Key: "a", Ms: 100, Src: 0, V: 1}, {Key: "b", Ms: 300, Src: 1, V: 2}, {Key: "a", Ms: 2500, Src: 0, V: 3},
		{Key: "a", Ms: 3000, Src: 0, V: 4}, {Key: "b", Ms: 400, Src: 1, V: 5}, {Key: "b", Ms: 3500, Src: 1, V: 6},
	}
	const cut = 3
	sc := scenario{rows: rows, win: window.Tumbling(time.Second), sources: true, workers: 2}
	ctx := context.Background()
	checkpointed := func() *checkpoint.Memory {
		store := &checkpoint.Memory{}
		newCPRun(sc, store).checkpointThenCancel(t, rows[:cut])
		return store
	}
	for _, tc := range []struct {
		name  string
		store checkpoint.Store
		late  int64
	}{{"with the clock", checkpointed(), 0}, {"without", clocklessStore{checkpointed()}, 1}} {
		second := newCPRun(sc, tc.store)
		if err := second.p.Start(ctx); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		second.submit(t, ctx, rows[cut:])
		second.in.Close()
		if err := second.p.Wait(); err != nil {
			t.Fatal(err)
		}
		conserved(t, second.p.Stats())
		if late := second.p.Stats().Late; late != tc.late {
			got, _ := second.results()
			t.Errorf("%s: %d late rows, want %d:\n%s", tc.name, late, tc.late, strings.Join(got, "\n"))
		}
	}
}

// TestCheckpointWorkersChanged: a checkpoint of a window operator is not
// restored into one with another number of workers; the error names the
// stage and wraps checkpoint.ErrLayout.
func TestCheckpointWorkersChanged(t *testing.T) {
	ctx := context.Background()
	sc := newScenario(1)
	sc.workers = 2
	store := &checkpoint.Memory{}
	r := newCPRun(sc, store)
	if err := r.p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.submit(t, ctx, sc.rows[:10])
	if _, err := r.p.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	r.in.Close()
	if err := r.p.Wait(); err != nil {
		t.Fatal(err)
	}
	sc.workers = 3
	r2 := newCPRun(sc, store)
	err := r2.p.Start(ctx)
	if !errors.Is(err, checkpoint.ErrLayout) || !strings.Contains(err.Error(), "win") {
		t.Fatalf("Start = %v, want checkpoint.ErrLayout naming stage win", err)
	}
}

// TestCheckpointCrashMidStream: checkpoints are taken one after another
// from another goroutine while rows stream in, so barriers fall between
// any two rows, and one is taken halfway for sure; the run is cancelled
// after some of the rows. The
// acknowledged rows are a prefix of the input (those before the last
// complete checkpoint's barrier); a second run restored from the store
// and fed the rest emits every result of an uninterrupted run, and
// nothing else (results of windows fired after the checkpoint come
// twice, identical).
func TestCheckpointCrashMidStream(t *testing.T) {
	for _, workers := range []int{1, 3} {
		for seed := range uint64(4) {
			sc := newScenario(seed + 200)
			sc.workers, sc.batchSize = workers, 1
			t.Run(fmt.Sprintf("workers=%d/%s", workers, sc), func(t *testing.T) {
				ctx := context.Background()
				whole := newCPRun(sc, nil)
				whole.runAll(t, sc.rows)
				want, _ := whole.results()

				store := &checkpoint.Memory{}
				first := newCPRun(sc, store)
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				if err := first.p.Start(rctx); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				wg.Go(func() {
					for {
						if _, err := first.p.Checkpoint(ctx); err != nil {
							return // the run was cancelled
						}
					}
				})
				defer wg.Wait()
				var mu sync.Mutex
				acked := map[int]bool{}
				stop := len(sc.rows) / 4 * int(seed%4+1)
				for i, v := range sc.rows[:stop] {
					if i == stop/2 {
						if _, err := first.p.Checkpoint(ctx); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := first.in.SubmitAck(ctx, []row{v}, func() {
						mu.Lock()
						acked[i] = true
						mu.Unlock()
					}); err != nil {
						t.Fatal(err)
					}
				}
				cancel()
				if err := first.p.Wait(); err != nil && !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				wg.Wait()
				conserved(t, first.p.Stats())
				mu.Lock()
				n := len(acked)
				for i := range n {
					if !acked[i] {
						t.Fatalf("row %d not acknowledged, but %d rows are: not a prefix", i, n)
					}
				}
				mu.Unlock()
				t.Logf("cancelled after %d rows, %d acknowledged", stop, n)
				got, _ := first.results()

				second := newCPRunEvery(sc, store, time.Millisecond)
				if n < stop/2 {
					t.Fatalf("%d rows acknowledged, fewer than the %d before the checkpoint taken halfway", n, stop/2)
				}
				if err := second.p.Start(ctx); err != nil {
					t.Fatal(err)
				}
				second.submit(t, ctx, sc.rows[n:])
				second.in.Close()
				if err := second.p.Wait(); err != nil {
					t.Fatal(err)
				}
				conserved(t, second.p.Stats())
				rest, _ := second.results()
				got = unique(append(got, rest...))
				want = unique(want)
				if !slices.Equal(got, want) {
					t.Fatalf("%d rows acknowledged before the cancel; after a restart:\n%s\nuninterrupted:\n%s", n, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		}
	}
}

func unique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// TestCheckpointUnstableKeys: with several workers, a key type whose hash
// differs between processes cannot be restored, so Start refuses to
// checkpoint it, naming the stage.
func TestCheckpointUnstableKeys(t *testing.T) {
	type pair struct{ A, B string }
	p := pipeline.New("cp", pipeline.Checkpoints(0, &checkpoint.Memory{}))
	_, s := pipeline.NewInput[row](p, "in")
	out := window.Fold(s, "win", func(r row) pair { return pair{r.Key, r.Key} }, window.Tumbling(time.Second), sumAgg, window.Workers(2))
	pipeline.Discard(out.Results(), "out")
	err := p.Start(context.Background())
	if !errors.Is(err, pipeline.ErrConfig) || !strings.Contains(err.Error(), "win") {
		t.Fatalf("Start = %v, want ErrConfig naming stage win", err)
	}
}

// TestCheckpointLateMerged: the barrier leaves a window operator on both
// its outputs, so a graph that merges the results and the late rows
// again aligns it, and checkpoints complete; a restart from one gives
// the uninterrupted output.
func TestCheckpointLateMerged(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			rows := []row{{Key: "a", Ms: 100, V: 1}, {Key: "b", Ms: 1500, V: 2}, {Key: "a", Ms: 2500, V: 3},
				{Key: "a", Ms: 50, V: 4} /* late */, {Key: "b", Ms: 2600, V: 5}, {Key: "a", Ms: 10, V: 6} /* late */, {Key: "b", Ms: 4000, V: 7}}
			build := func(store checkpoint.Store) (*pipeline.Pipeline, *pipeline.Input[row], func() []string) {
				p := pipeline.New("merged", pipeline.BatchSize(1), pipeline.Checkpoints(0, store))
				in, s := pipeline.NewInput[row](p, "in")
				out := window.Fold(s, "win", rowKey, window.Tumbling(time.Second), sumAgg,
					window.EventTime(row.time, 0), window.Workers(workers))
				res := pipeline.Then(out.Results(), mapStage("res", func(r window.Result[string, sumCount]) string {
					return fmt.Sprintf("result %s %d %+v", r.Key, r.Start.UnixMilli(), r.Value)
				}))
				late := pipeline.Then(out.Late(), mapStage("late", func(r row) string { return fmt.Sprintf("late %+v", r) }))
				var mu sync.Mutex
				var got []string
				pipeline.To(fanout.Merge(res, late), stage.Sink("all", func(_ context.Context, v string) error {
					mu.Lock()
					got = append(got, v)
					mu.Unlock()
					return nil
				}))
				return p, in, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
			}
			ctx := context.Background()
			store := &checkpoint.Memory{}
			p, in, all := build(store)
			if err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			for i, r := range rows[:5] {
				if err := in.Submit(ctx, r); err != nil {
					t.Fatal(err)
				}
				if i%2 == 1 {
					if _, err := p.Checkpoint(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			in.Close()
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			got := all()

			// Restart from checkpoint 2 (after four rows) of a second store.
			store2 := &checkpoint.Memory{}
			p2, in2, all2 := build(store2)
			rctx, cancel := context.WithCancel(ctx)
			if err := p2.Start(rctx); err != nil {
				t.Fatal(err)
			}
			if _, err := in2.SubmitBatch(ctx, rows[:4]); err != nil {
				t.Fatal(err)
			}
			if _, err := p2.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := p2.Wait(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			p3, in3, all3 := build(store2)
			if err := p3.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := in3.SubmitBatch(ctx, rows[4:5]); err != nil {
				t.Fatal(err)
			}
			in3.Close()
			if err := p3.Wait(); err != nil {
				t.Fatal(err)
			}
			// What the cancelled run emitted and what the restarted run
			// emits are the output of the uninterrupted run.
			want := unique(got)
			rest := unique(append(all2(), all3()...))
			if len(rest) < 5 {
				t.Fatalf("only %v", rest)
			}
			if !slices.Equal(rest, want) {
				t.Fatalf("restarted: %v, want %v", rest, want)
			}
		})
	}
}

// damagedStore is a checkpoint store whose window part reads damaged: cut
// short, or with bytes after the input clock.
type damagedStore struct {
	checkpoint.Store
	damage func([]byte) []byte
}

func (s damagedStore) Get(ctx context.Context, id uint64, part string) ([]byte, error) {
	data, err := s.Store.Get(ctx, id, part)
	if err != nil || part != "win" {
		return data, err
	}
	return s.damage(append([]byte(nil), data...)), nil
}

// TestCheckpointDamagedPart: a window part that does not decode is refused
// at Start with an error that wraps checkpoint.ErrLayout and names the
// stage, as a changed layout is.
func TestCheckpointDamagedPart(t *testing.T) {
	ctx := context.Background()
	sc := newScenario(2)
	sc.sources = true
	store := &checkpoint.Memory{}
	r := newCPRun(sc, store)
	if err := r.p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.submit(t, ctx, sc.rows[:10])
	if _, err := r.p.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	r.in.Close()
	if err := r.p.Wait(); err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func([]byte) []byte{
		"cut short":      func(b []byte) []byte { return b[:len(b)-3] },
		"trailing bytes": func(b []byte) []byte { return append(b, 1, 2, 3) },
	} {
		r2 := newCPRun(sc, damagedStore{store, damage})
		err := r2.p.Start(ctx)
		if !errors.Is(err, checkpoint.ErrLayout) || !strings.Contains(err.Error(), "win") {
			t.Errorf("%s: Start = %v, want checkpoint.ErrLayout naming stage win", name, err)
		}
		if err == nil {
			r2.in.Close()
			_ = r2.p.Wait()
		}
	}
}
