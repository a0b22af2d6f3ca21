package stream_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/memory"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// newTopic returns an initialised in-memory topic closed with the test.
func newTopic(t *testing.T) *memory.Topic {
	t.Helper()
	m := memory.New(connectors.Config{Name: "test"})
	require.NoError(t, m.Init(t.Context()))
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

// countingReader counts the acknowledgements of the deliveries it reads.
type countingReader struct {
	connectors.Reader
	acks atomic.Int64
}

func (c *countingReader) Read(ctx context.Context, n int) ([]connectors.Delivery, error) {
	ds, err := c.Reader.Read(ctx, n)
	for i := range ds {
		ack := ds[i].Ack
		ds[i].Ack = func() error { c.acks.Add(1); return ack() }
	}
	return ds, err
}

func TestSaveEncodesRowsAndKeys(t *testing.T) {
	m := newTopic(t)
	r, err := m.Reader(t.Context(), "k", connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	w, err := m.Writer(t.Context(), "k")
	require.NoError(t, err)

	p := pipeline.New("save")
	rows := pipeline.FromSlice(p, "rows", []order{{1, 10}, {2, 20}})
	pipeline.To(rows, stream.Save("save", w, stream.JSON[order](), func(o order) string { return strconv.Itoa(o.ID) }))
	require.NoError(t, p.Run(t.Context()))

	ds, err := r.Read(t.Context(), 10)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	assert.Equal(t, connectors.Message{Key: "1", Data: []byte(`{"id":1,"total":10}`)}, ds[0].Message)
	assert.Equal(t, connectors.Message{Key: "2", Data: []byte(`{"id":2,"total":20}`)}, ds[1].Message)
}

func TestLoadFailsUndecodableMessagesAndAcksEverything(t *testing.T) {
	m := newTopic(t)
	rd, err := m.Reader(t.Context(), "k", connectors.ReadOptions{Group: "g"})
	require.NoError(t, err)
	r := &countingReader{Reader: rd}
	w, err := m.Writer(t.Context(), "k")
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), []connectors.Message{
		{Data: []byte(`{"id":1,"total":10}`)},
		{Data: []byte(`not json`)},
		{Data: []byte(`{"id":3,"total":30}`)},
	}))
	require.NoError(t, w.Close())

	p := pipeline.New("load")
	var got []order
	pipeline.To(stream.Load(p, "load", r, stream.JSON[order]()), stage.Sink("collect", func(_ context.Context, o order) error {
		got = append(got, o)
		return nil
	}))
	require.NoError(t, p.Run(t.Context()))

	assert.Equal(t, []order{{1, 10}, {3, 30}}, got)
	src := p.Stats().Nodes[0]
	assert.Equal(t, "load", src.Name)
	assert.EqualValues(t, 3, src.In)
	assert.EqualValues(t, 1, src.Failed, "the message that does not decode is a failed row")
	assert.EqualValues(t, 3, r.acks.Load(), "every message is acknowledged, the bad one too")
}

// failingReader fails every Read.
type failingReader struct{ err error }

func (f failingReader) Read(context.Context, int) ([]connectors.Delivery, error) { return nil, f.err }
func (failingReader) Close() error                                               { return nil }

func TestLoadReadErrorFailsRun(t *testing.T) {
	cause := errors.New("broker gone")
	p := pipeline.New("load")
	pipeline.To(stream.Load(p, "load", failingReader{cause}, stream.JSON[order]()),
		stage.Sink("drop", func(context.Context, order) error { return nil }))
	err := p.Run(t.Context())
	require.ErrorIs(t, err, cause)
	assert.ErrorContains(t, err, "read")
}

// failingWriter fails every Write.
type failingWriter struct{ err error }

func (f failingWriter) Write(context.Context, []connectors.Message) error { return f.err }
func (failingWriter) Close() error                                        { return nil }

func TestSaveWriteErrorFailsChunk(t *testing.T) {
	cause := errors.New("broker full")
	p := pipeline.New("save")
	rows := pipeline.FromSlice(p, "rows", []order{{1, 10}})
	pipeline.To(rows, stream.Save("save", failingWriter{cause}, stream.JSON[order](), nil))
	require.ErrorIs(t, p.Run(t.Context()), cause)
}

func TestLoadAndSavePanicOnNil(t *testing.T) {
	assert.Panics(t, func() { stream.Load(pipeline.New("p"), "load", nil, stream.JSON[order]()) })
	assert.Panics(t, func() { stream.Save("save", nil, stream.JSON[order](), nil) })
	assert.Panics(t, func() { stream.Save("save", failingWriter{}, stream.Codec[order]{}, nil) })
}
