package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// tally is a running count per key: the state of a counting stage. It
// keeps every capture it made, by checkpoint, for the tests to compare.
type tally struct {
	layout string
	mu     sync.Mutex
	m      map[string]int
	snaps  map[uint64]map[string]int
	// writing, if set, is closed by the first write.
	writing chan struct{}
	once    sync.Once
}

func newTally() *tally {
	return &tally{layout: "tally/v1", m: map[string]int{}, snaps: map[uint64]map[string]int{}}
}

func (t *tally) add(key string) {
	t.mu.Lock()
	t.m[key]++
	t.mu.Unlock()
}

func (t *tally) counts() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.m)
}

func (t *tally) snap(k uint64) map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snaps[k]
}

func (t *tally) SnapshotState(k uint64) (func(io.Writer) error, error) {
	t.mu.Lock()
	c := maps.Clone(t.m)
	t.snaps[k] = c
	t.mu.Unlock()
	return func(w io.Writer) error {
		if t.writing != nil {
			t.once.Do(func() { close(t.writing) })
		}
		return json.NewEncoder(w).Encode(c)
	}, nil
}

func (t *tally) RestoreState(r io.Reader) error {
	m := map[string]int{}
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return err
	}
	t.mu.Lock()
	t.m = m
	t.mu.Unlock()
	return nil
}

func (t *tally) Layout() string { return t.layout }

// counter returns a stage that counts rows by key into t and passes them on.
func counter(name string, t *tally, opts ...stage.Option) *stage.Stage[string, string] {
	return stage.Map(name, func(_ context.Context, v string) (string, error) {
		t.add(v)
		return v, nil
	}, append(opts, stage.State(t))...)
}

// acks counts acknowledgements by row.
type acks struct {
	mu sync.Mutex
	m  map[string]int
}

func (a *acks) fn(v string) func() {
	return func() {
		a.mu.Lock()
		if a.m == nil {
			a.m = map[string]int{}
		}
		a.m[v]++
		a.mu.Unlock()
	}
}

func (a *acks) got() map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.m)
}

func keyOf(v string) string { return strings.SplitN(v, "#", 2)[0] }

// countKeys counts rows by key.
func countKeys(rows map[string]int) map[string]int {
	out := map[string]int{}
	for v, n := range rows {
		if n != 1 {
			panic(fmt.Sprintf("row %s acknowledged %d times", v, n))
		}
		out[keyOf(v)]++
	}
	return out
}

