package kafka

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kisflow/kisflow/connectors"
)

func TestHeadersAndKeysRoundTrip(t *testing.T) {
	addrs := startCluster(t, 4, "traced")
	c := newConnector(t, "bus", addrs, "traced", nil)
	r := newReader(t, c, "traced", connectors.ReadOptions{Group: "g", FromStart: true})
	w := newWriter(t, c, "traced")
	in := []connectors.Message{
		{Key: "shop-1", Data: []byte(`{"id":1}`), Headers: map[string]string{
			"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"Content-Type": "application/json; charset=utf-8",
			"empty":        "",
			"spaced name":  " a value\nwith a line break ",
		}},
		{Data: []byte(`{"id":2}`), Headers: map[string]string{"only": "headers, no key"}},
		{Key: "shop-2", Data: []byte(`{"id":3}`)},
		{Data: []byte(`{"id":4}`)},
	}
	require.NoError(t, w.Write(t.Context(), in))
	got := map[string]connectors.Message{}
	for _, d := range readN(t, r, len(in)) {
		got[string(d.Data)] = d.Message
		require.NoError(t, d.Ack())
	}
	for _, m := range in {
		assert.Equal(t, m, got[string(m.Data)], "message %s", m.Data)
	}
}

func TestKeysKeepTheirPartition(t *testing.T) {
	addrs := startCluster(t, 4, "orders")
	c := newConnector(t, "bus", addrs, "orders", nil)
	w := newWriter(t, c, "orders")
	r := newReader(t, c, "orders", connectors.ReadOptions{Group: "g", FromStart: true})
	var ms []connectors.Message
	for i := range 200 {
		ms = append(ms, connectors.Message{Key: "key-" + string(rune('a'+i%13)), Data: []byte{byte(i)}})
	}
	require.NoError(t, w.Write(t.Context(), ms))
	var parts []int32
	r.(*reader).handed = func(e *entry) { parts = append(parts, e.part.id) }
	partOf := map[string]int32{}
	last := map[string]int{}
	for i, d := range readN(t, r, len(ms)) {
		if p, ok := partOf[d.Key]; ok {
			require.Equal(t, p, parts[i], "key %s in two partitions", d.Key)
		}
		partOf[d.Key] = parts[i]
		if prev, ok := last[d.Key]; ok {
			require.Greater(t, int(d.Data[0]), prev, "key %s out of order", d.Key)
		}
		last[d.Key] = int(d.Data[0])
		require.NoError(t, d.Ack())
	}
}

func TestPrivateReadersSeeEverythingAndCommitNothing(t *testing.T) {
	addrs := startCluster(t, 4, "events")
	adm := admin(t, addrs)
	c := newConnector(t, "bus", addrs, "events", nil)
	require.NoError(t, newWriter(t, c, "events").Write(t.Context(), messages(0, 40)))
	for range 2 {
		r := newReader(t, c, "events", connectors.ReadOptions{FromStart: true})
		seen := map[string]bool{}
		for _, d := range readN(t, r, 40) {
			seen[string(d.Data)] = true
			require.NoError(t, d.Ack())
			require.ErrorIs(t, d.Ack(), connectors.ErrAcked)
		}
		require.Len(t, seen, 40)
		require.NoError(t, r.Close())
	}
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	groups, err := adm.ListGroups(ctx)
	require.NoError(t, err)
	require.Empty(t, groups.Groups(), "a private reader joins no group")
}

func TestReadHonoursContextAndClose(t *testing.T) {
	addrs := startCluster(t, 2, "idle")
	c := newConnector(t, "bus", addrs, "idle", nil)
	r := newReader(t, c, "idle", connectors.ReadOptions{Group: "g"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(ctx, 10)
		done <- err
	}()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)

	go func() {
		_, err := r.Read(t.Context(), 10)
		done <- err
	}()
	require.NoError(t, r.Close())
	require.ErrorIs(t, <-done, connectors.ErrClosed)
	_, err := r.Read(t.Context(), 1)
	require.ErrorIs(t, err, connectors.ErrClosed)

	w := newWriter(t, c, "idle")
	require.NoError(t, c.Close(context.Background()))
	err = w.Write(t.Context(), messages(0, 1))
	require.ErrorIs(t, err, connectors.ErrClosed)
	_, err = c.Writer(t.Context(), "idle")
	require.ErrorIs(t, err, connectors.ErrClosed)
	require.ErrorContains(t, err, `kafka connector "bus"`)
}

