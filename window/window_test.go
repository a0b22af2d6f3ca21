package window_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisflow/kisflow/internal/engine"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

var sumAgg = window.Agg[row, sumCount]{
	Add:   func(a sumCount, r row) sumCount { return sumCount{a.Sum + r.V, a.N + 1} },
	Merge: func(a, b sumCount) sumCount { return sumCount{a.Sum + b.Sum, a.N + b.N} },
}

func rowKey(r row) string { return r.Key }

// TestSnapshotRoundTrip: an operator restored from a snapshot goes on
// exactly as the one snapshotted, for every window kind; writes after the
// snapshot do not change it; another layout is refused naming the stage.
func TestSnapshotRoundTrip(t *testing.T) {
	kinds := map[string]window.Windows{
		"tumbling": window.Tumbling(100 * time.Millisecond),
		"sliding":  window.Sliding(100*time.Millisecond, 30*time.Millisecond),
		"session":  window.Session(20 * time.Millisecond),
	}
	now := func() int64 { return 0 }
	ctx := context.Background()
	for name, w := range kinds {
		t.Run(name, func(t *testing.T) {
			rows := newScenario(7).rows
			first, rest := rows[:len(rows)/2], rows[len(rows)/2:]
			opts := []window.Option{window.EventTime(row.time, 20*time.Millisecond), window.Lateness(50 * time.Millisecond)}
			a, ea := window.NewTestFold("win", rowKey, w, sumAgg, now, opts...)
			feed := func(op engine.Operator[row, window.Result[string, sumCount]], em *engine.Emitter[row, window.Result[string, sumCount]], rows []row) {
				wm := int64(math.MinInt64)
				for i, r := range rows {
					if err := op.Row(ctx, em, r, 0); err != nil {
						t.Fatal(err)
					}
					if i%10 == 9 {
						wm = max(wm, r.Ms*1e6-20e6)
						if err := op.Advance(ctx, em, wm, 0); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			feed(a, ea, first)
			ea.Take()
			write, err := a.SnapshotState(3)
			if err != nil {
				t.Fatal(err)
			}
			feed(a, ea, rest) // after the snapshot: must not change it
			if err := a.Advance(ctx, ea, engine.EndOfInput, engine.EndOfInput); err != nil {
				t.Fatal(err)
			}
			want := ea.Take()
			var buf bytes.Buffer
			if err := write(&buf); err != nil {
				t.Fatal(err)
			}
			b, eb := window.NewTestFold("win", rowKey, w, sumAgg, now, opts...)
			if err := b.RestoreState(bytes.NewReader(buf.Bytes())); err != nil {
				t.Fatal(err)
			}
			if b.Stats().Keys == 0 {
				t.Fatal("nothing restored")
			}
			feed(b, eb, rest)
			if err := b.Advance(ctx, eb, engine.EndOfInput, engine.EndOfInput); err != nil {
				t.Fatal(err)
			}
			got := eb.Take()
			sortResults(want)
			sortResults(got)
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("restored operator emitted %d results, the original %d", len(got), len(want))
			}
			other, _ := window.NewTestFold("win", rowKey, window.Tumbling(time.Second), sumAgg, now, opts...)
			err = other.RestoreState(bytes.NewReader(buf.Bytes()))
			if !errors.Is(err, window.ErrLayout) || !strings.Contains(err.Error(), "window win") {
				t.Fatalf("restore into another layout: %v", err)
			}
		})
	}
}

func sortResults(rs []window.Result[string, sumCount]) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.End.Before(b.End)
	})
}