// sameCounts compares two counts, zero and missing alike.
func sameCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// TestCheckpointAcksRestore: a stage's state is captured at the barrier,
// acknowledgements wait for the checkpoint that covers their rows, a clean
// end takes a last checkpoint, and a new run restores it.
func TestCheckpointAcksRestore(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			store := &checkpoint.Memory{}
			ctx := context.Background()
			tl := newTally()
			var ack acks
			handled := make(chan string, 100)

			p := pipeline.New("cp", pipeline.Checkpoints(0, store), pipeline.BatchSize(4))
			in, s := pipeline.NewInput[string](p, "in")
			s = pipeline.Then(s, stage.Map("key", func(_ context.Context, v string) (string, error) { return keyOf(v), nil }))
			s = pipeline.Then(s, counter("count", tl, stage.Concurrency(workers)))
			pipeline.To(s, stage.Sink("out", func(_ context.Context, v string) error { handled <- v; return nil }))
			if err := p.Start(ctx); err != nil {
				t.Fatal(err)
			}
			submit := func(lo, hi int) {
				for i := lo; i < hi; i++ {
					v := fmt.Sprintf("k%d#%d", i%3, i)
					if _, err := in.SubmitAck(ctx, []string{v}, ack.fn(v)); err != nil {
						t.Fatal(err)
					}
				}
			}
			submit(0, 10)
			id, err := p.Checkpoint(ctx)
			if err != nil || id != 1 {
				t.Fatalf("checkpoint = %d, %v; want 1", id, err)
			}
			want := map[string]int{"k0": 4, "k1": 3, "k2": 3}
			if got := tl.snap(1); !sameCounts(got, want) {
				t.Fatalf("snapshot 1 = %v, want %v", got, want)
			}
			if got := countKeys(ack.got()); !sameCounts(got, want) {
				t.Fatalf("acks after checkpoint 1 = %v, want %v", got, want)
			}
			for range 10 {
				<-handled
			}
			submit(10, 16)
			for range 6 {
				<-handled // every row handled, none acknowledged before a checkpoint covers it
			}
			if got := len(ack.got()); got != 10 {
				t.Fatalf("%d rows acknowledged before checkpoint 2, want 10", got)
			}
			if id, err := p.Checkpoint(ctx); err != nil || id != 2 {
				t.Fatalf("checkpoint = %d, %v; want 2", id, err)
			}
			if got := len(ack.got()); got != 16 {
				t.Fatalf("%d rows acknowledged after checkpoint 2, want 16", got)
			}
			submit(16, 20)
			p.Stop()
			if err := p.Wait(); err != nil {
				t.Fatal(err)
			}
			final := tl.counts()
			if got := countKeys(ack.got()); !sameCounts(got, final) || len(ack.got()) != 20 {
				t.Fatalf("acks after the run = %v (%d rows), want %v", got, len(ack.got()), final)
			}
			last, _, ok, _ := store.Latest(ctx)
			if !ok || last != 3 {
				t.Fatalf("latest checkpoint %d, %v; want 3 (the last one of a clean end)", last, ok)
			}
			st := p.Stats()
			if st.In != 20 || st.Delivered != 20 || st.Abandoned != 0 {
				t.Fatalf("stats in %d delivered %d abandoned %d", st.In, st.Delivered, st.Abandoned)
			}

			// A new run restores the state of the last checkpoint.
			tl2 := newTally()
			p2 := pipeline.New("cp", pipeline.Checkpoints(0, store), pipeline.BatchSize(4))
			_, s2 := pipeline.NewInput[string](p2, "in")
			s2 = pipeline.Then(s2, stage.Map("key", func(_ context.Context, v string) (string, error) { return keyOf(v), nil }))
			s2 = pipeline.Then(s2, counter("count", tl2, stage.Concurrency(workers)))
			pipeline.Discard(s2, "out")
			if err := p2.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if got := tl2.counts(); !sameCounts(got, final) {
				t.Fatalf("restored %v, want %v", got, final)
			}
			if id, err := p2.Checkpoint(ctx); err != nil || id != 4 {
				t.Fatalf("first checkpoint after restore = %d, %v; want 4", id, err)
			}
			p2.Stop()
			if err := p2.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCheckpointLayoutChanged: a checkpoint is never restored into a
// pipeline whose stages or state layouts changed; the error names the
// stage.
func TestCheckpointLayoutChanged(t *testing.T) {
	ctx := context.Background()
	store := &checkpoint.Memory{}
	build := func(name, layout string, workers int) *pipeline.Pipeline {
		tl := newTally()
		tl.layout = layout
		p := pipeline.New("cp", pipeline.Checkpoints(0, store))
		s := pipeline.FromSlice(p, "src", []string{"a", "b", "a"})
		s = pipeline.Then(s, counter(name, tl, stage.Concurrency(workers)))
		pipeline.Discard(s, "out")
		return p
	}
	if err := build("count", "v1", 1).Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, stage, layout string
		workers             int
		says                string
	}{
		{"layout", "count", "v2", 1, "stage count"},
		{"workers", "count", "v1", 2, "stage count"},
		{"renamed", "count2", "v1", 1, "stage count"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := build(c.stage, c.layout, c.workers).Start(ctx)
			if !errors.Is(err, checkpoint.ErrLayout) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("Start = %v, want ErrLayout naming %q", err, c.says)
			}
		})
	}
	if err := build("count", "v1", 1).Run(ctx); err != nil {
		t.Fatalf("same layout: %v", err)
	}
}