func TestBrokerUnreachable(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c, err := New(connectors.Config{Name: "nowhere", Addrs: addr, Params: map[string]string{"timeout": "500ms"}})
	require.NoError(t, err)
	err = c.Init(t.Context())
	require.Error(t, err)
	require.ErrorContains(t, err, `kafka connector "nowhere": connect to `+addr)
	t.Logf("Init: %v", err)
	require.NoError(t, c.Close(t.Context()))

	// A cluster that goes away under a writer.
	cl, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(2, "orders"))
	require.NoError(t, err)
	addrs := strings.Join(cl.ListenAddrs(), ",")
	c = newConnector(t, "orders-bus", addrs, "orders", map[string]string{"delivery_timeout": "1s", "timeout": "500ms"})
	w := newWriter(t, c, "orders")
	require.NoError(t, w.Write(t.Context(), messages(0, 1)))
	cl.Close()
	err = w.Write(t.Context(), messages(1, 2))
	require.Error(t, err)
	require.ErrorContains(t, err, `kafka connector "orders-bus": key "orders": produce`)
	t.Logf("Write: %v", err)
}

func TestTopicMissing(t *testing.T) {
	addrs := startCluster(t, 2, "other")
	ctx := t.Context()
	c := newConnector(t, "strict", addrs, "", nil)
	_, err := c.Writer(ctx, "orders")
	require.ErrorIs(t, err, ErrTopicMissing)
	require.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
	require.ErrorContains(t, err, `kafka connector "strict": key "orders": kafka: topic does not exist (create it, or set param create=true)`)
	t.Logf("Writer: %v", err)
	_, err = c.Reader(ctx, "orders", connectors.ReadOptions{Group: "g"})
	require.ErrorIs(t, err, ErrTopicMissing)

	// With create, the connector creates it with the partitions asked for.
	lax := newConnector(t, "lax", addrs, "", map[string]string{"create": "true", "partitions": "5"})
	newWriter(t, lax, "orders")
	n, err := lax.(*connector).topic(ctx, "orders")
	require.NoError(t, err)
	require.Equal(t, 5, n)
	newReader(t, c, "orders", connectors.ReadOptions{Group: "g"}) // exists now
}

func TestConfigErrors(t *testing.T) {
	for _, params := range []map[string]string{
		{"partitions": "0"},
		{"revoke_wait": "soon"},
		{"balancer": "fair"},
		{"bogus": "1"},
		{"sasl_mechanism": "GSSAPI", "user": "u"},
		{"user": "u", "password": "p"},
		{"sasl_mechanism": "PLAIN"},
		{"create": "maybe"},
		{"commit_interval": "0s"},
	} {
		_, err := New(connectors.Config{Name: "bad", Type: Type, Params: params})
		require.ErrorIs(t, err, connectors.ErrConfig, "%v", params)
		require.ErrorContains(t, err, `kafka connector "bad"`)
	}
	_, err := New(connectors.Config{Name: "bad", Params: map[string]string{"password": "secret", "bogus": "x"}})
	require.ErrorContains(t, err, `unknown param "bogus"`)
	require.ErrorContains(t, err, "tls, tls_ca, transactional_id", "the known params")
	require.NotContains(t, err.Error(), "secret")
	_, err = New(connectors.Config{Name: "bad", Key: "orders/eu"})
	require.ErrorIs(t, err, connectors.ErrConfig)
	require.ErrorContains(t, err, `key "orders/eu" is not a Kafka topic name`)

	c, err := New(connectors.Config{Name: "early"})
	require.NoError(t, err)
	_, err = c.Writer(t.Context(), "orders")
	require.ErrorContains(t, err, `kafka connector "early": key "orders": connector used before Init`)
	_, err = c.Writer(t.Context(), "bad key")
	require.ErrorIs(t, err, connectors.ErrConfig)

	reg := connectors.NewRegistry()
	require.NoError(t, Register(reg))
	require.Error(t, Register(reg))
	require.Error(t, Register(nil), "nil registry")
	require.Contains(t, reg.Types(), Type)
	c, err = reg.New(connectors.Config{Name: "x", Type: Type, Params: map[string]string{"group": "g", "from_start": "false"}})
	require.NoError(t, err, "the flow package's params are accepted")
	require.NoError(t, c.Close(t.Context()))
	_, err = reg.New(connectors.Config{Name: "y", Type: Type, Params: map[string]string{"replication_factor": "0"}})
	require.ErrorIs(t, err, connectors.ErrConfig)
}
