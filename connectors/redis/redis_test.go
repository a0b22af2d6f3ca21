package redis

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

type order struct {
	ID    int `json:"id"`
	Total int `json:"total"`
}

func TestSaveLoadRoundTrip(t *testing.T) {
	const n = 1000
	c := newConnector(t, "orders", nil)
	raw := rawClient(t)
	key := streamKey(t)
	ctx := t.Context()

	r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "billing"})
	require.NoError(t, err)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)

	// The loading flow runs first and waits for rows.
	load := pipeline.New("bill")
	got := make(chan order, n)
	src := stream.Load(load, "load-orders", r, stream.JSON[order]())
	doubled := pipeline.Then(src, stage.Map("double", func(_ context.Context, o order) (order, error) {
		o.Total *= 2
		return o, nil
	}))
	pipeline.To(doubled, stage.Sink("collect", func(_ context.Context, o order) error {
		got <- o
		return nil
	}))
	require.NoError(t, load.Start(ctx))

	rows := make([]order, n)
	for i := range rows {
		rows[i] = order{ID: i + 1, Total: i + 1}
	}
	save := pipeline.New("sell")
	pipeline.To(pipeline.FromSlice(save, "orders", rows),
		stream.Save("save-orders", w, stream.JSON[order](), func(o order) string { return strconv.Itoa(o.ID % 4) }))
	require.NoError(t, save.Run(ctx))
	require.NoError(t, w.Close())

	seen := make(map[int]bool, n)
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case o := <-got:
			require.False(t, seen[o.ID], "row %d twice", o.ID)
			require.Equal(t, 2*o.ID, o.Total)
			seen[o.ID] = true
		case <-deadline:
			t.Fatalf("got %d of %d rows", len(seen), n)
		}
	}
	load.Stop()
	require.NoError(t, load.Wait())
	assert.Empty(t, got, "rows after the last one")

	// Every row was handled, so every message is acknowledged.
	assert.Zero(t, pendingCount(t, raw, key, "billing"))
	// The key of each message was saved in field k.
	entries, err := raw.XRangeN(ctx, key, "-", "+", 1).Result()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, map[string]any{FieldData: `{"id":1,"total":1}`, FieldKey: "1"}, entries[0].Values)
}

func TestMessageKeyAndData(t *testing.T) {
	c := newConnector(t, "keys", nil)
	ctx := t.Context()
	key := streamKey(t)
	r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	in := []connectors.Message{{Key: "a", Data: []byte("1")}, {Data: []byte{}}, {Key: "c", Data: []byte{0, 255, '\n'}}}
	require.NoError(t, w.Write(ctx, in))
	require.NoError(t, w.Write(ctx, in[:1])) // a single message skips the pipeline
	ds := readN(t, r, 4, 10)
	for i, want := range append(in, in[0]) {
		assert.Equal(t, want.Key, ds[i].Key, "message %d", i)
		assert.Equal(t, string(want.Data), string(ds[i].Data), "message %d", i)
	}
	ackAll(t, ds)
}

func TestHeadersRoundTrip(t *testing.T) {
	c := newConnector(t, "headers", nil)
	raw := rawClient(t)
	ctx := t.Context()
	key := streamKey(t)
	r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	h := map[string]string{
		"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"Content-Type": "application/json",
		"empty":        "",
		"a:b c\n":      " spaced\r\nvalue ",
		"d":            "not the data",
	}
	in := []connectors.Message{
		{Key: "a", Data: []byte("1"), Headers: h},
		{Data: []byte("2"), Headers: map[string]string{"only": "headers"}},
		{Data: []byte("3")},
	}
	require.NoError(t, w.Write(ctx, in))
	require.NoError(t, w.Write(ctx, in[:1])) // a single message skips the pipeline
	ds := readN(t, r, 4, 10)
	for i, want := range append(in, in[0]) {
		assert.Equal(t, want, ds[i].Message, "message %d", i)
	}
	ackAll(t, ds)

	entries, err := raw.XRange(ctx, key, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, entries, 4)
	assert.Equal(t, map[string]any{FieldData: "2", FieldHeaderPrefix + "only": "headers"}, entries[1].Values)
}

