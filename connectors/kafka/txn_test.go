package kafka

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// startTransform runs Load("in") -> Map(double) -> Save("out") on c, a
// connector with exactly_once set, counting the rows it doubled.
func startTransform(t *testing.T, ctx context.Context, c connectors.Connector, doubled *atomic.Int64) *pipeline.Pipeline {
	t.Helper()
	r := newReader(t, c, "in", connectors.ReadOptions{Group: "etl", FromStart: true})
	w := newWriter(t, c, "out")
	p := pipeline.New("etl")
	rows := stream.Load(p, "load", r, orderCodec)
	out := pipeline.Then(rows, stage.Map("double", func(_ context.Context, o Order) (Order, error) {
		o.Amount *= 2
		doubled.Add(1)
		return o, nil
	}))
	pipeline.To(out, stream.Save("save", w, orderCodec, func(o Order) string { return strconv.Itoa(o.ID) }))
	require.NoError(t, p.Start(ctx))
	return p
}

// sum adds up offsets.
func sum(offs map[int32]int64) int64 {
	var s int64
	for _, o := range offs {
		s += o
	}
	return s
}

// TestExactlyOnceTransform reads a topic, transforms every row and writes
// it to another topic in transactions. The first worker commits a
// transaction, then writes rows in a second one and dies with rows in
// flight: that transaction is aborted. A second worker takes over from
// the committed offsets. A read-committed reader of the output sees every
// row exactly once, though some were written twice.
func TestExactlyOnceTransform(t *testing.T) {
	addrs := startCluster(t, 4, "in", "out")
	adm := admin(t, addrs)
	const n = 1000
	prod := newConnector(t, "producer", addrs, "", nil)
	w := newWriter(t, prod, "in")
	produce(t, w, orders(0, n/2))
	eos := map[string]string{"exactly_once": "true", "commit_interval": "30ms", "session_timeout": "2s", "heartbeat_interval": "100ms"}

	// The first worker uses the connector directly: it reads the first
	// half, writes the doubled rows and acknowledges them, and the commit
	// loop commits them in transactions.
	a := newConnector(t, "etl-a", addrs, "", eos)
	ra := newReader(t, a, "in", connectors.ReadOptions{Group: "etl", FromStart: true})
	wa := newWriter(t, a, "out")
	transform := func(ds []connectors.Delivery) {
		var ms []connectors.Message
		for _, d := range ds {
			var o Order
			require.NoError(t, json.Unmarshal(d.Data, &o))
			o.Amount *= 2
			data, err := json.Marshal(o)
			require.NoError(t, err)
			ms = append(ms, connectors.Message{Key: d.Key, Data: data})
		}
		require.NoError(t, wa.Write(t.Context(), ms))
	}
	for got := 0; got < n/2; {
		ds, err := ra.Read(t.Context(), n/2-got)
		require.NoError(t, err)
		transform(ds)
		for _, d := range ds {
			require.NoError(t, d.Ack())
		}
		got += len(ds)
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, int64(n/2), sum(committed(t, adm, "etl", "in")))
	}, deadline, 10*time.Millisecond)
	// Of the second half, it reads some rows and writes them, but dies
	// before acknowledging them: that transaction is aborted.
	produce(t, w, orders(n/2, n))
	written := sum(endOffsets(t, adm, "out"))
	ds, err := ra.Read(t.Context(), 100)
	require.NoError(t, err)
	transform(ds)
	require.GreaterOrEqual(t, sum(endOffsets(t, adm, "out")), written+int64(len(ds)), "written to the log, not committed")
	require.NoError(t, a.Close(context.Background()))
	require.Equal(t, int64(n/2), sum(committed(t, adm, "etl", "in")), "the open transaction was aborted")

	var secondDoubled atomic.Int64
	b := newConnector(t, "etl-b", addrs, "", eos)
	pb := startTransform(t, t.Context(), b, &secondDoubled)
	ends := endOffsets(t, adm, "in")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, ends, committed(t, adm, "etl", "in"))
	}, deadline, 10*time.Millisecond)
	pb.Stop()
	require.NoError(t, pb.Wait())
	require.NoError(t, b.Close(context.Background()))

	// A sentinel after the last transaction in every partition of "out"
	// tells the reader it has read everything.
	markEnds(t, addrs, "out", 4)
	check := newConnector(t, "check", addrs, "", nil)
	r := newReader(t, check, "out", connectors.ReadOptions{FromStart: true})
	seen := map[int]int{}
	for ends := 0; ends < 4; {
		ds, err := r.Read(t.Context(), 256)
		require.NoError(t, err)
		for _, d := range ds {
			if string(d.Data) == endMark {
				ends++
				continue
			}
			var o Order
			require.NoError(t, json.Unmarshal(d.Data, &o))
			require.Equal(t, o.ID*20, o.Amount)
			seen[o.ID]++
		}
	}
	require.Len(t, seen, n, "every row written")
	for id, times := range seen {
		require.Equal(t, 1, times, "row %d written %d times", id, times)
	}
	t.Logf("the second worker doubled %d rows; the output log holds %d records (markers and aborted records included) for %d rows",
		secondDoubled.Load(), sum(endOffsets(t, adm, "out")), n)
}

func TestExactlyOnceNeedsItsReader(t *testing.T) {
	addrs := startCluster(t, 1, "in", "out")
	c := newConnector(t, "etl", addrs, "", map[string]string{"exactly_once": "true"})
	w := newWriter(t, c, "out")
	err := w.Write(t.Context(), messages(0, 1))
	require.ErrorIs(t, err, connectors.ErrConfig)
	require.ErrorContains(t, err, `kafka connector "etl": key "out": write: param exactly_once: no reader`)
	_, err = c.Reader(t.Context(), "in", connectors.ReadOptions{})
	require.ErrorContains(t, err, "param exactly_once needs a group")
	newReader(t, c, "in", connectors.ReadOptions{Group: "g"})
	_, err = c.Reader(t.Context(), "in", connectors.ReadOptions{Group: "g"})
	require.ErrorContains(t, err, "param exactly_once allows one reader per connector")
}