// TestAcksWaitForWindows: an input is acknowledged only after the result
// of every window its rows went into was handled; late rows sent to the
// late stream are acknowledged once handled there.
func TestAcksWaitForWindows(t *testing.T) {
	for _, workers := range []int{1, 2} {
		p := pipeline.New("acks", pipeline.BatchSize(1))
		in, s := pipeline.NewInput[row](p, "in")
		out := window.Fold(s, "win", rowKey, window.Tumbling(time.Second), sumAgg,
			window.EventTime(row.time, 0), window.Workers(workers))
		var mu sync.Mutex
		var log []string
		note := func(s string) {
			mu.Lock()
			log = append(log, s)
			mu.Unlock()
		}
		pipeline.To(out.Results(), stage.Sink("sink", func(_ context.Context, r window.Result[string, sumCount]) error {
			note(fmt.Sprintf("result %s %d", r.Key, r.Start.Unix()))
			return nil
		}))
		pipeline.To(out.Late(), stage.Sink("late", func(_ context.Context, r row) error {
			note(fmt.Sprintf("late %s %d", r.Key, r.Ms))
			return nil
		}))
		ctx := context.Background()
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		submit := func(name string, rows ...row) {
			if _, err := in.SubmitAck(ctx, rows, func() { note("ack " + name) }); err != nil {
				t.Fatal(err)
			}
		}
		submit("one", row{Key: "a", Ms: 100, V: 1}, row{Key: "b", Ms: 200, V: 1})
		submit("two", row{Key: "a", Ms: 5000, V: 1})
		submit("three", row{Key: "a", Ms: 50, V: 1}) // late: window [0,1s) is gone
		in.Close()
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		pos := map[string]int{}
		for i, l := range log {
			pos[l] = i + 1
		}
		for _, c := range [][2]string{{"result a 0", "ack one"}, {"result b 0", "ack one"}, {"result a 5", "ack two"}, {"late a 50", "ack three"}} {
			if pos[c[0]] == 0 || pos[c[1]] == 0 || pos[c[0]] > pos[c[1]] {
				t.Fatalf("workers=%d: %q must come before %q: %v", workers, c[0], c[1], log)
			}
		}
		st := p.Stats()
		conserved(t, st)
		if st.Late != 1 || st.Nodes[1].Late != 1 {
			t.Errorf("late %d", st.Late)
		}
	}
}

// TestCancelHeld: rows held in windows when the run is cancelled are
// abandoned, their input never acknowledged; Held reports them.
func TestCancelHeld(t *testing.T) {
	for _, workers := range []int{1, 3} {
		p := pipeline.New("cancel")
		in, s := pipeline.NewInput[row](p, "in")
		out := window.Fold(s, "win", rowKey, window.Tumbling(time.Hour), sumAgg, window.EventTime(row.time, 0), window.Workers(workers))
		pipeline.Discard(out.Results(), "sink")
		ctx, cancel := context.WithCancel(context.Background())
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		acked := false
		var rows []row
		for i := range 100 {
			rows = append(rows, row{Key: fmt.Sprint(i % 7), Ms: int64(i)})
		}
		if _, err := in.SubmitAck(ctx, rows, func() { acked = true }); err != nil {
			t.Fatal(err)
		}
		for p.Stats().Held < 100 {
			time.Sleep(time.Millisecond) // waiting for the rows to be held, not timing
		}
		cancel()
		if err := p.Wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		st := p.Stats()
		conserved(t, st)
		if acked || st.Abandoned < 100 || st.Held != 100 {
			t.Fatalf("acked %t, abandoned %d, held %d", acked, st.Abandoned, st.Held)
		}
	}
}

// TestStopDrains: Stop fires every window: nothing is held or abandoned.
func TestStopDrains(t *testing.T) {
	p := pipeline.New("stop")
	in, s := pipeline.NewInput[row](p, "in")
	out := window.Fold(s, "win", rowKey, window.Session(time.Hour), sumAgg, window.EventTime(row.time, 0))
	got := pipeline.Collect(out.Results(), "sink")
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := in.Submit(ctx, row{Key: fmt.Sprint(i % 5), Ms: int64(i), V: 1}); err != nil {
			t.Fatal(err)
		}
	}
	p.Stop()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	conserved(t, st)
	if len(got()) != 5 || st.Abandoned != 0 || st.Held != 0 {
		t.Fatalf("%d results, abandoned %d, held %d", len(got()), st.Abandoned, st.Held)
	}
}