func TestSharedGroupDeliversEachMessageOnce(t *testing.T) {
	const n = 2000
	key := streamKey(t)
	raw := rawClient(t)
	// Two connectors stand for two processes sharing the group.
	cs := []*Connector{newConnector(t, "proc1", nil), newConnector(t, "proc2", nil)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var readers []connectors.Reader
	for _, c := range cs {
		r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "shared"})
		require.NoError(t, err)
		readers = append(readers, r)
	}
	values := make(chan int, n)
	errs := make(chan error, len(readers)+1)
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Go(func() {
			for {
				ds, err := r.Read(ctx, 64)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				for _, d := range ds {
					v, err := strconv.Atoi(string(d.Data))
					if err == nil {
						err = d.Ack()
					}
					if err != nil {
						errs <- err
						return
					}
					values <- v
				}
			}
		})
	}
	w, err := cs[0].Writer(ctx, key)
	require.NoError(t, err)
	wg.Go(func() {
		for i := 1; i <= n; i += 50 {
			if err := w.Write(ctx, msgs(i, min(i+49, n))); err != nil {
				errs <- err
				return
			}
		}
	})

	seen := make(map[int]bool, n)
	sum := 0
	deadline := time.After(30 * time.Second)
	for len(seen) < n {
		select {
		case v := <-values:
			require.False(t, seen[v], "message %d delivered twice", v)
			seen[v] = true
			sum += v
		case err := <-errs:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("got %d of %d messages", len(seen), n)
		}
	}
	cancel()
	wg.Wait()
	close(values)
	for v := range values {
		t.Errorf("extra delivery of %d", v)
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	assert.Equal(t, n*(n+1)/2, sum)
	assert.Zero(t, pendingCount(t, raw, key, "shared"))
}

func TestGroupsEachSeeEveryMessage(t *testing.T) {
	c := newConnector(t, "fanout", nil)
	ctx := t.Context()
	key := streamKey(t)
	readers := []connectors.Reader{}
	for _, g := range []string{"a", "b", "", ""} { // two named, two private
		r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: g})
		require.NoError(t, err)
		readers = append(readers, r)
	}
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, msgs(1, 100)))

	for i, r := range readers {
		ds := readN(t, r, 100, 30)
		assert.Equal(t, nums(1, 100), data(ds), "reader %d", i)
		ackAll(t, ds)
	}
}

func TestFromStart(t *testing.T) {
	c := newConnector(t, "history", nil)
	ctx := t.Context()
	key := streamKey(t)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, msgs(1, 3)))

	old, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "old", FromStart: true})
	require.NoError(t, err)
	fresh, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "fresh"})
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, msgs(4, 4)))

	ds := readN(t, old, 4, 10)
	assert.Equal(t, nums(1, 4), data(ds))
	ackAll(t, ds)
	ds = readN(t, fresh, 1, 10)
	assert.Equal(t, nums(4, 4), data(ds))
	ackAll(t, ds)
}

func TestDeadConsumerRowsAreReclaimed(t *testing.T) {
	params := map[string]string{"claim_idle": "200ms", "block": "50ms"}
	key := streamKey(t)
	raw := rawClient(t)
	dead := newConnector(t, "dying", params)
	live := newConnector(t, "surviving", params)
	ctx := t.Context()

	rd, err := dead.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	rl, err := live.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	w, err := live.Writer(ctx, key)
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, msgs(1, 10)))

	// The dying process reads everything and never acknowledges.
	unacked := readN(t, rd, 10, 10)
	require.Equal(t, nums(1, 10), data(unacked))
	require.NoError(t, dead.Close(ctx))
	require.Equal(t, int64(10), pendingCount(t, raw, key, "g"))

	// The live reader gets them through XAUTOCLAIM once idle for 200ms.
	ds := readN(t, rl, 10, 10)
	assert.ElementsMatch(t, nums(1, 10), data(ds))
	ext, err := raw.XPendingExt(ctx, &goredis.XPendingExtArgs{Stream: key, Group: "g", Start: "-", End: "+", Count: 100}).Result()
	require.NoError(t, err)
	require.Len(t, ext, 10)
	for _, p := range ext {
		assert.Equal(t, rl.(*reader).consumer, p.Consumer)
		assert.GreaterOrEqual(t, p.RetryCount, int64(2), "delivered to the dead consumer, then to the live one")
	}
	ackAll(t, ds)
	assert.Zero(t, pendingCount(t, raw, key, "g"))

	// The dead connector can no longer acknowledge anything.
	assert.ErrorIs(t, unacked[0].Ack(), connectors.ErrClosed)
}

