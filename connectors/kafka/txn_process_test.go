package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/internal/testcheck"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// The environment of TestExactlyOnceWorkerKilled's worker processes (the
// brokers are in addrsEnv) and the seed of its kill points.
const (
	eosWorkerEnv = "KISFLOW_KAFKA_TEST_EOS_WORKER" // the worker's name; set only in a worker
	eosSeedEnv   = "KISFLOW_KAFKA_EOS_SEED"        // the seed of the kill points; random if unset
)

// eosParams are the params of the exactly-once workers: every worker
// process, restarted or not, has the same transactional id, so that a
// restarted one aborts the transaction its killed predecessor left open;
// transactions commit every 50ms; the session is short, so that the
// group drops a killed worker quickly. revoke_wait keeps its default
// (10s), far longer than a row takes: no row is acknowledged after its
// transaction was aborted, the one case where a row is written twice.
var eosParams = map[string]string{
	"exactly_once":       "true",
	"transactional_id":   "kisflow-test-etl",
	"commit_interval":    "50ms",
	"session_timeout":    "1s",
	"heartbeat_interval": "100ms",
}

// eosPace is the time a worker's transform spends on a row at least, so
// that a kill lands mid-stream: a full pass over the input takes seconds
// and many transactions.
const eosPace = time.Millisecond