// TestCheckpointNodeKinds: barriers go through two sources merged, a
// fused chain, a Broadcast, a Partition, stages with several workers
// (ordered and unordered) and a merge again; every stateful stage's
// capture at checkpoint k counts exactly the rows submitted before k.
func TestCheckpointNodeKinds(t *testing.T) {
	ctx := context.Background()
	store := &checkpoint.Memory{}
	fused, ordered, unordered := newTally(), newTally(), newTally()
	p := pipeline.New("kinds", pipeline.Checkpoints(0, store), pipeline.BatchSize(3))
	inA, a := pipeline.NewInput[string](p, "a")
	inB, b := pipeline.NewInput[string](p, "b")
	s := fanout.Merge(a, b)
	s = pipeline.Then(s, stage.Map("key", func(_ context.Context, v string) (string, error) { return keyOf(v), nil }))
	s = pipeline.Then(s, counter("fused", fused)) // fused after key
	br := fanout.Broadcast(s, "bc", 2)
	o := pipeline.Then(br[0], counter("ordered", ordered, stage.Concurrency(3)))
	parts := fanout.Partition(br[1], "part", 2, func(v string) string { return v })
	u0 := pipeline.Then(parts[0], counter("unordered", unordered, stage.Concurrency(2), stage.Unordered()))
	u1 := pipeline.Then(parts[1], stage.Map("pass", func(_ context.Context, v string) (string, error) { return v, nil }, stage.Concurrency(2)))
	pipeline.To(fanout.Merge(o, u0, u1), stage.Sink("out", func(context.Context, string) error { return nil }, stage.Concurrency(2)))
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	wantUnordered := map[string]int{}
	for k := 1; k <= 5; k++ {
		for i := range 7 * k {
			v := fmt.Sprintf("k%d#%d.%d", i%4, k, i)
			in := inA
			if i%3 == 0 {
				in = inB
			}
			if err := in.Submit(ctx, v); err != nil {
				t.Fatal(err)
			}
			want[keyOf(v)]++
		}
		id, err := p.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, tl := range map[string]*tally{"fused": fused, "ordered": ordered} {
			if got := tl.snap(id); !sameCounts(got, want) {
				t.Fatalf("checkpoint %d: %s captured %v, want %v", id, name, got, want)
			}
		}
		// The unordered counter sees the keys of one partition: its
		// capture is want restricted to them.
		got := unordered.snap(id)
		for key := range got {
			wantUnordered[key] = want[key]
		}
		if !sameCounts(got, wantUnordered) {
			t.Fatalf("checkpoint %d: unordered captured %v, want %v", id, got, wantUnordered)
		}
	}
	p.Stop()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointAlignment: two inputs fed concurrently merge into a
// counting stage. Each input first passes a counting stage of its own,
// whose capture at checkpoint k is exactly the input's rows before
// barrier k; the merged counter's capture must be their union: a row of
// the fast input sent after its barrier is never counted before the slow
// input's barrier arrives. Every row acknowledged by then is in the
// capture.
func TestCheckpointAlignment(t *testing.T) {
	ctx := context.Background()
	store := &checkpoint.Memory{}
	tapA, tapB, merged := newTally(), newTally(), newTally()
	var ack acks
	p := pipeline.New("align", pipeline.Checkpoints(0, store), pipeline.BatchSize(2))
	inA, a := pipeline.NewInput[string](p, "fast")
	inB, b := pipeline.NewInput[string](p, "slow")
	a = pipeline.Then(a, counter("tap-fast", tapA))
	b = pipeline.Then(b, stage.Map("slow-step", func(_ context.Context, v string) (string, error) {
		x := 0
		for i := range 20000 {
			x += i
		}
		_ = x
		return v, nil
	}, stage.Buffer(backpressure.Buffer{Capacity: 64})))
	b = pipeline.Then(b, counter("tap-slow", tapB))
	s := pipeline.Then(fanout.Merge(a, b), counter("count", merged, stage.Buffer(backpressure.Buffer{Capacity: 8})))
	pipeline.Discard(s, "out")
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, src := range []struct {
		in  *pipeline.Input[string]
		tag string
	}{{inA, "a"}, {inB, "b"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("%s#%d", src.tag, i)
				if _, err := src.in.SubmitAck(ctx, []string{v}, ack.fn(v)); err != nil {
					return
				}
			}
		}()
	}
	for range 5 {
		id, err := p.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		acked := ack.got()
		countKeys(acked) // each row acknowledged once
		want := tapA.snap(id)
		maps.Copy(want, tapB.snap(id))
		got := merged.snap(id)
		if !sameCounts(got, want) {
			t.Fatalf("checkpoint %d: merged counter captured %d rows, the inputs' barriers came after %d", id, len(got), len(want))
		}
		for v := range acked {
			if got[v] != 1 {
				t.Fatalf("checkpoint %d: row %s acknowledged but not in the capture", id, v)
			}
		}
	}
	close(stop)
	wg.Wait()
	p.Stop()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if got, want := ack.got(), merged.counts(); !sameCounts(got, want) {
		t.Fatalf("after the run: acknowledged %d rows, counted %d", len(got), len(want))
	}
}

