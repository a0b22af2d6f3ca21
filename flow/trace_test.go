package flow_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/internal/tracetest"
)

// A committed row's trace goes from the saving flow, through the headers of
// the messages its Save function writes, into the flow that loads them.
func TestTraceCrossesSaveAndLoad(t *testing.T) {
	tr := &tracetest.Tracer{}
	reg := flow.NewRegistry(flow.Trace(tr))
	defer reg.Close(context.Background())
	require.NoError(t, reg.AddConfig(
		&config.Conn{Name: "topic", Type: "memory", Key: "k"},
		&config.Func{Name: "double", Mode: config.ModeSave, Option: config.FuncOption{Conn: "topic"}},
		&config.Func{Name: "read", Mode: config.ModeLoad, Option: config.FuncOption{Conn: "topic"}},
		&config.Func{Name: "print", Mode: config.ModeExpand},
	))
	var spanInSave int
	require.NoError(t, flow.Register(reg, "double", func(ctx context.Context, h *flow.Handle[int, int], rows []int) error {
		spanInSave = tracetest.IDOf(ctx)
		for _, v := range rows {
			h.CommitRow(2 * v)
		}
		return nil
	}))
	require.NoError(t, flow.Register(reg, "read", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		h.CommitRowBatch(rows)
		return nil
	}))
	var got lines
	require.NoError(t, flow.Register(reg, "print", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			got.add(strconv.Itoa(v))
		}
		return nil
	}))
	saver := define(t, reg, "saver", "double")
	loader := define(t, reg, "loader", "read", "print")

	var g errgroup.Group
	g.Go(func() error { return loader.Run(context.Background()) })
	require.NoError(t, saver.Start(context.Background()))
	require.NoError(t, saver.CommitRow(tracetest.With(context.Background(), 1), 21))
	saver.Stop()
	require.NoError(t, saver.Wait())
	require.NoError(t, g.Wait())
	assert.Equal(t, []string{"42"}, got.get())

	byID := map[int]tracetest.Span{}
	for _, s := range tr.Spans() {
		byID[s.ID] = s
	}
	committed := tr.Named("input")
	require.Len(t, committed, 1)
	assert.Equal(t, 1, committed[0].Parent, "CommitRow continues the trace of its ctx")
	assert.Equal(t, "saver", committed[0].Flow)

	save := tr.Named("double")
	require.Len(t, save, 1)
	assert.Equal(t, []int{committed[0].ID}, save[0].Links)
	assert.Equal(t, save[0].ID, spanInSave, "the function gets its batch span in ctx")

	// The Save function's sink writes the messages in a batch span of its
	// own, whose context the loading flow continues.
	var writer tracetest.Span
	for _, s := range tr.Spans() {
		if s.Flow == "saver" && s.Name == "double.save" {
			writer = s
		}
	}
	require.NotZero(t, writer.ID, "the save sink's batch span")
	loaded := tr.Named("read.load")
	require.Len(t, loaded, 1)
	assert.Equal(t, "loader", loaded[0].Flow)
	assert.Equal(t, writer.ID, loaded[0].Parent, "the loaded message continues the trace of the batch that saved it")
	print := tr.Named("print")
	require.Len(t, print, 1)
	assert.Equal(t, []int{loaded[0].ID}, print[0].Links)
	assert.Empty(t, tr.Unended())
}
