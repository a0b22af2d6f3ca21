package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

var orderCodec = stream.JSON[Order]()

// produce saves rows to w through a pipeline: FromSlice -> Save.
func produce(tb testing.TB, w connectors.Writer, rows []Order) {
	tb.Helper()
	p := pipeline.New("producer")
	src := pipeline.FromSlice(p, "orders", rows)
	pipeline.To(src, stream.Save("save-orders", w, orderCodec, func(o Order) string { return o.Shop }))
	require.NoError(tb, p.Run(context.Background()))
}

// startWorker starts a pipeline Load -> Map -> Expand that records every
// row it handles in tl under its name. block, if not nil, runs first in
// the Expand stage for every row.
func startWorker(tb testing.TB, ctx context.Context, name string, r connectors.Reader, tl *tally, block func(context.Context, Order) error) *pipeline.Pipeline {
	tb.Helper()
	p := pipeline.New(name)
	rows := stream.Load(p, "load-orders", r, orderCodec)
	doubled := pipeline.Then(rows, stage.Map("double", func(_ context.Context, o Order) (Order, error) {
		o.Amount *= 2
		return o, nil
	}))
	pipeline.To(doubled, stage.Sink("record", func(ctx context.Context, o Order) error {
		if block != nil {
			if err := block(ctx, o); err != nil {
				return err
			}
		}
		if o.Amount != o.ID*20 {
			return fmt.Errorf("row %d: amount %d, want %d", o.ID, o.Amount, o.ID*20)
		}
		tl.add(name, o.ID)
		return nil
	}))
	require.NoError(tb, p.Start(ctx))
	return p
}

// settled waits until the durable has nothing pending and nothing
// unacknowledged, and returns its state.
func settled(tb testing.TB, url, stream, durable string) {
	tb.Helper()
	js := jsClient(tb, url)
	require.EventuallyWithT(tb, func(c *assert.CollectT) {
		info := consumerInfo(tb, js, stream, durable)
		assert.Zero(c, info.NumPending, "messages not yet delivered")
		assert.Zero(c, info.NumAckPending, "messages delivered but not acknowledged")
	}, deadline, 10*time.Millisecond)
}

func TestSaveLoadRoundTrip(t *testing.T) {
	s := startServer(t)
	const n = 1000
	c := newConnector(t, "orders-bus", s.ClientURL(), "orders", nil)
	r := newReader(t, c, "orders", connectors.ReadOptions{Group: "billing", FromStart: true})
	w := newWriter(t, c, "orders")

	tl := newTally(n)
	p := startWorker(t, t.Context(), "worker", r, tl, nil)
	produce(t, w, orders(n))
	tl.wait(t)
	p.Stop()
	require.NoError(t, p.Wait())

	seen, _ := tl.snapshot()
	sum := 0
	for id, times := range seen {
		require.Equal(t, 1, times, "row %d handled %d times", id, times)
		sum += id
	}
	require.Equal(t, n*(n-1)/2, sum)
	settled(t, s.ClientURL(), "orders", "billing")
	info := consumerInfo(t, jsClient(t, s.ClientURL()), "orders", "billing")
	require.Zero(t, info.NumRedelivered)
}

func TestSharedGroupEveryRowOnce(t *testing.T) {
	s := startServer(t)
	const n = 3000
	params := map[string]string{"partitions": "4"}
	prod := newConnector(t, "producer", s.ClientURL(), "orders", params)
	w := newWriter(t, prod, "orders")

	tl := newTally(n)
	var workers []*pipeline.Pipeline
	for i := range 2 {
		c := newConnector(t, fmt.Sprintf("worker-%d", i), s.ClientURL(), "orders", params)
		r := newReader(t, c, "orders", connectors.ReadOptions{Group: "billing", FromStart: true})
		workers = append(workers, startWorker(t, t.Context(), fmt.Sprintf("worker-%d", i), r, tl, nil))
	}
	produce(t, w, orders(n))
	tl.wait(t)
	for _, p := range workers {
		p.Stop()
	}
	for _, p := range workers {
		require.NoError(t, p.Wait())
	}
	seen, by := tl.snapshot()
	sum := 0
	for id, times := range seen {
		require.Equal(t, 1, times, "row %d handled %d times", id, times)
		sum += id
	}
	require.Equal(t, n*(n-1)/2, sum)
	require.Equal(t, n, by["worker-0"]+by["worker-1"])
	t.Logf("rows per worker: %v", by)
	settled(t, s.ClientURL(), "orders", "billing")
}

