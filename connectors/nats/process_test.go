package nats

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/internal/testcheck"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// The environment of a worker process started by TestTwoWorkerProcesses.
const (
	workerEnv = "KISFLOW_NATS_TEST_WORKER" // the worker's name; set only in a worker
	urlEnv    = "KISFLOW_NATS_TEST_URL"    // the server to connect to
)

// TestWorkerProcess is the worker role of TestTwoWorkerProcesses, run in a
// process of its own: it loads the orders of group "billing", prints
// "handled <id>" for every row it handles, and stops when its standard
// input ends.
func TestWorkerProcess(t *testing.T) {
	name := os.Getenv(workerEnv)
	if name == "" {
		t.Skip("a worker process of TestTwoWorkerProcesses")
	}
	c := newConnector(t, name, os.Getenv(urlEnv), "orders", nil)
	r := newReader(t, c, "orders", connectors.ReadOptions{Group: "billing", FromStart: true})

	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	p := pipeline.New(name)
	rows := stream.Load(p, "load-orders", r, orderCodec)
	doubled := pipeline.Then(rows, stage.Map("double", func(_ context.Context, o Order) (Order, error) {
		o.Amount *= 2
		return o, nil
	}))
	pipeline.To(doubled, stage.SinkBatch("report", func(_ context.Context, batch []Order) error {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range batch {
			if o.Amount != o.ID*20 {
				return fmt.Errorf("row %d: amount %d", o.ID, o.Amount)
			}
			fmt.Fprintf(out, "handled %d\n", o.ID)
		}
		return out.Flush()
	}))
	require.NoError(t, p.Start(t.Context()))
	stopped := testcheck.StopOnStdinEOF(p.Stop)
	require.NoError(t, p.Wait())
	<-stopped
}

func TestTwoWorkerProcesses(t *testing.T) {
	if os.Getenv(workerEnv) != "" {
		t.Skip("the parent of the worker processes")
	}
	s := startServer(t)
	url := s.ClientURL()
	const n = 2000
	c := newConnector(t, "producer", url, "orders", nil)
	produce(t, newWriter(t, c, "orders"), orders(n))

	tl := newTally(n)
	var workers []*testcheck.Child
	for i := range 2 {
		name := fmt.Sprintf("process-%d", i)
		env := []string{workerEnv + "=" + name, urlEnv + "=" + url}
		workers = append(workers, testcheck.StartChild(t, "TestWorkerProcess", env, func(line string) {
			if id, ok := strings.CutPrefix(line, "handled "); ok {
				v, err := strconv.Atoi(id)
				if err == nil {
					tl.add(name, v)
				}
			}
		}))
	}

	tl.wait(t)
	for _, w := range workers {
		require.NoError(t, w.Stdin.Close()) // tells the worker to stop
	}
	for _, w := range workers {
		select {
		case <-w.Read():
		case <-time.After(deadline):
			t.Fatalf("worker %v did not stop", w.Cmd.Env[len(w.Cmd.Env)-2])
		}
		require.NoError(t, w.Cmd.Wait(), "worker failed:\n%s", w.Stderr())
	}
	seen, by := tl.snapshot()
	require.Len(t, seen, n)
	for id, times := range seen {
		require.Equal(t, 1, times, "row %d handled %d times", id, times)
	}
	t.Logf("rows per process: %v", by)
	settled(t, url, "orders", "billing")
}