// TestCheckpointCancelled: a run cancelled in the middle of a checkpoint
// (the state is written, the sink has not seen the barrier yet) never
// marks that checkpoint complete, and acknowledges nothing.
func TestCheckpointCancelled(t *testing.T) {
	store := &checkpoint.Memory{}
	tl := newTally()
	tl.writing = make(chan struct{})
	var ack acks
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := pipeline.New("cancel", pipeline.Checkpoints(0, store))
	in, s := pipeline.NewInput[string](p, "in")
	blocked := make(chan struct{})
	pipeline.To(pipeline.Then(s, counter("count", tl)), stage.Sink("out", func(ctx context.Context, v string) error {
		close(blocked)
		<-ctx.Done() // holds the barrier back until the run is cancelled
		return ctx.Err()
	}, stage.Unfused()))
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := in.SubmitAck(ctx, []string{"x"}, ack.fn("x")); err != nil {
		t.Fatal(err)
	}
	<-blocked
	res := make(chan error, 1)
	go func() {
		_, err := p.Checkpoint(context.Background())
		res <- err
	}()
	<-tl.writing
	cancel()
	if err := <-res; !errors.Is(err, pipeline.ErrCheckpoint) {
		t.Fatalf("Checkpoint = %v, want ErrCheckpoint", err)
	}
	if err := p.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if id, _, ok, _ := store.Latest(context.Background()); ok {
		t.Fatalf("checkpoint %d marked complete by a cancelled run", id)
	}
	if got := ack.got(); len(got) != 0 {
		t.Fatalf("acknowledged %v in a cancelled run", got)
	}
	if st := p.Stats(); st.In != st.Delivered+st.Abandoned+st.Failed+st.Filtered+st.Dropped {
		t.Fatalf("accounting: %+v", st)
	}
}

// TestCheckpointConfig: graphs whose barriers could not keep step are
// refused.
func TestCheckpointConfig(t *testing.T) {
	store := &checkpoint.Memory{}
	for _, c := range []struct {
		name  string
		build func(p *pipeline.Pipeline)
	}{
		{"balance", func(p *pipeline.Pipeline) {
			s := pipeline.FromSlice(p, "src", []int{1})
			for i, b := range fanout.Balance(s, "bal", 2, backpressure.Buffer{}) {
				pipeline.Discard(b, fmt.Sprint("out", i))
			}
		}},
		{"feedback", func(p *pipeline.Pipeline) {
			_, fb := pipeline.NewFeedback[int](p, "fb")
			s := fanout.Merge(pipeline.FromSlice(p, "src", []int{1}), fb)
			pipeline.Discard(s, "out")
		}},
		{"drop-oldest", func(p *pipeline.Pipeline) {
			s := pipeline.FromSlice(p, "src", []int{1})
			pipeline.To(s, stage.Sink("out", func(context.Context, int) error { return nil },
				stage.Buffer(backpressure.Buffer{Policy: backpressure.DropOldest})))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := pipeline.New("cfg", pipeline.Checkpoints(0, store))
			c.build(p)
			if err := p.Run(context.Background()); !errors.Is(err, pipeline.ErrConfig) {
				t.Fatalf("Run = %v, want ErrConfig", err)
			}
		})
	}
	p := pipeline.New("nil-store", pipeline.Checkpoints(0, nil))
	pipeline.Discard(pipeline.FromSlice(p, "src", []int{1}), "out")
	if err := p.Run(context.Background()); !errors.Is(err, pipeline.ErrConfig) {
		t.Fatalf("nil store: Run = %v, want ErrConfig", err)
	}
	if _, err := pipeline.New("off").Checkpoint(context.Background()); !errors.Is(err, pipeline.ErrCheckpoint) {
		t.Fatalf("Checkpoint without checkpoints = %v, want ErrCheckpoint", err)
	}
}