func TestDeadWorkerRowsRedelivered(t *testing.T) {
	s := startServer(t)
	const n = 600
	params := map[string]string{"ack_wait": "1s"}
	prod := newConnector(t, "producer", s.ClientURL(), "orders", params)
	w := newWriter(t, prod, "orders")
	opts := connectors.ReadOptions{Group: "billing", FromStart: true}

	// The dying worker blocks on the first row it gets, until it dies.
	dying := newConnector(t, "dying", s.ClientURL(), "orders", params)
	dyingCtx, kill := context.WithCancel(t.Context())
	defer kill()
	stuck := make(chan int, 1)
	tl := newTally(n)
	pd := startWorker(t, dyingCtx, "dying", newReader(t, dying, "orders", opts), tl, func(ctx context.Context, o Order) error {
		select {
		case stuck <- o.ID:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})

	// Save the rows, wait until the dying worker holds one, then start the
	// survivor and kill the other before it acknowledged anything.
	produce(t, w, orders(n))
	var held int
	select {
	case held = <-stuck:
	case <-time.After(deadline):
		t.Fatal("the dying worker got no row")
	}
	survivor := newConnector(t, "survivor", s.ClientURL(), "orders", params)
	ps := startWorker(t, t.Context(), "survivor", newReader(t, survivor, "orders", opts), tl, nil)
	kill()
	require.ErrorIs(t, pd.Wait(), context.Canceled)
	require.NoError(t, dying.Close(context.Background()))

	tl.wait(t)
	ps.Stop()
	require.NoError(t, ps.Wait())
	require.True(t, tl.handledBy("survivor", held), "row %d held by the dead worker was not redelivered", held)
	seen, by := tl.snapshot()
	require.Len(t, seen, n)
	require.Zero(t, by["dying"], "the dying worker handled nothing")
	settled(t, s.ClientURL(), "orders", "billing")
}

func TestGroupsAndPrivateReaders(t *testing.T) {
	s := startServer(t)
	c := newConnector(t, "bus", s.ClientURL(), "events", nil)
	w := newWriter(t, c, "events")
	ctx := t.Context()
	require.NoError(t, w.Write(ctx, []connectors.Message{{Data: []byte("old")}}))

	late := newReader(t, c, "events", connectors.ReadOptions{Group: "late"}) // only new messages
	all := newReader(t, c, "events", connectors.ReadOptions{Group: "all", FromStart: true})
	private1 := newReader(t, c, "events", connectors.ReadOptions{FromStart: true})
	private2 := newReader(t, c, "events", connectors.ReadOptions{FromStart: true})
	require.NoError(t, w.Write(ctx, []connectors.Message{{Key: "k1", Data: []byte("new")}}))

	read := func(r connectors.Reader, want int) []string {
		var got []string
		for len(got) < want {
			ds, err := r.Read(ctx, 10)
			require.NoError(t, err)
			for _, d := range ds {
				got = append(got, d.Key+":"+string(d.Data))
				require.NoError(t, d.Ack())
			}
		}
		return got
	}
	require.Equal(t, []string{"k1:new"}, read(late, 1))
	require.Equal(t, []string{":old", "k1:new"}, read(all, 2))
	require.Equal(t, []string{":old", "k1:new"}, read(private1, 2))
	require.Equal(t, []string{":old", "k1:new"}, read(private2, 2))

	// A second reader of a group created with FromStart=false joins the
	// group's position rather than failing, and its ack_wait and
	// max_ack_pending apply to the group's durable.
	c2 := newConnector(t, "bus2", s.ClientURL(), "events", map[string]string{"ack_wait": "7s", "max_ack_pending": "9"})
	again := newReader(t, c2, "events", connectors.ReadOptions{Group: "late", FromStart: true})
	require.NoError(t, again.Close())
	info := consumerInfo(t, jsClient(t, s.ClientURL()), "events", "late")
	require.Equal(t, 7*time.Second, info.Config.AckWait)
	require.Equal(t, 9, info.Config.MaxAckPending)
	require.Equal(t, jetstream.DeliverNewPolicy, info.Config.DeliverPolicy)

	// A private consumer is deleted by Close.
	js := jsClient(t, s.ClientURL())
	name := private1.(*reader).name
	require.NoError(t, private1.Close())
	_, err := js.Consumer(ctx, "events", name)
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)
}

