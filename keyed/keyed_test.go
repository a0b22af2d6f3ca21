package keyed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/keyed"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

type ev struct {
	Key string
	At  int64 // ms
	V   int
}

type counted struct {
	Key string
	N   int
	V   int
}

// conserved asserts the accounting rule for the totals and every node.
func conserved(t *testing.T, st pipeline.Stats) {
	t.Helper()
	if st.In != st.Delivered+st.Filtered+st.Dropped+st.Failed+st.DeadLettered+st.Abandoned {
		t.Errorf("rows in %d != delivered %d + filtered %d + dropped %d + failed %d + dead-lettered %d + abandoned %d",
			st.In, st.Delivered, st.Filtered, st.Dropped, st.Failed, st.DeadLettered, st.Abandoned)
	}
	for _, n := range st.Nodes {
		if n.In != n.Delivered+n.Filtered+n.Failed+n.DeadLettered+n.Abandoned {
			t.Errorf("node %s: in %d != delivered %d + filtered %d + failed %d + dead-lettered %d + abandoned %d",
				n.Name, n.In, n.Delivered, n.Filtered, n.Failed, n.DeadLettered, n.Abandoned)
		}
	}
}

func events(n, keys int) []ev {
	out := make([]ev, n)
	for i := range out {
		out[i] = ev{Key: fmt.Sprintf("k%d", (i*7)%keys), At: int64(i), V: i}
	}
	return out
}

var count = keyed.NewValue[string, int]("count")

func counter() keyed.Func[string, ev, counted] {
	return keyed.Func[string, ev, counted]{Row: func(_ context.Context, c *keyed.Context[string, counted], e ev) error {
		n, _ := count.Get(c)
		n++
		count.Set(c, n)
		c.Emit(counted{c.Key(), n, e.V})
		return nil
	}}
}

// TestOrderPerKey: every key's rows reach one worker in order, whatever
// the number of workers and the batch size.
func TestOrderPerKey(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		for _, batch := range []int{1, 7, 512} {
			t.Run(fmt.Sprintf("workers=%d/batch=%d", workers, batch), func(t *testing.T) {
				p := pipeline.New("order", pipeline.BatchSize(batch))
				rows := events(3000, 37)
				out := keyed.Process(pipeline.FromSlice(p, "src", rows), "count", func(e ev) string { return e.Key }, counter(),
					keyed.Workers(workers), keyed.States(count))
				got := pipeline.Collect(out, "sink")
				if err := p.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				last := map[string]counted{}
				for _, c := range got() {
					prev := last[c.Key]
					if c.N != prev.N+1 || (prev.N > 0 && c.V <= prev.V) {
						t.Fatalf("key %s: %+v after %+v", c.Key, c, prev)
					}
					last[c.Key] = c
				}
				if len(got()) != len(rows) || len(last) != 37 {
					t.Fatalf("%d results over %d keys", len(got()), len(last))
				}
				st := p.Stats()
				conserved(t, st)
				if st.Nodes[1].StateKeys != 37 || st.Nodes[1].StateBytes <= 0 {
					t.Errorf("state gauges: %d keys, %d bytes", st.Nodes[1].StateKeys, st.Nodes[1].StateBytes)
				}
			})
		}
	}
}

// TestEventTimers: a timer per key at the last row's time plus 10 emits the
// key's list and clears it; timers left when the input ends fire then.
func TestEventTimers(t *testing.T) {
	seen := keyed.NewList[string, int]("seen")
	fn := keyed.Func[string, ev, []int]{
		Row: func(_ context.Context, c *keyed.Context[string, []int], e ev) error {
			seen.Add(c, e.V)
			c.TimerAt(c.Time().Add(10 * time.Millisecond))
			return nil
		},
		Timer: func(_ context.Context, c *keyed.Context[string, []int], tm keyed.Timer) error {
			if tm.Domain != keyed.EventTime {
				return errors.New("not an event-time timer")
			}
			if l := seen.Get(c); len(l) > 0 {
				c.Emit(append([]int(nil), l...))
			}
			seen.Clear(c)
			return nil
		},
	}
	for _, workers := range []int{1, 3} {
		p := pipeline.New("timers", pipeline.BatchSize(4))
		rows := events(500, 5)
		out := keyed.Process(pipeline.FromSlice(p, "src", rows), "gather", func(e ev) string { return e.Key }, fn,
			keyed.Workers(workers), keyed.States(seen), keyed.WithEventTime(func(e ev) time.Time { return time.UnixMilli(e.At) }, 0))
		got := pipeline.Collect(out, "sink")
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, l := range got() {
			total += len(l)
		}
		if total != len(rows) {
			t.Fatalf("workers=%d: %d rows gathered, want %d", workers, total, len(rows))
		}
		st := p.Stats()
		conserved(t, st)
		if st.Nodes[1].StateKeys != 0 {
			t.Errorf("state left: %d", st.Nodes[1].StateKeys)
		}
	}
}

