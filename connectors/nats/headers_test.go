package nats

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
)

func TestHeadersRoundTrip(t *testing.T) {
	s := startServer(t)
	for _, partitions := range []string{"0", "4"} {
		t.Run("partitions="+partitions, func(t *testing.T) {
			key := "traced" + partitions
			c := newConnector(t, "bus", s.ClientURL(), key, map[string]string{"partitions": partitions})
			r := newReader(t, c, key, connectors.ReadOptions{Group: "g", FromStart: true})
			w := newWriter(t, c, key)
			ctx := t.Context()

			h := map[string]string{
				"traceparent":  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				"tracestate":   "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
				"Content-Type": "application/json; charset=utf-8",
				"run":          "",
			}
			in := []connectors.Message{
				{Key: "shop-1", Data: []byte(`{"id":1}`), Headers: h},
				{Data: []byte(`{"id":2}`), Headers: map[string]string{"only": "headers, no key"}},
				{Key: "shop-2", Data: []byte(`{"id":3}`)},
				{Data: []byte(`{"id":4}`)},
			}
			require.NoError(t, w.Write(ctx, in))

			got := map[string]connectors.Message{}
			for len(got) < len(in) {
				ds, err := r.Read(ctx, 10)
				require.NoError(t, err)
				for _, d := range ds {
					got[string(d.Data)] = d.Message
					require.NoError(t, d.Ack())
				}
			}
			for _, m := range in {
				assert.Equal(t, m, got[string(m.Data)], "message %s", m.Data)
			}
		})
	}
}

func TestHeadersNATSCannotCarryAreRefused(t *testing.T) {
	s := startServer(t)
	c := newConnector(t, "bus", s.ClientURL(), "refused", nil)
	w := newWriter(t, c, "refused")
	r := newReader(t, c, "refused", connectors.ReadOptions{Group: "g", FromStart: true})
	for _, h := range []map[string]string{
		{KeyHeader: "k"},
		{"": "v"},
		{"two words": "v"},
		{"a:b": "v"},
		{"line": "one\r\ntwo: injected"},
		{"padded": " v "},
	} {
		err := w.Write(t.Context(), []connectors.Message{{Data: []byte("ok")}, {Data: []byte("bad"), Headers: h}})
		require.Error(t, err, "headers %q", h)
		assert.ErrorContains(t, err, "message 2 of 2")
	}
	// Nothing was stored: the check comes before the first publish.
	require.NoError(t, w.Write(t.Context(), []connectors.Message{{Data: []byte("last")}}))
	ds, err := r.Read(t.Context(), 10)
	require.NoError(t, err)
	require.Len(t, ds, 1)
	assert.Equal(t, "last", string(ds[0].Data))
	require.NoError(t, ds[0].Ack())
}