func TestPartitionsKeepKeysTogether(t *testing.T) {
	s := startServer(t)
	const parts = 4
	ctx := t.Context()
	c := newConnector(t, "bus", s.ClientURL(), "orders", map[string]string{"partitions": "4"})
	one := newConnector(t, "bus-p1", s.ClientURL(), "orders", map[string]string{"partitions": "4", "read_partitions": "1"})
	all := newReader(t, c, "orders", connectors.ReadOptions{Group: "all", FromStart: true})
	p1 := newReader(t, one, "orders", connectors.ReadOptions{Group: "all", FromStart: true})
	w := newWriter(t, c, "orders")

	var msgs []connectors.Message
	want1 := 0
	for i := range 200 {
		k := fmt.Sprintf("key-%d", i%13)
		msgs = append(msgs, connectors.Message{Key: k, Data: fmt.Appendf(nil, "%d", i)})
		if fnv32a(k)%parts == 1 {
			want1++
		}
	}
	require.NoError(t, w.Write(ctx, msgs))

	// One reader of every partition sees each key's messages in order.
	last := map[string]int{}
	for got := 0; got < len(msgs); {
		ds, err := all.Read(ctx, 64)
		require.NoError(t, err)
		for _, d := range ds {
			var i int
			_, err := fmt.Sscanf(string(d.Data), "%d", &i)
			require.NoError(t, err)
			require.Equal(t, fmt.Sprintf("key-%d", i%13), d.Key)
			if prev, ok := last[d.Key]; ok {
				require.Greater(t, i, prev, "key %s out of order", d.Key)
			}
			last[d.Key] = i
			require.NoError(t, d.Ack())
			got++
		}
	}
	// The reader of partition 1 has a durable of its own and sees only
	// the keys that hash there.
	require.Equal(t, "all_p1", p1.(*reader).name)
	for got := 0; got < want1; {
		ds, err := p1.Read(ctx, 64)
		require.NoError(t, err)
		for _, d := range ds {
			require.Equal(t, uint32(1), fnv32a(d.Key)%parts)
			require.NoError(t, d.Ack())
			got++
		}
	}
	settled(t, s.ClientURL(), "orders", "all_p1")
}

func TestReadHonoursContextAndClose(t *testing.T) {
	s := startServer(t)
	c := newConnector(t, "bus", s.ClientURL(), "idle", map[string]string{"fetch_wait": "50ms"})
	r := newReader(t, c, "idle", connectors.ReadOptions{Group: "g"})

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, 10)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(deadline):
		t.Fatal("Read ignored its context")
	}

	go func() {
		_, err := r.Read(t.Context(), 10)
		done <- err
	}()
	require.NoError(t, r.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, connectors.ErrClosed)
	case <-time.After(deadline):
		t.Fatal("Close did not end Read")
	}
	_, err := r.Read(t.Context(), 1)
	require.ErrorIs(t, err, connectors.ErrClosed)

	w := newWriter(t, c, "idle")
	require.NoError(t, c.Close(context.Background()))
	err = w.Write(t.Context(), []connectors.Message{{Data: []byte("x")}})
	require.ErrorIs(t, err, connectors.ErrClosed)
	_, err = c.Writer(t.Context(), "idle")
	require.ErrorIs(t, err, connectors.ErrClosed)
	require.ErrorContains(t, err, `nats connector "bus"`)
}