func TestOnlyHandledMessagesAreAcknowledged(t *testing.T) {
	c := newConnector(t, "partial", nil)
	raw := rawClient(t)
	ctx := t.Context()
	key := streamKey(t)
	r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, msgs(1, 6)))

	ds := readN(t, r, 6, 6)
	require.Len(t, ds, 6)
	// Acknowledging part of a read only records it...
	require.NoError(t, ds[0].Ack())
	require.NoError(t, ds[1].Ack())
	assert.ErrorIs(t, ds[1].Ack(), errAcked)
	assert.Equal(t, int64(6), pendingCount(t, raw, key, "g"))
	// ...until the next Read sends it, before it blocks.
	readCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(readCtx, 10)
		done <- err
	}()
	awaitBlockedClients(t, raw, 1)
	assert.Equal(t, int64(4), pendingCount(t, raw, key, "g"))
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	require.NoError(t, ds[2].Ack())
	// Close sends what was acknowledged and leaves the rest pending.
	require.NoError(t, r.Close())
	assert.Equal(t, int64(3), pendingCount(t, raw, key, "g"))
	// Acknowledged after Close: sent at once.
	require.NoError(t, ds[3].Ack())
	assert.Equal(t, int64(2), pendingCount(t, raw, key, "g"))
	// The consumer holds pending messages, so it stays in the group.
	consumers, err := raw.XInfoConsumers(ctx, key, "g").Result()
	require.NoError(t, err)
	assert.Len(t, consumers, 1)

	// A reader that acknowledged everything leaves the group on Close.
	r2, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "g2", FromStart: true})
	require.NoError(t, err)
	ackAll(t, readN(t, r2, 6, 6))
	require.NoError(t, r2.Close())
	consumers, err = raw.XInfoConsumers(ctx, key, "g2").Result()
	require.NoError(t, err)
	assert.Empty(t, consumers)
}

func TestPrivateGroupDestroyedOnClose(t *testing.T) {
	c := newConnector(t, "private", nil)
	raw := rawClient(t)
	ctx := t.Context()
	key := streamKey(t)
	r, err := c.Reader(ctx, key, connectors.ReadOptions{})
	require.NoError(t, err)
	groups, err := raw.XInfoGroups(ctx, key).Result()
	require.NoError(t, err)
	require.Len(t, groups, 1)
	assert.True(t, strings.HasPrefix(groups[0].Name, PrivateGroupPrefix), groups[0].Name)

	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, msgs(1, 2)))
	ds := readN(t, r, 2, 2)
	require.NoError(t, r.Close())
	groups, err = raw.XInfoGroups(ctx, key).Result()
	require.NoError(t, err)
	assert.Empty(t, groups)
	assert.NoError(t, ds[0].Ack(), "acknowledging into a destroyed private group does nothing")

	// The connector's Close destroys the private groups of open readers.
	_, err = c.Reader(ctx, key, connectors.ReadOptions{})
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx))
	groups, err = raw.XInfoGroups(ctx, key).Result()
	require.NoError(t, err)
	assert.Empty(t, groups)
}

