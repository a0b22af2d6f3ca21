package nats

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
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
const deadline = 30 * time.Second

// startServer runs a JetStream server on a random loopback port, storing
// in a temporary directory, and shuts it down (waiting for it) when the
// test ends.
func startServer(tb testing.TB) *server.Server {
	tb.Helper()
	return startServerAt(tb, tb.TempDir(), -1)
}

// startServerAt runs a JetStream server storing in dir on the loopback
// port (-1: a random one), shut down when the test ends.
func startServerAt(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	require.NoError(tb, err)
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		tb.Fatal("nats server did not start")
	}
	tb.Cleanup(func() { stopServer(s) })
	return s
}

// stopServer shuts s down and waits until it has.
func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// newConnector builds and initialises a connector named name for the
// server at url, closed when the test ends.
func newConnector(tb testing.TB, name, url, key string, params map[string]string) connectors.Connector {
	tb.Helper()
	c, err := New(connectors.Config{Name: name, Type: Type, Addrs: url, Key: key, Params: params})
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

// jsClient is a plain client of the server, for checking its state.
func jsClient(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := natsio.Connect(url)
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(tb, err)
	return js
}

// consumerInfo returns the state of a durable.
func consumerInfo(tb testing.TB, js jetstream.JetStream, stream, durable string) *jetstream.ConsumerInfo {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, stream, durable)
	require.NoError(tb, err)
	info, err := cons.Info(ctx)
	require.NoError(tb, err)
	return info
}

// Order is the row type of the tests.
type Order struct {
	ID     int    `json:"id"`
	Amount int    `json:"amount"`
	Shop   string `json:"shop"`
}

func orders(n int) []Order {
	rows := make([]Order, n)
	for i := range rows {
		rows[i] = Order{ID: i, Amount: i * 10, Shop: "shop-" + string(rune('a'+i%5))}
	}
	return rows
}

// tally counts the rows each worker handled and says when every row was
// seen at least once.
type tally struct {
	mu     sync.Mutex
	want   int
	seen   map[int]int            // row ID -> times handled, over every worker
	by     map[string]map[int]int // worker -> row ID -> times
	all    chan struct{}
	closed bool
}

func newTally(want int) *tally {
	return &tally{want: want, seen: make(map[int]int), by: make(map[string]map[int]int), all: make(chan struct{})}
}

func (t *tally) add(worker string, id int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen[id]++
	if t.by[worker] == nil {
		t.by[worker] = make(map[int]int)
	}
	t.by[worker][id]++
	if !t.closed && len(t.seen) == t.want {
		t.closed = true
		close(t.all)
	}
}

// wait fails the test unless every row was seen before the deadline.
func (t *tally) wait(tb testing.TB) {
	tb.Helper()
	select {
	case <-t.all:
	case <-time.After(deadline):
		t.mu.Lock()
		n := len(t.seen)
		t.mu.Unlock()
		tb.Fatalf("only %d of %d rows handled before the deadline", n, t.want)
	}
}

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

func (t *tally) handledBy(worker string, id int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.by[worker][id] > 0
}