func TestServerGone(t *testing.T) {
	s := startServer(t)
	url := s.ClientURL()
	params := map[string]string{"max_reconnects": "0", "timeout": "2s"}
	c := newConnector(t, "orders-bus", url, "orders", params)
	w := newWriter(t, c, "orders")
	r := newReader(t, c, "orders", connectors.ReadOptions{Group: "g"})
	stopServer(s)

	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	_, err := r.Read(ctx, 10)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, `nats connector "orders-bus": key "orders"`)
	require.ErrorContains(t, err, "server gone")
	t.Logf("Read: %v", err)

	err = w.Write(ctx, []connectors.Message{{Data: []byte("x")}})
	require.Error(t, err)
	require.ErrorContains(t, err, `nats connector "orders-bus": key "orders"`)
	t.Logf("Write: %v", err)

	// A connector that cannot reach any server fails Init.
	dead, err := New(connectors.Config{Name: "nowhere", Addrs: url, Params: params})
	require.NoError(t, err)
	err = dead.Init(ctx)
	require.Error(t, err)
	require.ErrorContains(t, err, `nats connector "nowhere": connect to `+url)
	t.Logf("Init: %v", err)
	require.NoError(t, dead.Close(ctx))
}

func TestServerRestartResumes(t *testing.T) {
	dir := t.TempDir()
	s := startServerAt(t, dir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	params := map[string]string{"max_reconnects": "-1", "reconnect_wait": "20ms", "ack_wait": "1s"}
	c := newConnector(t, "bus", s.ClientURL(), "orders", params)
	w := newWriter(t, c, "orders")
	r := newReader(t, c, "orders", connectors.ReadOptions{Group: "g", FromStart: true})
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()

	msgs := func(from, to int) []connectors.Message {
		var ms []connectors.Message
		for i := from; i < to; i++ {
			ms = append(ms, connectors.Message{Data: []byte(strconv.Itoa(i))})
		}
		return ms
	}
	require.NoError(t, w.Write(ctx, msgs(0, 10)))
	// Handle and acknowledge the even rows only, then restart the server.
	for got := 0; got < 10; {
		ds, err := r.Read(ctx, 10)
		require.NoError(t, err)
		for _, d := range ds {
			if i, _ := strconv.Atoi(string(d.Data)); i%2 == 0 {
				require.NoError(t, d.Ack())
			}
			got++
		}
	}
	require.NoError(t, c.(*connector).nc.Flush())
	stopServer(s)

	// A Write while the server is away waits for it to come back.
	wrote := make(chan error, 1)
	go func() { wrote <- w.Write(ctx, msgs(10, 15)) }()
	startServerAt(t, dir, port)

	// The connection comes back by itself: the writer and the reader go on,
	// and the odd rows come again once ack_wait has passed.
	require.NoError(t, <-wrote)
	want := map[int]bool{1: true, 3: true, 5: true, 7: true, 9: true, 10: true, 11: true, 12: true, 13: true, 14: true}
	for len(want) > 0 {
		ds, err := r.Read(ctx, 10)
		require.NoError(t, err)
		for _, d := range ds {
			i, _ := strconv.Atoi(string(d.Data))
			delete(want, i)
			require.NoError(t, d.Ack())
		}
	}
}

func TestMissingStream(t *testing.T) {
	s := startServer(t)
	ctx := t.Context()
	c := newConnector(t, "strict", s.ClientURL(), "", map[string]string{"create": "false"})
	_, err := c.Writer(ctx, "orders")
	require.ErrorIs(t, err, connectors.ErrConfig)
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	require.ErrorContains(t, err, `nats connector "strict": key "orders": no stream captures subject "orders"`)
	t.Logf("Writer: %v", err)
	_, err = c.Reader(ctx, "orders", connectors.ReadOptions{Group: "g"})
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	require.ErrorContains(t, err, `nats connector "strict": key "orders"`)

	named := newConnector(t, "named", s.ClientURL(), "", map[string]string{"create": "false", "stream": "ORDERS"})
	_, err = named.Writer(ctx, "orders")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	require.ErrorContains(t, err, `stream "ORDERS" is missing`)

	// A stream deleted under a writer and a reader.
	lax := newConnector(t, "lax", s.ClientURL(), "", map[string]string{"timeout": "2s"})
	w := newWriter(t, lax, "orders")
	r := newReader(t, lax, "orders", connectors.ReadOptions{Group: "g"})
	require.NoError(t, jsClient(t, s.ClientURL()).DeleteStream(ctx, "orders"))
	err = w.Write(ctx, []connectors.Message{{Data: []byte("x")}})
	require.ErrorContains(t, err, `nats connector "lax": key "orders": publish to "orders"`)
	t.Logf("Write: %v", err)
	_, err = r.Read(ctx, 1)
	require.ErrorContains(t, err, `nats connector "lax": key "orders": consumer "g" of stream "orders"`)
	t.Logf("Read: %v", err)
}

func TestConfigErrors(t *testing.T) {
	for _, params := range []map[string]string{
		{"partitions": "-1"},
		{"ack_wait": "soon"},
		{"storage": "tape"},
		{"bogus": "1"},
		{"read_partitions": "1"},
		{"partitions": "2", "read_partitions": "2"},
		{"stream": "a.b"},
	} {
		_, err := New(connectors.Config{Name: "bad", Type: Type, Params: params})
		require.ErrorIs(t, err, connectors.ErrConfig, "%v", params)
		require.ErrorContains(t, err, `nats connector "bad"`)
	}
	_, err := New(connectors.Config{Name: "bad", Key: "orders.*"})
	require.ErrorIs(t, err, connectors.ErrConfig)

	c, err := New(connectors.Config{Name: "early"})
	require.NoError(t, err)
	_, err = c.Writer(t.Context(), "orders")
	require.ErrorContains(t, err, `nats connector "early": key "orders": connector used before Init`)
	_, err = c.Writer(t.Context(), "bad key")
	require.ErrorIs(t, err, connectors.ErrConfig)

	reg := connectors.NewRegistry()
	require.NoError(t, Register(reg))
	require.Error(t, Register(reg))
	require.Error(t, Register(nil), "nil registry")
	require.Contains(t, reg.Types(), Type)
	c, err = reg.New(connectors.Config{Name: "x", Type: Type})
	require.NoError(t, err)
	require.NoError(t, c.Close(t.Context()))
	_, err = reg.New(connectors.Config{Name: "y", Type: Type, Params: map[string]string{"replicas": "0"}})
	require.True(t, errors.Is(err, connectors.ErrConfig))
}

func TestDoubleAck(t *testing.T) {
	s := startServer(t)
	c := newConnector(t, "bus", s.ClientURL(), "orders", map[string]string{"double_ack": "true"})
	w := newWriter(t, c, "orders")
	r := newReader(t, c, "orders", connectors.ReadOptions{Group: "g", FromStart: true})
	ctx := t.Context()
	require.NoError(t, w.Write(ctx, []connectors.Message{{Data: []byte("a")}, {Data: []byte("b")}}))
	var ds []connectors.Delivery
	for len(ds) < 2 {
		got, err := r.Read(ctx, 2)
		require.NoError(t, err)
		ds = append(ds, got...)
	}
	for _, d := range ds {
		require.NoError(t, d.Ack())
	}
	// The server confirmed the acknowledgements: nothing is pending.
	info := consumerInfo(t, jsClient(t, s.ClientURL()), "orders", "g")
	require.Zero(t, info.NumAckPending)
	err := ds[0].Ack()
	require.ErrorIs(t, err, jetstream.ErrMsgAlreadyAckd)
	require.ErrorContains(t, err, `nats connector "bus": key "orders": ack message 1 of stream "orders"`)
}

func TestPublishAckTimeout(t *testing.T) {
	s := startServer(t)
	ctx := t.Context()
	c := newConnector(t, "bus", s.ClientURL(), "orders", map[string]string{"timeout": "200ms"})
	w := newWriter(t, c, "orders")
	// No stream answers any more, but a plain subscriber keeps the
	// subject alive: the publish is never acknowledged.
	require.NoError(t, jsClient(t, s.ClientURL()).DeleteStream(ctx, "orders"))
	nc, err := natsio.Connect(s.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Subscribe("orders", func(*natsio.Msg) {})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	err = w.Write(ctx, []connectors.Message{{Data: []byte("x")}})
	require.ErrorIs(t, err, jetstream.ErrAsyncPublishTimeout)
	require.ErrorContains(t, err, `nats connector "bus": key "orders": publish to "orders": stream "orders" did not acknowledge within 200ms`)
}