// TestExactlyOnceWorkerProcess is the worker role of
// TestExactlyOnceWorkerKilled, run in a process of its own: it loads the
// orders of topic "in" in group "etl" with exactly_once set, doubles each
// order's amount, printing "transformed <id>", and saves it to topic
// "out" through the same connector, inside the reader's transactions. It
// stops when its standard input ends.
func TestExactlyOnceWorkerProcess(t *testing.T) {
	name := os.Getenv(eosWorkerEnv)
	if name == "" {
		t.Skip("a worker process of TestExactlyOnceWorkerKilled")
	}
	c := newConnector(t, name, os.Getenv(addrsEnv), "", eosParams)
	r := newReader(t, c, "in", connectors.ReadOptions{Group: "etl", FromStart: true})
	w := newWriter(t, c, "out")

	pace := time.NewTicker(eosPace)
	defer pace.Stop()
	out := bufio.NewWriter(os.Stdout)
	// Small batches and a small buffer keep few rows in flight: a
	// transaction holds a few hundred rows, written in many batches.
	p := pipeline.New(name, pipeline.BatchSize(32))
	rows := stream.Load(p, "load", r, orderCodec)
	doubled := pipeline.Then(rows, stage.MapBatch("double", func(ctx context.Context, batch []Order) ([]Order, error) {
		for i := range batch {
			select {
			case <-pace.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			batch[i].Amount *= 2
			fmt.Fprintf(out, "transformed %d\n", batch[i].ID)
		}
		return batch, out.Flush()
	}, stage.Buffer(backpressure.Buffer{Capacity: 1})))
	pipeline.To(doubled, stream.Save("save", w, orderCodec, func(o Order) string { return strconv.Itoa(o.ID) }))
	require.NoError(t, p.Start(t.Context()))
	stopped := testcheck.StopOnStdinEOF(p.Stop)
	require.NoError(t, p.Wait())
	<-stopped
}

// TestExactlyOnceWorkerKilled runs the consume-transform-produce worker of
// TestExactlyOnceWorkerProcess in a process of its own and kills it with
// SIGKILL mid-stream, twice, each time while its open transaction holds
// records, at points drawn from a seed (logged; KISFLOW_KAFKA_EOS_SEED
// replays the draws, though where a kill lands depends on timing too).
// Each time a new worker with the same transactional id takes over and
// aborts at once the transaction the killed one left open; the last one
// handles what is left. A read-committed reader of the output then sees
// every input row exactly once, and a read-uncommitted reader sees the
// records of the aborted transactions as well.
func TestExactlyOnceWorkerKilled(t *testing.T) {
	if os.Getenv(eosWorkerEnv) != "" {
		t.Skip("the parent of the worker processes")
	}
	seed := rand.Uint64()
	if s := os.Getenv(eosSeedEnv); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, eosSeedEnv)
	}
	t.Logf("seed %d (replay with %s=%d)", seed, eosSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	// Every wait below ends by this deadline: a hang fails with what it
	// waited for.
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	remaining := func() time.Duration {
		d, _ := ctx.Deadline()
		return time.Until(d)
	}

	const (
		n          = 4000
		partitions = 4
		kills      = 2
		killSpread = 800 // a kill comes up to this many rows after a commit
	)
	addrs := startCluster(t, partitions, "in", "out")
	adm := admin(t, addrs)
	prod := newConnector(t, "producer", addrs, "", nil)
	produce(t, newWriter(t, prod, "in"), orders(0, n))
	consumed := func() int64 { return sum(committed(t, adm, "etl", "in")) }

	tl := newTally(n)
	// zombie is the log of "out" as the last killed worker left it, its
	// transaction open.
	var zombie map[int32]logEnds
	start := func(name string) *testcheck.Child {
		w := startTallied(t, "TestExactlyOnceWorkerProcess", []string{eosWorkerEnv + "=" + name, addrsEnv + "=" + addrs}, name, "transformed ", tl)
		if zombie != nil {
			// Well before the transaction timeout (40s), which would
			// abort it otherwise.
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				now := stableOffsets(t, adm, "out")
				for p, z := range zombie {
					assert.GreaterOrEqual(c, now[p].stable, z.end, "partition %d: the last stable offset passes the killed worker's records", p)
				}
			}, min(10*time.Second, remaining()), 10*time.Millisecond, "%s aborts the transaction the killed worker left open", name)
		}
		return w
	}
	var killedOpen int64 // records of the transactions the killed workers left open
	for i := range kills {
		name := fmt.Sprintf("worker-%d", i+1)
		before := consumed()
		w := start(name)
		// The kill point: once the worker has committed a transaction
		// (its output is visible), up to killSpread rows later, at a
		// moment its open transaction holds records (checked with the
		// worker stopped by SIGSTOP; if it holds none, a few rows
		// later).
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			assert.Greater(c, consumed(), before, "%s commits a transaction", name)
		}, remaining(), 5*time.Millisecond)
		for spread := killSpread; ; spread = 64 {
			k := transformed(tl, name) + 1 + rng.IntN(spread)
			tl.waitUntil(ctx, t, fmt.Sprintf("%s transforms %d rows", name, k), func(_ map[int]int, by map[string]map[int]int) bool {
				return total(by[name]) >= k
			})
			require.NoError(t, w.Cmd.Process.Signal(syscall.SIGSTOP))
			if open(stableOffsets(t, adm, "out")) > 0 {
				break
			}
			require.NoError(t, w.Cmd.Process.Signal(syscall.SIGCONT))
			require.Less(t, transformed(tl, name), n/2, "%s: no moment found when its open transaction holds records", name)
		}
		kill(t, w)
		// The worker is dead: its transaction stays open, and its records
		// invisible to read-committed readers, until it is aborted.
		zombie = stableOffsets(t, adm, "out")
		killedOpen += open(zombie)
		t.Logf("%s killed after transforming %d rows, its open transaction holding %d records; %d of %d input rows consumed in committed transactions",
			name, transformed(tl, name), open(zombie), consumed(), n)
	}

	last := start("last")
	ends := endOffsets(t, adm, "in")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, ends, committed(t, adm, "etl", "in"))
	}, remaining(), 10*time.Millisecond, "the last worker consumes every input row in committed transactions")
	stop(ctx, t, last, "the last worker")

	markEnds(t, addrs, "out", partitions)
	committedRows := readDoubled(ctx, t, addrs, "out", partitions, kgo.ReadCommitted())
	var lost, doubled []int
	for id := range n {
		switch committedRows[id] {
		case 0:
			lost = append(lost, id)
		case 1:
		default:
			doubled = append(doubled, id)
		}
	}
	require.Empty(t, lost, "input rows missing from the committed output")
	require.Empty(t, doubled, "input rows in the committed output more than once")
	require.Len(t, committedRows, n, "the committed output holds the input rows, no other")
	// The records of the killed workers' transactions are in the log,
	// aborted: a read-uncommitted reader sees them.
	require.Positive(t, killedOpen, "the killed workers' transactions held records")
	all := readDoubled(ctx, t, addrs, "out", partitions, kgo.ReadUncommitted())
	logged := total(all)
	require.GreaterOrEqual(t, int64(logged-n), killedOpen, "the read-uncommitted reader sees the records of the aborted transactions")
	_, by := tl.snapshot()
	t.Logf("rows transformed per worker %v; the output log holds %d records for %d rows: %d records of aborted transactions, %d of them the killed workers'",
		by, logged, n, logged-n, killedOpen)
}