// TestProcessingTimerFiresWithoutInput: a processing-time timer emits while
// no row arrives; the input stays open until the timer's row is seen.
func TestProcessingTimerFiresWithoutInput(t *testing.T) {
	p := pipeline.New("proc")
	in, s := pipeline.NewInput[ev](p, "in")
	out := keyed.Process(s, "later", func(e ev) string { return e.Key }, keyed.Func[string, ev, string]{
		Row: func(_ context.Context, c *keyed.Context[string, string], e ev) error {
			c.ProcessingTimerAt(c.Now().Add(time.Millisecond))
			return nil
		},
		Timer: func(_ context.Context, c *keyed.Context[string, string], tm keyed.Timer) error {
			c.Emit("fired " + c.Key())
			return nil
		},
	})
	fired := make(chan string, 1)
	pipeline.To(out, stage.Sink("sink", func(_ context.Context, v string) error { fired <- v; return nil }))
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Submit(ctx, ev{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if got := <-fired; got != "fired a" {
		t.Fatalf("got %q", got)
	}
	in.Close()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	conserved(t, p.Stats())
}

// TestTTL: a key's count expires after its TTL, is evicted by the
// worker (Expired), and starts again.
func TestTTL(t *testing.T) {
	short := keyed.NewValue[string, int]("short", keyed.TTL(time.Millisecond))
	p := pipeline.New("ttl")
	in, s := pipeline.NewInput[ev](p, "in")
	out := keyed.Process(s, "count", func(e ev) string { return e.Key }, keyed.Func[string, ev, int]{
		Row: func(_ context.Context, c *keyed.Context[string, int], e ev) error {
			n, _ := short.Get(c)
			short.Set(c, n+1)
			c.Emit(n + 1)
			return nil
		},
	}, keyed.States(short))
	got := make(chan int, 4)
	pipeline.To(out, stage.Sink("sink", func(_ context.Context, v int) error { got <- v; return nil }))
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Submit(ctx, ev{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 1 {
		t.Fatalf("first count %d", n)
	}
	for p.Stats().Nodes[1].Expired == 0 {
		time.Sleep(time.Millisecond) // waiting for the eviction, not timing it
	}
	if err := in.Submit(ctx, ev{Key: "a"}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 1 {
		t.Fatalf("count after expiry %d, want 1", n)
	}
	in.Close()
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	conserved(t, p.Stats())
}

// TestStateFull: beyond MaxKeys a row fails with ErrStateFull and gets the
// error policy.
func TestStateFull(t *testing.T) {
	rows := events(100, 10)
	t.Run("skip", func(t *testing.T) {
		p := pipeline.New("full")
		out := keyed.Process(pipeline.FromSlice(p, "src", rows), "count", func(e ev) string { return e.Key }, counter(),
			keyed.States(count), keyed.MaxKeys(4), keyed.Stage(stage.OnError(stage.Skip)))
		got := pipeline.Collect(out, "sink")
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		conserved(t, st)
		if st.Nodes[1].Failed != 60 || len(got()) != 40 {
			t.Fatalf("failed %d, delivered %d", st.Nodes[1].Failed, len(got()))
		}
	})
	t.Run("fail", func(t *testing.T) {
		p := pipeline.New("full")
		out := keyed.Process(pipeline.FromSlice(p, "src", rows), "count", func(e ev) string { return e.Key }, counter(),
			keyed.States(count), keyed.MaxKeys(4))
		pipeline.Discard(out, "sink")
		err := p.Run(context.Background())
		var se *stage.Error
		if !errors.Is(err, keyed.ErrStateFull) || !errors.As(err, &se) || se.Stage != "count" {
			t.Fatalf("err %v", err)
		}
		conserved(t, p.Stats())
	})
}

// TestPanicAndCancel: a panicking function fails the run with a
// PanicError naming the stage; a cancelled run abandons what it held.
func TestPanicAndCancel(t *testing.T) {
	for _, workers := range []int{1, 3} {
		p := pipeline.New("panic")
		out := keyed.Process(pipeline.FromSlice(p, "src", events(2000, 9)), "boom", func(e ev) string { return e.Key },
			keyed.Func[string, ev, int]{Row: func(_ context.Context, c *keyed.Context[string, int], e ev) error {
				if e.V == 1500 {
					panic("boom")
				}
				c.Emit(e.V)
				return nil
			}}, keyed.Workers(workers))
		pipeline.Discard(out, "sink")
		err := p.Run(context.Background())
		var pe *stage.PanicError
		var se *stage.Error
		if !errors.As(err, &pe) || !errors.As(err, &se) || se.Stage != "boom" {
			t.Fatalf("err %v", err)
		}
		conserved(t, p.Stats())
	}
	for _, workers := range []int{1, 3} {
		p := pipeline.New("cancel")
		in, s := pipeline.NewInput[ev](p, "in")
		started := make(chan struct{})
		out := keyed.Process(s, "slow", func(e ev) string { return e.Key }, keyed.Func[string, ev, int]{
			Row: func(ctx context.Context, c *keyed.Context[string, int], e ev) error {
				if e.V == 3 {
					close(started)
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			}}, keyed.Workers(workers))
		pipeline.Discard(out, "sink")
		ctx, cancel := context.WithCancel(context.Background())
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for _, e := range events(50, 5) {
			if err := in.Submit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		<-started
		cancel()
		if err := p.Wait(); !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
		st := p.Stats()
		conserved(t, st)
		if st.Abandoned == 0 {
			t.Errorf("nothing abandoned")
		}
	}
}

// TestSnapshotRoundTrip: state after restore equals state before, for
// every kind of state, and a changed layout is refused naming the stage.
func TestSnapshotRoundTrip(t *testing.T) {
	val := keyed.NewValue[string, counted]("last", keyed.TTL(time.Hour))
	list := keyed.NewList[string, int]("all")
	mp := keyed.NewMap[string, int, string]("byV")
	fn := keyed.Func[string, ev, int]{Row: func(_ context.Context, c *keyed.Context[string, int], e ev) error {
		val.Set(c, counted{c.Key(), e.V, e.V})
		list.Add(c, e.V)
		mp.Put(c, e.V%3, c.Key())
		c.TimerAt(time.UnixMilli(e.At + 100))
		return nil
	}}
	now := func() int64 { return 1_000_000 }
	key := func(e ev) string { return e.Key }
	op, em := keyed.NewTestOp("snap", key, fn, now, val, list, mp)
	ctx := context.Background()
	for _, e := range events(200, 13) {
		if err := op.Row(ctx, em, e, now()); err != nil {
			t.Fatal(err)
		}
	}
	write, err := op.SnapshotState(7)
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot must not change it.
	if err := op.Row(ctx, em, ev{Key: "k1", V: 9999}, now()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	restored, em2 := keyed.NewTestOp("snap", key, fn, now, val, list, mp)
	if err := restored.RestoreState(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	// Compare by snapshotting both again: the original without its last write.
	orig, em3 := keyed.NewTestOp("snap", key, fn, now, val, list, mp)
	for _, e := range events(200, 13) {
		_ = orig.Row(ctx, em3, e, now())
	}
	if a, b := dump(t, orig), dump(t, restored); !reflect.DeepEqual(a, b) {
		t.Fatalf("restored state differs:\n%v\n%v", a, b)
	}
	_ = em2.Take()
	// A changed layout is refused, naming the stage.
	other, _ := keyed.NewTestOp("snap", key, fn, now, val, list)
	err = other.RestoreState(bytes.NewReader(buf.Bytes()))
	if !errors.Is(err, keyed.ErrLayout) || !bytes.Contains([]byte(err.Error()), []byte("snap")) {
		t.Fatalf("restore into another layout: %v", err)
	}
}

func dump(t *testing.T, op any) []any {
	t.Helper()
	return keyed.Dump[ev, string, int](op)
}