func TestReadInterruptedByContextAndClose(t *testing.T) {
	c := newConnector(t, "patient", map[string]string{"block": "10m", "claim_idle": "10m"})
	raw := rawClient(t)
	key := streamKey(t)
	r, err := c.Reader(t.Context(), key, connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)

	// Cancelling ctx ends a Read blocked for up to ten minutes.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, 10)
		done <- err
	}()
	awaitBlockedClients(t, raw, 1)
	cancel()
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), `redis connector "patient"`)

	// So does closing the reader.
	go func() {
		_, err := r.Read(t.Context(), 10)
		done <- err
	}()
	awaitBlockedClients(t, raw, 1)
	require.NoError(t, r.Close())
	require.ErrorIs(t, <-done, connectors.ErrClosed)
	_, err = r.Read(t.Context(), 1)
	require.ErrorIs(t, err, connectors.ErrClosed)
	require.ErrorIs(t, r.Close(), connectors.ErrClosed)
}

// awaitBlockedClients waits until the server has n blocked clients.
func awaitBlockedClients(t *testing.T, raw *goredis.Client, n int) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for {
		info, err := raw.Info(t.Context(), "clients").Result()
		require.NoError(t, err)
		if strings.Contains(info, "blocked_clients:"+strconv.Itoa(n)+"\r\n") {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("server never had %d blocked clients:\n%s", n, info)
		}
	}
}

func TestMaxLenTrims(t *testing.T) {
	c := newConnector(t, "trimmed", map[string]string{"maxlen": "100"})
	raw := rawClient(t)
	ctx := t.Context()
	key := streamKey(t)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	for i := 1; i <= 1000; i += 100 {
		require.NoError(t, w.Write(ctx, msgs(i, i+99)))
	}
	n, err := raw.XLen(ctx, key).Result()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, int64(100))
	assert.Less(t, n, int64(1000))
}

func TestNoGroup(t *testing.T) {
	c := newConnector(t, "orphan", map[string]string{"block": "20ms"})
	raw := rawClient(t)
	ctx := t.Context()
	key := streamKey(t)
	r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	require.NoError(t, raw.XGroupDestroy(ctx, key, "g").Err())
	_, err = r.Read(ctx, 10)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `redis connector "orphan", key "`+key+`", group "g"`)
	assert.Contains(t, err.Error(), "NOGROUP")
	assert.Contains(t, err.Error(), "no longer exists")
}

func TestWrongType(t *testing.T) {
	c := newConnector(t, "typo", nil)
	raw := rawClient(t)
	ctx := t.Context()
	key := streamKey(t)
	require.NoError(t, raw.Set(ctx, key, "a string", 0).Err())
	_, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `redis connector "typo", key "`+key+`"`)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	err = w.Write(ctx, msgs(1, 2))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `redis connector "typo", key "`+key+`": write message 1 of 2`)
	assert.Contains(t, err.Error(), "WRONGTYPE")
}

