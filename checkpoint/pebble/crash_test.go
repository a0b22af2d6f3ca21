package pebble_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kisflow/kisflow/checkpoint/pebble"
	"github.com/kisflow/kisflow/connectors"
	natsconn "github.com/kisflow/kisflow/connectors/nats"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// The environment of a worker process started by TestCrashRecovery.
const (
	crashURL   = "KISFLOW_CRASH_URL" // the NATS server; set only in a worker
	crashDir   = "KISFLOW_CRASH_DIR" // the Pebble directory
	crashFinal = "KISFLOW_CRASH_FINAL"
	crashRows  = 3000
	crashKeys  = 17
)

// event is a message of the crash test.
type event struct {
	ID  int    `json:"id"`
	Key string `json:"key"`
}

// seenCounts is the state of the crash test's counting stage: a count per
// key, and the IDs counted. A message the broker delivers again (its
// acknowledgement was lost with a killed process, or came after the ack
// wait) is counted once: the ID set is checkpointed with the counts, as
// Flink's acknowledging sources keep the IDs of a checkpoint.
type seenCounts struct {
	mu     sync.Mutex
	Counts map[string]int64 `json:"counts"`
	Seen   map[int]bool     `json:"seen"`
	// Redelivered counts the deliveries of IDs already counted.
	Redelivered int `json:"redelivered"`
}

func (s *seenCounts) add(e event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Seen[e.ID] {
		s.Redelivered++
		return
	}
	s.Seen[e.ID] = true
	s.Counts[e.Key]++
}

func (s *seenCounts) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Seen)
}

func (s *seenCounts) SnapshotState(uint64) (func(io.Writer) error, error) {
	s.mu.Lock()
	c := &seenCounts{Counts: maps.Clone(s.Counts), Seen: maps.Clone(s.Seen), Redelivered: s.Redelivered}
	s.mu.Unlock()
	return func(w io.Writer) error { return json.NewEncoder(w).Encode(c) }, nil
}

func (s *seenCounts) RestoreState(r io.Reader) error {
	c := &seenCounts{}
	if err := json.NewDecoder(r).Decode(c); err != nil {
		return err
	}
	s.mu.Lock()
	s.Counts, s.Seen, s.Redelivered = c.Counts, c.Seen, c.Redelivered
	s.mu.Unlock()
	return nil
}

func (s *seenCounts) Layout() string { return "seen-counts/v1" }

// TestCrashWorker is the worker role of TestCrashRecovery, run in a
// process of its own: it counts the events of the durable group "crash"
// into a stage whose state is checkpointed into Pebble every 5 ms, and
// prints "total <rows counted> <last complete checkpoint>" after every
// batch. With KISFLOW_CRASH_FINAL set, it
// stops once every event is counted and prints "final <counts as JSON>".
func TestCrashWorker(t *testing.T) {
	url := os.Getenv(crashURL)
	if url == "" {
		t.Skip("a worker process of TestCrashRecovery")
	}
	final := os.Getenv(crashFinal) != ""
	ctx := context.Background()
	store, r, print := crashWorkerSetup(t, url, "crash")
	st := &seenCounts{Counts: map[string]int64{}, Seen: map[int]bool{}}
	all := make(chan struct{})
	var once sync.Once
	p := pipeline.New("crash", pipeline.Checkpoints(5*time.Millisecond, store), pipeline.BatchSize(64))
	s := stream.Load(p, "events", r, stream.JSON[event]())
	s = pipeline.Then(s, stage.Map("count", func(_ context.Context, e event) (event, error) {
		st.add(e)
		return e, nil
	}, stage.State(st)))
	pipeline.To(s, stage.SinkBatch("report", func(ctx context.Context, _ []event) error {
		n := st.total()
		cp, _, _, err := store.Latest(ctx)
		if err != nil {
			return err
		}
		if n == crashRows && final {
			once.Do(func() { close(all) })
		}
		return print("total %d %d\n", n, cp)
	}))
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cp, _, _, err := store.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := print("total %d %d\n", st.total(), cp); err != nil { // what was restored
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
	data, _ := json.Marshal(st.Counts)
	if err := print("redelivered %d\nfinal %s\n", st.Redelivered, data); err != nil {
		t.Fatal(err)
	}
}

// TestCrashRecovery: a worker process reads events from NATS JetStream
// and keeps counts per key in a checkpointed stage, with Pebble as the
// store. It is killed with SIGKILL at random points, several times, and
// started again each time; a last run drains the stream. The final counts
// equal those of the events produced: nothing missing, nothing counted
// twice.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashURL) != "" {
		t.Skip("the parent of the worker processes")
	}
	if testing.Short() {
		t.Skip("starts several processes")
	}
	url, want := crashStream(t)
	counts := crashRounds(t, url, "TestCrashWorker")
	if len(counts) != len(want) {
		t.Fatalf("final counts %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Fatalf("key %s counted %d times, want %d (all: %v)", k, counts[k], n, counts)
		}
	}
}

