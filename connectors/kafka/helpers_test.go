package kafka

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/connectors"
)

// leakOptions ignore the housekeeping goroutines of ants' default pool,
// started when ants is imported by the pipeline package.
var leakOptions = []goleak.Option{
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
	goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leakOptions...)
}

// deadline bounds every wait of a test: reaching it is a failure, never a
// way to let time pass.
const deadline = 60 * time.Second

// startCluster runs a kfake cluster of three brokers on loopback ports
// with the given topics of partitions partitions each, closed when the
// test ends. It returns the comma-separated broker addresses.
func startCluster(tb testing.TB, partitions int32, topics ...string) string {
	tb.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(3),
		kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// testParams are the params of every test connector unless it overrides
// them: quick commits and fetches, so tests do not wait on defaults.
var testParams = map[string]string{
	"commit_interval": "20ms",
	"fetch_max_wait":  "50ms",
	"timeout":         "10s",
}

// newConnector builds and initialises a connector named name for the
// cluster at addrs, closed when the test ends.
func newConnector(tb testing.TB, name, addrs, key string, params map[string]string) connectors.Connector {
	tb.Helper()
	ps := maps.Clone(testParams)
	maps.Copy(ps, params)
	c, err := New(connectors.Config{Name: name, Type: Type, Addrs: addrs, Key: key, Params: ps})
	require.NoError(tb, err)
	require.NoError(tb, c.Init(context.Background()))
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// newWriter and newReader open a handle closed when the test ends.
func newWriter(tb testing.TB, c connectors.Connector, key string) connectors.Writer {
	tb.Helper()
	w, err := c.Writer(context.Background(), key)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = w.Close() })
	return w
}

func newReader(tb testing.TB, c connectors.Connector, key string, opts connectors.ReadOptions) connectors.Reader {
	tb.Helper()
	r, err := c.Reader(context.Background(), key, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// admin returns an admin client of the cluster, closed when the test ends.
func admin(tb testing.TB, addrs string) *kadm.Client {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addrs, ",")...))
	require.NoError(tb, err)
	tb.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// committed returns the offsets the broker holds for group on topic, by
// partition; a partition without a committed offset, or of a group the
// broker does not know yet, is absent.
func committed(tb testing.TB, adm *kadm.Client, group, topic string) map[int32]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	require.NoError(tb, err)
	require.NoError(tb, resp.Error())
	out := make(map[int32]int64)
	for p, o := range resp[topic] {
		if o.Err == nil && o.At >= 0 {
			out[p] = o.At
		}
	}
	return out
}

// endOffsets returns the high watermark of every partition of topic that
// holds records.
func endOffsets(tb testing.TB, adm *kadm.Client, topic string) map[int32]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	require.NoError(tb, err)
	require.NoError(tb, ends.Error())
	out := make(map[int32]int64)
	for p, o := range ends[topic] {
		if o.Offset > 0 { // an empty partition has nothing to commit
			out[p] = o.Offset
		}
	}
	return out
}

// endMark is the value of the record markEnds appends to each partition.
const endMark = "end"

// markEnds appends a record endMark, outside any transaction, to each of
// the partitions of topic. Once every transaction on topic has ended, a
// reader that has seen the mark of every partition has read every record
// before them.
func markEnds(tb testing.TB, addrs, topic string, partitions int32) {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addrs, ",")...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(tb, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for p := range partitions {
		require.NoError(tb, cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(endMark)}).FirstErr())
	}
}

// Order is the row type of the tests.
type Order struct {
	ID     int    `json:"id"`
	Amount int    `json:"amount"`
	Shop   string `json:"shop"`
}

func orders(from, to int) []Order {
	rows := make([]Order, 0, to-from)
	for i := from; i < to; i++ {
		rows = append(rows, Order{ID: i, Amount: i * 10, Shop: "shop-" + string(rune('a'+i%7))})
	}
	return rows
}

// tally counts the rows each worker handled and says when every row was
// seen at least once.
type tally struct {
	mu      sync.Mutex
	want    int
	seen    map[int]int            // row ID -> times handled, over every worker
	by      map[string]map[int]int // worker -> row ID -> times
	changed chan struct{}          // poked on every row
}

func newTally(want int) *tally {
	return &tally{want: want, seen: make(map[int]int), by: make(map[string]map[int]int), changed: make(chan struct{}, 1)}
}

func (t *tally) add(worker string, id int) {
	t.mu.Lock()
	t.seen[id]++
	if t.by[worker] == nil {
		t.by[worker] = make(map[int]int)
	}
	t.by[worker][id]++
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// waitFor fails the test unless cond holds before the deadline.
func (t *tally) waitFor(tb testing.TB, what string, cond func(seen map[int]int, by map[string]map[int]int) bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	t.waitUntil(ctx, tb, what, cond)
}

// waitUntil fails the test unless cond holds before ctx ends.
func (t *tally) waitUntil(ctx context.Context, tb testing.TB, what string, cond func(seen map[int]int, by map[string]map[int]int) bool) {
	tb.Helper()
	for {
		t.mu.Lock()
		ok := cond(t.seen, t.by)
		n := len(t.seen)
		t.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-t.changed:
		case <-ctx.Done():
			tb.Fatalf("%s: not before the deadline (%d of %d rows seen): %v", what, n, t.want, context.Cause(ctx))
		}
	}
}

// wait fails the test unless every row was seen before the deadline.
func (t *tally) wait(tb testing.TB) {
	tb.Helper()
	t.waitFor(tb, "every row handled", func(seen map[int]int, _ map[string]map[int]int) bool { return len(seen) >= t.want })
}

// snapshot returns how often each row was handled and how many rows each
// worker handled.
func (t *tally) snapshot() (seen map[int]int, by map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	by = make(map[string]int)
	for w, ids := range t.by {
		for _, n := range ids {
			by[w] += n
		}
	}
	return maps.Clone(t.seen), by
}

// duplicates returns how many handlings were repeats.
func duplicates(seen map[int]int) int {
	d := 0
	for _, n := range seen {
		d += n - 1
	}
	return d
}