func TestServerGone(t *testing.T) {
	needRedis(t)
	srv, err := startServer()
	require.NoError(t, err)
	defer srv.stop()

	c, err := New(connectors.Config{Name: "fragile", Addrs: srv.addr, Key: "events"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.Init(ctx))
	defer c.Close(context.Background())
	w, err := c.Writer(ctx, "")
	require.NoError(t, err)
	r, err := c.Reader(ctx, "", connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, msgs(1, 1)))
	ds := readN(t, r, 1, 1)

	require.NoError(t, srv.stop())

	_, err = r.Read(ctx, 10)
	require.Error(t, err)
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), `redis connector "fragile", key "events", group "g"`)
	err = w.Write(ctx, msgs(2, 3))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `redis connector "fragile", key "events"`)
	err = ds[0].Ack()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `redis connector "fragile", key "events", group "g"`)

	// A connector whose server is not there fails to start.
	c2, err := New(connectors.Config{Name: "hopeful", Addrs: srv.addr})
	require.NoError(t, err)
	err = c2.Init(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `redis connector "hopeful": init: server `+srv.addr)
	require.NoError(t, c2.Close(ctx))
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		addrs  string
		params map[string]string
		want   string
	}{
		{"no address", "", nil, "addrs"},
		{"two addresses", "a:1,b:2", nil, "exactly one"},
		{"no port", "localhost", nil, "host:port"},
		{"bad scheme", "http://localhost:6379", nil, "scheme"},
		{"empty socket", "unix://", nil, "addrs"},
		{"bad URL", "redis://user:secret@host:port:x", nil, "bad URL"},
		{"bad database", "redis://user:secret@localhost:6379/zero", nil, "user:xxxxx@"},
		{"bad maxlen", "localhost:6379", map[string]string{"maxlen": "-1"}, "maxlen"},
		{"bad block", "localhost:6379", map[string]string{"block": "soon"}, "block"},
		{"zero block", "localhost:6379", map[string]string{"block": "0"}, "block"},
		{"bad claim_idle", "localhost:6379", map[string]string{"claim_idle": "100us"}, "claim_idle"},
		{"bad consumer", "localhost:6379", map[string]string{"consumer": "two words"}, "consumer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(connectors.Config{Name: "conf", Addrs: tc.addrs, Params: tc.params})
			require.ErrorIs(t, err, connectors.ErrConfig)
			assert.Contains(t, err.Error(), `redis connector "conf"`)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "secret")
		})
	}

	c, err := New(connectors.Config{Name: "conf", Addrs: "localhost:6379", Params: map[string]string{
		"maxlen": "10", "block": "250", "claim_idle": "1m", "consumer": "worker", "other": "ignored",
	}})
	require.NoError(t, err)
	assert.Equal(t, int64(10), c.maxLen)
	assert.Equal(t, 250*time.Millisecond, c.block)
	assert.Equal(t, time.Minute, c.claimIdle)
	assert.Equal(t, "worker", c.consumer)

	// Without a default key, an empty key is a configuration error.
	_, err = c.Writer(t.Context(), "")
	require.ErrorIs(t, err, connectors.ErrConfig)
	_, err = c.Reader(t.Context(), "", connectors.ReadOptions{})
	require.ErrorIs(t, err, connectors.ErrConfig)
	// Before Init there is no connection.
	_, err = c.Writer(t.Context(), "k")
	require.ErrorContains(t, err, "call Init first")
	require.NoError(t, c.Close(t.Context()))
	require.ErrorIs(t, c.Init(t.Context()), connectors.ErrClosed)
	require.ErrorIs(t, c.Close(t.Context()), connectors.ErrClosed)
}

func TestRegister(t *testing.T) {
	reg := connectors.NewRegistry()
	require.NoError(t, Register(reg))
	require.Error(t, Register(reg), "registered twice")
	assert.Equal(t, []string{"redis"}, reg.Types())
	require.Error(t, Register(nil), "nil registry")

	conn, err := reg.New(connectors.Config{Name: "reg", Type: Type, Addrs: "unix:///tmp/none.sock"})
	require.NoError(t, err)
	assert.IsType(t, &Connector{}, conn)
	require.NoError(t, conn.Close(t.Context()))

	_, err = reg.New(connectors.Config{Name: "reg", Type: Type})
	require.ErrorIs(t, err, connectors.ErrConfig)
	assert.Contains(t, err.Error(), `"reg"`)
}

func TestClosedConnector(t *testing.T) {
	c := newConnector(t, "closing", nil)
	ctx := t.Context()
	key := streamKey(t)
	w, err := c.Writer(ctx, key)
	require.NoError(t, err)
	require.NoError(t, c.Close(ctx))
	require.ErrorIs(t, w.Write(ctx, msgs(1, 1)), connectors.ErrClosed)
	_, err = c.Writer(ctx, key)
	require.ErrorIs(t, err, connectors.ErrClosed)
	_, err = c.Reader(ctx, key, connectors.ReadOptions{})
	require.ErrorIs(t, err, connectors.ErrClosed)
	require.ErrorIs(t, w.Close(), connectors.ErrClosed)

	// Errors name the connector and the key.
	err = w.Write(ctx, msgs(1, 1))
	assert.Contains(t, err.Error(), `redis connector "closing", key "`+key+`"`)
	assert.True(t, errors.Is(err, connectors.ErrClosed))
}
