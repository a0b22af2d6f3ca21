package kafka

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/internal/testcheck"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// The environment of a worker process started by TestWorkerKilledAndJoining.
const (
	workerEnv = "KISFLOW_KAFKA_TEST_WORKER" // the worker's name; set only in a worker
	addrsEnv  = "KISFLOW_KAFKA_TEST_ADDRS"  // the brokers to connect to
)

// workerParams are the params of the worker processes: a short session,
// so that the partitions of a killed worker move on quickly.
var workerParams = map[string]string{"session_timeout": "1s", "heartbeat_interval": "100ms"}

// TestWorkerProcess is the worker role of TestWorkerKilledAndJoining, run
// in a process of its own: it loads the orders of group "billing", prints
// "handled <id>" for every row it handles (before the row is
// acknowledged), and stops when its standard input ends.
func TestWorkerProcess(t *testing.T) {
	name := os.Getenv(workerEnv)
	if name == "" {
		t.Skip("a worker process of TestWorkerKilledAndJoining")
	}
	c := newConnector(t, name, os.Getenv(addrsEnv), "orders", workerParams)
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

// TestWorkerKilledAndJoining runs the workers of one group in processes
// of their own: a second worker joins while the first is busy (a
// rebalance), then the first is killed with SIGKILL while rows are in
// flight. Every row is handled (the killed worker's unacknowledged rows
// go to the other), duplicates are counted, and in the end the broker's
// committed offsets are the end of every partition.
func TestWorkerKilledAndJoining(t *testing.T) {
	if os.Getenv(workerEnv) != "" {
		t.Skip("the parent of the worker processes")
	}
	addrs := startCluster(t, 6, "orders")
	adm := admin(t, addrs)
	const n = 3000
	c := newConnector(t, "producer", addrs, "orders", nil)
	w := newWriter(t, c, "orders")
	write := func(from, to int) {
		var ms []connectors.Message
		for _, o := range orders(from, to) {
			data, err := orderCodec.Encode(o)
			require.NoError(t, err)
			ms = append(ms, connectors.Message{Key: strconv.Itoa(o.ID), Data: data})
		}
		require.NoError(t, w.Write(t.Context(), ms))
	}

	tl := newTally(n)
	start := func(name string) *testcheck.Child {
		return startTallied(t, "TestWorkerProcess", []string{workerEnv + "=" + name, addrsEnv + "=" + addrs}, name, "handled ", tl)
	}
	handled := func(worker string, from, to int) func(map[int]int, map[string]map[int]int) bool {
		return func(_ map[int]int, by map[string]map[int]int) bool {
			for id := range by[worker] {
				if id >= from && id < to {
					return true
				}
			}
			return false
		}
	}

	write(0, 1000)
	first := start("first")
	tl.waitFor(t, "the first worker handles rows", func(seen map[int]int, _ map[string]map[int]int) bool { return len(seen) >= 300 })
	// The second worker joins mid-stream: the group rebalances, and the
	// first worker's revoke waits for the rows it has in flight. Once both
	// hold partitions, the next rows go to both.
	second := start("second")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		groups, err := adm.DescribeGroups(t.Context(), "billing")
		if !assert.NoError(c, err) {
			return
		}
		g := groups["billing"]
		assert.Equal(c, "Stable", g.State)
		if assert.Len(c, g.Members, 2) {
			for _, m := range g.Members {
				cons, ok := m.Assigned.AsConsumer()
				assert.True(c, ok && len(cons.Topics) == 1 && len(cons.Topics[0].Partitions) > 0, "member %s holds no partition", m.ClientID)
			}
		}
	}, deadline, 20*time.Millisecond)
	next := 2000
	write(1000, next)
	tl.waitFor(t, "the second worker handles rows", handled("second", 0, n))
	write(next, n)
	tl.waitFor(t, "the first worker handles the last rows", handled("first", next, n))
	kill(t, first) // mid-stream

	// Every row is handled, and once the group hands the killed worker's
	// partitions to the second worker (after the session timeout), it
	// reads them again from the last commit, so that the broker's
	// committed offsets reach the end of every partition.
	tl.wait(t)
	ends := endOffsets(t, adm, "orders")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, ends, committed(t, adm, "billing", "orders"))
	}, deadline, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	stop(ctx, t, second, "the second worker")

	seen, by := tl.snapshot()
	require.Len(t, seen, n, "no row lost")
	t.Logf("rows handled per process %v; %d rows handled twice or more (%d extra handlings) after the kill and the rebalance",
		by, countOver(seen, 1), duplicates(seen))
	require.Equal(t, ends, committed(t, adm, "billing", "orders"), "the second worker left the group committed to the end")
}

// countOver returns how many rows were handled more than times times.
func countOver(seen map[int]int, times int) int {
	k := 0
	for _, n := range seen {
		if n > times {
			k++
		}
	}
	return k
}

// startTallied starts a child process running test with env added to its
// environment: a worker that prints a line "<prefix><id>" for every row
// it handles, which is counted in tl under name. If the test fails, the
// child's standard error is logged.
func startTallied(t *testing.T, test string, env []string, name, prefix string, tl *tally) *testcheck.Child {
	t.Helper()
	c := testcheck.StartChild(t, test, env, func(line string) {
		if id, ok := strings.CutPrefix(line, prefix); ok {
			if v, err := strconv.Atoi(id); err == nil {
				tl.add(name, v)
			}
		}
	})
	t.Cleanup(func() {
		if t.Failed() && c.Stderr() != "" {
			t.Logf("the standard error of %s:\n%s", name, c.Stderr())
		}
	})
	return c
}

// kill kills the child c with SIGKILL and waits for it to end.
func kill(t *testing.T, c *testcheck.Child) {
	t.Helper()
	require.NoError(t, c.Cmd.Process.Signal(syscall.SIGKILL))
	<-c.Read()
	require.Error(t, c.Cmd.Wait(), "killed")
}

// stop asks the child c, named what, to stop by closing its standard
// input, and fails the test unless it ends without an error before ctx
// ends.
func stop(ctx context.Context, t *testing.T, c *testcheck.Child, what string) {
	t.Helper()
	require.NoError(t, c.Stdin.Close())
	select {
	case <-c.Read():
	case <-ctx.Done():
		t.Fatalf("%s did not stop: %v", what, context.Cause(ctx))
	}
	require.NoError(t, c.Cmd.Wait(), "%s failed:\n%s", what, c.Stderr())
}