// transformed returns how many rows the worker name transformed.
func transformed(tl *tally, name string) int {
	_, by := tl.snapshot()
	return by[name]
}

// total returns the sum of counts.
func total(counts map[int]int) int {
	s := 0
	for _, c := range counts {
		s += c
	}
	return s
}

// logEnds are the ends of a partition's log: the last stable offset
// (what read-committed readers reach: the first record of the oldest
// open transaction, or the high watermark) and the high watermark.
type logEnds struct{ stable, end int64 }

// stableOffsets returns the ends of the log of every partition of topic,
// as they were at one moment: it lists the high watermarks before and
// after the last stable offsets, until neither moved (every record and
// every transaction marker moves the high watermark).
func stableOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]logEnds {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error)) map[int32]int64 {
		offs, err := f(ctx, topic)
		require.NoError(t, err)
		require.NoError(t, offs.Error())
		out := make(map[int32]int64)
		for p, o := range offs[topic] {
			out[p] = o.Offset
		}
		return out
	}
	for {
		before := list(adm.ListEndOffsets)
		stable := list(adm.ListCommittedOffsets)
		if after := list(adm.ListEndOffsets); !maps.Equal(before, after) {
			continue
		}
		out := make(map[int32]logEnds)
		for p, end := range before {
			out[p] = logEnds{stable: stable[p], end: end}
		}
		return out
	}
}

// open returns how many records of the logs are in open transactions:
// with one transactional producer, every record past a partition's last
// stable offset.
func open(logs map[int32]logEnds) int64 {
	var n int64
	for _, l := range logs {
		n += l.end - l.stable
	}
	return n
}

// readDoubled reads topic from the start at the isolation level iso until
// it has seen the end mark (markEnds) of each of its partitions, checks
// that every record is an order whose amount was doubled, and returns how
// many times each order ID appears. It fails the test when ctx ends first.
func readDoubled(ctx context.Context, t *testing.T, addrs, topic string, partitions int32, iso kgo.IsolationLevel) map[int]int {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(addrs, ",")...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
		kgo.FetchMaxWait(50*time.Millisecond),
	)
	require.NoError(t, err)
	defer cl.Close()
	seen := make(map[int]int)
	marked := make(map[int32]bool)
	for len(marked) < int(partitions) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: the end marks of %d of %d partitions seen: %v", topic, len(marked), partitions, context.Cause(ctx))
		}
		fs.EachError(func(_ string, p int32, err error) {
			t.Fatalf("read %s: partition %d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == endMark {
				marked[r.Partition] = true
				return
			}
			var o Order
			require.NoError(t, json.Unmarshal(r.Value, &o))
			require.Equal(t, o.ID*20, o.Amount, "order %d", o.ID)
			seen[o.ID]++
		})
	}
	return seen
}