// TestCheckpointEmitDeadLetters: a FromFunc source's acknowledgements
// wait for the checkpoint, also for rows sent to the dead-letter stream,
// whose sink the checkpoint does not wait for; the source gets its
// barrier while it idles between Emit calls.
func TestCheckpointEmitDeadLetters(t *testing.T) {
	ctx := context.Background()
	store := &checkpoint.Memory{}
	tl := newTally()
	var ack acks
	more := make(chan []string)
	emitted := make(chan error)
	p := pipeline.New("emit", pipeline.Checkpoints(0, store))
	s := pipeline.FromFunc(p, "src", func(ctx context.Context, emit *pipeline.Emitter[string]) error {
		for {
			select {
			case rows := <-more:
				_, err := emit.Emit(ctx, rows, ack.fn(strings.Join(rows, ",")))
				emitted <- err
				if err != nil {
					return err
				}
			case <-ctx.Done():
				return nil
			}
		}
	})
	s = pipeline.Then(s, stage.Verify("no-bad", func(_ context.Context, v string) (bool, error) {
		if strings.HasPrefix(v, "bad") {
			return false, errors.New("bad row")
		}
		return true, nil
	}, stage.OnError(stage.DeadLetter)))
	pipeline.Discard(pipeline.Then(s, counter("count", tl)), "out")
	var dead collector[string]
	pipeline.To(pipeline.Then(pipeline.DeadLetters(p), stage.Map("why", func(_ context.Context, f row.Failure) (string, error) {
		return f.Row.(string), nil
	})), dead.sink("dead"))
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	more <- []string{"a", "bad1", "b"}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	more <- []string{"c"}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tl.snap(1); !sameCounts(got, map[string]int{"a": 1, "b": 1, "c": 1}) {
		t.Fatalf("capture %v", got)
	}
	more <- []string{"d"}
	if err := <-emitted; err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	got := ack.got()
	if len(got) != 3 || got["a,bad1,b"] != 1 || got["c"] != 1 || got["d"] != 1 {
		t.Fatalf("acks %v: want each Emit acknowledged once", got)
	}
	st := p.Stats()
	if st.In != st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned || st.DeadLettered != 1 {
		t.Fatalf("accounting: %+v", st)
	}
}

// TestCheckpointStateRemoved: a checkpoint taken with a stateful stage is
// not restored into a pipeline where that stage lost its state.
func TestCheckpointStateRemoved(t *testing.T) {
	ctx := context.Background()
	store := &checkpoint.Memory{}
	p := pipeline.New("cp", pipeline.Checkpoints(0, store))
	pipeline.Discard(pipeline.Then(pipeline.FromSlice(p, "src", []string{"a"}), counter("count", newTally())), "out")
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	p = pipeline.New("cp", pipeline.Checkpoints(0, store))
	s := pipeline.Then(pipeline.FromSlice(p, "src", []string{"a"}), stage.Map("count", func(_ context.Context, v string) (string, error) { return v, nil }))
	pipeline.Discard(s, "out")
	if err := p.Start(ctx); !errors.Is(err, checkpoint.ErrLayout) || !strings.Contains(err.Error(), "stage count") {
		t.Fatalf("Start = %v, want ErrLayout naming stage count", err)
	}
}