// TestProcessPanics: a panicking window function fails the run under
// FailFlow, naming the stage; under Skip the window's rows count Failed.
func TestProcessPanics(t *testing.T) {
	rows := newScenario(3).rows
	boom := func(_ context.Context, w window.Window[string], rows []row, emit func(int)) error {
		if w.Key == "k0" {
			panic("boom")
		}
		emit(len(rows))
		return nil
	}
	for _, workers := range []int{1, 2} {
		p := pipeline.New("panic")
		out := window.Process(pipeline.FromSlice(p, "src", rows), "proc", rowKey, window.Tumbling(100*time.Millisecond), boom,
			window.EventTime(row.time, time.Second), window.Workers(workers))
		pipeline.Discard(out.Results(), "sink")
		err := p.Run(context.Background())
		var pe *engine.PanicError
		var se *stage.Error
		if !errors.As(err, &pe) || !errors.As(err, &se) || se.Stage != "proc" {
			t.Fatalf("err %v", err)
		}
		conserved(t, p.Stats())

		p = pipeline.New("skip")
		out = window.Process(pipeline.FromSlice(p, "src", rows), "proc", rowKey, window.Tumbling(100*time.Millisecond), boom,
			window.EventTime(row.time, time.Second), window.Workers(workers), window.Stage(stage.OnError(stage.Skip)))
		got := pipeline.Collect(out.Results(), "sink")
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		conserved(t, st)
		n := int64(0)
		for _, r := range got() {
			if r.Key == "k0" {
				t.Fatalf("result of the failing key: %+v", r)
			}
			n += int64(r.Value)
		}
		if st.Failed == 0 || n+st.Failed+st.Late != int64(len(rows)) {
			t.Fatalf("failed %d + results over %d rows + late %d != %d rows", st.Failed, n, st.Late, len(rows))
		}
	}
}

// TestStateFull: a row that needs a window beyond MaxWindows fails with
// ErrStateFull and gets the error policy.
func TestStateFull(t *testing.T) {
	var rows []row
	for i := range 40 {
		rows = append(rows, row{Key: fmt.Sprint(i % 8), Ms: 1, V: 1})
	}
	p := pipeline.New("full")
	out := window.Fold(pipeline.FromSlice(p, "src", rows), "win", rowKey, window.Tumbling(time.Second), sumAgg,
		window.EventTime(row.time, 0), window.MaxWindows(3), window.Stage(stage.OnError(stage.Skip)))
	got := pipeline.Collect(out.Results(), "sink")
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	conserved(t, st)
	if st.Failed != 25 || len(got()) != 3 || !strings.Contains(st.Nodes[1].LastError, "keyed state full") {
		t.Fatalf("failed %d, %d results, last error %q", st.Failed, len(got()), st.Nodes[1].LastError)
	}
	p = pipeline.New("full")
	out = window.Fold(pipeline.FromSlice(p, "src", rows), "win", rowKey, window.Tumbling(time.Second), sumAgg,
		window.EventTime(row.time, 0), window.MaxWindows(3))
	pipeline.Discard(out.Results(), "sink")
	if err := p.Run(context.Background()); !errors.Is(err, window.ErrStateFull) || !strings.Contains(err.Error(), "stage win") {
		t.Fatalf("err %v", err)
	}
	conserved(t, p.Stats())
}

// TestProcessingTime: processing-time windows fire on the clock, while the
// input is open and no row comes.
func TestProcessingTime(t *testing.T) {
	p := pipeline.New("proc")
	in, s := pipeline.NewInput[row](p, "in")
	out := window.Fold(s, "win", rowKey, window.Tumbling(5*time.Millisecond), sumAgg)
	results := make(chan window.Result[string, sumCount], 16)
	pipeline.To(out.Results(), stage.Sink("sink", func(_ context.Context, r window.Result[string, sumCount]) error {
		results <- r
		return nil
	}))
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := in.Submit(ctx, row{Key: "a", V: 1}); err != nil {
			t.Fatal(err)
		}
	}
	n := int64(0)
	for n < 10 {
		r := <-results
		if r.Firing != window.OnTime || r.End.Sub(r.Start) != 5*time.Millisecond {
			t.Fatalf("result %+v", r)
		}
		n += r.Count
	}
	in.Close()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	conserved(t, p.Stats())
}

