package pebble_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

// windowOf names the window of event e in the window crash test: its key
// and the start, in milliseconds, of its 100 ms tumbling window, the
// event time of e being its ID in milliseconds.
func windowOf(e event) string { return fmt.Sprintf("%s@%d", e.Key, e.ID/100*100) }

// TestCrashWindowWorker is the worker role of TestCrashWindowRecovery:
// it reads the events of the durable group "crashwin", drops those
// already seen (the IDs are checkpointed, as in TestCrashWorker), and
// counts them per key in 100 ms event-time tumbling windows on two
// workers. The watermark stays behind every window until the input ends,
// so the windows are open, held in state, at every kill, and fire only
// when the last run stops: they must have survived every restart. It
// prints "total <rows seen> <last complete checkpoint>" after every
// batch and, last, "final <count per window as JSON>".
func TestCrashWindowWorker(t *testing.T) {
	url := os.Getenv(crashURL)
	if url == "" {
		t.Skip("a worker process of TestCrashWindowRecovery")
	}
	final := os.Getenv(crashFinal) != ""
	ctx := context.Background()
	store, r, print := crashWorkerSetup(t, url, "crashwin")
	seen := &seenCounts{Counts: map[string]int64{}, Seen: map[int]bool{}}
	all := make(chan struct{})
	var once sync.Once
	var resMu sync.Mutex
	results := map[string]int64{}
	p := pipeline.New("crashwin", pipeline.Checkpoints(5*time.Millisecond, store), pipeline.BatchSize(64))
	s := stream.Load(p, "events", r, stream.JSON[event]())
	s = pipeline.Then(s, stage.MapBatch("dedup", func(ctx context.Context, es []event) ([]event, error) {
		var fresh []event
		for _, e := range es {
			before := seen.total()
			seen.add(e)
			if seen.total() > before {
				fresh = append(fresh, e)
			}
		}
		n := seen.total()
		cp, _, _, err := store.Latest(ctx)
		if err != nil {
			return nil, err
		}
		if n == crashRows && final {
			once.Do(func() { close(all) })
		}
		return fresh, print("total %d %d\n", n, cp)
	}, stage.State(seen)))
	win := window.Fold(s, "windows", func(e event) string { return e.Key }, window.Tumbling(100*time.Millisecond),
		window.Agg[event, int64]{Add: func(n int64, _ event) int64 { return n + 1 }},
		window.EventTime(func(e event) time.Time { return time.UnixMilli(int64(e.ID)) }, crashRows*time.Millisecond),
		window.Workers(2))
	pipeline.To(win.Results(), stage.Sink("results", func(_ context.Context, r window.Result[string, int64]) error {
		resMu.Lock()
		defer resMu.Unlock()
		k := fmt.Sprintf("%s@%d", r.Key, r.Start.UnixMilli())
		if _, dup := results[k]; dup {
			return fmt.Errorf("window %s fired twice", k)
		}
		results[k] = r.Value
		return nil
	}))
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := store.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := print("total %d %d\n", seen.total(), cp); err != nil { // what was restored
		t.Fatal(err)
	}
	select {
	case <-all:
		p.Stop()
	case <-p.Done():
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	resMu.Lock()
	data, _ := json.Marshal(results)
	resMu.Unlock()
	if err := print("redelivered %d\nfinal %s\n", seen.Redelivered, data); err != nil {
		t.Fatal(err)
	}
}

// TestCrashWindowRecovery is TestCrashRecovery with a window operator:
// a worker process whose windows hold every row it has read is killed
// with SIGKILL at random points, several times, and restarted from its
// last checkpoint in Pebble each time; when the last run drains the
// stream, every window's count equals the count of its events.
func TestCrashWindowRecovery(t *testing.T) {
	if os.Getenv(crashURL) != "" {
		t.Skip("the parent of the worker processes")
	}
	if testing.Short() {
		t.Skip("starts several processes")
	}
	url, _ := crashStream(t)
	want := map[string]int64{}
	for i := range crashRows {
		want[windowOf(event{ID: i, Key: fmt.Sprint("k", i%crashKeys)})]++
	}
	counts := crashRounds(t, url, "TestCrashWindowWorker")
	if len(counts) != len(want) {
		t.Fatalf("%d windows, want %d: %v", len(counts), len(want), counts)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Fatalf("window %s counted %d rows, want %d", k, counts[k], n)
		}
	}
}
