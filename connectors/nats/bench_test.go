package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// The benchmarks move b.N rows end to end, Save -> broker -> Load, through
// an embedded server, with one or two workers of one group, and compare
// with the client used directly for the same work: publish asynchronously
// with a window of 256 awaiting acknowledgement, pull with explicit
// acknowledgement, decode the JSON row, double its amount, count it and
// acknowledge it. One op is one row; rows/s is end to end.
//
//	go test -run '^$' -bench . -count 6 | tee new.txt
//	benchstat -col /impl new.txt

var benchKeys atomic.Int64

// benchKey returns a key not used before in this process, so that every
// run starts on an empty stream.
func benchKey() string { return "bench" + strconv.FormatInt(benchKeys.Add(1), 10) }

// benchParams are the connector params of both implementations.
var benchParams = map[string]string{"max_ack_pending": "4096", "publish_window": "256"}

func BenchmarkSaveLoad(b *testing.B) {
	s := startServer(b)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.Run("impl=raw", func(b *testing.B) { benchRaw(b, s.ClientURL(), workers, false) })
			b.Run("impl=kisflow", func(b *testing.B) { benchKisflow(b, s.ClientURL(), workers, benchParams) })
		})
	}
}

// BenchmarkAck measures acknowledgement: fire-and-forget acks against acks
// the server confirms (double_ack), with one worker.
func BenchmarkAck(b *testing.B) {
	s := startServer(b)
	for _, double := range []bool{false, true} {
		b.Run(fmt.Sprintf("double=%v", double), func(b *testing.B) {
			params := map[string]string{"double_ack": strconv.FormatBool(double)}
			for k, v := range benchParams {
				params[k] = v
			}
			b.Run("impl=raw", func(b *testing.B) { benchRaw(b, s.ClientURL(), 1, double) })
			b.Run("impl=kisflow", func(b *testing.B) { benchKisflow(b, s.ClientURL(), 1, params) })
		})
	}
}

// benchOrders returns n rows.
func benchOrders(n int) []Order {
	rows := make([]Order, n)
	for i := range rows {
		rows[i] = Order{ID: i, Amount: i * 10, Shop: "shop"}
	}
	return rows
}

// counter counts handled rows and closes done at the n-th.
type counter struct {
	n    int64
	got  atomic.Int64
	done chan struct{}
}

func newCounter(n int) *counter { return &counter{n: int64(n), done: make(chan struct{})} }

func (c *counter) add(o Order) error {
	if o.Amount != o.ID*20 {
		return fmt.Errorf("row %d: amount %d", o.ID, o.Amount)
	}
	if c.got.Add(1) == c.n {
		close(c.done)
	}
	return nil
}

func (c *counter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d of %d rows handled", c.got.Load(), c.n)
	}
}

// report stops the timer, checks the count and reports rows/s.
func (c *counter) report(b *testing.B) {
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func benchKisflow(b *testing.B, url string, workers int, params map[string]string) {
	b.ReportAllocs()
	ctx := context.Background()
	key := benchKey()
	var conns []connectors.Connector
	newConn := func(name string) connectors.Connector {
		c, err := New(connectors.Config{Name: name, Addrs: url, Key: key, Params: params})
		require.NoError(b, err)
		require.NoError(b, c.Init(ctx))
		conns = append(conns, c)
		return c
	}
	defer func() {
		for _, c := range conns {
			require.NoError(b, c.Close(ctx))
		}
	}()
	w, err := newConn("producer").Writer(ctx, key)
	require.NoError(b, err)
	cnt := newCounter(b.N)
	var flows []*pipeline.Pipeline
	for i := range workers {
		r, err := newConn(fmt.Sprintf("worker-%d", i)).Reader(ctx, key, connectors.ReadOptions{Group: "bench", FromStart: true})
		require.NoError(b, err)
		p := pipeline.New(fmt.Sprintf("worker-%d", i))
		src := stream.Load(p, "load", r, stream.JSON[Order]())
		doubled := pipeline.Then(src, stage.Map("double", func(_ context.Context, o Order) (Order, error) {
			o.Amount *= 2
			return o, nil
		}))
		pipeline.To(doubled, stage.Sink("count", func(_ context.Context, o Order) error { return cnt.add(o) }))
		require.NoError(b, p.Start(ctx))
		flows = append(flows, p)
	}
	rows := benchOrders(b.N)

	b.ResetTimer()
	prod := pipeline.New("producer")
	pipeline.To(pipeline.FromSlice(prod, "orders", rows), stream.Save("save", w, stream.JSON[Order](), nil))
	require.NoError(b, prod.Run(ctx))
	cnt.wait(b)
	cnt.report(b)

	for _, p := range flows {
		p.Stop()
	}
	for _, p := range flows {
		require.NoError(b, p.Wait())
	}
	require.Equal(b, int64(b.N), cnt.got.Load(), "rows handled")
}

// benchRaw does the work of benchKisflow with the client alone.
func benchRaw(b *testing.B, url string, workers int, doubleAck bool) {
	b.ReportAllocs()
	ctx := context.Background()
	key := benchKey()
	var conns []*natsio.Conn
	connect := func(opts ...jetstream.JetStreamOpt) jetstream.JetStream {
		nc, err := natsio.Connect(url)
		require.NoError(b, err)
		conns = append(conns, nc)
		js, err := jetstream.New(nc, opts...)
		require.NoError(b, err)
		return js
	}
	defer func() {
		for _, nc := range conns {
			require.NoError(b, nc.FlushTimeout(10*time.Second))
			nc.Close()
		}
	}()
	pub := connect(jetstream.WithPublishAsyncMaxPending(256))
	stream, err := pub.CreateStream(ctx, jetstream.StreamConfig{
		Name: key, Subjects: []string{key, key + ".*"}, Storage: jetstream.FileStorage,
	})
	require.NoError(b, err)
	_, err = stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait: DefaultAckWait, MaxAckPending: 4096,
	})
	require.NoError(b, err)

	cnt := newCounter(b.N)
	var wg sync.WaitGroup
	var iters []jetstream.MessagesContext
	errs := make(chan error, workers)
	for range workers {
		cons, err := connect().Consumer(ctx, key, "bench")
		require.NoError(b, err)
		it, err := cons.Messages(jetstream.PullMaxMessages(256))
		require.NoError(b, err)
		iters = append(iters, it)
		wg.Go(func() {
			for {
				m, err := it.Next()
				if err != nil {
					return // stopped
				}
				var o Order
				if err := json.Unmarshal(m.Data(), &o); err != nil {
					errs <- err
					return
				}
				o.Amount *= 2
				if err := cnt.add(o); err != nil {
					errs <- err
					return
				}
				if doubleAck {
					err = m.DoubleAck(ctx)
				} else {
					err = m.Ack()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	rows := benchOrders(b.N)

	b.ResetTimer()
	for _, o := range rows {
		data, err := json.Marshal(o)
		require.NoError(b, err)
		_, err = pub.PublishMsgAsync(&natsio.Msg{Subject: key, Data: data})
		require.NoError(b, err)
	}
	select {
	case <-pub.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish acknowledgements missing")
	}
	select {
	case <-cnt.done:
	case err := <-errs:
		b.Fatal(err)
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d of %d rows handled", cnt.got.Load(), b.N)
	}
	cnt.report(b)

	for _, it := range iters {
		it.Stop()
	}
	wg.Wait()
	require.Equal(b, int64(b.N), cnt.got.Load(), "rows handled")
}