// TestIdle: a quiet source stops holding the watermark back, and a quiet
// stream's event time follows the clock, so windows close while the input
// is open.
func TestIdle(t *testing.T) {
	for _, workers := range []int{1, 2} {
		p := pipeline.New("idle")
		in, s := pipeline.NewInput[row](p, "in")
		out := window.Fold(s, "win", rowKey, window.Tumbling(50*time.Millisecond), sumAgg,
			window.EventTime(row.time, 0), window.Sources(func(r row) int { return r.Src }),
			window.Idle(5*time.Millisecond), window.Workers(workers))
		results := make(chan window.Result[string, sumCount], 16)
		pipeline.To(out.Results(), stage.Sink("sink", func(_ context.Context, r window.Result[string, sumCount]) error {
			results <- r
			return nil
		}))
		ctx := context.Background()
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// Source 1 is at 0 ms; source 0 goes on to 120 ms. Without idleness
		// source 1 would hold the watermark at 0 and no window would close.
		// One batch, so that no source turns idle between the rows.
		if _, err := in.SubmitBatch(ctx, []row{{Key: "a", Ms: 0, Src: 1, V: 1}, {Key: "a", Ms: 10, Src: 0, V: 1}, {Key: "b", Ms: 120, Src: 0, V: 1}}); err != nil {
			t.Fatal(err)
		}
		first := <-results
		if first.Key != "a" || first.Count != 2 || first.Start.UnixMilli() != 0 {
			t.Fatalf("first result %+v", first)
		}
		// Then every source is quiet: event time follows the clock and
		// the last window closes too.
		second := <-results
		if second.Key != "b" || second.Count != 1 {
			t.Fatalf("second result %+v", second)
		}
		in.Close()
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		conserved(t, p.Stats())
	}
}

// TestEarlyEvery: early firings on processing time come before the window
// ends, and the on-time result has every row.
func TestEarlyEvery(t *testing.T) {
	p := pipeline.New("early")
	in, s := pipeline.NewInput[row](p, "in")
	out := window.Fold(s, "win", rowKey, window.Tumbling(time.Hour), sumAgg,
		window.EventTime(row.time, 0), window.EarlyEvery(time.Millisecond))
	results := make(chan window.Result[string, sumCount], 16)
	pipeline.To(out.Results(), stage.Sink("sink", func(_ context.Context, r window.Result[string, sumCount]) error {
		results <- r
		return nil
	}))
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Submit(ctx, row{Key: "a", Ms: 1, V: 5}); err != nil {
		t.Fatal(err)
	}
	if r := <-results; r.Firing != window.Early || r.Value.Sum != 5 {
		t.Fatalf("early result %+v", r)
	}
	if err := in.Submit(ctx, row{Key: "a", Ms: 2, V: 6}); err != nil {
		t.Fatal(err)
	}
	in.Close()
	var last window.Result[string, sumCount]
	for r := range drain(p, results) {
		last = r
	}
	if last.Firing != window.OnTime || last.Value.Sum != 11 || last.Count != 2 {
		t.Fatalf("last result %+v", last)
	}
	conserved(t, p.Stats())
}

// drain yields what ch receives until p's run is over.
func drain[T any](p *pipeline.Pipeline, ch chan T) func(func(T) bool) {
	return func(yield func(T) bool) {
		for {
			select {
			case v := <-ch:
				if !yield(v) {
					return
				}
			case <-p.Done():
				for {
					select {
					case v := <-ch:
						if !yield(v) {
							return
						}
					default:
						return
					}
				}
			}
		}
	}
}

// TestDeadLetter: rows beyond MaxWindows under the DeadLetter policy go to
// the dead-letter stream; without one, Start refuses the pipeline.
func TestDeadLetter(t *testing.T) {
	var rows []row
	for i := range 20 {
		rows = append(rows, row{Key: fmt.Sprint(i % 5), Ms: 1, V: 1})
	}
	p := pipeline.New("dl")
	out := window.Fold(pipeline.FromSlice(p, "src", rows), "win", rowKey, window.Tumbling(time.Second), sumAgg,
		window.EventTime(row.time, 0), window.MaxWindows(2), window.Stage(stage.OnError(stage.DeadLetter)))
	pipeline.Discard(out.Results(), "sink")
	dead := pipeline.Collect(pipeline.DeadLetters(p), "dead")
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	conserved(t, st)
	if len(dead()) != 12 || st.DeadLettered != 12 || !errors.Is(dead()[0].Err, window.ErrStateFull) {
		t.Fatalf("%d dead letters, %d counted", len(dead()), st.DeadLettered)
	}

	p = pipeline.New("nodl")
	out = window.Fold(pipeline.FromSlice(p, "src", rows), "win", rowKey, window.Tumbling(time.Second), sumAgg,
		window.Stage(stage.OnError(stage.DeadLetter)))
	pipeline.Discard(out.Results(), "sink")
	if err := p.Start(context.Background()); !errors.Is(err, pipeline.ErrNoDeadLetter) {
		t.Fatalf("err %v", err)
	}
}
