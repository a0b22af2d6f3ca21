package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// The benchmarks compare the connector with franz-go used directly for
// the same work, on a three-broker kfake cluster, in the same run:
//
//   - BenchmarkConsume: b.N rows wait in a topic of four partitions; one
//     group member reads them, decodes the JSON row, doubles its amount,
//     counts it and acknowledges it, and the group's offsets are committed
//     (every commit_interval, 1s, and at the end). The timing starts
//     once the group is joined (the first records arrive). impl=raw polls with
//     BlockRebalanceOnPoll and marks each handled record for the client's
//     auto-commit; impl=kisflow reads and acknowledges each delivery
//     through the connector; impl=pipeline is impl=kisflow inside a
//     pipeline, stream.Load -> Map -> Sink.
//   - BenchmarkProduce: b.N rows written in chunks of 256, each chunk
//     waiting until every in-sync replica has it: impl=raw with
//     ProduceSync, impl=kisflow with Writer.Write.
//
// One op is one row.
//
//	go test -run '^$' -bench . -count 6 | tee new.txt
//	benchstat -col /impl new.txt

var benchTopics atomic.Int64

// benchTopic creates a topic of four partitions not used before.
func benchTopic(b *testing.B, c connectors.Connector) string {
	topic := "bench" + strconv.FormatInt(benchTopics.Add(1), 10)
	resp, err := c.(*connector).adm.CreateTopic(context.Background(), 4, 1, nil, topic)
	require.NoError(b, err)
	require.NoError(b, resp.Err)
	return topic
}

// fill writes n rows to topic, untimed.
func fill(b *testing.B, c connectors.Connector, topic string, n int) {
	b.StopTimer()
	defer b.StartTimer()
	w, err := c.Writer(context.Background(), topic)
	require.NoError(b, err)
	defer w.Close()
	const chunk = 1024
	for i := 0; i < n; i += chunk {
		var ms []connectors.Message
		for j := i; j < min(i+chunk, n); j++ {
			data, err := json.Marshal(Order{ID: j, Amount: j * 10, Shop: "shop"})
			require.NoError(b, err)
			ms = append(ms, connectors.Message{Key: strconv.Itoa(j), Data: data})
		}
		require.NoError(b, w.Write(context.Background(), ms))
	}
}

// handleRow is the work done per row: decode, double, check.
func handleRow(data []byte) error {
	var o Order
	if err := json.Unmarshal(data, &o); err != nil {
		return err
	}
	o.Amount *= 2
	if o.Amount != o.ID*20 {
		return fmt.Errorf("row %d: amount %d", o.ID, o.Amount)
	}
	return nil
}

func BenchmarkConsume(b *testing.B) {
	addrs := startCluster(b, 1, "unused")
	c := newConnector(b, "bench", addrs, "", map[string]string{"commit_interval": "1s"})
	b.Run("impl=raw", func(b *testing.B) { benchConsumeRaw(b, c, addrs) })
	b.Run("impl=kisflow", func(b *testing.B) { benchConsumeKisflow(b, c, addrs, false) })
	b.Run("impl=pipeline", func(b *testing.B) { benchConsumeKisflow(b, c, addrs, true) })
}

func benchConsumeRaw(b *testing.B, c connectors.Connector, addrs string) {
	b.ReportAllocs()
	topic := benchTopic(b, c)
	fill(b, c, topic, b.N)
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.(*connector).o.seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup("bench-raw"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.BlockRebalanceOnPoll(),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.FetchMaxWait(50*time.Millisecond),
	)
	require.NoError(b, err)
	ctx := context.Background()
	for got := 0; got < b.N; {
		fs := cl.PollRecords(ctx, 256)
		require.NoError(b, fs.Err0())
		if got == 0 {
			b.ResetTimer() // the group is joined: time the reading
		}
		for _, r := range fs.Records() {
			require.NoError(b, handleRow(r.Value))
			cl.MarkCommitRecords(r)
			got++
		}
		cl.AllowRebalance()
	}
	require.NoError(b, cl.CommitMarkedOffsets(ctx))
	b.StopTimer()
	cl.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func benchConsumeKisflow(b *testing.B, c connectors.Connector, addrs string, inPipeline bool) {
	b.ReportAllocs()
	topic := benchTopic(b, c)
	fill(b, c, topic, b.N)
	ctx := context.Background()
	r, err := c.Reader(ctx, topic, connectors.ReadOptions{Group: "bench-kisflow", FromStart: true})
	require.NoError(b, err)
	if inPipeline {
		var got atomic.Int64
		done := make(chan struct{})
		p := pipeline.New("bench")
		rows := stream.Load(p, "load", r, stream.JSON[Order]())
		doubled := pipeline.Then(rows, stage.Map("double", func(_ context.Context, o Order) (Order, error) {
			o.Amount *= 2
			return o, nil
		}))
		pipeline.To(doubled, stage.Sink("count", func(_ context.Context, o Order) error {
			if o.Amount != o.ID*20 {
				return fmt.Errorf("row %d: amount %d", o.ID, o.Amount)
			}
			n := got.Add(1)
			if n == 1 {
				b.ResetTimer() // the group is joined: time the reading
			}
			if n == int64(b.N) {
				close(done)
			}
			return nil
		}))
		require.NoError(b, p.Start(ctx))
		<-done
		p.Stop()
		require.NoError(b, p.Wait())
	} else {
		for got := 0; got < b.N; {
			ds, err := r.Read(ctx, 256)
			require.NoError(b, err)
			if got == 0 {
				b.ResetTimer() // the group is joined: time the reading
			}
			for _, d := range ds {
				require.NoError(b, handleRow(d.Data))
				require.NoError(b, d.Ack())
				got++
			}
		}
	}
	require.NoError(b, r.(*reader).flush(ctx)) // commits the acknowledged prefixes
	b.StopTimer()
	require.NoError(b, r.Close())
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkProduce(b *testing.B) {
	addrs := startCluster(b, 1, "unused")
	c := newConnector(b, "bench", addrs, "", nil)
	const chunk = 256
	data := func(i int) []byte {
		d, err := json.Marshal(Order{ID: i, Amount: i * 10, Shop: "shop"})
		require.NoError(b, err)
		return d
	}
	b.Run("impl=raw", func(b *testing.B) {
		b.ReportAllocs()
		topic := benchTopic(b, c)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.(*connector).o.seeds...), kgo.RequiredAcks(kgo.AllISRAcks()))
		require.NoError(b, err)
		defer cl.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i += chunk {
			rs := make([]*kgo.Record, 0, chunk)
			for j := i; j < min(i+chunk, b.N); j++ {
				rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(j)), Value: data(j)})
			}
			require.NoError(b, cl.ProduceSync(context.Background(), rs...).FirstErr())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("impl=kisflow", func(b *testing.B) {
		b.ReportAllocs()
		topic := benchTopic(b, c)
		w, err := c.Writer(context.Background(), topic)
		require.NoError(b, err)
		defer w.Close()
		b.ResetTimer()
		for i := 0; i < b.N; i += chunk {
			ms := make([]connectors.Message, 0, chunk)
			for j := i; j < min(i+chunk, b.N); j++ {
				ms = append(ms, connectors.Message{Key: strconv.Itoa(j), Data: data(j)})
			}
			require.NoError(b, w.Write(context.Background(), ms))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}
