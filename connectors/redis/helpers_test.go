package redis

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
)

// needRedis skips tb when there is no redis-server to test against.
func needRedis(tb testing.TB) {
	tb.Helper()
	if skipReason != "" {
		tb.Skip(skipReason)
	}
}

// newConnector returns an initialised connector to the test server, closed
// when the test ends.
func newConnector(tb testing.TB, name string, params map[string]string) *Connector {
	tb.Helper()
	needRedis(tb)
	c, err := New(connectors.Config{Name: name, Type: Type, Addrs: testAddr, Params: params})
	require.NoError(tb, err)
	require.NoError(tb, c.Init(context.Background()))
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// rawClient returns a go-redis client of the test server, closed when the
// test ends.
func rawClient(tb testing.TB) *goredis.Client {
	tb.Helper()
	needRedis(tb)
	opts, err := goredis.ParseURL(testAddr)
	require.NoError(tb, err)
	client := goredis.NewClient(opts)
	tb.Cleanup(func() { _ = client.Close() })
	return client
}

// keySeq makes stream names unique across repeated runs (-count).
var keySeq atomic.Int64

// streamKey returns a stream name unique to the test run.
func streamKey(tb testing.TB) string {
	return "kisflow-test:" + strings.NewReplacer("/", ":", " ", "_").Replace(tb.Name()) + ":" + strconv.FormatInt(keySeq.Add(1), 10)
}

// msgs returns messages with data "from" ... "to".
func msgs(from, to int) []connectors.Message {
	var out []connectors.Message
	for i := from; i <= to; i++ {
		out = append(out, connectors.Message{Data: []byte(strconv.Itoa(i))})
	}
	return out
}

// nums returns "from" ... "to".
func nums(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// data returns the data of ds as strings.
func data(ds []connectors.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Data)
	}
	return out
}

// ackAll acknowledges every delivery of ds.
func ackAll(tb testing.TB, ds []connectors.Delivery) {
	tb.Helper()
	for _, d := range ds {
		require.NoError(tb, d.Ack())
	}
}

// readN reads from r until it has n deliveries, failing the test if that
// takes longer than a generous deadline.
func readN(tb testing.TB, r connectors.Reader, n, max int) []connectors.Delivery {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []connectors.Delivery
	for len(out) < n {
		ds, err := r.Read(ctx, max)
		require.NoError(tb, err, "read %d of %d deliveries", len(out), n)
		require.LessOrEqual(tb, len(ds), max)
		out = append(out, ds...)
	}
	return out
}

// pendingCount returns how many messages group holds unacknowledged.
func pendingCount(tb testing.TB, client *goredis.Client, key, group string) int64 {
	tb.Helper()
	p, err := client.XPending(context.Background(), key, group).Result()
	require.NoError(tb, err)
	return p.Count
}