// crashStream starts a NATS server, stopped when t ends, writes the
// crash test's events into its stream "events", and returns its URL and
// the count of events per key.
func crashStream(t *testing.T) (string, map[string]int64) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	url := srv.ClientURL()
	ctx := context.Background()

	c, err := natsconn.New(connectors.Config{Name: "producer", Type: natsconn.Type, Addrs: url, Key: "events"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	w, err := c.Writer(ctx, "events")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	var msgs []connectors.Message
	for i := range crashRows {
		e := event{ID: i, Key: fmt.Sprint("k", i%crashKeys)}
		want[e.Key]++
		data, _ := json.Marshal(e)
		msgs = append(msgs, connectors.Message{Data: data})
	}
	if err := w.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return url, want
}

// crashRounds runs the worker test named worker in a process of its own,
// kills it with SIGKILL at a random point, several times, each time
// restarting it on the same Pebble directory, then lets a last run drain
// the stream, and returns the counts it printed last.
func crashRounds(t *testing.T, url, worker string) map[string]int64 {
	dir := t.TempDir()
	const crashes = 4
	for round := 0; round <= crashes; round++ {
		final := round == crashes
		cmd := exec.Command(os.Args[0], "-test.run=^"+worker+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashURL+"="+url, crashDir+"="+dir)
		if final {
			cmd.Env = append(cmd.Env, crashFinal+"=1")
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill after a random number of rows past what was restored, and
		// once one to three checkpoints have completed in this run.
		kill := 20 + rand.IntN(crashRows/crashes/2)
		cps := 1 + rand.IntN(3)
		start, startCP, killed := -1, -1, false
		var counts map[string]int64
		timeout := time.NewTimer(2 * time.Minute)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if v, ok := strings.CutPrefix(l, "redelivered "); ok {
					t.Logf("deliveries of rows already counted (dropped by ID): %s", v)
					continue
				}
				if v, ok := strings.CutPrefix(l, "final "); ok {
					if err := json.Unmarshal([]byte(v), &counts); err != nil {
						t.Fatal(err)
					}
					continue
				}
				v, ok := strings.CutPrefix(l, "total ")
				if !ok {
					continue
				}
				var n, cp int
				if _, err := fmt.Sscan(v, &n, &cp); err != nil {
					t.Fatalf("worker printed %q: %v", l, err)
				}
				if start < 0 {
					start, startCP = n, cp
				}
				if !final && !killed && (n-start >= kill && cp-startCP >= cps || n == crashRows) {
					killed = true
					if err := cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
				}
			case <-timeout.C:
				_ = cmd.Process.Kill()
				for range lines {
				}
				_ = cmd.Wait()
				t.Fatalf("round %d: the worker did not get on within the deadline:\n%s", round, stderr.String())
			}
		}
		timeout.Stop()
		err = cmd.Wait()
		t.Logf("round %d: restored %d rows from checkpoint %d, killed %v", round, start, startCP, killed)
		if !final {
			if !killed {
				t.Fatalf("round %d: the worker ended before it was killed: %v\n%s", round, err, stderr.String())
			}
			continue
		}
		if err != nil {
			t.Fatalf("final worker: %v\n%s", err, stderr.String())
		}
		return counts
	}
	return nil
}

// crashWorkerSetup opens what a crash worker process runs on: the Pebble
// store in the directory the parent gave, a reader of the events in
// consumer group group on the NATS server at url, and a print that writes
// a line to the parent at once. All are closed when the test ends.
func crashWorkerSetup(t *testing.T, url, group string) (*pebble.Store, connectors.Reader, func(format string, args ...any) error) {
	t.Helper()
	ctx := context.Background()
	store, err := pebble.Open(os.Getenv(crashDir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	c, err := natsconn.New(connectors.Config{Name: "worker", Type: natsconn.Type, Addrs: url, Key: "events",
		Params: map[string]string{"ack_wait": "2s"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Init(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	r, err := c.Reader(ctx, "events", connectors.ReadOptions{Group: group, FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	print := func(format string, args ...any) error {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
		return out.Flush()
	}
	return store, r, print
}
